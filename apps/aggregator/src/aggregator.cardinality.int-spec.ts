import type { INestApplicationContext } from '@nestjs/common';
import { connect } from 'amqplib';
import fc from 'fast-check';
import { Client } from 'pg';
import { BusHeader, Messages, QueueName, uuidv7, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest, type PublishRequest } from '@fleetwatch/messaging';
import { createIsolatedDatabase, createIsolatedVhost, testEnv, waitFor } from '@fleetwatch/testing';
import {
  createTestSite,
  drainObservationDeadLetters,
  startAggregator,
  statusUpdate,
  type TestSite,
} from './aggregator.int-helpers';

// SQLSTATE class 21 (cardinality violation: an upsert given one key twice, a scalar subquery answering two rows) is
// the rows' doing, the same at every retry: read as an outage it was retried for ever and held back every later
// update of its lane. Here Postgres raises it for real (a trigger of this test's own isolated database, standing in
// for any statement a message makes fail so), and the hunt feeds the commit path what could make its own upserts
// meet a key twice: repeated instance, update and message ids in one batch and across messages of one group commit,
// several locations, host samples with repeated mounts, interfaces and GPUs.

jest.setTimeout(180_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-cardinality';
  const [vhost, database] = await Promise.all([createIsolatedVhost(name), createIsolatedDatabase()]);
  const pg = new Client({ connectionString: database.databaseUrl });
  await pg.connect();
  await pg.query('CREATE TABLE cardinality_side (k int PRIMARY KEY)');
  await pg.query(`CREATE FUNCTION cardinality() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF NEW.message LIKE 'twice-upsert%' THEN
      INSERT INTO cardinality_side VALUES (1), (1) ON CONFLICT (k) DO UPDATE SET k = EXCLUDED.k;
    END IF;
    IF NEW.message LIKE 'two-rows%' THEN PERFORM (SELECT x FROM unnest(ARRAY[1, 2]) x); END IF;
    RETURN NEW; END $$`);
  await pg.query(
    `CREATE TRIGGER cardinality BEFORE INSERT ON status_updates FOR EACH ROW EXECUTE FUNCTION cardinality()`,
  );
  site = await createTestSite(
    name,
    { vhost, database, pg, redisUrl: testEnv().redisUrl, redisPrefix: `${testEnv().redisPrefix}${name}:` },
    { AGGREGATOR_BATCH_WAIT_MS: '50', AGGREGATOR_ROLLUP_INTERVAL_MS: '300' },
    // One lane for every target: a message retried for ever there holds back all the others.
    { shardObservations: false },
  );
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const drainDeadLetters = () => drainObservationDeadLetters(site.env.AMQP_URL);

/** How many rows each message id has in `table`. */
async function rowsPerId(
  table: 'status_updates' | 'host_metrics',
  ids: readonly string[],
): Promise<Map<string, number>> {
  const { rows } = await site.pg.query<{ id: string; n: number }>(
    `SELECT message_id::text AS id, count(*)::int AS n FROM ${table} WHERE message_id = ANY($1::uuid[]) GROUP BY 1`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.n]));
}

const queueEmpty = async () => {
  const connection = await connect(site.env.AMQP_URL);
  try {
    const ch = await connection.createChannel();
    const q = await ch.checkQueue(QueueName.AggregatorObservations);
    return q.messageCount === 0;
  } finally {
    await connection.close().catch(() => undefined);
  }
};

