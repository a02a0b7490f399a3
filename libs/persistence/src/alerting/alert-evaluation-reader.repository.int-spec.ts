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
