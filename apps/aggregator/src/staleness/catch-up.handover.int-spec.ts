import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { OBSERVATION_SHARDS, TargetIds, TargetStatus } from '@fleetwatch/contracts';
import { shardOf } from '@fleetwatch/messaging';
import { freePortBlock, testEnv, waitFor } from '@fleetwatch/testing';
import {
  consensusTimeline,
  count,
  createIsolatedTestSite,
  privateDist,
  staleBefore,
  statusUpdate,
  updateRequest,
  type TestSite,
} from '../aggregator.int-helpers';
import { ownerOf } from '../shards/assignment';
import { SHARD_LOCK_NAMESPACE } from '../shards/shard-backends';

// The deadline-expiry hold on a hand-over (not only at a start): replica b stops while its shards
// have a backlog of updates that arrived in time, and the deadlines those updates were sent in time
// for pass before replica a, taking b's shards, has worked through it. a expires nothing there until
// it has caught up, so none of those targets goes STALE and back UP; a target with nothing queued in
// a taken shard still goes STALE, once its shard has drained. b is stalled first (SIGSTOP: it holds
// its locks, consumes nothing) while the backlog is published, so that the backlog is still queued
// at the take whatever this machine's speed. Runs the built service (dist/), two processes.

// Its bounded waits add up to ~190 s (start 30 s, catch-up 2 × 10 s, UP 20 s, b's exit 30 s, the drain 60 s, metrics);
// alone it takes ~15 s a test, but beside another file on a loaded 2-core CI box one took 142 s.
jest.setTimeout(240_000);

const root = join(__dirname, '../../../..');
const STALE_S = 5;
const CHECK_MS = 250;
const REPLICAS = ['replica-a', 'replica-b'];
let basePort: number;
/** Observation shards replica b holds while both run (rendezvous hashing, as the replicas plan it). */
const B_SHARDS = Array.from({ length: OBSERVATION_SHARDS }, (_, s) => s).filter(
  (s) => ownerOf(s, REPLICAS) === 'replica-b',
);
const shardOfInstance = (id: string) => shardOf(TargetIds.instance(id));
const inShards = (prefix: string, shards: readonly number[], n: number): string[] =>
  Array.from({ length: 50 * n }, (_, k) => `${prefix}-${k}`)
    .filter((id) => shards.includes(shardOfInstance(id)))
    .slice(0, n);

let site: TestSite;
let dist: string;
const procs = new Map<string, { proc: ChildProcess; output: string[] }>();

