import fc from 'fast-check';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, runInSqlTransaction, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { AlertStatesRepository, escapeKey, storedKey, type StoredAlertState } from './alert-states.repository';

// The evaluator's state (alerts and notification groups), keyed by the engine's keys, on a real database. A group's
// key holds its labels (a rule may have 16 of 1,024 characters): one past the btree's 2,704 bytes failed the
// evaluator's transaction at every tick, and every rule's alerts with it.

let db: IsolatedDatabase;
let pool: SqlPool;
let repo: AlertStatesRepository;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 2 });
  repo = new AlertStatesRepository(pool);
});
afterAll(async () => {
  await closeSqlPool(pool);
  await db?.dispose();
});

const CHANNEL = '0191d7a2-0000-7000-8000-0000000000c1';
const RULE = '0191d7a2-0000-7000-8000-0000000000r1';
const state = (key: string, labels: Record<string, string>): StoredAlertState => ({
  key,
  ruleId: RULE,
  targetId: 'instance:web-1',
  fingerprint: 'f',
  state: 'firing',
  labels,
  value: 1,
  activeAt: 1000,
  firedAt: 2000,
  resolvedAt: null,
  lastSentAt: null,
});
/** Keys as the engine builds them: an id, NUL, then labels (any text: NUL, %, emoji, lone surrogates). */
const engineKey = (id: string) =>
  fc.string({ unit: 'binary', maxLength: 4000, size: 'large' }).map((labels) => `${id}\u0000${labels}`);

