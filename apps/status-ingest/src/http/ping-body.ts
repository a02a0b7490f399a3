import { Transform, type TransformCallback } from 'node:stream';

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
