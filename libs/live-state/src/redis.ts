import { Redis, RedisOptions } from 'ioredis';

export interface LiveStateConnectionOptions {
  url: string;
  /** Key prefix for this site (and per test run): every key family lives under it. */
  keyPrefix?: string;
  /** Name shown in `CLIENT LIST`. */
  connectionName?: string;
  /** Fail commands fast while disconnected instead of queueing them without bound. */
  maxRetriesPerRequest?: number;
  /** A command without an answer within this fails ("Command timed out"); default: none. */
  commandTimeoutMs?: number;
  /**
   * A connection that has received nothing for this long while commands wait on it is taken for dead: closed and
   * opened again (ioredis's socketTimeout). Default: twice commandTimeoutMs, at least 10 s — above any script's time
   * on Redis (one thread: the aggregator's largest projection holds every client 1–1.3 s).
   */
  socketTimeoutMs?: number;
  /**
   * Send the commands left unanswered on a closed connection again on the next one (ioredis's default). Default: only
   * without a command timeout. Safe for a connection that only subscribes and PINGs; for any other, such a command has
   * failed (or fails at once, see createRedis) and its caller retries it.
   */
  resendUnanswered?: boolean;
}

/** The socket timeout createRedis uses (see LiveStateConnectionOptions.socketTimeoutMs). */
export function redisSocketTimeoutMs(
  options: Pick<LiveStateConnectionOptions, 'commandTimeoutMs' | 'socketTimeoutMs'>,
) {
  return options.socketTimeoutMs ?? Math.max(10_000, 2 * (options.commandTimeoutMs ?? 0));
}

/**
 * One Redis connection with bounded retries and a key prefix. A connection gone silent without a reset (a flow a NAT
 * or load balancer forgot, a host gone without a FIN) is noticed by the socket timeout when a command waits on it;
 * without it ioredis kept it — every command timing out — until the kernel gave up on it (15 min of retransmissions,
 * or over 2 h of keep-alive for a connection that only listens).
 */
export function createRedis(options: LiveStateConnectionOptions): Redis {
  const redisOptions: RedisOptions = {
    keyPrefix: options.keyPrefix ?? '',
    connectionName: options.connectionName,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3000),
    reconnectOnError: (err) => err.message.includes('READONLY'),
    socketTimeout: redisSocketTimeoutMs(options),
    // With a command timeout, a command left unanswered on a connection that closed has failed (or will, by its own
    // timer) and its caller retries it: re-sent after the reconnect as well (ioredis's default), it would run twice,
    // late and out of order (a rate bucket counted twice, a PUBLISH after newer ones), and a command slower than the
    // socket timeout would be re-run on every new connection for ever.
    autoResendUnfulfilledCommands: options.resendUnanswered ?? options.commandTimeoutMs === undefined,
  };
  if (options.commandTimeoutMs !== undefined) redisOptions.commandTimeout = options.commandTimeoutMs;
  const redis = new Redis(options.url, redisOptions);
  // Not re-sent, they would wait for their command timeout: failed as soon as the connection is gone instead, so the
  // callers retry at once (after a Redis restart, within the reconnect, not 5 s later).
  if (!redisOptions.autoResendUnfulfilledCommands) redis.on('close', () => failUnanswered(redis));
  return redis;
}

/**
 * Rejects the commands a closed connection left unanswered, with the error ioredis gives a command on a closed
 * connection (every caller counts it as Redis away). ioredis (pinned, 6.0.0) keeps them in `prevCommandQueue` from the
 * close until the next 'ready', where it drops them without settling when the re-send is off; its 'close' event comes
 * on the next tick, after that queue is kept. redis.dead-connection.int-spec fails if a new ioredis does otherwise.
 */
function failUnanswered(redis: Redis): void {
  type Queued = { command: { reject(error: Error): void } };
  const internal = redis as unknown as { prevCommandQueue?: { shift(): Queued | undefined } | null };
  const queue = internal.prevCommandQueue;
  if (!queue) return;
  internal.prevCommandQueue = null;
  for (let item = queue.shift(); item; item = queue.shift())
    item.command.reject(new Error('Connection is closed. (unanswered when it closed; not sent again)'));
}

/** Readiness/boot check: PING on a short-lived connection with a timeout. */
export async function pingRedis(url: string, timeoutMs = 2000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== 'PONG') throw new Error(`unexpected PING answer ${pong}`);
  } finally {
    client.disconnect();
  }
}

/** Where logRedisErrors writes (a pino logger, for one). */
export interface RedisErrorLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/**
 * Logs a connection's errors: ioredis emits one per failed connect or dropped socket while it reconnects, and with no
 * listener prints each to the console ("[ioredis] Unhandled error event"), out of the service's log format. The first
 * is logged at once, then at most one line per interval, with how many came since the last line. Once the connection
 * is ready again after errors, one line says so — with how many came since the last line (so a short outage's count
 * is not left unsaid) and how long ago the first was — at the end of the interval when a line was written within it
 * (a connection flapping between ready and failing still writes one line per interval), and only if no error came
 * after the 'ready' (the outage goes on: its own lines tell).
 */
export function logRedisErrors(
  redis: { on(event: 'error' | 'ready', listener: (err: Error) => void): unknown },
  logger: RedisErrorLogger,
  connection: string,
  intervalMs = 10_000,
): void {
  let lastAt = -Infinity;
  let since = 0;
  let total = 0;
  /** When the first error not yet followed by a "ready again" line came. */
  let firstAt: number | undefined;
  /** Ready since this, with no error after it. */
  let readyAt: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sayReady = () => {
    timer = undefined;
    if (firstAt === undefined || readyAt === undefined) return;
    const now = performance.now();
    logger.info(
      { connection, errors: since, errorsInAll: total, afterMs: Math.round(now - firstAt) },
      'Redis connection ready again after errors',
    );
    lastAt = now;
    firstAt = undefined;
    since = 0;
    total = 0;
  };
  redis.on('error', (err: Error) => {
    since++;
    total++;
    readyAt = undefined;
    const now = performance.now();
    firstAt ??= now;
    if (now - lastAt < intervalMs) return;
    lastAt = now;
    logger.warn({ connection, error: err.message, errors: since }, 'Redis connection error (ioredis reconnects)');
    since = 0;
  });
  redis.on('ready', () => {
    if (firstAt === undefined) return;
    const now = performance.now();
    readyAt = now;
    const wait = lastAt + intervalMs - now;
    if (wait <= 0) return sayReady();
    timer ??= setTimeout(sayReady, wait);
    timer.unref?.();
  });
}
