import type { INestApplicationContext } from '@nestjs/common';
import { connect, type ChannelModel } from 'amqplib';
import { Client } from 'pg';
import {
  deadLetterQueueOf,
  Messages,
  OBSERVATION_SHARDS,
  observationShardQueue,
  QueueName,
  TargetIds,
  TargetStatus,
  uuidv7,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest, shardOf } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { createIsolatedDatabase, createIsolatedVhost, TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import { AggregatorMetrics } from './aggregator.metrics';
import {
  count,
  createTestSite,
  startAggregator,
  statusUpdate,
  updateRequest,
  type StatusUpdateInput,
  type TestSite,
} from './aggregator.int-helpers';

// The network between the aggregator and Postgres drops every packet, without a reset, while a commit waits for the
// answer to its COMMIT — which the server has already carried out. A proxy the test owns stands in for the network
// (TcpProxy.blackhole: no byte passes either way, no socket is closed); everything else (broker, Redis, the test's own
// reads) goes around it.
//
// Before: nothing on the client's side limited a query; the commit lane waited for the answer for as long as the
// blackhole lasted (on a real network until the kernel gave up on the socket, ~15 min), and every batch of that lane
// behind it. Now: the query times out (DATABASE_QUERY_TIMEOUT_MS), the connection is closed, the commit is retried as an
// outage (backoff, messages unacked, nothing dead-lettered); once the network is back, the retried batch — already
// committed — is absorbed as duplicates and the updates accepted meanwhile are stored: every update once, events
// numbered without gap or repeat.

jest.setTimeout(120_000);

const STATEMENT_MS = 2000;
const QUERY_MS = 3000;
const CONNECT_MS = 1000;
/** How long the slowed COMMIT works on the server: the blackhole starts meanwhile. */
const COMMIT_SLEEP_MS = 800;
const N = 20;

let site: TestSite;
let app: INestApplicationContext | undefined;
let proxy: TcpProxy;
let amqp: ChannelModel;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-db-blackhole';
  const [vhost, database] = await Promise.all([createIsolatedVhost(name), createIsolatedDatabase()]);
  const pg = new Client({ connectionString: database.databaseUrl });
  await pg.connect();
  // While slow_commit holds a duration, a transaction that inserted status updates works that long in its COMMIT
  // (once per transaction): the window in which the blackhole starts, after the COMMIT reached the server.
  await pg.query(`CREATE TABLE slow_commit (ms int)`);
  await pg.query(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE d int; BEGIN
      IF current_setting('fw_test.slept', true) IS DISTINCT FROM 'yes' THEN
        SELECT ms INTO d FROM slow_commit LIMIT 1;
        IF d IS NOT NULL THEN PERFORM set_config('fw_test.slept', 'yes', true); PERFORM pg_sleep(d / 1000.0); END IF;
      END IF;
      RETURN NULL;
    END $$`);
  await pg.query(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON status_updates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`);
  proxy = TcpProxy.forUrl(database.databaseUrl);
  await proxy.start();
  site = await createTestSite(
    name,
    {
      vhost,
      // The aggregator's every connection (pool, shard locks, sweeper lease) goes through the proxy.
      database: { databaseUrl: proxy.rewriteUrl(database.databaseUrl), dispose: () => database.dispose() },
      pg,
      redisUrl: testEnv().redisUrl,
      redisPrefix: `${testEnv().redisPrefix}${name}:`,
    },
    {
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_MS),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_MS),
      DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_MS),
      DATABASE_KEEPALIVE_DELAY_MS: '1000',
      AGGREGATOR_BATCH_WAIT_MS: '20',
      AGGREGATOR_SHARD_CHECK_INTERVAL_MS: '500',
    },
  );
  amqp = await connect(site.env.AMQP_URL);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  proxy?.heal();
  await app?.close();
  await proxy?.stop();
  await amqp?.close().catch(() => undefined);
  await site?.dispose();
});

/** Instance ids whose targets are all in shard 0: one batch message, one delivery, one commit. */
function sameShardIds(prefix: string, n: number): string[] {
  const ids: string[] = [];
  for (let k = 0; ids.length < n; k++)
    if (shardOf(TargetIds.instance(`${prefix}-${k}`)) === 0) ids.push(`${prefix}-${k}`);
  return ids;
}

const batchOf = (updates: StatusUpdateInput[]) => {
  const items = updates.map((u) => ({ ...u, id: uuidv7() }));
  return { request: publishRequest(Messages.StatusUpdateBatch, { updates: items }), ids: items.map((i) => i.id) };
};

const stored = (ids: readonly string[]) =>
  count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE message_id = ANY($1::uuid[])', [ids]);

async function deadLettered(): Promise<number> {
  let n = 0;
  for (const queue of [
    QueueName.AggregatorObservations,
    ...Array.from({ length: OBSERVATION_SHARDS }, (_, s) => observationShardQueue(s)),
  ]) {
    // A DLQ is declared on demand: one that does not exist holds nothing (its 404 closes only this channel).
    const ch = await amqp.createChannel();
    ch.on('error', () => undefined);
    try {
      n += (await ch.checkQueue(deadLetterQueueOf(queue))).messageCount;
    } catch {
      /* not declared */
    } finally {
      await ch.close().catch(() => undefined);
    }
  }
  return n;
}

const duplicatesSoFar = async () => (await AggregatorMetrics.get().duplicates.get()).values[0]?.value ?? 0;

