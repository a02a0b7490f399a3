import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { applyObservation, configuredPingWindowOf, type Deadline, type TargetSnapshot } from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import {
  closeSqlPool,
  createSqlPool,
  runInSqlTransaction,
  sqlExecute,
  sqlQuery,
  type SqlPool,
  type SqlTransaction,
} from '../sql/sql-pool';
import { FIND_MANY, LOCK_MANY, TargetStatesRepository } from './target-states.repository';

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

describe('TargetStatesRepository.saveMany: an instance removed and back in one commit', () => {
  it("the earlier life's locations the new one does not report go (their deadlines would make it STALE again)", async () => {
    const id = 'instance:default/web-0';
    const before = target(id, [
      ['eu', stale(9000)],
      ['us', stale(8000)],
    ]);
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [before]));
    const obs = (at: number, lifecycle: string) => ({
      targetId: id,
      kind: TargetKind.Instance,
      name: id,
      location: 'eu',
      at,
      status: lifecycle === 'removed' ? TargetStatus.Unknown : TargetStatus.Up,
      reason: lifecycle,
      lifecycle,
      deadline: lifecycle === 'removed' ? undefined : stale(20_000),
    });
    // One batch: removed at both locations, then re-created under its name, reporting from eu only.
    const gone = applyObservation(before, obs(2000, 'removed'), policy).target;
    const removed = applyObservation(gone, { ...obs(2000, 'removed'), location: 'us' }, policy).target;
    expect(removed.deletedAt).toBe(2000);
    const back = applyObservation(removed, obs(3000, 'running'), policy).target;
    expect(Object.keys(back.locations)).toEqual(['eu']);
    await runInSqlTransaction(db, async (tx) => {
      const held = await states.lockMany(tx, [id]);
      await states.saveMany(tx, [back], [], held);
    });
    const [saved] = await states.findMany([id]);
    expect(Object.keys(saved.locations)).toEqual(['eu']);
    expect((await states.dueDeadlines(1e13, 100)).filter((d) => d.targetId === id)).toEqual([
      { targetId: id, location: 'eu', at: 20_000 },
    ]);
    // Reported from eu and us again, then removed at us only: us's row goes, eu stays.
    const two = applyObservation(saved, { ...obs(4000, 'running'), location: 'us' }, policy).target;
    await runInSqlTransaction(db, async (tx) => states.saveMany(tx, [two], [], await states.lockMany(tx, [id])));
    const stored = (await states.findMany([id]))[0];
    const left = applyObservation(stored, { ...obs(5000, 'removed'), location: 'us' }, policy).target;
    expect(Object.keys(left.locations)).toEqual(['eu']);
    await runInSqlTransaction(db, async (tx) => states.saveMany(tx, [left], [], await states.lockMany(tx, [id])));
    expect(Object.keys((await states.findMany([id]))[0].locations)).toEqual(['eu']);
  });
});

describe("TargetStatesRepository: a check's configured locations", () => {
  it('are stored and read back as the last write says (null: not said; empty: every location)', async () => {
    const id = 'check:0191d7a2-0000-7000-8000-00000000c0c0';
    const check = { ...target(id, [['eu', stale(9000)]]), kind: TargetKind.Check };
    for (const configured of [undefined, ['eu', 'us'], [], ['eu'], null]) {
      const t = configured === undefined ? check : { ...check, configuredLocations: configured };
      await runInSqlTransaction(db, async (tx) => states.saveMany(tx, [t], [], await states.lockMany(tx, [id])));
      const [saved] = await states.findMany([id]);
      expect(saved.configuredLocations).toEqual(configured ?? null);
    }
  });
});

describe("TargetStatesRepository: a heartbeat monitor's configured ping window", () => {
  it('is stored and read back with the config version that said it (62 days: over 32 bits of ms)', async () => {
    const id = 'check:0191d7a2-0000-7000-8000-00000000beef';
    const check: TargetSnapshot = { ...target(id, [['push', null]]), kind: TargetKind.Check, configVersion: 7 };
    for (const [ms, version] of [
      [undefined, undefined],
      [62 * 86_400_000, 7],
      [70_000, 8],
      [null, null],
    ] as const) {
      const t = ms === undefined ? check : { ...check, pingWindowMs: ms, pingWindowVersion: version };
      await runInSqlTransaction(db, async (tx) => states.saveMany(tx, [t], [], await states.lockMany(tx, [id])));
      const [saved] = await states.findMany([id]);
      expect([saved.pingWindowMs, saved.pingWindowVersion]).toEqual([ms ?? null, version ?? null]);
    }
  });

  it('is no longer used once a replica of the version before applies a newer lifecycle (it writes config_version, not the window)', async () => {
    const id = 'check:0191d7a2-0000-7000-8000-00000000fade';
    const check: TargetSnapshot = {
      ...target(id, [['push', null]]),
      kind: TargetKind.Check,
      configVersion: 3,
      pingWindowMs: 86_400_000,
      pingWindowVersion: 3,
    };
    await runInSqlTransaction(db, async (tx) => states.saveMany(tx, [check], [], await states.lockMany(tx, [id])));
    expect(configuredPingWindowOf((await states.findMany([id]))[0])).toBe(86_400_000);
    // What that replica's upsert does to the row: its columns only (the window stays, said by version 3).
    await sqlExecute(db, 'UPDATE target_states SET config_version = 4 WHERE target_id = $1', [id]);
    const [after] = await states.findMany([id]);
    expect([after.pingWindowMs, after.pingWindowVersion, after.configVersion]).toEqual([86_400_000, 3, 4]);
    expect(configuredPingWindowOf(after)).toBeUndefined();
  });
});

