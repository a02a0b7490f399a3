import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { applyObservation, type Deadline, type TargetSnapshot } from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, runInSqlTransaction, sqlExecute, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { TargetStatesRepository } from './target-states.repository';

// The durable deadlines the sweeper expires (target_location_states.deadline_at), on a real database.
let isolated: IsolatedDatabase;
let db: SqlPool;
let states: TargetStatesRepository;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  db = createSqlPool(isolated.databaseUrl, { max: 2 });
  states = new TargetStatesRepository(db);
});
afterAll(async () => {
  if (db) await closeSqlPool(db);
  await isolated?.dispose();
});

const policy = { downQuorumPct: 100 };
const stale = (at: number): Deadline => ({ at, expireTo: TargetStatus.Stale, reason: 'no update' });

function target(id: string, locations: Array<[string, Deadline | null]>): TargetSnapshot {
  let t: TargetSnapshot | undefined;
  for (const [location, deadline] of locations) {
    t = applyObservation(
      t,
      {
        targetId: id,
        kind: TargetKind.Instance,
        name: id,
        location,
        at: 1000,
        status: TargetStatus.Up,
        reason: 'update',
        deadline,
      },
      policy,
    ).target;
  }
  return t as TargetSnapshot;
}

describe('TargetStatesRepository deadlines', () => {
  beforeAll(async () => {
    await runInSqlTransaction(db, (tx) =>
      states.saveMany(tx, [
        target('instance:a', [
          ['eu', stale(5000)],
          ['us', stale(3000)],
        ]),
        target('instance:b', [['eu', stale(3000)]]),
        target('instance:c', [['eu', stale(9000)]]),
        target('instance:d', [['eu', null]]),
      ]),
    );
    // A location row whose target row is gone: never returned as due (nothing could expire it).
    await sqlExecute(
      db,
      "INSERT INTO target_location_states (target_id, location, status, observed_at, last_seen, deadline_at, expire_to) VALUES ('instance:orphan', 'eu', 'UP', now(), now(), to_timestamp(1), 'STALE')",
    );
  });

  it('dueDeadlines: at or before now, earliest first, then by target and location, bounded', async () => {
    expect(await states.dueDeadlines(2999, 10)).toEqual([]);
    expect(await states.dueDeadlines(5000, 10)).toEqual([
      { targetId: 'instance:a', location: 'us', at: 3000 },
      { targetId: 'instance:b', location: 'eu', at: 3000 },
      { targetId: 'instance:a', location: 'eu', at: 5000 },
    ]);
    expect(await states.dueDeadlines(1e13, 2)).toEqual([
      { targetId: 'instance:a', location: 'us', at: 3000 },
      { targetId: 'instance:b', location: 'eu', at: 3000 },
    ]);
  });

  it('a saved state without the deadline is no longer due', async () => {
    const [b] = await states.findMany(['instance:b']);
    await runInSqlTransaction(db, (tx) =>
      states.saveMany(tx, [], [{ ...b, locations: { eu: { ...b.locations.eu, deadline: null } } }]),
    );
    expect((await states.dueDeadlines(5000, 10)).map((d) => d.targetId)).toEqual(['instance:a', 'instance:a']);
  });

  it('deadlinesPage walks every deadline in (target, location) order; countDeadlines counts them', async () => {
    const first = await states.deadlinesPage(null, 2);
    expect(first.map((d) => `${d.targetId}/${d.location}`)).toEqual(['instance:a/eu', 'instance:a/us']);
    const rest = await states.deadlinesPage(first[1], 10);
    expect(rest.map((d) => `${d.targetId}/${d.location}`)).toEqual(['instance:c/eu', 'instance:orphan/eu']);
    expect(await states.countDeadlines()).toBe(4);
  });

  it('the due query is a range scan of the deadline index', async () => {
    await sqlExecute(db, 'ANALYZE target_location_states');
    const plan = await runInSqlTransaction(db, async (tx) => {
      await sqlExecute(tx, 'SET LOCAL enable_seqscan = off');
      return sqlQuery<{ 'QUERY PLAN': string }>(
        tx,
        'EXPLAIN SELECT target_id FROM target_location_states WHERE deadline_at <= now() ORDER BY deadline_at LIMIT 10',
      );
    });
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('target_location_states_deadline_at_idx');
  });
});