it('a COMMIT whose answer is lost in a blackhole: fails within the query timeout, retried with backoff, every update stored once', async () => {
  app = await startAggregator(site.env);
  // The commit path's retries, as it logs them ('batch not committed: dependency unavailable, retrying').
  const retries: Array<{ at: number; err: string; delayMs: number }> = [];
  const logger = app.get<Logger>(FLEETWATCH_LOGGER, { strict: false });
  const warn = logger.warn.bind(logger);
  jest.spyOn(logger, 'warn').mockImplementation(((obj: unknown, msg?: string) => {
    if (msg === 'batch not committed: dependency unavailable, retrying') {
      const { err, delayMs } = obj as { err: string; delayMs: number };
      retries.push({ at: performance.now(), err, delayMs });
    }
    return (warn as (o: unknown, m?: string) => void)(obj, msg);
  }) as Logger['warn']);
  const t0 = Date.now() - 60_000;

  // Warm: the pool is connected and shard 0 is held.
  const warm = batchOf([statusUpdate('bh-warm', 'running', t0)]);
  await site.bus.publisher.publishMany([warm.request]);
  await waitFor(async () => (await stored(warm.ids)) === 1, { timeoutMs: 30_000, description: 'the warm-up stored' });

  // A: 20 updates in one message; its COMMIT reaches the server, which works on it while the network goes.
  const a = sameShardIds('bh-a', N);
  await site.pg.query('INSERT INTO slow_commit VALUES ($1)', [COMMIT_SLEEP_MS]);
  const first = batchOf(a.map((id) => statusUpdate(id, 'running', t0 + 1000)));
  const duplicatesBefore = await duplicatesSoFar();
  await site.bus.publisher.publishMany([first.request]);
  await waitFor(
    async () =>
      (
        await site.pg.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
             AND query = 'COMMIT' AND application_name = 'fleetwatch aggregator'`,
        )
      ).rowCount === 1,
    { timeoutMs: 30_000, intervalMs: 10, description: "the batch's COMMIT at work on the server" },
  );
  proxy.blackhole();
  const blackholeAt = performance.now();
  await site.pg.query('DELETE FROM slow_commit');
  // The server finishes the COMMIT: the batch is stored, but its answer is lost.
  await waitFor(async () => (await stored(first.ids)) === N, {
    timeoutMs: 5000,
    description: 'the batch committed on the server',
  });

  // The commit fails as an outage within the query timeout, and is retried with backoff (before: the lane waited for
  // the answer as long as the blackhole lasted, every later batch of every shard behind it).
  const timedOut = () =>
    retries.filter((r) => /Query read timeout/.test(r.err) && r.at > blackholeAt).map((r) => r.at - blackholeAt);
  await waitFor(() => timedOut().length > 0, {
    timeoutMs: QUERY_MS + 3000,
    intervalMs: 20,
    description: 'the commit to fail on the query timeout and be retried',
  });
  expect(timedOut()[0]).toBeLessThan(QUERY_MS + 1000);

  // Accepted by the broker while the database is out of reach: A's next state, and B, 20 new instances over every shard.
  const second = batchOf(a.map((id) => statusUpdate(id, 'exited', t0 + 2000)));
  const b = Array.from({ length: N }, (_, i) => ({
    payload: statusUpdate(`bh-b-${i}`, 'running', t0 + 2000),
    id: uuidv7(),
  }));
  await site.bus.publisher.publishMany([second.request, ...b.map((u) => updateRequest(u.payload, u.id))]);
  // Long enough for retries to meet the blackhole again (connects time out, the shard locks' session is lost).
  await new Promise((r) => setTimeout(r, 2 * QUERY_MS));
  expect(await stored([...second.ids, ...b.map((u) => u.id)])).toBe(0);
  expect(await deadLettered()).toBe(0);
  // Waited out with growing delays, never given up.
  const during = retries.filter((r) => r.at > blackholeAt);
  expect(during.length).toBeGreaterThanOrEqual(2);
  expect(during[during.length - 1].delayMs).toBeGreaterThan(during[0].delayMs);

  proxy.heal();
  const all = [...warm.ids, ...first.ids, ...second.ids, ...b.map((u) => u.id)];
  await waitFor(async () => (await stored(all)) === all.length, {
    timeoutMs: 60_000,
    description: 'every accepted update stored after the network came back',
  });
  // The retried first batch was found stored: absorbed as duplicates, no event of its own.
  await waitFor(async () => (await duplicatesSoFar()) - duplicatesBefore >= N, {
    timeoutMs: 20_000,
    description: 'the retried batch absorbed as duplicates',
  });

  // Once each.
  expect(await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE instance_id LIKE 'bh-%'")).toBe(
    all.length,
  );
  // A: UP then DOWN (location + consensus each: 4 events), B: UP (2), numbered 1..n without gap or repeat.
  expect(await count(site.pg, "SELECT count(*) AS n FROM status_events WHERE target_id LIKE 'instance:bh-a-%'")).toBe(
    4 * N,
  );
  expect(await count(site.pg, "SELECT count(*) AS n FROM status_events WHERE target_id LIKE 'instance:bh-b-%'")).toBe(
    2 * N,
  );
  expect(
    await count(
      site.pg,
      `SELECT count(*) AS n FROM (SELECT target_id FROM status_events WHERE target_id LIKE 'instance:bh-%'
         GROUP BY target_id HAVING max(sequence) <> count(*) OR count(DISTINCT sequence) <> count(*)) bad`,
    ),
  ).toBe(0);
  await waitFor(
    async () => {
      const states = await Promise.all([
        ...a.map(async (id) => (await store.getTarget(TargetIds.instance(id)))?.status === TargetStatus.Down),
        ...b.map(
          async (u) => (await store.getTarget(TargetIds.instance(u.payload.instanceId)))?.status === TargetStatus.Up,
        ),
      ]);
      return states.every(Boolean);
    },
    { timeoutMs: 10_000, description: 'live state: A DOWN, B UP' },
  );
  expect(await deadLettered()).toBe(0);
});
