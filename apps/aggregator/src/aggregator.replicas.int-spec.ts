import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { deadLetterQueueOf, OBSERVATION_SHARDS, observationShardQueue, TargetStatus } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { freePortBlock, testEnv, waitFor } from '@fleetwatch/testing';
import {
  count,
  createIsolatedTestSite,
  privateDist,
  statusUpdate,
  updateRequest,
  type TestSite,
} from './aggregator.int-helpers';
import { SHARD_LOCK_NAMESPACE } from './shards/shard-backends';

// Issue 14 must-show: aggregator replicas share the observation shards. Two replicas under
// load, one SIGKILLed and restarted: every update stored once, each target's live status its
// last update, events gap-free. Hand-over: with one replica stopped, the other takes its shards
// within seconds and per-target order holds across it. Runs the built service (dist/).

jest.setTimeout(120_000);

const root = join(__dirname, '../../..');
const INSTANCES = 200;
const CHECK_MS = 250;
let basePort: number;

let site: TestSite;
let dist: string;
let amqp: ChannelModel;
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

const tail = () => [...procs.entries()].map(([n, p]) => `--- ${n}:\n${p.output.join('').slice(-1500)}`).join('\n');

/** Shard locks held, by Postgres backend pid (one lock connection per replica). */
async function locksByHolder(): Promise<Map<number, number[]>> {
  const { rows } = await site.pg.query<{ pid: number; shard: number }>(
    `SELECT pid, objid::int AS shard FROM pg_locks
     WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2 AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [SHARD_LOCK_NAMESPACE],
  );
  const out = new Map<number, number[]>();
  for (const r of rows)
    out.set(
      r.pid,
      [...(out.get(r.pid) ?? []), r.shard].sort((a, b) => a - b),
    );
  return out;
}

/** Every shard (and the legacy pseudo-shard) held, and every shard queue consumed. */
async function allShardsServed(holders: number): Promise<boolean> {
  const locks = await locksByHolder();
  const held = [...locks.values()].flat();
  if (locks.size !== holders || held.length !== OBSERVATION_SHARDS + 1) return false;
  const ch = await amqp.createChannel();
  ch.on('error', () => undefined);
  try {
    for (let s = 0; s < OBSERVATION_SHARDS; s++)
      if ((await ch.checkQueue(observationShardQueue(s))).consumerCount !== 1) return false;
    return true;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** Messages dead-lettered from the shard queues. */
async function deadLettered(): Promise<number> {
  const ch = await amqp.createChannel();
  ch.on('error', () => undefined);
  try {
    let n = 0;
    for (let s = 0; s < OBSERVATION_SHARDS; s++)
      n += (await ch.checkQueue(deadLetterQueueOf(observationShardQueue(s)))).messageCount;
    return n;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** Shard-queue deliveries the replicas gave back on a live channel (fleetwatch_bus_messages_redelivered_total). */
const givenBack = () => shardQueueCounter('fleetwatch_bus_messages_redelivered_total');

/** A counter of the replicas' /metrics, summed over the shard queues. */
async function shardQueueCounter(metric: string): Promise<number> {
  let n = 0;
  for (const name of ['a', 'b'] as const) {
    const res = await fetch(`http://127.0.0.1:${basePort + (name === 'a' ? 0 : 1)}/metrics`).catch(() => null);
    if (!res || res.status !== 200) continue;
    for (const line of (await res.text()).split('\n'))
      if (line.startsWith(`${metric}{`) && line.includes('observations.shard-'))
        n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

async function queued(): Promise<number> {
  const ch = await amqp.createChannel();
  ch.on('error', () => undefined);
  try {
    let n = 0;
    for (let s = 0; s < OBSERVATION_SHARDS; s++) n += (await ch.checkQueue(observationShardQueue(s))).messageCount;
    return n;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

const base = Date.now() - 3_600_000;
/**
 * Round k of every instance of `prefix`: even rounds `running`, odd rounds `exited`, so every
 * round is a transition. Out of order folding would show: an older observation never moves
 * the state back, so a round folded late leaves a transition missing.
 */
const round = (prefix: string, k: number) =>
  Array.from({ length: INSTANCES }, (_, i) =>
    updateRequest(
      statusUpdate(`${prefix}-${i}`, k % 2 === 1 ? 'exited' : 'running', base + k * 1000, {
        labels: { pool: prefix },
      }),
    ),
  );

async function publishRounds(prefix: string, from: number, to: number): Promise<void> {
  for (let k = from; k < to; k++) await site.bus.publisher.publishMany(round(prefix, k));
}

const rows = (prefix: string) =>
  count(site.pg, `SELECT count(*) AS n FROM status_updates WHERE instance_id LIKE '${prefix}-%'`);

/** Every update once, events 1..2×rounds per target without gaps, in observation order, live state = last update. */
async function expectFoldedInOrder(prefix: string, rounds: number): Promise<void> {
  const n = INSTANCES * rounds;
  await waitFor(async () => (await rows(prefix)) === n && (await queued()) === 0, {
    timeoutMs: 60_000,
    intervalMs: 200,
    description: `${n} ${prefix} rows stored and the shard queues empty\n${tail()}`,
  });
  expect(
    await count(
      site.pg,
      `SELECT count(DISTINCT message_id) AS n FROM status_updates WHERE instance_id LIKE '${prefix}-%'`,
    ),
  ).toBe(n);
  // Each round is a transition: location + consensus events, numbered 1..2×rounds.
  const events = 2 * rounds;
  await waitFor(
    async () =>
      (await count(site.pg, `SELECT count(*) AS n FROM status_events WHERE target_id LIKE 'instance:${prefix}-%'`)) ===
      INSTANCES * events,
    { timeoutMs: 20_000, description: `${INSTANCES * events} ${prefix} events` },
  );
  expect(
    await count(
      site.pg,
      `SELECT count(*) AS n FROM (SELECT target_id FROM status_events WHERE target_id LIKE 'instance:${prefix}-%'
         GROUP BY target_id HAVING count(*) <> ${events} OR max(sequence) <> ${events} OR count(DISTINCT sequence) <> ${events}) bad`,
    ),
  ).toBe(0);
  // In order: by sequence, each target's events follow the observations' times.
  expect(
    await count(
      site.pg,
      `SELECT count(*) AS n FROM (
         SELECT occurred_at < lag(occurred_at) OVER (PARTITION BY target_id, location ORDER BY sequence) AS backwards
         FROM status_events WHERE target_id LIKE 'instance:${prefix}-%') e WHERE backwards`,
    ),
  ).toBe(0);
  const last = rounds % 2 === 0 ? TargetStatus.Down : TargetStatus.Up;
  const store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  await waitFor(
    async () => {
      const page = await store.listTargets({ tag: `pool=${prefix}` }, 1000);
      return page.total === INSTANCES && page.items.every((t) => t.status === last && t.seq === events);
    },
    { timeoutMs: 10_000, description: `every ${prefix} target ${last} at sequence ${events} in live state` },
  );
}

beforeAll(async () => {
  basePort = await freePortBlock(2);
  site = await createIsolatedTestSite('agg-replicas', {
    AGGREGATOR_PREFETCH: '400',
    AGGREGATOR_BATCH_SIZE: '200',
    SWEEP_INTERVAL_MS: '250',
    AGGREGATOR_SHARD_CHECK_INTERVAL_MS: String(CHECK_MS),
    LOG_LEVEL: 'info',
    FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS: '10',
  });
  dist = await privateDist(`aggregator-replicas-${testEnv().runId}`);
  amqp = await connect(site.vhost.amqpUrl);
  amqp.on('error', () => undefined);
});

afterAll(async () => {
  // REPLICAS_LOG_DIR=/tmp/x keeps each replica's whole output (debugging a failure).
  if (process.env.REPLICAS_LOG_DIR)
    for (const [name, p] of procs)
      writeFileSync(join(process.env.REPLICAS_LOG_DIR, `replica-${name}.log`), p.output.join(''));
  for (const { proc } of procs.values()) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited(proc);
    }
  }
  await amqp?.close().catch(() => undefined);
  await site?.dispose();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('aggregator replicas', () => {
  it('two replicas split the shards; one SIGKILLed mid-stream and restarted: every update once, events gap-free and in order, live state = last update', async () => {
    start('a');
    start('b');
    await waitFor(() => allShardsServed(2), {
      timeoutMs: 30_000,
      intervalMs: 100,
      description: `both replicas holding shards\n${tail()}`,
    });

    const ROUNDS = 12;
    await publishRounds('kill', 0, 4);
    await waitFor(async () => (await rows('kill')) >= 300, {
      timeoutMs: 20_000,
      intervalMs: 10,
      description: 'the replicas committing',
    });
    const a = procs.get('a')?.proc as ChildProcess;
    a.kill('SIGKILL');
    expect((await exited(a)).signal).toBe('SIGKILL');
    expect(await rows('kill')).toBeLessThan(INSTANCES * ROUNDS);
    // The survivor takes the dead replica's shards (their locks went with its connection) within seconds.
    const killedAt = Date.now();
    const publishing = publishRounds('kill', 4, 8);
    await waitFor(() => allShardsServed(1), {
      timeoutMs: 15_000,
      intervalMs: 50,
      description: `the survivor holding every shard\n${tail()}`,
    });
    const takeover = Date.now() - killedAt;
    await publishing;
    start('a');
    await publishRounds('kill', 8, ROUNDS);
    await waitFor(() => allShardsServed(2), {
      timeoutMs: 30_000,
      intervalMs: 100,
      description: `the restarted replica taking its shards back\n${tail()}`,
    });
    await expectFoldedInOrder('kill', ROUNDS);
    process.stderr.write(`aggregator replicas: shards of a SIGKILLed replica taken over in ${takeover} ms\n`);
    expect(takeover).toBeLessThan(10_000);
  });

  it('hand-over: with one replica stopped the other takes its shards within seconds, per-target order holding across it', async () => {
    await waitFor(() => allShardsServed(2), { timeoutMs: 30_000, description: 'two replicas holding shards' });
    const ROUNDS = 10;
    const publishing = publishRounds('handover', 0, ROUNDS);
    await waitFor(async () => (await rows('handover')) >= 200, {
      timeoutMs: 20_000,
      intervalMs: 10,
      description: 'the replicas committing',
    });
    const b = procs.get('b')?.proc as ChildProcess;
    const stoppedAt = Date.now();
    b.kill('SIGTERM');
    expect((await exited(b)).code).toBe(0);
    await waitFor(() => allShardsServed(1), {
      timeoutMs: 10_000,
      intervalMs: 50,
      description: `the other replica holding every shard\n${tail()}`,
    });
    const handover = Date.now() - stoppedAt;
    await publishing;
    await expectFoldedInOrder('handover', ROUNDS);
    process.stderr.write(`aggregator replicas: shards of a stopped replica taken over in ${handover} ms\n`);
    expect(handover).toBeLessThan(5_000);

    // And back: a replica joining takes its share from the running one, again in order.
    start('b');
    const rejoin = publishRounds('rejoin', 0, ROUNDS);
    await waitFor(() => allShardsServed(2), {
      timeoutMs: 30_000,
      intervalMs: 100,
      description: `the shards shared again\n${tail()}`,
    });
    await rejoin;
    await expectFoldedInOrder('rejoin', ROUNDS);
  });

  it('a replica whose lock connection is killed stops consuming at once; never two consumers on a shard; order holds', async () => {
    for (const name of ['a', 'b'] as const) {
      const p = procs.get(name)?.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) start(name);
    }
    await waitFor(() => allShardsServed(2), { timeoutMs: 30_000, description: 'two replicas holding shards' });
    // Sample every shard queue's consumers throughout: a shard must never be consumed twice.
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      const ch = await amqp.createChannel();
      ch.on('error', () => undefined);
      try {
        while (sampling) {
          for (let s = 0; s < OBSERVATION_SHARDS; s++)
            most = Math.max(most, (await ch.checkQueue(observationShardQueue(s))).consumerCount);
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await ch.close().catch(() => undefined);
      }
    })();
    try {
      const ROUNDS = 10;
      const publishing = publishRounds('locklost', 0, ROUNDS);
      await waitFor(async () => (await rows('locklost')) >= 200, {
        timeoutMs: 20_000,
        intervalMs: 10,
        description: 'the replicas committing',
      });
      // Kill one replica's lock connection (as a Postgres restart or a network cut would), twice in a row.
      for (let i = 0; i < 2; i++) {
        const holders = [...(await locksByHolder()).keys()];
        expect(holders.length).toBeGreaterThan(0);
        await site.pg.query('SELECT pg_terminate_backend($1)', [holders[0]]);
        await new Promise((r) => setTimeout(r, 300));
      }
      await publishing;
      await waitFor(() => allShardsServed(2), {
        timeoutMs: 30_000,
        intervalMs: 100,
        description: `both replicas holding shards again\n${tail()}`,
      });
      await expectFoldedInOrder('locklost', ROUNDS);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(most).toBe(1);
    const lost =
      [...procs.values()]
        .map((p) => p.output.join(''))
        .join('')
        .match(/shard lock lost/g)?.length ?? 0;
    expect(lost).toBeGreaterThan(0);
  });

  it('a replica whose shard was taken behind its back (epoch moved on, lock still believed held) stops consuming it at once: nothing dead-lettered', async () => {
    // What a lock connection lost without the replica hearing of it leaves: another holder advanced the
    // shard's epoch, and every batch of the old holder is refused by the fence. Before, those batches
    // went back to the same consumer until the queue's delivery limit dead-lettered them (seen in CI).
    for (const name of ['a', 'b'] as const) {
      const p = procs.get(name)?.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) start(name);
    }
    await waitFor(() => allShardsServed(2), { timeoutMs: 30_000, description: 'two replicas holding shards' });
    const deadBefore = await deadLettered();
    const givenBackBefore = await givenBack();
    const staleBefore = await shardQueueCounter('fleetwatch_bus_stale_settlements_total');
    const { rows: taken } = await site.pg.query<{ shard: number }>(
      `UPDATE aggregator_shard_epochs SET epoch = epoch + 1, holder = 'someone-else', taken_at = now()
       WHERE shard < $1 RETURNING shard`,
      [OBSERVATION_SHARDS],
    );
    expect(taken.length).toBe(OBSERVATION_SHARDS);
    const ROUNDS = 6;
    await publishRounds('stolen', 0, ROUNDS);
    await expectFoldedInOrder('stolen', ROUNDS);
    expect(await deadLettered()).toBe(deadBefore);
    // The refused batches went back while their consumer's channel was still open (settled, not returned by its
    // close): only then can a give-back near the delivery limit become a fresh copy instead of a dead letter.
    expect(await givenBack()).toBeGreaterThan(givenBackBefore);
    expect(await shardQueueCounter('fleetwatch_bus_stale_settlements_total')).toBe(staleBefore);
    const output = [...procs.values()].map((p) => p.output.join('')).join('');
    expect(output).toMatch(/its epoch moved on/);
    await waitFor(() => allShardsServed(2), {
      timeoutMs: 30_000,
      description: `both replicas holding shards again\n${tail()}`,
    });
  });
});
