import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createIngestKey, ServiceProcesses, siteEnv } from './service-processes';
import { QueueName } from '@fleetwatch/contracts';
import {
  createIsolatedDatabase,
  createIsolatedVhost,
  waitFor,
  type IsolatedDatabase,
  type IsolatedVhost,
} from '@fleetwatch/testing';

// Issue 13: a broker resource alarm (RabbitMQ blocks every publishing connection on
// the node). status-ingest must answer 503 + Retry-After at once instead of waiting
// out its publish timeout, /readyz must say so, and the aggregator — whose consuming
// connection never publishes — must keep draining and acking the queue.
//
// Runs ALONE (jest project `integration-alone`, its own step after the other
// integration tests): the alarm blocks every publisher on the broker, other tests'
// included. The watermark is read first and restored in `finally`, and a detached
// watchdog restores it too should this process die mid-test.

jest.setTimeout(180_000);

const exec = promisify(execFile);
const BACKLOG_BATCHES = 20;
const PER_BATCH = 1000;
const PUBLISH_TIMEOUT_MS = 10_000;

let db: IsolatedDatabase;
let vhost: IsolatedVhost;
let services: ServiceProcesses;
let pg: Client;

const ctl = async (...args: string[]) =>
  (await exec('rabbitmqctl', ['-q', ...args], { timeout: 30_000 })).stdout.trim();

/** `0.4` or `{absolute,1073741824}` → the arguments of set_vm_memory_high_watermark that restore it. */
async function currentWatermark(): Promise<string[]> {
  const raw = await ctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().');
  const absolute = /^\{absolute,\s*(\d+)\}$/.exec(raw);
  if (absolute) return ['absolute', absolute[1]];
  if (!/^\d+(\.\d+)?(e-?\d+)?$/.test(raw)) throw new Error(`unexpected watermark "${raw}"`);
  return [raw];
}

const alarms = () => ctl('eval', 'rabbit_alarm:get_alarms().');

/** Ready and unacked messages of a queue in the test's vhost. */
/** Ready and unacked messages summed over the queues named `prefix…` (the observation shards), DLQs left out. */
async function queueTotals(prefix: string): Promise<{ ready: number; unacked: number }> {
  const out = await ctl('list_queues', '-p', vhost.vhost, 'name', 'messages_ready', 'messages_unacknowledged');
  const lines = out
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([name]) => name.startsWith(prefix) && !name.endsWith('.dlq'));
  if (lines.length === 0) return { ready: NaN, unacked: NaN };
  return lines.reduce(
    (t, [, ready, unacked]) => ({ ready: t.ready + Number(ready), unacked: t.unacked + Number(unacked) }),
    {
      ready: 0,
      unacked: 0,
    },
  );
}

beforeAll(async () => {
  [db, vhost] = await Promise.all([createIsolatedDatabase(), createIsolatedVhost('broker-alarm')]);
  pg = new Client({ connectionString: db.databaseUrl });
  await pg.connect();
  services = new ServiceProcesses('broker-alarm');
});

afterAll(async () => {
  await services?.killAll();
  await pg?.end().catch(() => undefined);
  await Promise.allSettled([vhost?.dispose(), db?.dispose()]);
});

