import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { TargetStatus } from '@fleetwatch/contracts';
import { MINUTE_MS, rollupOf, type Rollup } from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient, type DatabaseClient } from '../database';
import { HistoryRepository } from '../history/history.repository';
import { closeSqlPool, createSqlPool, runInSqlTransaction, type SqlPool } from '../sql/sql-pool';
import { HistoryReadRepository, type HistoryRollup } from './history-read.repository';

// The rollups as stored (the aggregator's recompute from raw rows) and as read (the gateway's, merged into steps for
// long windows) against a naive reference: the domain's rollupOf over the raw samples themselves. Samples are check
// results (with or without a latency), pushed updates (ok = UP or PARTIAL; PAUSED, UNKNOWN and STALE are no sample)
// and heartbeat pings (ok = success; `start` is no sample), anywhere in a minute, its first and last millisecond
// included.

let isolated: IsolatedDatabase;
let pool: SqlPool;
let prisma: DatabaseClient;
let history: HistoryRepository;
let read: HistoryReadRepository;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pool = createSqlPool(isolated.databaseUrl, { max: 2 });
  prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 2 });
  history = new HistoryRepository(pool);
  read = new HistoryReadRepository(prisma);
});
afterAll(async () => {
  await prisma?.$disconnect();
  if (pool) await closeSqlPool(pool);
  await isolated?.dispose();
});

type Sample =
  | { kind: 'result'; ok: boolean; latencyMs: number | null }
  | { kind: 'update'; status: TargetStatus }
  | { kind: 'ping'; signal: 'success' | 'fail' | 'start' };

interface Placed {
  location: string;
  /** Minutes after the base minute. */
  minute: number;
  /** Ms into the minute. */
  offset: number;
  sample: Sample;
}

const sampleArb: fc.Arbitrary<Sample> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('result' as const),
      ok: fc.boolean(),
      latencyMs: fc.option(
        fc.oneof(fc.integer({ min: 0, max: 60_000 }), fc.double({ min: 0, max: 60_000, noNaN: true })),
        { freq: 5 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      status: fc.constantFrom(...Object.values(TargetStatus)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('ping' as const),
      signal: fc.constantFrom('success' as const, 'fail' as const, 'start' as const),
    }),
  },
);

const placedArb: fc.Arbitrary<Placed> = fc.record({
  location: fc.constantFrom('eu', 'us'),
  minute: fc.integer({ min: 0, max: 9 }),
  offset: fc.oneof(fc.constantFrom(0, 1, 59_999), fc.integer({ min: 0, max: 59_999 })),
  sample: sampleArb,
});

/** What the rollups count a sample as (null: not a sample). */
function asCounted(s: Sample): { ok: boolean; latencyMs: number | null } | null {
  if (s.kind === 'result') return { ok: s.ok, latencyMs: s.latencyMs };
  // As a status page counts status: PARTIAL is up, PAUSED (maintenance), UNKNOWN and STALE (no data) no sample.
  if (s.kind === 'update')
    return s.status === TargetStatus.Up || s.status === TargetStatus.Partial || s.status === TargetStatus.Down
      ? { ok: s.status !== TargetStatus.Down, latencyMs: null }
      : null;
  return s.signal === 'start' ? null : { ok: s.signal === 'success', latencyMs: null };
}

async function store(targetId: string, base: number, placed: readonly Placed[]): Promise<void> {
  await runInSqlTransaction(pool, async (tx) => {
    const at = (p: Placed) => base + p.minute * MINUTE_MS + p.offset;
    await history.insertCheckResults(
      tx,
      placed.flatMap((p) =>
        p.sample.kind === 'result'
          ? [
              {
                messageId: randomUUID(),
                checkId: targetId,
                targetId,
                location: p.location,
                ok: p.sample.ok,
                latencyMs: p.sample.latencyMs,
                failureReason: null,
                metadata: null,
                occurredAt: at(p),
              },
            ]
          : [],
      ),
    );
    await history.insertStatusUpdates(
      tx,
      placed.flatMap((p) =>
        p.sample.kind === 'update'
          ? [
              {
                messageId: randomUUID(),
                updateId: randomUUID(),
                targetId,
                instanceId: targetId,
                kind: 'container',
                lifecycleStatus: 'running',
                status: p.sample.status,
                source: null,
                location: p.location,
                occurredAt: at(p),
                receivedAt: at(p),
                labels: null,
                message: null,
                metadata: null,
              },
            ]
          : [],
      ),
    );
    await history.insertHeartbeatPings(
      tx,
      placed.flatMap((p) =>
        p.sample.kind === 'ping'
          ? [
              {
                messageId: randomUUID(),
                monitorId: targetId,
                targetId,
                location: p.location,
                signal: p.sample.signal,
                runId: null,
                receivedAt: at(p),
                body: null,
              },
            ]
          : [],
      ),
    );
  });
  while ((await history.recomputeDirtyRollups()) > 0);
}