function start(name: 'a' | 'b'): ChildProcess {
  const output: string[] = [];
  const proc = spawn(process.execPath, [join(dist, 'dist/apps/aggregator/src/main.js')], {
    cwd: root,
    env: {
      ...process.env,
      ...site.env,
      AGGREGATOR_PORT: String(basePort + (name === 'a' ? 0 : 1)),
      AGGREGATOR_REPLICA_ID: `replica-${name}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  procs.set(name, { proc, output });
  return proc;
}

const exited = (proc: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
    else proc.once('exit', (code, signal) => resolve({ code, signal }));
  });

/** `p`, or a failure naming what did not happen within `ms` (with the replicas' output). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms\n${tail()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const tail = () => [...procs.entries()].map(([n, p]) => `--- ${n}:\n${p.output.join('').slice(-1500)}`).join('\n');

/** Observation shards (not the legacy pseudo-shard) locked, by holder (one lock connection per replica). */
async function shardsByHolder(): Promise<number[][]> {
  const { rows } = await site.pg.query<{ pid: number; shards: number[] }>(
    `SELECT pid, array_agg(objid::int ORDER BY objid) AS shards FROM pg_locks
     WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2 AND granted AND objid::int < $2
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     GROUP BY pid`,
    [SHARD_LOCK_NAMESPACE, OBSERVATION_SHARDS],
  );
  return rows.map((r) => r.shards);
}

/** A metric of a replica's /metrics, by its labels as written ('' for none); absent: 0. */
async function metricOf(replica: 'a' | 'b', name: string, labels = ''): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${basePort + (replica === 'a' ? 0 : 1)}/metrics`, {
    signal: AbortSignal.timeout(10_000),
  });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Consensus statuses a target's events went to, oldest first. */
async function consensusEvents(instanceId: string): Promise<string[]> {
  return (await consensusTimeline(site.pg, instanceId)).map((e) => e.status);
}

const updatesOf = (ids: readonly string[]) =>
  count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE instance_id = ANY($1)', [ids]);

beforeAll(async () => {
  basePort = await freePortBlock(2);
  site = await createIsolatedTestSite('agg-handover', {
    STALE_AFTER_SECONDS: String(STALE_S),
    SWEEP_INTERVAL_MS: '200',
    AGGREGATOR_SHARD_CHECK_INTERVAL_MS: String(CHECK_MS),
    // One observation per commit, and few deliveries in hand: the backlog stays in the queues when b stops
    // (b commits only what it was delivered) and takes a to work through.
    AGGREGATOR_PREFETCH: '20',
    AGGREGATOR_BATCH_SIZE: '1',
    AGGREGATOR_BATCH_WAIT_MS: '0',
    LOG_LEVEL: 'info',
    FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS: '10',
  });
  dist = await privateDist(`aggregator-handover-${testEnv().runId}`);
});

afterAll(async () => {
  // REPLICAS_LOG_DIR=/tmp/x keeps each replica's whole output (debugging a failure).
  if (process.env.REPLICAS_LOG_DIR)
    for (const [name, p] of procs)
      writeFileSync(join(process.env.REPLICAS_LOG_DIR, `handover-replica-${name}.log`), p.output.join(''));
  for (const { proc } of procs.values()) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited(proc);
    }
  }
  await site?.dispose();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

/** Backlog in b's shards ahead of the queued updates (one commit each: batch size 1). */
const FILLERS = 200;

interface Scenario {
  /** Updates queued in time behind the backlog, in b's shards. */
  queued: string[];
  /** Nothing queued: in the shard of a queued one. */
  silent: string;
  /** The queued targets in the silent one's shard. */
  sameShard: string[];
}

function scenario(prefix: string): Scenario {
  const queued = inShards(`${prefix}-queued`, B_SHARDS, 16);
  const [silent] = inShards(`${prefix}-silent`, [shardOfInstance(queued[0])], 1);
  return { queued, silent, sameShard: queued.filter((id) => shardOfInstance(id) === shardOfInstance(silent)) };
}

/** Both replicas running, b holding its share and caught up with it. */
async function bothHoldingTheirShares(): Promise<void> {
  for (const name of ['a', 'b'] as const) {
    const p = procs.get(name)?.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) start(name);
  }
  await waitFor(
    async () => {
      const held = await shardsByHolder();
      return held.length === 2 && held.some((s) => s.join() === B_SHARDS.join()) && held.flat().length === 8;
    },
    { timeoutMs: 30_000, intervalMs: 100, description: () => `b holding shards ${B_SHARDS.join()}\n${tail()}` },
  );
  for (const name of ['a', 'b'] as const)
    await waitFor(async () => (await metricOf(name, 'fleetwatch_aggregator_shards_catching_up')) === 0, {
      timeoutMs: 10_000,
      description: `${name} caught up with its shards' queues`,
    });
}

/**
 * Every target of `s` UP (folded by b), then b stalled while the backlog and the queued updates are published (in
 * time); `stop` stops b and has a take b's shards after the queued targets' deadlines have passed. Then: a commits
 * the queued updates after those deadlines, none of those targets went STALE, the silent one did once its shard
 * drained; a's holds on b's shards all ended by catching up.
 */
async function handOver(s: Scenario, stop: (b: ChildProcess, deadline: number) => Promise<void>): Promise<void> {
  const caughtUpBefore = await metricOf(
    'a',
    'fleetwatch_aggregator_catch_up_holds_total',
    '{cause="taken",ended="caught_up"}',
  );
  const limitBefore = await metricOf(
    'a',
    'fleetwatch_aggregator_catch_up_holds_total',
    '{cause="taken",ended="time_limit"}',
  );
  const all = [...s.queued, s.silent];
  await site.bus.publisher.publishMany(all.map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))));
  await waitFor(async () => (await Promise.all(all.map(consensusEvents))).every((e) => e.at(-1) === 'UP'), {
    timeoutMs: 20_000,
    intervalMs: 20,
    description: () => `every target UP\n${tail()}`,
  });
  // Their deadlines: STALE_S after their updates landed (a little before now).
  const deadline = Date.now() + STALE_S * 1000;

  const b = procs.get('b')?.proc as ChildProcess;
  b.kill('SIGSTOP');
  const fillers = inShards(`${s.silent}-filler`, B_SHARDS, FILLERS);
  await site.bus.publisher.publishMany(fillers.map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))));
  await site.bus.publisher.publishMany(s.queued.map((id) => updateRequest(statusUpdate(id, 'running', Date.now()))));
  expect(Date.now()).toBeLessThan(deadline - 1500);
  await stop(b, deadline);

  let drainedAt = 0;
  let shardDrainedAt = 0;
  let silentStaleAt = 0;
  await Promise.all([
    waitFor(async () => (await updatesOf(s.sameShard)) === s.sameShard.length * 2, {
      timeoutMs: 60_000,
      intervalMs: 20,
      description: () => `the silent target's shard drained\n${tail()}`,
    }).then(() => (shardDrainedAt = Date.now())),
    waitFor(async () => (await updatesOf(s.queued)) === s.queued.length * 2, {
      timeoutMs: 60_000,
      intervalMs: 20,
      description: () => `the queued updates committed by a\n${tail()}`,
    }).then(() => (drainedAt = Date.now())),
    waitFor(async () => (await consensusEvents(s.silent)).at(-1) === TargetStatus.Stale, {
      timeoutMs: 60_000,
      intervalMs: 20,
      description: () => `${s.silent} STALE\n${tail()}`,
    }).then(() => (silentStaleAt = Date.now())),
  ]);
  process.stderr.write(
    `catch-up on a hand-over: queued updates landed ${drainedAt - deadline} ms after their deadlines; ` +
      `silent target STALE ${silentStaleAt - deadline} ms after its deadline\n`,
  );
  // The case at hand: the queued updates landed after the deadlines they were sent in time for.
  expect(drainedAt).toBeGreaterThan(deadline);
  await new Promise((r) => setTimeout(r, 1000));
  // No deadline of before the take expired (theirs passed at about `deadline`): a STALE of a queued target, if any
  // (its backlog applied more than STALE_S ago, on a slow drain), counts from its queued update, applied by a after
  // the take (later than `deadline`).
  expect(await staleBefore(site.pg, s.queued, deadline + STALE_S * 1000)).toEqual([]);
  // The silent target's deadline was held back until its shard had drained on a, not lost, nor held to the bound.
  expect(s.sameShard.length).toBeGreaterThan(0);
  expect(silentStaleAt).toBeGreaterThanOrEqual(shardDrainedAt - 50);
  expect(silentStaleAt - deadline).toBeLessThan(30_000);

  // Every hold on b's shards ended by catching up, none by the time limit; none is left.
  expect(await metricOf('a', 'fleetwatch_aggregator_catch_up_holds_total', '{cause="taken",ended="caught_up"}')).toBe(
    caughtUpBefore + B_SHARDS.length,
  );
  expect(await metricOf('a', 'fleetwatch_aggregator_catch_up_holds_total', '{cause="taken",ended="time_limit"}')).toBe(
    limitBefore,
  );
  expect(await metricOf('a', 'fleetwatch_aggregator_shards_catching_up')).toBe(0);
}

