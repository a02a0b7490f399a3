import { randomUUID } from 'node:crypto';
import { AlertDeliveriesRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { NotificationDelivery } from './notification-delivery.service';
import {
  alertOf,
  capturedLogger,
  MapChannelSource,
  notificationOf,
  startHttpReceiver,
  type HttpReceiver,
} from './receivers.int-helpers';

// Benchmark (issue 18): the delivery side of "status change → webhook request". The evaluator commits its
// queued messages and kicks the worker; this measures from enqueue (commit) to the signed request at a
// local webhook receiver, one message at a time (latency), then a burst of FW_BENCH_MESSAGES (default 500)
// messages to 10 channels (throughput, with the default concurrency of 8). Prints the figures; asserts
// only what must hold (every message arrives once, p95 latency under the 1 s goal).

jest.setTimeout(300_000);

const BURST = Number(process.env.FW_BENCH_MESSAGES ?? 500);
let db: IsolatedDatabase;
let pool: SqlPool;
let receiver: HttpReceiver;
let delivery: NotificationDelivery;
const channels = new MapChannelSource();

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 6 });
  receiver = await startHttpReceiver(() => ({ status: 200 }));
  delivery = new NotificationDelivery(new AlertDeliveriesRepository(pool), channels, capturedLogger().logger, {
    owner: 'bench',
    site: 'site-a',
    externalURL: 'https://fleet.example.com',
  });
  delivery.start();
});
afterAll(async () => {
  await delivery?.stop();
  await receiver?.close();
  await closeSqlPool(pool);
  await db?.dispose();
});

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

it('enqueue → webhook request: latency of one message, then a burst', async () => {
  const ids = Array.from({ length: 10 }, () => {
    const id = `bench-${randomUUID()}`;
    channels.set({
      id,
      config: { type: 'webhook', name: 'b', enabled: true, sendResolved: true, url: `${receiver.url}/in`, headers: {} },
      secrets: { secret: 'bench-key' },
    });
    return id;
  });
  const latencies: number[] = [];
  for (let i = 0; i < 50; i++) {
    const before = receiver.requests.length;
    const t0 = Date.now();
    await delivery.enqueue([{ channelId: ids[i % 10], notification: notificationOf([alertOf()]) }]);
    await waitFor(() => receiver.requests.length > before, { intervalMs: 1 });
    latencies.push(receiver.requests[before].at - t0);
  }
  latencies.sort((a, b) => a - b);

  const start = Date.now();
  const before = receiver.requests.length;
  await delivery.enqueue(
    Array.from({ length: BURST }, (_, i) => ({ channelId: ids[i % 10], notification: notificationOf([alertOf()]) })),
  );
  await waitFor(() => receiver.requests.length - before >= BURST, { timeoutMs: 240_000, intervalMs: 20 });
  const burstMs = Date.now() - start;
  const ids2 = new Set(receiver.requests.slice(before).map((r) => r.headers['x-fleetwatch-delivery']));

  console.log(
    `[bench] delivery: one message enqueue→request p50 ${pct(latencies, 50)} ms, p95 ${pct(latencies, 95)} ms, max ${latencies.at(-1)} ms; ` +
      `burst of ${BURST} to 10 channels in ${burstMs} ms (${Math.round((BURST * 1000) / burstMs)} messages/s)`,
  );
  expect(ids2.size).toBe(BURST);
  // Timing is the benchmark's to print; held to the goal only on a quiet machine (FW_BENCH=1), never in CI.
  if (process.env['FW_BENCH'] === '1') expect(pct(latencies, 95)).toBeLessThan(1000);
});