it('a cardinality violation (21000) of one update is set aside alone; its neighbours and every later update of the lane are stored', async () => {
  const at = Date.now() - 2000;
  const good = Array.from({ length: 30 }, (_, i) => ({
    id: uuidv7(),
    payload: statusUpdate(`card-${i}`, 'running', at, { message: `fine #${i}` }),
  }));
  const poison = [
    { id: uuidv7(), payload: statusUpdate('card-bad-upsert', 'running', at, { message: 'twice-upsert' }) },
    { id: uuidv7(), payload: statusUpdate('card-bad-rows', 'running', at, { message: 'two-rows' }) },
    { id: uuidv7(), payload: statusUpdate('card-bad-single', 'running', at, { message: 'two-rows, alone' }) },
  ];
  const batch = [...good.slice(0, 10), poison[0], ...good.slice(10, 20), poison[1]];
  await site.bus.publisher.publishMany([
    publishRequest(Messages.StatusUpdateBatch, { updates: batch.map((u) => ({ ...u.payload, id: u.id })) }),
    publishRequest(Messages.StatusUpdate, poison[2].payload, { id: poison[2].id }),
    ...good.slice(20).map((u) => publishRequest(Messages.StatusUpdate, u.payload, { id: u.id })),
  ]);
  const dead = await waitFor(
    async () => {
      const letters = await drainDeadLetters();
      return letters.length > 0 ? letters : undefined;
    },
    { timeoutMs: 30_000, description: 'the culprits in the dead-letter queue (not retried as an outage)' },
  );
  await waitFor(
    async () =>
      (
        await rowsPerId(
          'status_updates',
          good.map((g) => g.id),
        )
      ).size === good.length,
    {
      timeoutMs: 30_000,
      description: 'all 30 good updates stored',
    },
  );
  const letters = [...dead, ...(await drainDeadLetters())];
  expect(letters.map((m) => m.properties.messageId as string).sort()).toEqual(poison.map((p) => p.id).sort());
  for (const m of letters)
    expect((m.properties.headers ?? {})[BusHeader.DeadLetterReason]).toMatch(/could not be stored: .*\(21000\)/);

  // The lane goes on: a later update of each culprit's instance (one Postgres takes) is stored and live.
  const later = poison.map((p) => ({
    id: uuidv7(),
    payload: statusUpdate(p.payload.instanceId, 'exited', Date.now() - 500, { message: 'fine now' }),
  }));
  await site.bus.publisher.publishMany(
    later.map((u) => publishRequest(Messages.StatusUpdate, u.payload, { id: u.id })),
  );
  await waitFor(
    async () =>
      (
        await rowsPerId(
          'status_updates',
          later.map((u) => u.id),
        )
      ).size === later.length,
    {
      timeoutMs: 30_000,
      description: 'the later updates stored',
    },
  );
  const live = await store.getTargets(later.map((u) => `instance:${u.payload.instanceId}`));
  expect(live.size).toBe(later.length);
  await waitFor(queueEmpty, { timeoutMs: 10_000, description: 'an empty observations queue' });
});

/** A host sample whose disks, interfaces and GPUs repeat names (a collector listing a bind mount twice). */
function hostSample(hostId: string, at: number, cpu: number, repeats: number): HostMetricsPayload {
  const disk = (i: number) => ({ mount: i % 2 ? '/' : '/data', totalBytes: 1e11, usedBytes: 1e9 + i });
  return {
    hostId,
    location: 'lab-1',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: cpu, cores: 2, load1: 0.1, load5: 0.1, load15: 0.1, perCorePct: [cpu, cpu] },
    memory: { totalBytes: 8e9, usedBytes: 1e9, swapTotalBytes: 0, swapUsedBytes: 0 },
    disks: Array.from({ length: repeats }, (_, i) => disk(i)),
    network: Array.from({ length: repeats }, () => ({ iface: 'eth0', rxBytesPerSec: 1, txBytesPerSec: 2 })),
    gpus: Array.from({ length: repeats }, () => ({
      index: 0,
      name: 'gpu',
      utilizationPct: cpu,
      memoryUsedBytes: 1,
      memoryTotalBytes: 2,
      temperatureC: 40,
      powerW: null,
    })),
    uptimeSeconds: 60,
    system: { hostname: hostId, platform: 'linux', arch: 'x64', collectorVersion: '0.1.0' },
  };
}

