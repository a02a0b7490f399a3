import type { INestApplicationContext } from '@nestjs/common';
import { register } from 'prom-client';
import { OBSERVATION_SHARDS, TargetIds, TargetStatus } from '@fleetwatch/contracts';
import { shardOf } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import {
  consensusTimeline,
  count,
  createIsolatedTestSite,
  startAggregator,
  statusUpdate,
  updateRequest,
  staleBefore,
  type TestSite,
} from '../aggregator.int-helpers';

// After an outage longer than the STALE window, a shard's deadlines are expired only once
// its consumer has caught up with the backlog queued meanwhile (or the hold's bound ran
// out): updates that arrived in time are applied first, so their targets never go STALE
// (an event and alerts) and UP again. A target with nothing queued still goes STALE.

jest.setTimeout(120_000);

const STALE_S = 5;
const SWEEP_MS = 200;
/** Targets with updates queued while the aggregator is down (3 each), behind FILLERS others. */
const QUEUED = Array.from({ length: 16 }, (_, i) => `catchup-${i}`);
const shardOfInstance = (id: string) => shardOf(TargetIds.instance(id));
/** A target with nothing queued, in the shard of a queued one. */
const SILENT =
  Array.from({ length: 64 }, (_, k) => `catchup-silent-${k}`).find(
    (id) => shardOfInstance(id) === shardOfInstance(QUEUED[0]),
  ) ?? 'catchup-silent';
/**
 * Fillers cost 10 ms each to store (a trigger below; commits are one at a time): a backlog of them takes seconds to
 * drain whatever the machine's load, for little work (2,400 plain ones took 8 s alone and 47 s on a loaded box).
 */
const FILLERS = 200;
/** The queued targets in the silent one's shard: its deadline waits for their updates (and the fillers before them). */
const SAME_SHARD = QUEUED.filter((id) => shardOfInstance(id) === shardOfInstance(SILENT));

let site: TestSite;
let app: INestApplicationContext | undefined;

beforeAll(async () => {
  site = await createIsolatedTestSite('agg-catchup', {
    STALE_AFTER_SECONDS: String(STALE_S),
    SWEEP_INTERVAL_MS: String(SWEEP_MS),
    // One observation per commit: a backlog of slow fillers (below) takes many sweeps to drain.
    AGGREGATOR_BATCH_SIZE: '1',
    AGGREGATOR_BATCH_WAIT_MS: '0',
    AGGREGATOR_SHARD_CHECK_INTERVAL_MS: '200',
  });
  // Fillers (instances named filler-*) cost 10 ms each to store: a backlog of them drains slowly on sleep, not on
  // CPU (which a loaded CI box is short of).
  await site.pg.query(`CREATE FUNCTION slow_filler() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END $$`);
  await site.pg.query(`CREATE TRIGGER slow_filler AFTER INSERT ON status_updates FOR EACH ROW
    WHEN (NEW.instance_id LIKE 'filler-%') EXECUTE FUNCTION slow_filler()`);
});

/** Waits until `ms` past `from` (the deadlines counted from then have passed by then). */
const until = (from: number, ms: number) => new Promise((r) => setTimeout(r, Math.max(0, from + ms - Date.now())));
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

/** Consensus statuses a target's events went to, oldest first. */
async function consensusEvents(instanceId: string): Promise<string[]> {
  return (await consensusTimeline(site.pg, instanceId)).map((e) => e.status);
}

/** This process's fleetwatch_aggregator_catch_up_holds_total{cause="taken"} (holds since a take), by how they ended. */
async function holdsEnded(): Promise<Record<string, number>> {
  const out: Record<string, number> = { caught_up: 0, time_limit: 0, shard_left: 0 };
  for (const v of (await register.getSingleMetric('fleetwatch_aggregator_catch_up_holds_total')?.get())?.values ?? [])
    if (v.labels.cause === 'taken') out[String(v.labels.ended)] = v.value;
  return out;
}

/** This process's fleetwatch_aggregator_shards_catching_up. */
const shardsCatchingUp = async () =>
  (await register.getSingleMetric('fleetwatch_aggregator_shards_catching_up')?.get())?.values[0]?.value;

const updatesOf = (ids: readonly string[]) =>
  count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE instance_id = ANY($1)', [ids]);