/** The reference: rollupOf over the samples of each (location, step), keyed `location@stepStart`. */
function reference(base: number, placed: readonly Placed[], stepMinutes: number) {
  const stepMs = stepMinutes * MINUTE_MS;
  const groups = new Map<string, { ok: boolean; latencyMs: number | null }[]>();
  const minutes = new Map<string, Map<number, { ok: boolean; latencyMs: number | null }[]>>();
  for (const p of placed) {
    const counted = asCounted(p.sample);
    if (!counted) continue;
    const bucket = base + p.minute * MINUTE_MS;
    const key = `${p.location}@${Math.floor(bucket / stepMs) * stepMs}`;
    groups.set(key, [...(groups.get(key) ?? []), counted]);
    const perMinute = minutes.get(key) ?? new Map<number, { ok: boolean; latencyMs: number | null }[]>();
    perMinute.set(bucket, [...(perMinute.get(bucket) ?? []), counted]);
    minutes.set(key, perMinute);
  }
  return new Map(
    [...groups].map(([key, samples]) => {
      const p95s = [...(minutes.get(key) as Map<number, unknown[]>).values()]
        .map((m) => rollupOf(m as { ok: boolean; latencyMs: number | null }[]).p95LatencyMs)
        .filter((v): v is number => v !== null);
      return [key, { whole: rollupOf(samples), greatestMinuteP95: p95s.length ? Math.max(...p95s) : null }];
    }),
  );
}

function expectMatches(
  got: HistoryRollup,
  want: { whole: Rollup; greatestMinuteP95: number | null },
  exactP95: boolean,
) {
  const { whole } = want;
  expect([got.count, got.okCount, got.minLatencyMs, got.maxLatencyMs]).toEqual([
    whole.count,
    whole.okCount,
    whole.minLatencyMs,
    whole.maxLatencyMs,
  ]);
  if (whole.avgLatencyMs === null) expect(got.avgLatencyMs).toBeNull();
  else
    expect(Math.abs((got.avgLatencyMs as number) - whole.avgLatencyMs)).toBeLessThanOrEqual(
      1e-9 * (1 + whole.avgLatencyMs),
    );
  if (exactP95) expect(got.p95LatencyMs).toBe(whole.p95LatencyMs);
  else {
    // Merged: the greatest minute p95, never below the step's own p95.
    expect(got.p95LatencyMs).toBe(want.greatestMinuteP95);
    if (whole.p95LatencyMs !== null) expect(got.p95LatencyMs as number).toBeGreaterThanOrEqual(whole.p95LatencyMs);
  }
}