describe('AlertStatesRepository keys', () => {
  it('a key of any length and text is stored, updated and deleted by the same key; distinct keys stay distinct', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(engineKey(CHANNEL), { minLength: 1, maxLength: 4 }), async (keys) => {
        await runInSqlTransaction(pool, (tx) =>
          repo.saveGroups(
            tx,
            keys.map((key, i) => ({ key, channelId: CHANNEL, group: { i, key } })),
            [],
          ),
        );
        // Saved again (an update of each): one row a key.
        await runInSqlTransaction(pool, (tx) =>
          repo.saveGroups(
            tx,
            keys.map((key, i) => ({ key, channelId: CHANNEL, group: { i: i + 100, key } })),
            [],
          ),
        );
        const groups = await repo.loadGroups<{ i: number; key: string }>();
        expect(groups.map((g) => g.key).sort()).toEqual([...keys].map((k) => JSON.parse(JSON.stringify(k))).sort());
        expect(groups.every((g) => g.i >= 100)).toBe(true);
        await runInSqlTransaction(pool, (tx) => repo.saveGroups(tx, [], keys));
        expect(await repo.loadGroups()).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  it('a group of a rule with 16 labels of 1,024 characters, grouped by all of them, and a long alert key', async () => {
    const labels = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`l${i}`, 'é'.repeat(1024)]));
    const groupKey = `${CHANNEL}\u0000${JSON.stringify(Object.entries(labels))}`;
    const alertKey = `${RULE}\u0000${JSON.stringify(labels)}`;
    await runInSqlTransaction(pool, async (tx) => {
      await repo.saveGroups(tx, [{ key: groupKey, channelId: CHANNEL, group: { key: groupKey } }], []);
      await repo.saveStates(tx, [state(alertKey, labels)], []);
    });
    expect(await repo.loadGroups()).toEqual([{ key: groupKey }]);
    expect((await repo.loadStates<StoredAlertState>()).map((s) => s.key)).toEqual([alertKey]);
    const rows = await sqlQuery<{ alert_key: string }>(pool, 'SELECT alert_key FROM alert_states');
    expect(rows[0].alert_key).toBe(storedKey(alertKey));
    expect(rows[0].alert_key).toMatch(/^sha256:[0-9a-f]{64}$/);
    await runInSqlTransaction(pool, async (tx) => {
      await repo.saveGroups(tx, [], [groupKey]);
      await repo.saveStates(tx, [], [alertKey]);
    });
    expect(await repo.loadGroups()).toEqual([]);
    expect(await repo.loadStates()).toEqual([]);
  });

  it('keys that differ only in a lone surrogate are two rows (Postgres would read both as U+FFFD)', async () => {
    const keys = [`${CHANNEL}\u0000\uD800`, `${CHANNEL}\u0000\uD801`, `${CHANNEL}\u0000\uFFFD`];
    await runInSqlTransaction(pool, (tx) =>
      repo.saveGroups(
        tx,
        keys.map((key) => ({ key, channelId: CHANNEL, group: { key } })),
        [],
      ),
    );
    expect((await repo.loadGroups()).length).toBe(3);
    await runInSqlTransaction(pool, (tx) => repo.saveGroups(tx, [], keys));
    expect(await repo.loadGroups()).toEqual([]);
  });

  it('a key up to 2,048 bytes is stored as itself (escaped), as every version before stored it', () => {
    expect(storedKey(`${CHANNEL}\u0000[["a","50%"]]`)).toBe(`${CHANNEL}%00[["a","50%25"]]`);
    const long = `${CHANNEL}\u0000${'x'.repeat(2048 - CHANNEL.length - 3)}`;
    expect(Buffer.byteLength(escapeKey(long))).toBe(2048);
    expect(storedKey(long)).toBe(escapeKey(long));
    expect(storedKey(`${long}x`)).toMatch(/^sha256:/);
  });

  it('a row the version before wrote under the old form of its key is replaced by the next write, not left beside', async () => {
    const keys = [`${RULE}\u0000${'l'.repeat(2500)}`, `${RULE}\u0000\uD800`];
    for (const key of keys)
      await sqlQuery(
        pool,
        `INSERT INTO alert_states (alert_key, rule_id, target_id, fingerprint, state, labels, active_at, state_json)
         VALUES ($1, $2, 'instance:web-1', 'f', 'firing', '{}', now(), $3)`,
        [escapeKey(key), RULE, JSON.stringify(state(key, {}))],
      );
    const rows = async () => (await sqlQuery<{ n: string }>(pool, 'SELECT count(*) AS n FROM alert_states'))[0].n;
    expect(await rows()).toBe('2');
    // Saved again (the alert goes on): one row each.
    await runInSqlTransaction(pool, (tx) =>
      repo.saveStates(
        tx,
        keys.map((k) => ({ ...state(k, {}), state: 'resolved' })),
        [],
      ),
    );
    expect(await rows()).toBe('2');
    expect((await repo.loadStates<StoredAlertState>()).map((s) => s.state)).toEqual(['resolved', 'resolved']);
    // Deleted (the alert is gone): no row left of either form.
    await runInSqlTransaction(pool, (tx) => repo.saveStates(tx, [], keys));
    expect(await rows()).toBe('0');
  });

  it('two rows of one alert (replicas of two versions taking the lease in turn): the newest is read last', async () => {
    const key = `${RULE}\u0000${'n'.repeat(2500)}`;
    const insert = (alertKey: string, st: string, offset: string) =>
      sqlQuery(
        pool,
        `INSERT INTO alert_states (alert_key, rule_id, target_id, fingerprint, state, labels, active_at, state_json,
           updated_at)
         VALUES ($1, $2, 'instance:web-1', 'f', $3, '{}', now(), $4, now() + $5::interval)`,
        [alertKey, RULE, st, JSON.stringify({ ...state(key, {}), state: st }), offset],
      );
    // Stored in the other order than written: the older replica's row (the old form) is the newer one.
    await insert(escapeKey(key), 'firing', '1 second');
    await insert(storedKey(key), 'resolved', '0 seconds');
    const loaded = await repo.loadStates<StoredAlertState>();
    expect(loaded.map((s) => s.state)).toEqual(['resolved', 'firing']);
    expect(new Map(loaded.map((s) => [s.key, s.state])).get(key)).toBe('firing');
    await runInSqlTransaction(pool, (tx) => repo.saveStates(tx, [], [key]));
    expect(await repo.loadStates()).toEqual([]);
  });
});
