import {
  AdvisoryLockSet,
  closeSqlPool,
  createSqlPool,
  runInSqlTransaction,
  ShardEpochsRepository,
  ShardNotLockedError,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import type { PoolClient } from 'pg';
import { claimKey, ShardFence } from './shard-fence';

// Fencing tokens against real Postgres: the next holder's take waits for a commit of the old
// holder already under way, and every later commit of the old holder sees itself superseded —
// the gap an advisory lock leaves open when its connection dies while a batch is in flight.
// A batch is checked against the epoch it arrived under, so one from before a loss cannot pass
// after the shard came back to the same replica.
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
const claim = (fence: ShardFence, lane: number | 'legacy') => ({ lane, epoch: fence.epochOf(lane) });
const check = (fence: ShardFence, claims: Array<{ lane: number | 'legacy'; epoch: number | undefined }>) =>
  runInSqlTransaction(pool, async (tx) => [...(await fence.superseded(tx, claims))]);

describe('ShardFence', () => {
  it('a batch that arrived while its lane was not held, or after it was forgotten, is superseded', async () => {
    const a = fenceOf();
    expect(await check(a, [claim(a, 0), claim(a, 'legacy')])).toEqual([
      claimKey(0, undefined),
      claimKey('legacy', undefined),
    ]);
    await a.take(0, 'a');
    const held = claim(a, 0);
    expect(await check(a, [held])).toEqual([]);
    a.forget(0);
    expect(await check(a, [claim(a, 0)])).toEqual([claimKey(0, undefined)]);
  });

  it('the new holder waits for the old holder’s commit in flight; the old holder’s next commit is refused', async () => {
    const a = fenceOf();
    const b = fenceOf();
    await a.take(3, 'replica-a');
    await a.take(4, 'replica-a');
    const claims = [claim(a, 3), claim(a, 4)];

    // A commit of A is under way (it checked its epochs and holds them share-locked) when B takes shard 3.
    let releaseA!: () => void;
    const aMayCommit = new Promise<void>((r) => (releaseA = r));
    let aChecked!: () => void;
    const aHasChecked = new Promise<void>((r) => (aChecked = r));
    const events: string[] = [];
    const commitA = runInSqlTransaction(pool, async (tx) => {
      expect((await a.superseded(tx, claims)).size).toBe(0);
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
    expect(await check(a, claims)).toEqual([claimKey(3, claims[0].epoch)]);
    expect(await check(b, [claim(b, 3)])).toEqual([]);
  });

  it('a batch from before a loss stays refused after the shard came back to the same replica', async () => {
    const a = fenceOf();
    const b = fenceOf();
    await a.take(6, 'replica-a');
    const old = claim(a, 6); // a batch waiting for A's committer
    a.forget(6); // A's lock connection died
    await b.take(6, 'replica-b'); // B took the shard and committed newer observations
    b.forget(6);
    await a.take(6, 'replica-a'); // …and handed it back to A
    expect(await check(a, [old, claim(a, 6)])).toEqual([claimKey(6, old.epoch)]);
  });

  it('an old holder checking while the new one takes over sees the new epoch once it may go on', async () => {
    const a = fenceOf();
    await a.take(5, 'replica-a');
    const held = claim(a, 5);
    // A take is under way (row locked, not committed) while A checks: A waits for it, then sees itself superseded.
    const client = await (pool as unknown as { connect(): Promise<PoolClient> }).connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE aggregator_shard_epochs SET epoch = epoch + 1, holder = 'replica-b' WHERE shard = 5`);
      const checking = check(a, [held]);
      await new Promise((r) => setTimeout(r, 200));
      await client.query('COMMIT');
      expect(await checking).toEqual([claimKey(5, held.epoch)]);
    } finally {
      client.release();
    }
  });

  it('a take gives up after its lock timeout while an old holder’s commit hangs', async () => {
    const a = fenceOf();
    await a.take(7, 'replica-a');
    const repository = new ShardEpochsRepository(pool);
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    let checked!: () => void;
    const hasChecked = new Promise<void>((r) => (checked = r));
    const hanging = runInSqlTransaction(pool, async (tx) => {
      await a.superseded(tx, [claim(a, 7)]);
      checked();
      await hold;
    });
    await hasChecked;
    const started = Date.now();
    await expect(repository.advance(7, 'replica-b', 300)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    release();
    await hanging;
    expect(await check(a, [claim(a, 7)])).toEqual([]); // the failed take changed nothing
  });

  it('a holder whose epoch another took is told (onTakenAway) once, and forgets it; a batch from before a loss tells nothing', async () => {
    const a = fenceOf();
    const b = fenceOf();
    const told: number[] = [];
    a.onTakenAway((shard) => told.push(shard));
    await a.take(1, 'replica-a');
    const old = claim(a, 1);
    a.forget(1);
    await a.take(1, 'replica-a'); // lost and taken back: `old` is from before the loss
    expect(await check(a, [old])).toEqual([claimKey(1, old.epoch)]);
    expect(told).toEqual([]);
    const held = claim(a, 1);
    await b.take(1, 'replica-b'); // behind a's back: a still believes it holds shard 1
    expect(await check(a, [held, held])).toEqual([claimKey(1, held.epoch)]);
    expect(told).toEqual([1]);
    expect(a.epochOf(1)).toBeUndefined();
    expect(await check(a, [held])).toEqual([claimKey(1, held.epoch)]);
    expect(told).toEqual([1]);
  });

  it('a take with the lock session named advances only while that session holds the shard`s lock', async () => {
    const NAMESPACE = 0x7e570002;
    const locks = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      onLost: () => undefined,
    });
    const other = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      onLost: () => undefined,
    });
    const a = fenceOf();
    try {
      await locks.locked(); // connected
      const pid = locks.sessionPid;
      expect(typeof pid).toBe('number');
      const lockedBy = { namespace: NAMESPACE, pid: pid as number };
      await expect(a.take(2, 'replica-a', lockedBy)).rejects.toBeInstanceOf(ShardNotLockedError);
      expect(a.epochOf(2)).toBeUndefined();
      // A session named without its pid is refused, not taken for "no check".
      await expect(
        a.take(2, 'replica-a', { namespace: NAMESPACE, pid: undefined as unknown as number }),
      ).rejects.toBeInstanceOf(RangeError);
      expect(await other.tryLock(2)).toBe(true); // held, but by another session
      await expect(a.take(2, 'replica-a', lockedBy)).rejects.toBeInstanceOf(ShardNotLockedError);
      await other.unlock(2);
      expect(await locks.tryLock(2)).toBe(true);
      await a.take(2, 'replica-a', lockedBy);
      const epoch = a.epochOf(2);
      expect(typeof epoch).toBe('number');
      await a.take(2, 'replica-a', lockedBy);
      expect(a.epochOf(2)).toBe((epoch as number) + 1);
    } finally {
      await Promise.all([locks.close(), other.close()]);
    }
  });
});