describe('1-minute rollups against rollupOf over the raw samples', () => {
  it('each minute as stored and read (step 1), and merged into steps of 2–7 minutes', async () => {
    // Minute 0 of the base sits 10–20 min back, so every minute written is closed (recomputed at once).
    const base = Math.floor((Date.now() - 20 * MINUTE_MS) / (7 * MINUTE_MS)) * 7 * MINUTE_MS;
    await fc.assert(
      fc.asyncProperty(
        fc.array(placedArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 2, max: 7 }),
        async (placed, stepMinutes) => {
          const targetId = `check:prop-${randomUUID()}`;
          await store(targetId, base, placed);
          const window = { targetId, since: new Date(base - 7 * MINUTE_MS), until: new Date(base + 20 * MINUTE_MS) };
          for (const step of [1, stepMinutes]) {
            const want = reference(base, placed, step);
            const got = await read.rollups(window, step);
            expect(got.map((r) => `${r.location}@${r.bucket.getTime()}`).sort()).toEqual([...want.keys()].sort());
            // Oldest first, then by location.
            const order = got.map((r) => [r.bucket.getTime(), r.location] as const);
            expect(order).toEqual([...order].sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1])));
            for (const r of got) {
              const w = want.get(`${r.location}@${r.bucket.getTime()}`);
              if (!w) throw new Error('no reference');
              expectMatches(r, w, step === 1);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a location filter reads only that location, and a window reads the buckets that start in it', async () => {
    const targetId = `check:prop-${randomUUID()}`;
    const base = Math.floor((Date.now() - 30 * MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
    const placed: Placed[] = [0, 1, 2, 3].flatMap((minute) =>
      ['eu', 'us'].map((location) => ({
        location,
        minute,
        offset: 59_999,
        sample: { kind: 'result' as const, ok: true, latencyMs: minute },
      })),
    );
    await store(targetId, base, placed);
    const got = await read.rollups({
      targetId,
      since: new Date(base + MINUTE_MS),
      until: new Date(base + 2 * MINUTE_MS),
      location: 'us',
    });
    expect(got.map((r) => [r.location, r.bucket.getTime() - base])).toEqual([
      ['us', MINUTE_MS],
      ['us', 2 * MINUTE_MS],
    ]);
  });
});

describe('latencies the contract accepts at the edge of float8', () => {
  it('a minute whose mean latency is below the smallest float8 (Number.MIN_VALUE, 0, 0) is rolled up and read as 0', async () => {
    // latencyMs is any finite number in [0, a day]: Number.MIN_VALUE included. Its mean with zeros is a numeric
    // Postgres refuses to turn into float8 (22003) — failing the rollup run of every target with a mark in it.
    const base = Math.floor((Date.now() - 30 * MINUTE_MS) / (2 * MINUTE_MS)) * 2 * MINUTE_MS;
    const tiny = `check:tiny-${randomUUID()}`;
    const other = `check:other-${randomUUID()}`;
    const result = (latencyMs: number, minute: number, offset: number): Placed => ({
      location: 'eu',
      minute,
      offset,
      sample: { kind: 'result', ok: true, latencyMs },
    });
    await runInSqlTransaction(pool, async (tx) => {
      const rows = (targetId: string, placed: Placed[]) =>
        placed.map((p) => ({
          messageId: randomUUID(),
          checkId: targetId,
          targetId,
          location: p.location,
          ok: true,
          latencyMs: p.sample.kind === 'result' ? p.sample.latencyMs : null,
          failureReason: null,
          metadata: null,
          occurredAt: base + p.minute * MINUTE_MS + p.offset,
        }));
      await history.insertCheckResults(tx, [
        ...rows(tiny, [
          result(Number.MIN_VALUE, 0, 0),
          result(0, 0, 1),
          result(0, 0, 2),
          result(Number.MIN_VALUE, 1, 0),
        ]),
        ...rows(other, [result(12, 0, 0)]),
      ]);
    });
    // The other target's minute, marked in the same run, is rolled up too.
    while ((await history.recomputeDirtyRollups()) > 0);
    const window = (targetId: string) => ({
      targetId,
      since: new Date(base - MINUTE_MS),
      until: new Date(base + 3 * MINUTE_MS),
    });
    expect((await read.rollups(window(other))).map((r) => r.avgLatencyMs)).toEqual([12]);
    const minutes = await read.rollups(window(tiny));
    expect(minutes.map((r) => [r.count, r.avgLatencyMs, r.maxLatencyMs])).toEqual([
      [3, 0, Number.MIN_VALUE],
      [1, Number.MIN_VALUE, Number.MIN_VALUE],
    ]);
    // Merged into a 2-minute step: (0 × 3 + MIN_VALUE × 1) / 4, below float8 again.
    const merged = await read.rollups(window(tiny), 2);
    expect(merged.map((r) => [r.count, r.avgLatencyMs])).toEqual([[4, 0]]);
  });
});
