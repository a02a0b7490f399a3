import { randomUUID } from 'node:crypto';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { AlertEvaluationReaderRepository } from './alert-evaluation-reader.repository';

// The figure behind `latency_p95_ms` rule conditions (issue 18): the continuous p95 of a check's result
// latencies since a moment, every location together, against the real check_results table.

let db: IsolatedDatabase;
let pool: SqlPool;
let repo: AlertEvaluationReaderRepository;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 2 });
  repo = new AlertEvaluationReaderRepository(pool);
});
afterAll(async () => {
  await closeSqlPool(pool);
  await db?.dispose();
});

async function result(checkId: string, location: string, latencyMs: number | null, at: number): Promise<void> {
  await sqlQuery(
    pool,
    `INSERT INTO check_results (message_id, check_id, target_id, location, ok, latency_ms, occurred_at)
     VALUES ($1, $2, $3, $4, true, $5, to_timestamp($6::float8 / 1000))`,
    [randomUUID(), checkId, `check:${checkId}`, location, latencyMs, at],
  );
}

describe('AlertEvaluationReaderRepository.latencyP95', () => {
  it("is the continuous p95 of the window's latencies per check, all locations together", async () => {
    const now = Date.now();
    // a: 1..100 ms over two locations → p95 (continuous) = 95.05; an older result outside the window is left out.
    for (let ms = 1; ms <= 100; ms++) await result('p95-a', ms % 2 ? 'lab-1' : 'lab-2', ms, now - 10_000);
    await result('p95-a', 'lab-1', 100_000, now - 600_000);
    // b: results without a latency (a failed connect) do not count; one with 40 ms → 40.
    await result('p95-b', 'lab-1', null, now - 5_000);
    await result('p95-b', 'lab-1', 40, now - 5_000);
    // c: only results before the window → left out of the answer.
    await result('p95-c', 'lab-1', 7, now - 600_000);

    const p95 = await repo.latencyP95(['check:p95-a', 'check:p95-b', 'check:p95-c', 'check:none'], now - 60_000);
    expect([...p95.keys()].sort()).toEqual(['check:p95-a', 'check:p95-b']);
    expect(p95.get('check:p95-a')).toBeCloseTo(95.05, 6);
    expect(p95.get('check:p95-b')).toBe(40);
    expect(await repo.latencyP95([], now)).toEqual(new Map());
  });

  it("gives each check its own window when asked with one since per check (a window scaled to the check's interval)", async () => {
    const now = Date.now();
    // An hourly check: a slow result 40 min ago and a fast one now; a check run every 30 s: the same two.
    await result('w-hourly', 'lab-1', 900, now - 40 * 60_000);
    await result('w-hourly', 'lab-1', 100, now - 1_000);
    await result('w-fast', 'lab-1', 900, now - 40 * 60_000);
    await result('w-fast', 'lab-1', 100, now - 1_000);
    const p95 = await repo.latencyP95(['check:w-hourly', 'check:w-fast'], [now - 2 * 3_600_000, now - 5 * 60_000]);
    expect(p95.get('check:w-hourly')).toBeCloseTo(100 + 0.95 * 800, 6); // both results
    expect(p95.get('check:w-fast')).toBe(100); // the slow one is out of its 5 min
    await expect(repo.latencyP95(['check:w-fast'], [now, now])).rejects.toThrow('one since per target');
  });
});

describe('AlertEvaluationReaderRepository.latencyP95, the rows it reads', () => {
  interface PlanNode {
    'Node Type': string;
    'Relation Name'?: string;
    'Actual Rows': number;
    'Actual Loops': number;
    Plans?: PlanNode[];
  }
  const scansOf = (n: PlanNode): PlanNode[] => [
    ...(n['Relation Name'] === 'check_results' ? [n] : []),
    ...(n.Plans ?? []).flatMap(scansOf),
  ];

  // Every check a rule selects (a rule on every check: the usual shape), most run every 30 s (a 5 min window), a few
  // hourly (2 h 5 s), over hours of results. With each check's window in a join to unnest(ids, sinces) the planner
  // could not see how far back a window goes and read the whole table (a parallel seq scan: with the raw retention's
  // days of results, every 15 s); each window read off the (target_id, occurred_at) index, only its rows are read.
  it("reads each check's window off the index, not the whole table", async () => {
    const now = Date.now();
    await sqlQuery(
      pool,
      `INSERT INTO check_results (message_id, check_id, target_id, location, ok, latency_ms, occurred_at)
       SELECT gen_random_uuid(), 'scan-' || c, 'check:scan-' || c, 'lab-1', true, 10 + s % 7,
              to_timestamp($1::float8 / 1000) - make_interval(secs => s * 30)
       FROM generate_series(1, 300) c, generate_series(0, 599) s`,
      [now],
    );
    await sqlQuery(pool, 'ANALYZE check_results');
    const ids = Array.from({ length: 300 }, (_, i) => `check:scan-${i + 1}`);
    const sinces = ids.map((_, i) => (i < 290 ? now - 5 * 60_000 : now - 2 * 3_600_000 - 5_000));
    const inWindows = 290 * 11 + 10 * 241; // a result every 30 s from now back: 11 in 5 min (both ends), 241 in 2 h 5 s

    const sent: { text: string; values: unknown[] }[] = [];
    const pg = pool as unknown as { query: (text: string, values: unknown[]) => Promise<unknown> }; // a pg Pool
    const query = pg.query.bind(pg);
    const spy = jest.spyOn(pg, 'query').mockImplementation((text, values) => {
      sent.push({ text, values });
      return query(text, values);
    });
    let p95: Map<string, number>;
    try {
      p95 = await repo.latencyP95(ids, sinces);
    } finally {
      spy.mockRestore();
    }
    expect(p95.size).toBe(300);
    expect(sent).toHaveLength(1);
    const [plan] = await sqlQuery<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
      pool,
      `EXPLAIN (ANALYZE, FORMAT JSON) ${sent[0].text}`,
      sent[0].values,
    );
    const scans = scansOf(plan['QUERY PLAN'][0].Plan);
    expect(scans.map((n) => n['Node Type'])).not.toContain('Seq Scan');
    // (A parallel node's rows are a per-worker mean, rounded: a row or two either way.)
    const read = scans.reduce((sum, n) => sum + n['Actual Rows'] * n['Actual Loops'], 0);
    expect(Math.abs(read - inWindows)).toBeLessThanOrEqual(3);
  });
});
