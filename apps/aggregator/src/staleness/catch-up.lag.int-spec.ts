import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { register } from 'prom-client';
import { TargetIds, TargetStatus } from '@fleetwatch/contracts';
import { shardOf, type PublishRequest } from '@fleetwatch/messaging';
import { TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import {
  count,
  createIsolatedTestSite,
  startAggregator,
  statusUpdate,
  successPing,
  updateRequest,
  type TestSite,
} from '../aggregator.int-helpers';

// A shard held all along whose consumer cannot apply what is queued for a while — Redis away (the commit path stops
// behind its projections), Postgres away (the commit retried with backoff), or the aggregator simply behind its queue
// — while observations that arrived in time wait in the shard's queue or in the consumer's hands. The sweeper must
// not expire those targets' deadlines meanwhile (a false STALE, or DOWN for a heartbeat, with events and alerts, then
// UP again once the backlog is applied): a deadline is expired only once everything published to its shard before it
// has been applied (bounded by SWEEP_CATCH_UP_MAX_MS past the deadline). A target that is really silent still goes
// STALE, once the shard has caught up.

jest.setTimeout(120_000);

const STALE_S = 5;
const SWEEP_MS = 200;
/** Every so often each busy target sends an update (a heartbeat a ping): well inside its deadline. */
const EVERY_MS = 500;
/** The heartbeat's schedule: a ping missed by 2 s is DOWN. */
const PERIOD_S = 1;
const GRACE_S = 1;
const SHARD = 3;

let site: TestSite;
let app: INestApplicationContext | undefined;

beforeAll(async () => {
  const name = 'agg-catchup-lag';
  site = await createIsolatedTestSite(name, {
    STALE_AFTER_SECONDS: String(STALE_S),
    SWEEP_INTERVAL_MS: String(SWEEP_MS),
    AGGREGATOR_BATCH_WAIT_MS: '20',
    AGGREGATOR_SHARD_CHECK_INTERVAL_MS: '200',
  });
  // Fillers (instances named lagfill-*) cost 10 ms each to store: a backlog of them keeps the consumer behind.
  await site.pg.query(`CREATE FUNCTION slow_filler() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END $$`);
  await site.pg.query(`CREATE TRIGGER slow_filler AFTER INSERT ON status_updates FOR EACH ROW
    WHEN (NEW.instance_id LIKE 'lagfill-%') EXECUTE FUNCTION slow_filler()`);
  // A Postgres hiccup for the commit path only: while a target is listed in hiccup, storing an update or a ping of
  // it fails as a serialization failure (an outage to the aggregator: retried with backoff, the messages held).
  await site.pg.query('CREATE TABLE hiccup (target_id text PRIMARY KEY)');
  await site.pg.query(`CREATE FUNCTION hiccup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM hiccup WHERE target_id = NEW.target_id) THEN
        RAISE EXCEPTION 'could not serialize access (test hiccup)' USING ERRCODE = 'serialization_failure';
      END IF;
      RETURN NEW;
    END $$`);
  for (const table of ['status_updates', 'heartbeat_pings'])
    await site.pg.query(`CREATE TRIGGER hiccup BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION hiccup()`);
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

/** `k` instance ids (prefix-…) in SHARD. */
function inShard(prefix: string, k: number): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < k; i++)
    if (shardOf(TargetIds.instance(`${prefix}-${i}`)) === SHARD) ids.push(`${prefix}-${i}`);
  return ids;
}

/** Consensus statuses a target's events went to, oldest first (those that happened before `before`). */
async function consensusEvents(targetId: string, before = Number.POSITIVE_INFINITY): Promise<string[]> {
  const { rows } = await site.pg.query<{ to_status: string; at: Date }>(
    'SELECT to_status, occurred_at AS at FROM status_events WHERE target_id = $1 AND location IS NULL ORDER BY sequence',
    [targetId],
  );
  return rows.filter((r) => r.at.getTime() < before).map((r) => r.to_status);
}

/** This process's fleetwatch_aggregator_catch_up_holds_total{cause="behind"}, by how the holds ended. */
async function lagHoldsEnded(): Promise<Record<string, number>> {
  const out: Record<string, number> = { caught_up: 0, time_limit: 0, shard_left: 0 };
  for (const v of (await register.getSingleMetric('fleetwatch_aggregator_catch_up_holds_total')?.get())?.values ?? [])
    if (v.labels.cause === 'behind') out[String(v.labels.ended)] += v.value;
  return out;
}

/** This process's fleetwatch_aggregator_shards_catching_up. */
const shardsCatchingUp = async () =>
  (await register.getSingleMetric('fleetwatch_aggregator_shards_catching_up')?.get())?.values[0]?.value;

/** Waits until a lag hold more than `before` has ended by catching up. */
async function lagHoldCaughtUp(before: number): Promise<void> {
  await waitFor(async () => (await lagHoldsEnded()).caught_up > before, {
    timeoutMs: 10_000,
    intervalMs: 50,
    description: 'a hold of expiry for the shard behind its queue, ended by catching up',
  });
}

interface Fleet {
  /** Instances updated every EVERY_MS. */
  busy: string[];
  /** A heartbeat pinged every EVERY_MS. */
  heartbeat: { monitorId: string; targetId: string };
  /** An instance heard once, at the start. */
  silent: string;
  /** Updates and pings published so far. */
  sent(): number;
  /** When the traffic stopped (the busy targets go silent then: STALE, or DOWN, after that is no flap). */
  stoppedAt(): number;
  /** Updates and pings stored so far. */
  stored(): Promise<number>;
  stop(): Promise<void>;
}

/** A monitor row as sync-orchestrator writes it with a push check, its target in SHARD. */
async function newMonitor(): Promise<{ monitorId: string; targetId: string }> {
  let monitorId = randomUUID();
  while (shardOf(`check:${monitorId}`) !== SHARD) monitorId = randomUUID();
  const targetId = `check:${monitorId}`;
  await site.pg.query(
    'INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds) VALUES ($1, $2, $3, $4, $5, $6, NULL)',
    [monitorId, targetId, `job ${monitorId}`, randomUUID(), PERIOD_S, GRACE_S],
  );
  return { monitorId, targetId };
}

const pingOf = (m: { monitorId: string; targetId: string }, at: number): PublishRequest =>
  successPing(m, at, { periodSeconds: PERIOD_S, graceSeconds: GRACE_S });

/** Busy targets and a silent one in SHARD, all UP; the busy ones keep sending until stop(). */
async function fleet(prefix: string): Promise<Fleet> {
  const [silent, ...busy] = inShard(prefix, 4);
  const heartbeat = await newMonitor();
  await site.bus.publisher.publishMany([updateRequest(statusUpdate(silent, 'running', Date.now()))]);
  let sent = 0;
  let running = true;
  let stoppedAt = Number.POSITIVE_INFINITY;
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      await site.bus.publisher.publishMany([
        ...busy.map((id) => updateRequest(statusUpdate(id, 'running', now))),
        pingOf(heartbeat, now),
      ]);
      sent += busy.length + 1;
      await new Promise((r) => setTimeout(r, EVERY_MS));
    }
  })();
  const stop = async () => {
    if (running) stoppedAt = Date.now();
    running = false;
    await loop;
  };
  const ids = [...busy, silent].map((id) => TargetIds.instance(id));
  await waitFor(
    async () =>
      (await Promise.all([...ids, heartbeat.targetId].map((t) => consensusEvents(t)))).every(
        (e) => e.at(-1) === TargetStatus.Up,
      ),
    { timeoutMs: 30_000, intervalMs: 50, description: `${prefix}: every target UP` },
  )
    // The shards' catch-up since their take is over: what follows is a shard held all along.
    .then(() =>
      waitFor(async () => (await shardsCatchingUp()) === 0, {
        timeoutMs: 30_000,
        intervalMs: 50,
        description: `${prefix}: every shard caught up since its take`,
      }),
    )
    .catch(async (e: unknown) => {
      await stop();
      throw e;
    });
  return {
    busy,
    heartbeat,
    silent,
    sent: () => sent,
    stoppedAt: () => stoppedAt,
    stored: async () =>
      (await count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE instance_id = ANY($1)', [busy])) +
      (await count(site.pg, 'SELECT count(*) AS n FROM heartbeat_pings WHERE target_id = $1', [heartbeat.targetId])),
    stop,
  };
}

