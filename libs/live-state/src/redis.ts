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
}

/** One Redis connection with bounded retries and a key prefix. */
export function createRedis(options: LiveStateConnectionOptions): Redis {
  const redisOptions: RedisOptions = {
    keyPrefix: options.keyPrefix ?? '',
    connectionName: options.connectionName,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3000),
    reconnectOnError: (err) => err.message.includes('READONLY'),
  };
  if (options.commandTimeoutMs !== undefined) redisOptions.commandTimeout = options.commandTimeoutMs;
  return new Redis(options.url, redisOptions);
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
