import { TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { createRedis, redisSocketTimeoutMs } from './redis';

// A Redis connection that goes silent without a reset (a flow a NAT or load balancer forgot), Redis itself still
// there: ioredis kept the dead connection, so every command timed out until the kernel gave up on it (minutes to
// hours), though a new connection would have worked at once. createRedis's socket timeout closes it and reconnects.

jest.setTimeout(30_000);

describe('createRedis: a connection gone silent', () => {
  let proxy: TcpProxy;
  let client: Redis | undefined;

  beforeEach(async () => {
    proxy = TcpProxy.forUrl(testEnv().redisUrl);
    await proxy.start();
  });
  afterEach(async () => {
    client?.disconnect();
    await proxy.stop();
  });

  /** Through the proxy; fails a command after 0.3 s (unless told), takes the connection for dead after 1 s. */
  function proxied(commandTimeoutMs = 300): Redis {
    client = createRedis({
      url: proxy.rewriteUrl(testEnv().redisUrl),
      keyPrefix: `${testEnv().redisPrefix}dead-connection:`,
      commandTimeoutMs,
      socketTimeoutMs: 1_000,
    });
    client.on('error', () => undefined);
    return client;
  }

  /**
   * Until a first PING answers: on a loaded CI box the connect and first command through the proxy took over the 0.3 s
   * command timeout (the test failed before it silenced anything).
   */
  async function connected(redis: Redis): Promise<void> {
    await waitFor(async () => (await redis.ping().catch(() => null)) === 'PONG', {
      timeoutMs: 10_000,
      description: 'a first PING answered',
    });
  }

  it('is closed and opened again once a command waits on it past the socket timeout; commands work again', async () => {
    const redis = proxied();
    await connected(redis);
    await redis.set('k', 'v');
    const accepted = proxy.stats.accepted;

    proxy.silenceLive();
    await expect(redis.get('k')).rejects.toThrow(/timed out/);
    // (Before: every GET timed out, on the one connection ever opened.)
    await waitFor(async () => (await redis.get('k').catch(() => null)) === 'v', {
      timeoutMs: 10_000,
      description: 'a GET answered on a new connection',
    });
    expect(proxy.stats.accepted).toBeGreaterThan(accepted);
  });

  it('a command that failed on the silent connection is not run again after the reconnect (its caller retries it)', async () => {
    const redis = proxied();
    await connected(redis);
    await redis.del('n');
    expect(await redis.incr('n')).toBe(1);
    proxy.silenceLive();
    await expect(redis.incr('n')).rejects.toThrow(/timed out/);
    // The caller's retry, once a new connection answers.
    const retried = await waitFor(async () => redis.incr('n').catch(() => undefined), {
      timeoutMs: 10_000,
      description: 'the retried INCR answered on a new connection',
    });
    expect(retried).toBe(2);
    // (Before: ioredis re-sent the failed INCRs on the new connection too, and the count came to 5.)
    await new Promise((r) => setTimeout(r, 300));
    expect(await redis.get('n')).toBe('2');
  });

  it('a command in flight when its connection closes fails at once, not at its command timeout, and is not run again', async () => {
    const redis = proxied(5_000);
    await connected(redis);
    await redis.del('m');
    expect(await redis.incr('m')).toBe(1);
    proxy.silenceLive();
    const inFlight = redis.incr('m').then(
      (n) => ({ n }),
      (e: Error) => ({ error: e.message, at: Date.now() }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const closedAt = Date.now();
    proxy.cut();
    // (Before: re-sent on the next connection, it answered 2 — and a caller that had given up would retry it too; with
    // the re-send off alone, it failed only at its command timeout, 5 s on.)
    const outcome = await inFlight;
    expect(outcome).toEqual({ error: expect.stringMatching(/^Connection is closed\./), at: expect.any(Number) });
    expect((outcome as { at: number }).at - closedAt).toBeLessThan(2_000);
    const retried = await waitFor(async () => redis.incr('m').catch(() => undefined), {
      timeoutMs: 10_000,
      description: 'the retried INCR answered on a new connection',
    });
    expect(retried).toBe(2);
  });

  it('the default: twice the command timeout, at least 10 s (above a long script holding Redis)', () => {
    expect(redisSocketTimeoutMs({})).toBe(10_000);
    expect(redisSocketTimeoutMs({ commandTimeoutMs: 250 })).toBe(10_000);
    expect(redisSocketTimeoutMs({ commandTimeoutMs: 8_000 })).toBe(16_000);
    expect(redisSocketTimeoutMs({ commandTimeoutMs: 250, socketTimeoutMs: 1_500 })).toBe(1_500);
  });
});