/** Stops the traffic, waits until every update and ping sent is stored, then for the silent target's STALE. */
async function drainedThenSilentStale(f: Fleet, what: string): Promise<void> {
  await f.stop();
  await waitFor(async () => (await f.stored()) === f.sent(), {
    timeoutMs: 60_000,
    intervalMs: 50,
    description: `${what}: every update and ping sent stored`,
  });
  await waitFor(async () => (await consensusEvents(TargetIds.instance(f.silent))).at(-1) === TargetStatus.Stale, {
    timeoutMs: 20_000,
    intervalMs: 50,
    description: `${what}: the silent target STALE once its shard caught up`,
  });
}

/** The busy targets and the heartbeat that went STALE or DOWN while their traffic went on (with their events). */
async function flaps(f: Fleet): Promise<Array<{ target: string; events: string[] }>> {
  const targets = [...f.busy.map((id) => TargetIds.instance(id)), f.heartbeat.targetId];
  const before = f.stoppedAt();
  return (
    await Promise.all(targets.map(async (target) => ({ target, events: await consensusEvents(target, before) })))
  ).filter((t) => t.events.some((e) => e === TargetStatus.Stale || e === TargetStatus.Down));
}

describe('deadline expiry while a held shard cannot apply its queue', () => {
  it('Redis away for longer than the deadlines: the queued in-time updates and pings keep their targets UP', async () => {
    let f: Fleet | undefined;
    const proxy = TcpProxy.forUrl(testEnv().redisUrl);
    await proxy.start();
    try {
      // Only the aggregator's Redis traffic crosses the proxy.
      app = await startAggregator({ ...site.env, REDIS_URL: proxy.rewriteUrl(testEnv().redisUrl) });
      f = await fleet('redis');
      const ended = await lagHoldsEnded();
      const storedBefore = await f.stored();
      const sentBefore = f.sent();
      proxy.pause();
      proxy.cut();
      // Past every deadline (STALE_S after an update applied before the outage began) by 2 s: ten sweeps after them.
      await new Promise((r) => setTimeout(r, STALE_S * 1000 + 2000));
      // The consumer stopped applying (its commits wait behind the projections Redis does not take).
      expect((await f.stored()) - storedBefore).toBeLessThan((f.sent() - sentBefore) / 2);
      expect(await flaps(f)).toEqual([]);
      proxy.resume();
      await new Promise((r) => setTimeout(r, 2000));
      await drainedThenSilentStale(f, 'Redis outage');
      expect(await flaps(f)).toEqual([]);
      // The shard's expiry was held back while it was behind, and the hold ended by catching up.
      await lagHoldCaughtUp(ended.caught_up);
    } finally {
      await f?.stop();
      proxy.resume();
      await app?.close();
      app = undefined;
      await proxy.stop();
    }
  });

  it('Postgres failing the commits for longer than the deadlines: the targets whose updates and pings wait stay UP', async () => {
    app = await startAggregator(site.env);
    const f = await fleet('pghiccup');
    try {
      const ended = await lagHoldsEnded();
      const targets = [...f.busy.map((id) => TargetIds.instance(id)), f.heartbeat.targetId];
      await site.pg.query('INSERT INTO hiccup SELECT unnest($1::text[])', [targets]);
      await new Promise((r) => setTimeout(r, STALE_S * 1000 + 2000));
      expect(await flaps(f)).toEqual([]);
      await site.pg.query('DELETE FROM hiccup');
      await drainedThenSilentStale(f, 'Postgres hiccup');
      expect(await flaps(f)).toEqual([]);
      await lagHoldCaughtUp(ended.caught_up);
    } finally {
      await site.pg.query('DELETE FROM hiccup');
      await f.stop();
      await app.close();
      app = undefined;
    }
  });

  it('the aggregator behind its queue by more than the deadlines: no target with an update queued in time goes STALE or DOWN', async () => {
    // Commits of 100 observations: the fillers ahead take eight of them, ~1 s each.
    app = await startAggregator({ ...site.env, AGGREGATOR_MAX_OBSERVATIONS_PER_COMMIT: '100' });
    const f = await fleet('behind');
    try {
      const ended = await lagHoldsEnded();
      // 800 updates ahead of the busy targets' next ones, 10 ms each to store: the shard is ~8 s behind, 3 s (15
      // sweeps) past the deadlines of the busy targets' updates queued behind them.
      const fillers = inShard('lagfill', 800);
      await site.bus.publisher.publishMany(fillers.map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))));
      await new Promise((r) => setTimeout(r, STALE_S * 1000 + 2000));
      await drainedThenSilentStale(f, 'behind');
      expect(
        await count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE instance_id = ANY($1)', [fillers]),
      ).toBe(fillers.length);
      expect(await flaps(f)).toEqual([]);
      await lagHoldCaughtUp(ended.caught_up);
    } finally {
      await f.stop();
      await app.close();
      app = undefined;
    }
  });
});
