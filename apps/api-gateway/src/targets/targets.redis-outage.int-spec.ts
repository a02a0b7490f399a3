import { ApiErrorCode, type ApiErrorBody } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { TcpProxy } from '@fleetwatch/testing';
import { LIVE_STATE_REDIS } from '@fleetwatch/live-state';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// Reads of live state with Redis away: each answers 503 with Retry-After, soon, as a Postgres outage does — they
// answered 500 "internal error" after 0.6–9 s (a read in flight when the connection dropped waited for ioredis's
// reconnects), and a read sent just before the drop waited for Redis to come back.

jest.setTimeout(90_000);

const REDIS_TIMEOUT_MS = 1500;
const READS = ['/api/v1/targets', '/api/v1/hosts', '/api/v1/status/summary', '/api/v1/targets/recent'];

let gw: GatewayHarness;
let proxy: TcpProxy;
let token: string;

beforeAll(async () => {
  proxy = TcpProxy.forUrl(testing.testEnv().redisUrl);
  await proxy.start();
  gw = await startGateway(testing, 'redis-outage', {
    env: {
      REDIS_URL: proxy.rewriteUrl(testing.testEnv().redisUrl),
      GATEWAY_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
    },
  });
  token = await gw.login('admin', ADMIN_PASSWORD);
});
afterAll(async () => {
  proxy?.release();
  proxy?.resume();
  await gw?.close();
  await proxy?.stop();
});

async function expectOutage(res: { status: number; headers: Headers; body: unknown }, path: string): Promise<void> {
  expect({ path, status: res.status }).toEqual({ path, status: 503 });
  expect((res.body as ApiErrorBody).error.code).toBe(ApiErrorCode.Unavailable);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

async function answersOk(): Promise<void> {
  await testing.waitFor(
    async () => {
      for (const path of READS) if ((await gw.request('GET', path, { token })).status !== 200) return false;
      return true;
    },
    { timeoutMs: 20_000, description: 'every read 200 again' },
  );
}

it('with Redis refusing connections, reads answer 503 with Retry-After within the Redis timeout, and 200 once it is back', async () => {
  await answersOk();
  proxy.pause();
  proxy.cut();
  try {
    for (const path of READS) {
      const started = Date.now();
      const res = await gw.request('GET', path, { token });
      const took = Date.now() - started;
      await expectOutage(res, path);
      // A command sent while disconnected fails at ioredis's next give-up or at the timeout, whichever comes first.
      expect(took).toBeLessThan(REDIS_TIMEOUT_MS + 1500);
    }
  } finally {
    proxy.resume();
  }
  await answersOk();
});

it('a read whose Redis answer never comes (connection silent, then dropped) answers 503 within the timeout', async () => {
  await answersOk();
  proxy.hold();
  try {
    const started = Date.now();
    const pending = gw.request('GET', '/api/v1/targets', { token });
    await testing.waitFor(() => proxy.heldBytes > 0, { intervalMs: 10, description: 'the read sent, its answer held' });
    proxy.pause();
    proxy.cut();
    const res = await pending;
    await expectOutage(res, '/api/v1/targets');
    expect(Date.now() - started).toBeLessThan(REDIS_TIMEOUT_MS + 1500);
  } finally {
    proxy.release();
    proxy.resume();
  }
  await answersOk();
});

it("the connection's errors go to the service's log (rate-limited), not to the console as ioredis's unhandled errors", () => {
  const redis = gw.running.app.get<symbol, import('ioredis').Redis>(LIVE_STATE_REDIS);
  expect(redis.listenerCount('error')).toBeGreaterThanOrEqual(1);
});