describe('TargetStatesRepository.lockMany at fleet scale', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => `instance:fleet-${String(i).padStart(5, '0')}`);
  const planOf = async (sql: string, batch: string[]): Promise<string> => {
    const rows = await sqlQuery<{ 'QUERY PLAN': string }>(db, `EXPLAIN ${sql}`, [batch]);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  };

  beforeAll(async () => {
    const all = ids.map((id) => target(id, [['eu', stale(9000)]]));
    for (let i = 0; i < all.length; i += 1000)
      await runInSqlTransaction(db, (tx) => states.saveMany(tx, all.slice(i, i + 1000)));
    await sqlExecute(db, 'ANALYZE target_states');
    await sqlExecute(db, 'ANALYZE target_location_states');
  });

  it('reads a commit-sized batch by primary key, never scanning the whole fleet', async () => {
    const batch = ids.filter((_, i) => i % 37 === 0).slice(0, 120);
    // What lockMany and findMany ran, counted by Postgres on their connection (the counts not yet flushed to the
    // shared statistics: read before and after). Before the fix: a hash join over sequential scans of both tables.
    const counts = (tx: SqlTransaction) =>
      sqlQuery<{ relname: string; seq_scan: number; idx_scan: number }>(
        tx,
        `SELECT relname, seq_scan::float8 AS seq_scan, idx_scan::float8 AS idx_scan FROM pg_stat_xact_user_tables
          WHERE relname IN ('target_states', 'target_location_states') ORDER BY relname`,
      );
    const [before, after] = await runInSqlTransaction(db, async (tx) => {
      const start = await counts(tx);
      expect((await states.lockMany(tx, batch)).size).toBe(batch.length);
      return [start, await counts(tx)];
    });
    const delta = after.map((r, i) => [r.relname, r.seq_scan - before[i].seq_scan, r.idx_scan - before[i].idx_scan]);
    expect(delta).toEqual([
      ['target_location_states', 0, batch.length],
      ['target_states', 0, 2 * batch.length],
    ]);
    expect(await states.findMany(batch)).toHaveLength(batch.length);
    // findMany's plan, as Postgres runs it (the same statement as lockMany's read).
    expect(await planOf(FIND_MANY.text, batch)).not.toContain('Seq Scan');
    expect(await planOf(LOCK_MANY.text, batch)).not.toContain('Seq Scan');
  });

  it("locks in the database's order of the ids (its collation), as saveMany and older versions do", async () => {
    // Two ids whose order differs between JavaScript's sort (UTF-16 units) and this database's collation: a
    // character above the surrogates against one beyond the BMP (C/byte order), or the cases (language collations).
    const candidates = [
      ['instance:order-\u{1F600}', 'instance:order-\uFF01'],
      ['instance:order-B', 'instance:order-a'],
    ];
    let pair: string[] = [];
    let inDb: string[] = [];
    for (const c of candidates) {
      const sorted = [...c].sort();
      const db1 = (
        await sqlQuery<{ id: string }>(db, 'SELECT id FROM unnest($1::text[]) AS u(id) ORDER BY id', [sorted])
      ).map((r) => r.id);
      if (db1[0] !== sorted[0]) {
        pair = sorted;
        inDb = db1;
        break;
      }
    }
    expect(inDb).toEqual([...pair].reverse());
    expect(pair).toHaveLength(2);
    await runInSqlTransaction(db, (tx) =>
      states.saveMany(
        tx,
        pair.map((id) => target(id, [['eu', null]])),
      ),
    );
    const [dbFirst, dbSecond] = inDb;
    const holderPool = createSqlPool(isolated.databaseUrl, { max: 1 });
    const probePool = createSqlPool(isolated.databaseUrl, { max: 1 });
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    try {
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((r) => (locked = r));
      // The holder has the id the database orders second: lockMany takes the first, then waits for the second.
      const holder = runInSqlTransaction(holderPool, async (tx) => {
        await sqlQuery(tx, 'SELECT 1 FROM target_states WHERE target_id = $1 FOR UPDATE', [dbSecond]);
        locked();
        await held;
      });
      await isLocked;
      const locking = runInSqlTransaction(db, (tx) => states.lockMany(tx, pair));
      // Refused outside the transaction: one whose statement failed commits nothing, and says so (runInSqlTransaction).
      const firstTaken = async () =>
        runInSqlTransaction(probePool, (tx) =>
          sqlQuery(tx, 'SELECT 1 FROM target_states WHERE target_id = $1 FOR UPDATE NOWAIT', [dbFirst]),
        ).then(
          () => false,
          () => true,
        );
      let taken = false;
      for (let i = 0; i < 50 && !taken; i++) {
        taken = await firstTaken();
        if (!taken) await new Promise((r) => setTimeout(r, 20));
      }
      expect(taken).toBe(true);
      release();
      await holder;
      expect([...(await locking).keys()].sort()).toEqual(pair);
    } finally {
      release();
      await closeSqlPool(holderPool);
      await closeSqlPool(probePool);
    }
  });

  it('returns each existing target with its locations, in id order, and skips unknown ids', async () => {
    const batch = [ids[4999], 'instance:nope', ids[7], ids[7], ids[300]];
    const got = await runInSqlTransaction(db, (tx) => states.lockMany(tx, batch));
    expect([...got.keys()]).toEqual([ids[7], ids[300], ids[4999]]);
    expect(Object.keys(got.get(ids[300])?.locations ?? {})).toEqual(['eu']);
    expect(got.get(ids[300])?.locations.eu?.deadline?.at).toBe(9000);
    const found = await states.findMany(batch);
    expect(found.map((t) => t.id)).toEqual([ids[7], ids[300], ids[4999]]);
    expect(found[1]).toEqual(got.get(ids[300]));
  });

  it('holds the row locks until the transaction ends', async () => {
    const other = createSqlPool(isolated.databaseUrl, { max: 1 });
    try {
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => (release = r));
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = runInSqlTransaction(db, async (tx) => {
        await states.lockMany(tx, [ids[11], ids[12]]);
        locked();
        await held;
      });
      await isLocked;
      const probe = await runInSqlTransaction(other, async (tx) => {
        await sqlExecute(tx, "SET LOCAL lock_timeout = '200ms'");
        await sqlQuery(tx, 'SELECT 1 FROM target_states WHERE target_id = $1 FOR UPDATE', [ids[12]]);
        return 'acquired';
      }).catch((e: unknown) => String((e as Error).message));
      expect(probe).toMatch(/lock timeout/);
      release();
      await holder;
      const after = await runInSqlTransaction(other, (tx) =>
        sqlQuery(tx, 'SELECT 1 FROM target_states WHERE target_id = $1 FOR UPDATE NOWAIT', [ids[12]]),
      );
      expect(after).toHaveLength(1);
    } finally {
      await closeSqlPool(other);
    }
  });

  it('a lockMany that waited for a writer reads the locations that writer committed', async () => {
    // One statement reads every row as of its start: the locations a lock holder writes while we wait (its
    // target row unchanged, so not even re-read on the lock) would come back as they were, and the fold would
    // write them back over the holder's.
    const other = createSqlPool(isolated.databaseUrl, { max: 1 });
    try {
      const id = ids[21];
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => (release = r));
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = runInSqlTransaction(db, async (tx) => {
        const t = (await states.lockMany(tx, [id])).get(id) as TargetSnapshot;
        locked();
        await held;
        const eu = t.locations.eu as TargetSnapshot['locations'][string];
        await states.saveMany(tx, [], [{ ...t, locations: { eu: { ...eu, deadline: stale(12_000) }, us: eu } }]);
      });
      await isLocked;
      const waiter = runInSqlTransaction(other, (tx) => states.lockMany(tx, [ids[20], id]));
      const waiting = async (): Promise<boolean> => {
        const [row] = await sqlQuery<{ n: number }>(
          db,
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        return (row?.n ?? 0) > 0;
      };
      for (let i = 0; i < 200 && !(await waiting()); i++) await new Promise((r) => setTimeout(r, 10));
      expect(await waiting()).toBe(true);
      release();
      await holder;
      const got = (await waiter).get(id);
      expect(Object.keys(got?.locations ?? {}).sort()).toEqual(['eu', 'us']);
      expect(got?.locations.eu?.deadline?.at).toBe(12_000);
      expect((await waiter).get(ids[20])?.locations.eu?.deadline?.at).toBe(9000);
    } finally {
      await closeSqlPool(other);
    }
  });
});