describe('broker resource alarm', () => {
  it('ingest answers 503 + Retry-After at once and is not ready; the aggregator keeps draining and acking; all recovers after', async () => {
    expect(await alarms()).toBe('[]');
    const key = await createIngestKey(db.databaseUrl, 'alarm');
    const { ports, env } = await siteEnv('broker-alarm', db.databaseUrl, vhost.amqpUrl);
    services.start('status-ingest', {
      ...env,
      STATUS_INGEST_PORT: String(ports.ingest),
      INGEST_RATE_LIMIT_PER_SECOND: '1000000',
      INGEST_RATE_LIMIT_BURST: '10000000',
      INGEST_BODY_LIMIT_BYTES: String(4 * 1024 * 1024),
      INGEST_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
      INGEST_RETRY_AFTER_SECONDS: '3',
    });
    const ingestUrl = `http://127.0.0.1:${ports.ingest}`;
    await waitFor(async () => (await fetch(`${ingestUrl}/readyz`).catch(() => null))?.status === 200, {
      timeoutMs: 60_000,
      intervalMs: 200,
      description: () => `ingest ready: ${services.outputOf('status-ingest')}`,
    });

    let seq = 0;
    const post = async (body: unknown) => {
      const t0 = performance.now();
      const res = await fetch(`${ingestUrl}/api/v1/status/updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: performance.now() - t0 };
    };
    const update = (i: number) => ({
      updateId: `alarm-${i}`,
      instanceId: `alarm-${i % 200}`,
      kind: 'container',
      status: 'running',
      location: 'lab-1',
      metadata: { n: i },
    });
    const batch = () => ({ updates: Array.from({ length: PER_BATCH }, () => update(seq++)) });

    // A backlog for the aggregator, queued while it is not running.
    for (let b = 0; b < BACKLOG_BATCHES; b++) expect((await post(batch())).status).toBe(202);
    let expected = BACKLOG_BATCHES * PER_BATCH;
    const persisted = async () =>
      Number(
        (await pg.query<{ n: string }>("SELECT count(*) AS n FROM status_updates WHERE update_id LIKE 'alarm-%'"))
          .rows[0].n,
      );

    const previous = await currentWatermark();
    // Should this process die before `finally`, the broker still gets its watermark back.
    const watchdog = spawn(
      'sh',
      ['-c', `sleep 90; rabbitmqctl -q set_vm_memory_high_watermark ${previous.join(' ')}`],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();
    try {
      await ctl('set_vm_memory_high_watermark', '0.0000001');
      await waitFor(async () => (await alarms()) !== '[]', {
        timeoutMs: 15_000,
        intervalMs: 200,
        description: 'the memory alarm raised',
      });

      // Ingest: 503 + Retry-After, each answer well under the publish timeout (the first publish
      // after the alarm is what makes RabbitMQ block the connection; its confirm fails at once too).
      const answers: Array<{ status: number; retryAfter: string | null; ms: number }> = [];
      await waitFor(
        async () => {
          const a = await post(update(seq++));
          answers.push(a);
          if (a.status === 202) expected++;
          return answers.filter((x) => x.status === 503).length >= 5;
        },
        { timeoutMs: 10_000, intervalMs: 50, description: '503s during the alarm' },
      );
      expect(answers.every((a) => a.status === 503 || a.status === 202)).toBe(true);
      for (const a of answers.filter((x) => x.status === 503)) {
        expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(a.ms).toBeLessThan(1_000);
      }
      // Once blocked is known, a refusal costs no broker round trip at all.
      const later = await Promise.all(
        Array.from({ length: 20 }, () => post({ updates: [update(seq++), update(seq++)] })),
      );
      expect(later.map((a) => a.status)).toEqual(Array(20).fill(503));
      expect(Math.max(...later.map((a) => a.ms))).toBeLessThan(1_000);
      const ready = await fetch(`${ingestUrl}/readyz`);
      expect(ready.status).toBe(503);
      // The category, not the broker's words (those go to the log: /readyz answers anyone).
      expect(((await ready.json()) as { checks: unknown[] }).checks).toContainEqual(
        expect.objectContaining({ name: 'bus', ok: false, error: 'blocked' }),
      );

      // The aggregator, started during the alarm, drains the backlog and its acks reach the broker. Its
      // publishing connection is blocked too (status.changed), which is why it consumes on another one.
      const aggregator = services.start('aggregator', { ...env, AGGREGATOR_PORT: String(ports.aggregator) });
      await waitFor(async () => (await persisted()) === expected, {
        timeoutMs: 60_000,
        intervalMs: 200,
        description: () => `${expected} persisted during the alarm: ${services.outputOf('aggregator')}`,
      });
      await waitFor(
        async () => {
          const q = await queueTotals(QueueName.AggregatorObservations);
          return q.ready === 0 && q.unacked === 0;
        },
        { timeoutMs: 20_000, intervalMs: 250, description: 'every message acked during the alarm' },
      );
      const aggregatorReady = await fetch(`http://127.0.0.1:${ports.aggregator}/readyz`);
      expect(aggregatorReady.status).toBe(503);
      expect(((await aggregatorReady.json()) as { checks: unknown[] }).checks).toContainEqual(
        expect.objectContaining({ name: 'bus', ok: false, error: 'blocked' }),
      );
      expect(await alarms()).not.toBe('[]');
      expect(aggregator.exitCode).toBeNull();
      const refusedMs = [...answers.filter((x) => x.status === 503), ...later].map((a) => a.ms);
      process.stderr.write(
        `broker alarm: ${refusedMs.length} refusals, slowest ${Math.max(...refusedMs).toFixed(0)} ms (publish timeout ${PUBLISH_TIMEOUT_MS} ms); ` +
          `${expected} updates drained and acked by the aggregator during the alarm\n`,
      );
    } finally {
      await ctl('set_vm_memory_high_watermark', ...previous);
      watchdog.kill();
    }
    await waitFor(async () => (await alarms()) === '[]', {
      timeoutMs: 15_000,
      intervalMs: 200,
      description: 'the alarm cleared',
    });
    expect(await currentWatermark()).toEqual(previous);

    // Unblocked: ingest accepts again, and what it accepts reaches Postgres.
    await waitFor(async () => (await post({ updates: [update(seq)] })).status === 202, {
      timeoutMs: 15_000,
      intervalMs: 200,
      description: 'ingest accepting again',
    });
    await waitFor(async () => (await persisted()) === expected + 1, {
      timeoutMs: 20_000,
      intervalMs: 200,
      description: 'the update after the alarm persisted',
    });
    await waitFor(async () => (await fetch(`${ingestUrl}/readyz`)).status === 200, {
      timeoutMs: 10_000,
      description: 'ingest ready again',
    });
  });
});