describe('deadline expiry after a restart', () => {
  it('waits for the shard backlog: targets with updates queued in time never go STALE; a silent one does', async () => {
    app = await startAggregator(site.env);
    await site.bus.publisher.publishMany(
      [...QUEUED, SILENT].map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))),
    );
    await waitFor(
      async () => (await Promise.all([...QUEUED, SILENT].map(consensusEvents))).every((e) => e.at(-1) === 'UP'),
      { timeoutMs: 20_000, intervalMs: 50, description: 'every target UP' },
    );
    // Every target's deadline counts from (at the latest) now.
    const upAt = Date.now();

    await app.close();
    app = undefined;
    // Down for longer than the STALE window; the updates sent meanwhile wait in the shard queues.
    const down = Date.now();
    await site.bus.publisher.publishMany(
      Array.from({ length: FILLERS }, (_, i) => updateRequest(statusUpdate(`filler-${i}`, 'running', down))),
    );
    for (let k = 0; k < 3; k++)
      await site.bus.publisher.publishMany(
        QUEUED.map((id) => updateRequest(statusUpdate(id, 'running', down + k * 100))),
      );
    await until(upAt, STALE_S * 1000 + 1500);

    const ended = await holdsEnded();
    const restarted = Date.now();
    app = await startAggregator(site.env);
    let drainedAt = 0;
    let shardDrainedAt = 0;
    let silentStaleAt = 0;
    await Promise.all([
      waitFor(async () => (await updatesOf(SAME_SHARD)) === SAME_SHARD.length * 4, {
        timeoutMs: 60_000,
        intervalMs: 20,
        description: "the silent target's shard drained",
      }).then(() => (shardDrainedAt = Date.now())),
      waitFor(async () => (await updatesOf(QUEUED)) === QUEUED.length * 4, {
        timeoutMs: 60_000,
        intervalMs: 20,
        description: 'the queued updates committed',
      }).then(() => (drainedAt = Date.now())),
      waitFor(async () => (await consensusEvents(SILENT)).at(-1) === TargetStatus.Stale, {
        timeoutMs: 60_000,
        intervalMs: 20,
        description: `${SILENT} STALE`,
      }).then(() => (silentStaleAt = Date.now())),
    ]);
    // The backlog took a while (several lane rounds a shard), so the sweeps before its end were held back.
    expect(drainedAt - restarted).toBeGreaterThan(3 * SWEEP_MS);
    await new Promise((r) => setTimeout(r, 3 * SWEEP_MS));

    // No deadline of before the restart expired: every STALE of a queued target (if any: its backlog applied more
    // than STALE_S ago, on a slow drain) counts from its queued updates, applied after the restart.
    expect(await staleBefore(site.pg, QUEUED, restarted + STALE_S * 1000)).toEqual([]);
    // The silent target's deadline was held back until its shard caught up, not lost — and not held to the bound
    // either (SWEEP_CATCH_UP_MAX_MS, 60 s): every shard's hold ended by catching up.
    expect(SAME_SHARD.length).toBeGreaterThan(0);
    expect(silentStaleAt).toBeGreaterThanOrEqual(shardDrainedAt - 50);
    expect(silentStaleAt - shardDrainedAt).toBeLessThan(10_000);
    expect((await staleBefore(site.pg, [SILENT], restarted)).length).toBe(1);
    await waitFor(async () => (await holdsEnded()).caught_up >= ended.caught_up + OBSERVATION_SHARDS, {
      timeoutMs: 10_000,
      description: 'every shard caught up',
    });
    expect((await holdsEnded()).time_limit).toBe(ended.time_limit);
  });

  it('holds expiry back no longer than SWEEP_CATCH_UP_MAX_MS when the backlog outlasts it', async () => {
    const silent = `${SILENT}-bounded`;
    await site.bus.publisher.publishMany([updateRequest(statusUpdate(silent, 'running', Date.now()))]);
    await waitFor(async () => (await consensusEvents(silent)).at(-1) === TargetStatus.Up, {
      timeoutMs: 20_000,
      intervalMs: 50,
      description: `${silent} UP`,
    });
    const upAt = Date.now();
    await app?.close();
    app = undefined;
    const down = Date.now();
    // A backlog of FILLERS (2 s or more to store) in the silent target's shard (whose hold is bounded here) and in
    // that of the queued targets' updates behind it: the other shards have none.
    for (const shard of new Set([shardOfInstance(silent), shardOfInstance(SILENT)])) {
      const backlog = Array.from({ length: 20 * FILLERS }, (_, i) => `filler-bounded-${shard}-${i}`)
        .filter((id) => shardOfInstance(id) === shard)
        .slice(0, FILLERS);
      await site.bus.publisher.publishMany(backlog.map((id) => updateRequest(statusUpdate(id, 'running', down))));
    }
    await site.bus.publisher.publishMany(SAME_SHARD.map((id) => updateRequest(statusUpdate(id, 'running', down))));
    await until(upAt, STALE_S * 1000 + 1500);

    const ended = await holdsEnded();
    app = await startAggregator({ ...site.env, SWEEP_CATCH_UP_MAX_MS: '300' });
    const before = await updatesOf(SAME_SHARD);
    await waitFor(async () => (await consensusEvents(silent)).at(-1) === TargetStatus.Stale, {
      timeoutMs: 20_000,
      intervalMs: 20,
      description: `${silent} STALE`,
    });
    // Expired while its shard's backlog was still being consumed: the hold ran out.
    expect(await updatesOf(SAME_SHARD)).toBe(before);
    expect((await holdsEnded()).time_limit).toBeGreaterThan(ended.time_limit);
  });

  it('under continuous traffic on the shard, expiry resumes once the backlog is settled, long before the bound', async () => {
    // Under steady load a batch is nearly always on its way through the consumer (AGGREGATOR_BATCH_WAIT_MS
    // gathers the next one while the last commits), so "nothing in flight" is rarely seen by a sweep; what
    // counts is that everything delivered when the queue was seen empty has been settled since.
    const shard = shardOfInstance(SILENT);
    const inShard = (prefix: string, n: number) =>
      Array.from({ length: 256 }, (_, k) => `${prefix}-${k}`)
        .filter((id) => shardOfInstance(id) === shard)
        .slice(0, n);
    const [silent] = inShard('catchup-busy-silent', 1);
    const busy = inShard('catchup-busy', 4);
    const defaults = { ...site.env, AGGREGATOR_BATCH_SIZE: '500', AGGREGATOR_BATCH_WAIT_MS: '25' };
    await app?.close();
    app = await startAggregator(defaults);
    await site.bus.publisher.publishMany(
      [silent, ...busy].map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))),
    );
    await waitFor(
      async () => (await Promise.all([silent, ...busy].map(consensusEvents))).every((e) => e.at(-1) === 'UP'),
      {
        timeoutMs: 60_000,
        intervalMs: 50,
        description: "the shard's targets UP",
      },
    );
    await app.close();
    app = undefined;

    // Steady traffic to the shard's busy targets from now on: while the aggregator is down (a backlog),
    // and on after it is back.
    let loading = true;
    let sent = 0;
    const load = (async () => {
      while (loading) {
        const id = busy[sent % busy.length];
        await site.bus.publisher.publishMany([updateRequest(statusUpdate(id, 'running', Date.now()))]);
        sent++;
        await new Promise((r) => setTimeout(r, 4));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, STALE_S * 1000 + 1500));
      const ended = await holdsEnded();
      const sentBefore = sent;
      const restarted = Date.now();
      app = await startAggregator(defaults);
      await waitFor(async () => (await consensusEvents(silent)).at(-1) === TargetStatus.Stale, {
        timeoutMs: 55_000,
        intervalMs: 50,
        description: `${silent} STALE under continuous traffic on its shard`,
      });
      const staleAfter = Date.now() - restarted;
      process.stderr.write(`catch-up under load: silent target STALE ${staleAfter} ms after the restart\n`);
      // Before SWEEP_CATCH_UP_MAX_MS (60 s by default; 31 s seen on a loaded CI run, 30 s was the bound before): the
      // hold ended by catching up, not by the bound — which the time_limit count below says outright.
      expect(staleAfter).toBeLessThan(50_000);
      // Traffic went on throughout the catch-up.
      expect(sent - sentBefore).toBeGreaterThan(50);
      // Every shard's hold ended by catching up (the loaded one included), none by the bound.
      await waitFor(async () => (await holdsEnded()).caught_up === ended.caught_up + OBSERVATION_SHARDS, {
        timeoutMs: 5_000,
        description: 'every shard caught up',
      });
      expect((await holdsEnded()).time_limit).toBe(ended.time_limit);
      expect(await shardsCatchingUp()).toBe(0);
    } finally {
      loading = false;
      await load;
    }
    // The busy targets' updates queued in time were applied before any of their deadlines expired.
    for (const id of busy) expect(await consensusEvents(id)).not.toContain(TargetStatus.Stale);
  });
});
