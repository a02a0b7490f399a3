import {
  closeSqlPool,
  createSqlPool,
  runInSqlTransaction,
  ShardEpochsRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { ShardFence } from './shard-fence';

// Fencing tokens against real Postgres: the next holder's take waits for a commit of the old
// holder already under way, and every later commit of the old holder sees itself superseded —
// the gap an advisory lock leaves open when its connection dies while a batch is in flight.
let isolated: IsolatedDatabase;
let pool: SqlPool;
beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pool = createSqlPool(isolated.databaseUrl, { max: 6 });
});
afterAll(async () => {
  if (pool) await closeSqlPool(pool);
  await isolated?.dispose();
});

const fenceOf = () => new ShardFence(new ShardEpochsRepository(pool));

describe('ShardFence', () => {
  it('a lane never taken, or forgotten, is superseded without asking the database', async () => {
    const a = fenceOf();
    await runInSqlTransaction(pool, async (tx) => {
      expect([...(await a.superseded(tx, [0, 'legacy']))]).toEqual([0, 'legacy']);
    });
    await a.take(0, 'a');
    a.forget(0);
    await runInSqlTransaction(pool, async (tx) => expect([...(await a.superseded(tx, [0]))]).toEqual([0]));
  });

  it('the new holder waits for the old holder’s commit in flight; the old holder’s next commit is refused', async () => {
    const a = fenceOf();
    const b = fenceOf();
    await a.take(3, 'replica-a');
    await a.take(4, 'replica-a');

    // A commit of A is under way (it checked its epochs and holds them share-locked) when B takes shard 3.
    let releaseA!: () => void;
    const aMayCommit = new Promise<void>((r) => (releaseA = r));
    let aChecked!: () => void;
    const aHasChecked = new Promise<void>((r) => (aChecked = r));
    const events: string[] = [];
    const commitA = runInSqlTransaction(pool, async (tx) => {
      expect((await a.superseded(tx, [3, 4])).size).toBe(0);
      aChecked();
      await aMayCommit;
      events.push('a committed');
    });
    await aHasChecked;
    const takeB = b.take(3, 'replica-b').then(() => events.push('b took 3'));
    await new Promise((r) => setTimeout(r, 300));
    // B is still waiting: A's commit, already fenced in, lands first.
    expect(events).toEqual([]);
    releaseA();
    await commitA;
    await takeB;
    expect(events).toEqual(['a committed', 'b took 3']);

    // From now on A may not commit for shard 3 — still for shard 4, which nobody took from it.
    await runInSqlTransaction(pool, async (tx) => {
      expect([...(await a.superseded(tx, [3, 4]))]).toEqual([3]);
      expect((await b.superseded(tx, [3])).size).toBe(0);
    });
  });

  it('an old holder checking while the new one takes over sees the new epoch once it may go on', async () => {
    const a = fenceOf();
    const b = fenceOf();
    await a.take(5, 'replica-a');
    // B's take is under way (row locked, not committed) while A checks: A waits for it, then sees itself superseded.
    const client = await (pool as unknown as { connect(): Promise<import('pg').PoolClient> }).connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `UPDATE aggregator_shard_epochs SET epoch = epoch + 1, holder = 'replica-b' WHERE shard = 5 RETURNING epoch`,
      );
      const checking = runInSqlTransaction(pool, (tx) => a.superseded(tx, [5]));
      await new Promise((r) => setTimeout(r, 200));
      await client.query('COMMIT');
      expect([...(await checking)]).toEqual([5]);
    } finally {
      client.release();
    }
    void b;
  });
});
