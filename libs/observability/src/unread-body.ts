import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export interface UnreadBodyLimits {
  /** Bytes read and thrown away before giving up and closing. */
  maxBytes: number;
  /** How long to keep reading before giving up and closing. */
  maxMs: number;
}

/**
 * An answer sent before the request body was read (413 for a body over the
 * limit, 401 before an unauthenticated body is parsed) waits while the rest of
 * the body is read and discarded, up to a bound, and only then goes out. Closing
 * while the client is still sending makes its kernel reset the connection, and a
 * reset throws away the answer it had not read yet: the client saw EPIPE instead
 * of the 413. Past the bound the connection is closed anyway.
 */
export function answerAfterUnreadBody(app: FastifyInstance, limits: UnreadBodyLimits): void {
  app.addHook('onSend', async (request, reply, payload) => {
    const raw = request.raw;
    if (raw.complete || raw.destroyed || !hasBody(raw)) return payload;
    const declared = Number(raw.headers['content-length']);
    const drained = declared > limits.maxBytes ? false : await discardBody(raw, limits);
    if (!drained) reply.header('connection', 'close');
    return payload;
  });
}

function hasBody(raw: IncomingMessage): boolean {
  return raw.headers['transfer-encoding'] !== undefined || Number(raw.headers['content-length'] ?? 0) > 0;
}

/** Reads `raw` to its end, dropping the bytes. True when it ended within the limits. */
export function discardBody(raw: IncomingMessage, { maxBytes, maxMs }: UnreadBodyLimits): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (ended: boolean): void => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('close', onClose);
      raw.off('error', onClose);
      if (!ended) raw.pause();
      resolve(ended);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) finish(false);
    };
    const onEnd = (): void => finish(true);
    const onClose = (): void => finish(raw.complete);
    const timer = setTimeout(() => finish(false), maxMs);
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('close', onClose);
    raw.once('error', onClose);
    raw.resume();
  });
}