it('hunt: repeated instance, update and message ids in a batch and across a group commit, repeated mounts — every accepted update kept, nothing set aside, no lane held', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        // Few instances, ids and locations: repeats are the point.
        updates: fc.array(
          fc.record({
            instance: fc.integer({ min: 0, max: 3 }),
            location: fc.constantFrom(undefined, 'loc-a', 'loc-b'),
            status: fc.constantFrom('running', 'exited', 'healthy', 'unhealthy'),
            updateId: fc.integer({ min: 0, max: 2 }),
            /** Reuses the message id of an earlier update of this run (a redelivery, a replay) when set. */
            sameIdAs: fc.option(fc.nat(), { nil: undefined }),
            ageMs: fc.integer({ min: 0, max: 90_000 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        /** Where the updates are cut into messages; a message of one update goes alone. */
        cuts: fc.array(fc.integer({ min: 1, max: 39 }), { maxLength: 6 }),
        hosts: fc.array(fc.record({ host: fc.integer({ min: 0, max: 1 }), repeats: fc.integer({ min: 1, max: 3 }) }), {
          maxLength: 4,
        }),
      }),
      async ({ updates, cuts, hosts }) => {
        const r = ++run;
        const now = Date.now();
        const items = updates.map((u, i) => ({
          id: uuidv7(),
          payload: statusUpdate(`hunt-${r}-${u.instance}`, u.status, now - 120_000 + i * 10 - u.ageMs, {
            updateId: `hunt-${r}-${u.updateId}`,
            ...(u.location ? { location: u.location } : {}),
          }),
          sameIdAs: u.sameIdAs,
        }));
        items.forEach((it, i) => {
          if (it.sameIdAs !== undefined && i > 0) it.id = items[it.sameIdAs % i].id;
        });
        const bounds = [...new Set([0, ...cuts.filter((c) => c < items.length), items.length])].sort((a, b) => a - b);
        const requests: PublishRequest[] = [];
        for (let b = 0; b + 1 < bounds.length; b++) {
          const part = items.slice(bounds[b], bounds[b + 1]);
          requests.push(
            part.length === 1
              ? publishRequest(Messages.StatusUpdate, part[0].payload, { id: part[0].id })
              : publishRequest(Messages.StatusUpdateBatch, { updates: part.map((u) => ({ ...u.payload, id: u.id })) }),
          );
        }
        const samples = hosts.map((h, i) => ({
          id: uuidv7(),
          payload: hostSample(`hunt-${r}-host-${h.host}`, now - 120_000 + i * 100, 10 + i, h.repeats),
        }));
        for (const s of samples) requests.push(publishRequest(Messages.HostMetrics, s.payload, { id: s.id }));
        // One publish: the messages arrive together and are folded into one group commit where they fit.
        await site.bus.publisher.publishMany(requests);

        const ids = [...new Set(items.map((i) => i.id))];
        await waitFor(async () => (await rowsPerId('status_updates', ids)).size === ids.length, {
          timeoutMs: 20_000,
          description: `run ${r}: every accepted update stored`,
        });
        expect([...(await rowsPerId('status_updates', ids)).values()].every((n) => n === 1)).toBe(true);
        const sampleIds = samples.map((s) => s.id);
        await waitFor(async () => (await rowsPerId('host_metrics', sampleIds)).size === sampleIds.length, {
          timeoutMs: 20_000,
          description: `run ${r}: every host sample stored`,
        });
        // A reused message id is the same message again (idempotent by id): the update first sent with it counts.
        const firsts = items.filter((it, i) => items.findIndex((o) => o.id === it.id) === i);
        const instances = [...new Set(firsts.map((i) => `instance:${i.payload.instanceId}`))];
        await waitFor(async () => (await store.getTargets(instances)).size === instances.length, {
          timeoutMs: 10_000,
          description: `run ${r}: every instance live`,
        });
        // The rollup jobs get through these minutes too (their upserts meet each key once).
        await waitFor(
          async () =>
            Number(
              (
                await site.pg.query<{ n: number }>(
                  `SELECT (SELECT count(*) FROM rollup_dirty WHERE target_id LIKE $1)
                      + (SELECT count(*) FROM host_rollup_dirty WHERE host_id LIKE $1) AS n`,
                  [`%hunt-${r}-%`],
                )
              ).rows[0].n,
            ) === 0,
          { timeoutMs: 20_000, description: `run ${r}: rollups computed` },
        );
        expect(await drainDeadLetters()).toEqual([]);
      },
    ),
    { numRuns: 30 },
  );
  await waitFor(queueEmpty, { timeoutMs: 10_000, description: 'an empty observations queue' });
});
