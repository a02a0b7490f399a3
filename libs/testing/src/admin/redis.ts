import { Redis } from 'ioredis';
import { isStale, REDIS_PREFIX } from '../run-id';

async function withRedis<T>(redisUrl: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true });
  await redis.connect();
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key starting with `prefix` (SCAN + UNLINK, never KEYS). Returns the count. */
export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!prefix.startsWith(REDIS_PREFIX)) throw new Error(`refusing to delete keys outside ${REDIS_PREFIX}*: ${prefix}`);
  return withRedis(redisUrl, async (redis) => {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  });
}

/** Deletes keys of test runs older than STALE_AFTER_MS. Returns the stale prefixes found. */
export async function sweepStaleKeys(redisUrl: string, now: number = Date.now()): Promise<string[]> {
  const stalePrefixes = new Set<string>();
  await withRedis(redisUrl, async (redis) => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${REDIS_PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const runPart = key.slice(REDIS_PREFIX.length).split(':')[0] ?? '';
        if (isStale(runPart, '', now)) stalePrefixes.add(`${REDIS_PREFIX}${runPart}:`);
      }
    } while (cursor !== '0');
  });
  for (const prefix of stalePrefixes) await deleteKeysWithPrefix(redisUrl, prefix);
  return [...stalePrefixes];
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
