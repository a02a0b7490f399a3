import { Redis } from 'ioredis';
import { servername, type Target } from './connect-target';

/**
 * One Redis connection for one attempt, to the target's address: not connected yet
 * (lazyConnect), no offline queue (a command never waits for a reconnect that will not
 * come), no retries, no reconnects; dropped when the attempt's signal aborts.
 * `why(err)`: the first error says why (ECONNREFUSED, WRONGPASS) when the rejection that
 * follows is only "Connection is closed." (kept, never logged). `unwire()` when done.
 * `open()` connects and, for a check that reads keys (`select`), selects the check's database itself: ioredis's own
 * SELECT at connect only emitted its refusal (`ERR DB index is out of range`), and a redis-stats check went on in
 * database 0 — UP, reading db 0's keys. A plain redis check (PING, server-wide INFO) selects nothing: a user without
 * SELECT, or a cluster node, still answers it.
 * `maxReadBytes` bounds what the connection reads: in all (redis), or, once `nextReply(command)` has been called, from
 * that call on — a probe that awaits each command before sending the next (redis-stats) calls it before each, and so
 * bounds each reply on its own (bytes of the same socket read past a reply's end count to that reply, so what ioredis
 * holds is at most the limit and one read). Past it the connection is dropped; `exceeded()` says so, `why()` gives it.
 */
export function redisClient(
  check: { host: string; port: number; username?: string; db?: number; tls?: boolean },
  target: Target<string | undefined>,
  timeoutMs: number,
  select = false,
  maxReadBytes = Infinity,
): {
  redis: Redis;
  open(): Promise<void>;
  why(err: unknown): unknown;
  unwire(): void;
  nextReply(command: string): void;
  exceeded(): Error | undefined;
} {
  const redis = new Redis({
    host: target.address,
    port: check.port,
    username: check.username,
    password: target.password,
    tls: check.tls ? { servername: servername(check.host), rejectUnauthorized: true } : undefined,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: null,
    autoResubscribe: false,
    disableClientInfo: true,
    connectTimeout: Math.max(1, Math.ceil(timeoutMs)),
    // On abort the socket is ended, then destroyed after this: ioredis's 2 s outlived the probe's grace (1 s) against
    // a server that accepts and never answers, and the attempt was taken for a probe that would not stop.
    disconnectTimeout: 200,
  });
  let firstError: unknown;
  redis.on('error', (err: unknown) => {
    firstError ??= err;
  });
  // ioredis's parser holds a reply until its last byte: a server answering INFO with a bulk string of gigabytes grew
  // the collector by as much as it could send before the timeout. Past `maxReadBytes` on this connection, it is dropped.
  let exceeded: Error | undefined;
  let read = 0;
  let replyTo: string | undefined;
  if (Number.isFinite(maxReadBytes)) {
    redis.on('connect', () => {
      const stream = redis.stream;
      stream.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read <= maxReadBytes || exceeded) return;
        exceeded = new Error(
          replyTo === undefined
            ? `the server's answers exceeded ${maxReadBytes} bytes`
            : `the server's reply to ${replyTo} exceeded ${maxReadBytes} bytes`,
        );
        stream.destroy();
      });
    });
  }
  const nextReply = (command: string): void => {
    read = 0;
    replyTo = command;
  };
  const disconnect = () => redis.disconnect();
  target.signal.addEventListener('abort', disconnect, { once: true });
  const why = (err: unknown): unknown => {
    const message = (err as { message?: unknown }).message;
    if (exceeded && (message === 'Connection is closed.' || !message)) return exceeded;
    const useFirst = firstError !== undefined && (message === 'Connection is closed.' || !message);
    return useFirst ? firstError : err;
  };
  const open = async (): Promise<void> => {
    await redis.connect();
    if (select && check.db) await redis.select(check.db);
  };
  return {
    redis,
    open,
    why,
    unwire: () => target.signal.removeEventListener('abort', disconnect),
    nextReply,
    exceeded: () => exceeded,
  };
}
