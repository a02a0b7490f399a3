import { pingRedis } from './redis';

/** The Redis check a service runs before taking work (observability's BootDependency shape). */
export function redisBootCheck(redisUrl: string, variable = 'REDIS_URL') {
  const url = new URL(redisUrl);
  if (url.password) url.password = '***';
  return {
    variable,
    describe: `Redis at ${url.toString()}`,
    check: () => pingRedis(redisUrl, 2000),
    isPermanent: (e: unknown): boolean => /NOAUTH|WRONGPASS|invalid password/i.test(String((e as Error).message)),
  };
}