describe('deadline expiry after a hand-over', () => {
  it('b stopped (SIGTERM), its shards taken late: targets with updates queued in time never go STALE; a silent one does', async () => {
    expect(B_SHARDS.length).toBeGreaterThan(0);
    await bothHoldingTheirShares();
    await handOver(scenario('handover'), async (b, deadline) => {
      // A hand-over slower than the deadlines: b's shard locks pass through a stand-in holder (this client) that
      // keeps them until the deadlines have passed, then a takes them.
      // One connection per shard: a client sends one query at a time, so on a single one only the first shard's
      // lock request waited in Postgres's queue and a took the others when b let go (CI: a timeout, not a failure
      // of the product). Each waiting in the queue is granted ahead of a's tries.
      const standIns = B_SHARDS.map(() => new Client({ connectionString: site.database.databaseUrl }));
      await Promise.all(standIns.map((c) => c.connect()));
      try {
        const locked = Promise.all(
          B_SHARDS.map((shard, i) =>
            standIns[i].query('SELECT pg_advisory_lock($1, $2)', [SHARD_LOCK_NAMESPACE, shard]),
          ),
        );
        await new Promise((r) => setTimeout(r, deadline - 1000 - Date.now()));
        b.kill('SIGCONT');
        b.kill('SIGTERM');
        expect((await within(exited(b), 30_000, 'b exited after SIGTERM')).code).toBe(0);
        await within(locked, 10_000, "the stand-in holding b's shard locks");
        await new Promise((r) => setTimeout(r, deadline + 500 - Date.now()));
      } finally {
        await Promise.all(standIns.map((c) => c.end()));
      }
    });
  });

  it('b dies (SIGKILL) stalled past the deadlines: targets with updates queued in time never go STALE; a silent one does', async () => {
    await bothHoldingTheirShares();
    await handOver(scenario('crash'), async (b, deadline) => {
      await new Promise((r) => setTimeout(r, deadline + 500 - Date.now()));
      b.kill('SIGKILL');
      expect((await within(exited(b), 10_000, 'b exited after SIGKILL')).signal).toBe('SIGKILL');
    });
  });
});
