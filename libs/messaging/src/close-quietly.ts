import type { EventEmitter } from 'node:events';

/**
 * Closes an amqplib connection or channel without ever hanging: amqplib's
 * `close()` never settles when the socket dies while it waits for close-ok, so
 * this resolves on the first of: close() settling, the object's 'close' event,
 * or `timeoutMs`. Errors are swallowed (the object is gone either way).
 */
export function closeQuietly(target: EventEmitter & { close(): Promise<void> }, timeoutMs = 2_000): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      target.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    target.once('close', done);
    try {
      target.close().then(done, done);
    } catch {
      done();
    }
  });
}
