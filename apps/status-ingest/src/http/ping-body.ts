import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { BodyEncoding } from './content-encoding';

/** A request stream as Fastify reads it (`receivedEncodedLength`: what came off the wire, for its Content-Length check). */
export type CountedStream = NodeJS.ReadableStream & { receivedEncodedLength?: number };

/**
 * A ping's body is information (a job's output), while the ping itself is the
 * signal: a cron job that posts megabytes of log must still count. Passes on the
 * first `keepBytes` and reads the rest off the socket to discard it, up to
 * `maxBytes` in all (past that the request fails as too large, as any body would).
 */
export function keepHeadOfBody(payload: NodeJS.ReadableStream, keepBytes: number, maxBytes: number): CountedStream {
  let received = 0;
  let kept = 0;
  const head = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      received += chunk.length;
      (head as CountedStream).receivedEncodedLength = received;
      if (received > maxBytes)
        return done(
          Object.assign(new Error(`ping body larger than ${maxBytes} bytes`), {
            statusCode: 413,
            code: 'FST_ERR_CTP_BODY_TOO_LARGE',
          }),
        );
      if (kept >= keepBytes) return done();
      const part = chunk.subarray(0, keepBytes - kept);
      kept += part.length;
      done(null, part);
    },
  });
  (head as CountedStream).receivedEncodedLength = 0;
  payload.on('error', (e) => head.destroy(e));
  return payload.pipe(head) as CountedStream;
}

/**
 * keepHeadOfBody for a body sent with a Content-Encoding. gzip and deflate are inflated and the head of what they hold
 * is kept; inflating stops there (a small bomb costs no more than its head), and the rest of the body is read off the
 * socket and dropped, up to `maxBytes` as it came. A coding this edge does not decode (`br`…), or bytes that are not
 * the coding named, leave a note in place of the body: the ping counts either way (its body is information, not the
 * signal), and the compressed bytes read as text were kept as mojibake. `onNote` is told when a note (UTF-8) is the body.
 */
export function keepHeadOfEncodedBody(
  payload: NodeJS.ReadableStream,
  encoding: BodyEncoding | 'unsupported',
  named: string,
  keepBytes: number,
  maxBytes: number,
  onNote: () => void = () => undefined,
): CountedStream {
  const raw = keepHeadOfBody(payload, maxBytes, maxBytes);
  const out = new PassThrough();
  Object.defineProperty(out, 'receivedEncodedLength', { get: () => raw.receivedEncodedLength, enumerable: true });
  raw.on('error', (e: Error) => out.destroy(e));
  // An empty body (`curl -d ''` with the header) stays empty: a note would not match its Content-Length of 0, which
  // Fastify checks against what it reads when nothing came off the wire (a 400, the ping lost).
  const empty = (): boolean => !raw.receivedEncodedLength;
  if (encoding === 'unsupported') {
    raw.on('data', () => undefined);
    raw.on('end', () => {
      if (empty()) return void out.end();
      onNote();
      out.end(`(body not kept: content encoding "${named}" is not decoded here; send gzip or deflate)`);
    });
    return out as CountedStream;
  }
  const inflate = encoding === 'gzip' ? createGunzip() : createInflate();
  let inflating = true;
  let rawEnded = false;
  let kept = 0;
  const finish = (): void => {
    if (!out.writableEnded) out.end();
  };
  // Inflating may stop (enough kept, or not the coding named) before or after the body has all arrived: the answer
  // waits for both.
  const stop = (): void => {
    inflating = false;
    inflate.destroy();
    if (rawEnded) finish();
  };
  inflate.on('data', (chunk: Buffer) => {
    if (!inflating) return;
    const part = chunk.subarray(0, keepBytes - kept);
    kept += part.length;
    if (part.length > 0) out.write(part);
    if (kept >= keepBytes) stop();
  });
  inflate.on('error', () => {
    if (!inflating) return;
    if (kept === 0 && !empty()) {
      onNote();
      out.write(`(body not kept: not valid ${encoding} data, as Content-Encoding says)`);
    }
    stop();
  });
  // The coded data may end before the body does (bytes after a deflate stream): the rest is still read and dropped.
  inflate.on('end', () => {
    inflating = false;
    if (rawEnded) finish();
  });
  raw.on('data', (chunk: Buffer) => {
    if (inflating) inflate.write(chunk);
  });
  raw.on('end', () => {
    rawEnded = true;
    if (inflating) inflate.end();
    else finish();
  });
  return out as CountedStream;
}
