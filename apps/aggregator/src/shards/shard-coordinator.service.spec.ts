import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import type { Logger } from 'pino';
import type { AggregatorConfig } from '../config';
import type { LiveStateBoot } from '../live/live-state.boot';
import type { ProjectionQueue } from '../live/projection.queue';
import { LEGACY_SHARD, type ObservationsHandler } from '../observations/observations.handler';
import type { LaneKey, ObservationsService } from '../observations/observations.service';
import { SerialLane } from '../status/serial-lane';
import { ownerOf } from './assignment';
import { SHARD_LOCK_NAMESPACE, type ShardBackends, type ShardLocks, type ShardRegistry } from './shard-backends';
import { ShardCoordinator } from './shard-coordinator.service';
import type { ShardFence } from './shard-fence';

/** Every shard the coordinator shares: 0..OBSERVATION_SHARDS-1 and the legacy pseudo-shard. */
const ALL = Array.from({ length: OBSERVATION_SHARDS + 1 }, (_, s) => s);
const ME = 'me';
const OTHER = 'other';
const T0 = 1_000_000;
const SHARDS = { checkIntervalMs: 1000, orphanGraceMs: 2000, replicaTtlMs: 5000, minHoldMs: 5000 };

const laneOf = (shard: number): LaneKey => (shard === LEGACY_SHARD ? 'legacy' : shard);

interface Gate {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

function gate(): Gate {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every background continuation (the scheduled starts, the lanes) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** Everything the fakes were asked, in order ("tryLock 3", "fence 3", "start 3", ...). */
type Log = string[];

/** The first lock session's backend pid; every reconnection after a loss gets the next one. */
const FIRST_PID = 4242;

/**
 * The shard advisory locks: `others` are held by other replicas' sessions; `lose` drops the connection.
 * Like AdvisoryLockSet, a lost session has no pid, and the next query (tryLock, locked) connects again with
 * a new backend pid.
 */
class FakeLocks implements ShardLocks {
  readonly mine = new Set<number>();
  readonly others = new Set<number>();
  /** The session ended right after granting a lock: `sessionPid` reads undefined though `held` says otherwise. */
  sessionGone = false;
  /** Every unlock asked for, held or not (the log names only those that freed a lock). */
  readonly unlocks: number[] = [];
  lockedFails: Error | undefined;
  private pid: number | undefined = FIRST_PID;
  private nextPid = FIRST_PID + 1;
  lockedGate: Gate | undefined;

  constructor(
    private readonly log: Log,
    private readonly onLost: (reason: string) => void,
  ) {}

  get held(): ReadonlySet<number> {
    return this.mine;
  }

  get sessionPid(): number | undefined {
    return this.sessionGone ? undefined : this.pid;
  }

  /** What AdvisoryLockSet's queries do first: connect again if the session was lost (a new backend pid). */
  private connect(): void {
    this.pid ??= this.nextPid++;
  }

  async tryLock(n: number): Promise<boolean> {
    this.log.push(`tryLock ${n}`);
    this.connect();
    if (this.mine.has(n)) return true;
    if (this.others.has(n)) return false;
    this.mine.add(n);
    return true;
  }

  /** Like AdvisoryLockSet: a lock not held (never taken, or gone with a lost session) is left alone, unlogged. */
  async unlock(n: number): Promise<void> {
    this.unlocks.push(n);
    if (!this.mine.has(n)) return;
    this.log.push(`unlock ${n}`);
    this.mine.delete(n);
  }

  async locked(): Promise<Set<number>> {
    if (this.lockedGate) await this.lockedGate.promise;
    if (this.lockedFails) throw this.lockedFails;
    this.connect();
    return new Set([...this.mine, ...this.others]);
  }

  async close(): Promise<void> {
    this.log.push('close');
    this.pid = undefined;
    this.mine.clear();
  }

  /** The lock connection is lost: every lock is gone with it (AdvisoryLockSet reports onLost once). */
  lose(reason: string): void {
    const had = this.mine.size > 0;
    this.pid = undefined;
    this.mine.clear();
    if (had) this.onLost(reason);
  }
}

class FakeRegistry implements ShardRegistry {
  /** Live replicas besides this one. */
  others: string[] = [];
  down = false;
  beats = 0;

  constructor(private readonly log: Log) {}

  async beat(id: string): Promise<string[]> {
    this.beats++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    return [...new Set([...this.others, id])].sort();
  }

  async leave(id: string): Promise<void> {
    this.log.push(`leave ${id}`);
  }
}

/** The consumers: which shards are being consumed; `stopGates`/`abortGates` hold a stop or an abort. */
class FakeHandler {
  readonly consuming = new Set<number>();
  readonly stopGates = new Map<number, Gate>();
  readonly abortGates = new Map<number, Gate>();
  /** Whether the lock was held and the fence advanced when each start came. */
  readonly starts: Array<{ shard: number; locked: boolean; fenced: boolean }> = [];

  constructor(
    private readonly log: Log,
    private readonly locks: () => FakeLocks,
    private readonly fence: FakeFence,
  ) {}

  get shards(): number[] {
    return [...this.consuming].sort((a, b) => a - b);
  }

  async start(shard: number): Promise<void> {
    this.log.push(`start ${shard}`);
    this.starts.push({ shard, locked: this.locks().held.has(shard), fenced: this.fence.epochs.has(shard) });
    this.consuming.add(shard);
  }

  async stop(shard: number): Promise<void> {
    this.log.push(`stop ${shard}`);
    await this.stopGates.get(shard)?.promise;
    this.consuming.delete(shard);
    this.log.push(`stopped ${shard}`);
  }

  async abort(shard: number): Promise<void> {
    this.log.push(`abort ${shard}`);
    this.consuming.delete(shard);
    await this.abortGates.get(shard)?.promise;
    this.log.push(`aborted ${shard}`);
  }
}

class FakeService {
  readonly idleGates = new Map<LaneKey, Gate>();

  constructor(private readonly log: Log) {}

  stop(): void {
    this.log.push('service stop');
  }

  async idle(lane: LaneKey): Promise<void> {
    this.log.push(`idle ${lane}`);
    await this.idleGates.get(lane)?.promise;
    this.log.push(`idle ${lane} done`);
  }
}

class FakeFence {
  /** Shards whose epoch this replica holds (advanced, not forgotten). */
  readonly epochs = new Set<number>();
  readonly takes: Array<{ shard: number; holder: string; lockedBy?: { namespace: number; pid: number } }> = [];
  readonly gates = new Map<number, Gate>();
  takenAway: ((shard: number) => void) | undefined;
  failFor = new Set<number>();

  constructor(private readonly log: Log) {}

  onTakenAway(listener: (shard: number) => void): void {
    this.takenAway = listener;
  }

  async take(shard: number, holder: string, lockedBy?: { namespace: number; pid: number }): Promise<void> {
    this.log.push(`fence ${shard}`);
    this.takes.push({ shard, holder, lockedBy });
    await this.gates.get(shard)?.promise;
    if (this.failFor.has(shard)) throw new Error('shard 3 is not locked by this session');
    this.epochs.add(shard);
  }

  forget(shard: number): void {
    this.log.push(`forget ${shard}`);
    this.epochs.delete(shard);
  }
}

/** The live-state repair run before a shard is consumed; `gates` hold one lane's next repair. */
class FakeBoot {
  readonly gates = new Map<LaneKey, Gate[]>();

  constructor(private readonly log: Log) {}

  forget(lane: LaneKey): void {
    this.log.push(`boot forget ${lane}`);
  }

  async ensureReady(lane: LaneKey): Promise<void> {
    this.log.push(`repair ${lane}`);
    await this.gates.get(lane)?.shift()?.promise;
  }
}

function setup() {
  const log: Log = [];
  const fence = new FakeFence(log);
  let locks!: FakeLocks;
  const handler = new FakeHandler(log, () => locks, fence);
  const service = new FakeService(log);
  const lane = new SerialLane();
  const boot = new FakeBoot(log);
  const projections = { drain: async () => void log.push('drain') };
  const registry = new FakeRegistry(log);
  const backends: ShardBackends = {
    registry,
    openLocks: (onLost) => (locks = new FakeLocks(log, onLost)),
  };
  const logger = { info: jest.fn(), warn: jest.fn(), error: jest.fn(), debug: jest.fn() };
  const config = { replicaId: ME, databaseUrl: 'postgres://unused', shards: SHARDS } as unknown as AggregatorConfig;
  const coordinator = new ShardCoordinator(
    handler as unknown as ObservationsHandler,
    service as unknown as ObservationsService,
    lane,
    boot as unknown as LiveStateBoot,
    projections as unknown as ProjectionQueue,
    fence as unknown as ShardFence,
    backends,
    config,
    logger as unknown as Logger,
  );
  return { coordinator, log, locks, registry, handler, service, fence, boot, logger };
}

type Setup = ReturnType<typeof setup>;

/** A round, then everything it started in the background. */
async function round(s: Setup, now: number): Promise<void> {
  await s.coordinator.check(now);
  await settle();
}

/** Position of `entry` in the log (after `from`); fails when it is missing. */
function at(log: Log, entry: string, from = 0): number {
  const i = log.indexOf(entry, from);
  if (i < 0) throw new Error(`"${entry}" not in the log: ${JSON.stringify(log.slice(from))}`);
  return i;
}

const count = (log: Log, entry: string) => log.filter((e) => e === entry).length;

const ownedBy = (who: string) => ALL.filter((s) => ownerOf(s, [ME, OTHER]) === who);

describe('ShardCoordinator', () => {
  it('the two replicas of these tests split the shards (a precondition of what follows)', () => {
    expect(ownedBy(ME).length).toBeGreaterThanOrEqual(2);
    expect(ownedBy(OTHER).length).toBeGreaterThanOrEqual(2);
  });

  describe('a lone replica', () => {
    it('takes every shard and the legacy pseudo-shard, each started only once its lock is held and its fence advanced', async () => {
      const s = setup();
      await round(s, T0);

      expect(s.coordinator.held).toEqual(ALL);
      expect([...s.locks.mine].sort((a, b) => a - b)).toEqual(ALL);
      expect(s.handler.shards).toEqual(ALL);
      expect(s.handler.starts).toEqual(ALL.map((shard) => ({ shard, locked: true, fenced: true })));
      for (const shard of ALL) {
        // lock → fence → repair of the shard's lane → consumer
        const lock = at(s.log, `tryLock ${shard}`);
        const fenced = at(s.log, `fence ${shard}`, lock);
        const repaired = at(s.log, `repair ${laneOf(shard)}`, fenced);
        at(s.log, `start ${shard}`, repaired);
      }
      // The legacy pseudo-shard's lane is 'legacy'; every fence advance is tied to the lock session.
      expect(s.log).toContain('repair legacy');
      expect(s.fence.takes).toEqual(
        ALL.map((shard) => ({ shard, holder: ME, lockedBy: { namespace: SHARD_LOCK_NAMESPACE, pid: FIRST_PID } })),
      );

      // A later round changes nothing.
      const before = s.log.length;
      await round(s, T0 + SHARDS.checkIntervalMs);
      expect(s.log.slice(before)).toEqual([]);
    });

    it('does not start a shard before its fence is advanced', async () => {
      const s = setup();
      const slow = gate();
      s.fence.gates.set(3, slow);
      const running = s.coordinator.check(T0);
      await settle();
      expect(s.log).toContain('fence 3');
      expect(s.log).not.toContain('start 3');
      expect(s.handler.shards).toEqual([0, 1, 2]);
      slow.resolve();
      await running;
      await settle();
      expect(s.handler.shards).toEqual(ALL);
    });

    it('a shard whose epoch cannot be advanced is not consumed, and its lock goes back', async () => {
      const s = setup();
      s.fence.failFor.add(3);
      await round(s, T0);
      expect(s.coordinator.held).toEqual(ALL.filter((x) => x !== 3));
      expect(s.log).not.toContain('start 3');
      expect(at(s.log, 'unlock 3')).toBeGreaterThan(at(s.log, 'forget 3'));
      expect(s.locks.mine.has(3)).toBe(false);
    });

    it('a shard whose lock went while its epoch advanced is not consumed', async () => {
      const s = setup();
      const slow = gate();
      s.fence.gates.set(3, slow);
      const running = s.coordinator.check(T0);
      await settle();
      s.locks.lose('connection reset');
      slow.resolve();
      await running;
      await settle();
      expect(s.log).not.toContain('start 3');
      expect(s.coordinator.held).not.toContain(3);
    });

    it('without a lock session (sessionPid gone) the fence is not advanced and the shard not consumed', async () => {
      const s = setup();
      s.locks.sessionGone = true;
      await round(s, T0);
      expect(s.fence.takes).toEqual([]);
      expect(s.coordinator.held).toEqual([]);
      expect(s.handler.starts).toEqual([]);
    });

    it('does not take a shard another replica holds the lock of', async () => {
      const s = setup();
      s.locks.others.add(2);
      await round(s, T0 + 60_000);
      expect(s.coordinator.held).toEqual(ALL.filter((x) => x !== 2));
      expect(s.log).not.toContain('tryLock 2');
    });
  });

  describe('a second live replica appears', () => {
    it('hands its shards over in order, once held minHoldMs: consumer stopped, lane idle, and only then the lock released', async () => {
      const s = setup();
      await round(s, T0);
      s.registry.others = [OTHER];
      const theirs = ownedBy(OTHER);
      const mine = ownedBy(ME);

      // Held for less than minHoldMs: nothing moves yet.
      let from = s.log.length;
      await round(s, T0 + SHARDS.minHoldMs - 1);
      expect(s.log.slice(from)).toEqual([]);

      // The first shard handed over waits for its lane to be idle: its lock stays ours meanwhile.
      const [first] = theirs;
      const idle = gate();
      s.service.idleGates.set(laneOf(first), idle);
      from = s.log.length;
      const running = s.coordinator.check(T0 + SHARDS.minHoldMs);
      await settle();
      expect(s.log.slice(from)).toEqual([`stop ${first}`, `stopped ${first}`, `idle ${laneOf(first)}`]);
      expect(s.locks.mine.has(first)).toBe(true);
      expect(s.coordinator.held).toContain(first);
      idle.resolve();
      await running;
      await settle();

      // Each of their shards in turn, the whole hand-over of one before the next begins.
      let prev = from;
      for (const shard of theirs) {
        const stop = at(s.log, `stop ${shard}`, prev);
        const stopped = at(s.log, `stopped ${shard}`, stop);
        const idleAsked = at(s.log, `idle ${laneOf(shard)}`, stopped);
        const idleDone = at(s.log, `idle ${laneOf(shard)} done`, idleAsked);
        const drained = at(s.log, 'drain', idleDone);
        const forgotten = at(s.log, `forget ${shard}`, drained);
        prev = at(s.log, `unlock ${shard}`, forgotten);
      }
      expect(s.coordinator.held).toEqual(mine);
      expect(s.handler.shards).toEqual(mine);
      expect([...s.locks.mine].sort((a, b) => a - b)).toEqual(mine);
      for (const shard of mine) expect(s.log.slice(from)).not.toContain(`stop ${shard}`);
    });

    it('never releases a lock before the consumer stopped (a slow stop holds the release)', async () => {
      const s = setup();
      await round(s, T0);
      s.registry.others = [OTHER];
      const [first] = ownedBy(OTHER);
      const stop = gate();
      s.handler.stopGates.set(first, stop);
      const running = s.coordinator.check(T0 + SHARDS.minHoldMs);
      await settle();
      expect(s.log).not.toContain(`idle ${laneOf(first)}`);
      expect(s.log).not.toContain(`unlock ${first}`);
      stop.resolve();
      await running;
      expect(at(s.log, `unlock ${first}`)).toBeGreaterThan(at(s.log, `idle ${laneOf(first)} done`));
    });

    it('drops the start of a shard handed over before its consumer started', async () => {
      const s = setup();
      s.registry.others = [OTHER];
      const [shard] = ownedBy(OTHER);
      // Free past the grace: taken although OTHER owns it; its repair is slow.
      await round(s, T0);
      const slow = gate();
      s.boot.gates.set(laneOf(shard), [slow]);
      await round(s, T0 + SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toContain(shard);
      expect(s.log).not.toContain(`start ${shard}`);
      // OTHER wants it: handed over (the lane's job queued behind the slow repair, so release it meanwhile).
      const running = s.coordinator.check(T0 + SHARDS.orphanGraceMs + SHARDS.minHoldMs);
      await settle();
      slow.resolve();
      await running;
      await settle();
      expect(s.log).toContain(`unlock ${shard}`);
      expect(s.log).not.toContain(`start ${shard}`);
      expect(s.handler.consuming.has(shard)).toBe(false);
    });
  });

  describe('free shards', () => {
    it('does not take a free shard planned for another live replica before the grace; takes it after', async () => {
      const s = setup();
      s.registry.others = [OTHER];
      const theirs = ownedBy(OTHER);
      await round(s, T0);
      expect(s.coordinator.held).toEqual(ownedBy(ME));
      await round(s, T0 + SHARDS.orphanGraceMs - 1);
      expect(s.coordinator.held).toEqual(ownedBy(ME));
      for (const shard of theirs) expect(s.log).not.toContain(`tryLock ${shard}`);

      await round(s, T0 + SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toEqual(ALL);
      for (const shard of theirs)
        at(s.log, `start ${shard}`, at(s.log, `fence ${shard}`, at(s.log, `tryLock ${shard}`)));
    });

    it('takes the shards of a replica that died after the grace (free since it died), and at once once it left the registry', async () => {
      const s = setup();
      s.registry.others = [OTHER];
      const theirs = ownedBy(OTHER);
      for (const shard of theirs) s.locks.others.add(shard);
      await round(s, T0);
      // Held by OTHER: never taken, however long.
      await round(s, T0 + 10 * SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toEqual(ownedBy(ME));

      // OTHER dies: its locks go with its connection, it is still in the registry (within its TTL).
      const died = T0 + 20 * SHARDS.orphanGraceMs;
      s.locks.others.clear();
      await round(s, died);
      await round(s, died + SHARDS.orphanGraceMs - 1);
      expect(s.coordinator.held).toEqual(ownedBy(ME));
      await round(s, died + SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toEqual(ALL);
    });

    it('takes a gone replica’s free shards at once (no grace: they are its own now)', async () => {
      const s = setup();
      s.registry.others = [OTHER];
      await round(s, T0);
      expect(s.coordinator.held).toEqual(ownedBy(ME));
      s.registry.others = [];
      await round(s, T0 + 1);
      expect(s.coordinator.held).toEqual(ALL);
    });
  });

  describe('lock loss', () => {
    it('aborts the consumption of every held shard at once, and re-takes them only through a fresh lock and fence advance', async () => {
      const s = setup();
      await round(s, T0);
      const from = s.log.length;

      expect(s.locks.sessionPid).toBe(FIRST_PID);
      s.locks.lose('lock query failed: connection reset');
      expect(s.locks.sessionPid).toBeUndefined();
      // Synchronously: no await between the loss and the aborts.
      expect(s.log.slice(from).filter((e) => e.startsWith('abort '))).toEqual(ALL.map((x) => `abort ${x}`));
      for (const shard of ALL) expect(s.fence.epochs.has(shard)).toBe(false);
      expect(s.coordinator.held).toEqual([]);
      await settle();
      expect(s.handler.shards).toEqual([]);

      const retake = s.log.length;
      await round(s, T0 + SHARDS.checkIntervalMs);
      expect(s.coordinator.held).toEqual(ALL);
      for (const shard of ALL) {
        const lock = at(s.log, `tryLock ${shard}`, retake);
        at(s.log, `start ${shard}`, at(s.log, `fence ${shard}`, lock));
        expect(s.fence.takes.filter((t) => t.shard === shard)).toHaveLength(2);
      }
      // The fresh advance is tied to the new lock session (the reconnection's backend pid), not the lost one's.
      expect(s.locks.sessionPid).toBe(FIRST_PID + 1);
      expect(s.fence.takes.slice(ALL.length)).toEqual(
        ALL.map((shard) => ({ shard, holder: ME, lockedBy: { namespace: SHARD_LOCK_NAMESPACE, pid: FIRST_PID + 1 } })),
      );
      expect(s.handler.starts.slice(ALL.length)).toEqual(ALL.map((shard) => ({ shard, locked: true, fenced: true })));
    });

    it('re-takes a shard only once its aborted consumer has stopped', async () => {
      const s = setup();
      await round(s, T0);
      const slow = gate();
      s.handler.abortGates.set(2, slow);
      s.locks.lose('connection reset');
      const running = s.coordinator.check(T0 + SHARDS.checkIntervalMs);
      await settle();
      expect(s.coordinator.held).toEqual([0, 1]);
      const from = s.log.length;
      expect(s.log).not.toContain('aborted 2');
      expect(s.log.filter((e) => e === 'tryLock 2')).toHaveLength(1);
      slow.resolve();
      await running;
      await settle();
      const aborted = at(s.log, 'aborted 2', from);
      at(s.log, 'start 2', at(s.log, 'fence 2', at(s.log, 'tryLock 2', aborted)));
      expect(s.coordinator.held).toEqual(ALL);
    });

    it('a lock the round finds no longer held (connection replaced) is dropped, its consumer aborted before it is locked again', async () => {
      const s = setup();
      await round(s, T0);
      // What AdvisoryLockSet.locked() does when its session no longer holds a lock it believed held: forgets it.
      s.locks.mine.delete(5);
      const from = s.log.length;
      await round(s, T0 + SHARDS.checkIntervalMs);
      const aborted = at(s.log, 'abort 5', from);
      at(s.log, 'start 5', at(s.log, 'fence 5', at(s.log, 'tryLock 5', aborted)));
      expect(s.coordinator.held).toEqual(ALL);
    });

    it('aborts a consumer running without its lock (the safety net)', async () => {
      const s = setup();
      s.locks.others.add(4);
      await round(s, T0);
      s.handler.consuming.add(4);
      await round(s, T0 + SHARDS.checkIntervalMs);
      expect(s.log).toContain('abort 4');
      expect(s.handler.consuming.has(4)).toBe(false);
    });

    it('another replica took a shard (its epoch moved on): consumption aborted at once, then the lock given up', async () => {
      const s = setup();
      await round(s, T0);
      const slow = gate();
      s.handler.abortGates.set(6, slow);
      const from = s.log.length;
      s.fence.takenAway?.(6);
      expect(s.log.slice(from)).toEqual(['forget 6', 'abort 6']);
      expect(s.coordinator.held).not.toContain(6);
      // The lock is still ours (by hand, or an older replica's advance): no round takes the shard meanwhile.
      await round(s, T0 + SHARDS.checkIntervalMs);
      expect(s.log.slice(from)).not.toContain('unlock 6');
      expect(s.log.slice(from)).not.toContain('tryLock 6');
      slow.resolve();
      await settle();
      expect(at(s.log, 'unlock 6', from)).toBeGreaterThan(at(s.log, 'aborted 6', from));
      // Free again: the next round takes it through a fresh lock and fence advance.
      const retake = s.log.length;
      await round(s, T0 + 2 * SHARDS.checkIntervalMs);
      at(s.log, 'start 6', at(s.log, 'fence 6', at(s.log, 'tryLock 6', retake)));
    });

    it('a lock loss and a fence refusal together: one abort, and no unlock of a lock already gone', async () => {
      const s = setup();
      await round(s, T0);
      const slow = gate();
      s.handler.abortGates.set(6, slow);
      const from = s.log.length;
      const unlocksFrom = s.locks.unlocks.length;
      s.locks.lose('connection reset');
      s.fence.takenAway?.(6);
      slow.resolve();
      await settle();
      expect(count(s.log.slice(from), 'abort 6')).toBe(1);
      // Not even asked for: after a reconnection the same number may be this replica's again.
      expect(s.locks.unlocks.slice(unlocksFrom)).not.toContain(6);
    });
  });

  it('drops a start scheduled by an older take of the shard (lost and taken again while its repair ran)', async () => {
    const s = setup();
    const slow = gate();
    s.boot.gates.set(4, [slow]);
    await round(s, T0);
    expect(s.log).not.toContain('start 4');

    s.locks.lose('connection reset');
    await round(s, T0 + SHARDS.checkIntervalMs);
    expect(s.fence.takes.filter((t) => t.shard === 4)).toHaveLength(2);
    const secondTake = s.log.lastIndexOf('fence 4');

    // The first take's repair ends now: its start must not run (the second take's repair comes after it in the lane).
    slow.resolve();
    await settle();
    expect(count(s.log, 'start 4')).toBe(1);
    const secondRepair = s.log.indexOf('repair 4', secondTake);
    expect(secondRepair).toBeGreaterThan(secondTake);
    expect(at(s.log, 'start 4')).toBeGreaterThan(secondRepair);
    expect(s.handler.consuming.has(4)).toBe(true);
  });

  describe('replica registry (Redis) down', () => {
    it('keeps the shards it holds, takes only shards free past the grace, and warns once', async () => {
      const s = setup();
      s.registry.others = [OTHER];
      const theirs = ownedBy(OTHER);
      for (const shard of theirs) s.locks.others.add(shard);
      await round(s, T0);
      expect(s.coordinator.held).toEqual(ownedBy(ME));

      s.registry.down = true;
      // OTHER dies: one of its shards' locks goes (the other stays held by, say, a replica that cannot beat either).
      const [freed, ...stillHeld] = theirs;
      s.locks.others.delete(freed);
      const from = s.log.length;
      const down = T0 + SHARDS.minHoldMs * 10;
      await round(s, down);
      await round(s, down + SHARDS.orphanGraceMs - 1);
      expect(s.log.slice(from)).toEqual([]);
      expect(s.coordinator.held).toEqual(ownedBy(ME));

      await round(s, down + SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toEqual([...ownedBy(ME), freed].sort((a, b) => a - b));
      for (const shard of stillHeld) expect(s.log).not.toContain(`tryLock ${shard}`);
      // Nothing it holds was handed over or stopped.
      expect(s.log.slice(from).filter((e) => /^(stop|abort|unlock) /.test(e))).toEqual([]);
      const warns = s.logger.warn.mock.calls.filter(([, msg]) =>
        String(msg).includes('replica registry (Redis) unreachable'),
      );
      expect(warns).toHaveLength(1);

      s.registry.down = false;
      await round(s, down + SHARDS.orphanGraceMs + 1);
      expect(s.logger.info).toHaveBeenCalledWith('replica registry reachable again');
    });

    it('a replica whose registry is down from the start takes nothing before the grace', async () => {
      const s = setup();
      s.registry.down = true;
      await round(s, T0);
      expect(s.coordinator.held).toEqual([]);
      await round(s, T0 + SHARDS.orphanGraceMs);
      expect(s.coordinator.held).toEqual(ALL);
    });
  });

  it('lock database unreachable: the round fails before beating in the registry, and the next one runs', async () => {
    const s = setup();
    s.locks.lockedFails = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    await expect(s.coordinator.check(T0)).rejects.toThrow('ECONNREFUSED');
    expect(s.registry.beats).toBe(0);
    expect(s.coordinator.held).toEqual([]);
    expect(s.logger.warn).toHaveBeenCalledWith(
      { err: 'connect ECONNREFUSED 127.0.0.1:5432' },
      'shard assignment round failed; retrying',
    );
    s.locks.lockedFails = undefined;
    await round(s, T0 + SHARDS.checkIntervalMs);
    expect(s.registry.beats).toBe(1);
    expect(s.coordinator.held).toEqual(ALL);
  });

  describe('stop (onModuleDestroy)', () => {
    it('leaves the registry, stops every consumer and waits for their lanes, and only then frees the locks', async () => {
      const s = setup();
      await round(s, T0);
      const slowStop = gate();
      const slowIdle = gate();
      s.handler.stopGates.set(3, slowStop);
      s.service.idleGates.set('legacy', slowIdle);
      const from = s.log.length;
      const stopping = s.coordinator.onModuleDestroy();
      await settle();
      expect(s.log).not.toContain('close');
      slowStop.resolve();
      await settle();
      expect(s.log).not.toContain('close');
      slowIdle.resolve();
      await stopping;

      const log = s.log.slice(from);
      const close = at(log, 'close');
      expect(log.indexOf(`leave ${ME}`)).toBeLessThan(log.indexOf('stop 0'));
      expect(log.indexOf('service stop')).toBeLessThan(log.indexOf('stop 0'));
      for (const shard of ALL) {
        const stopped = at(log, `stopped ${shard}`);
        expect(at(log, `idle ${laneOf(shard)} done`)).toBeGreaterThan(stopped);
        expect(close).toBeGreaterThan(at(log, `idle ${laneOf(shard)} done`));
      }
      expect(close).toBeGreaterThan(at(log, 'drain'));
      expect(s.handler.shards).toEqual([]);
      expect(s.locks.mine.size).toBe(0);

      // No round after the stop.
      await round(s, T0 + 60_000);
      expect(s.log.slice(from + log.length)).toEqual([]);
    });

    it('waits for the running round, and drops a start still pending', async () => {
      const s = setup();
      const slowRepair = gate();
      s.boot.gates.set(2, [slowRepair]);
      await round(s, T0);
      const slowRound = gate();
      s.locks.lockedGate = slowRound;
      const running = s.coordinator.check(T0 + SHARDS.checkIntervalMs);
      await settle();
      const stopping = s.coordinator.onModuleDestroy();
      await settle();
      expect(s.log).not.toContain(`leave ${ME}`);
      slowRound.resolve();
      await running;
      slowRepair.resolve();
      await stopping;
      await settle();
      expect(s.log).toContain('close');
      expect(s.log).not.toContain('start 2');
    });

    it('a round queued when the stop begins does not run', async () => {
      const s = setup();
      const queued = s.coordinator.check(T0);
      await s.coordinator.onModuleDestroy();
      await queued;
      expect(s.registry.beats).toBe(0);
      expect(s.log).toEqual([`leave ${ME}`, 'service stop', 'drain', 'close']);
    });
  });

  it('schedules its rounds, and the watchdog names the step of a round slower than 10 s', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate'] });
    try {
      const s = setup();
      const slow = gate();
      s.locks.lockedGate = slow;
      s.coordinator.onApplicationBootstrap();
      await jest.advanceTimersByTimeAsync(9_999);
      expect(s.logger.warn).not.toHaveBeenCalled();
      await jest.advanceTimersByTimeAsync(1);
      expect(s.logger.warn).toHaveBeenCalledWith({ step: 'reading locks' }, 'shard assignment round slow (over 10 s)');
      slow.resolve();
      s.locks.lockedGate = undefined;
      await jest.advanceTimersByTimeAsync(0);
      await settle();
      expect(s.coordinator.held).toEqual(ALL);
      expect(s.registry.beats).toBe(1);
      await jest.advanceTimersByTimeAsync(SHARDS.checkIntervalMs);
      await settle();
      expect(s.registry.beats).toBe(2);
      await jest.advanceTimersByTimeAsync(SHARDS.checkIntervalMs);
      await settle();
      expect(s.registry.beats).toBe(3);
      await s.coordinator.onModuleDestroy();
      await jest.advanceTimersByTimeAsync(10 * SHARDS.checkIntervalMs);
      await settle();
      expect(s.registry.beats).toBe(3);
    } finally {
      jest.useRealTimers();
    }
  });
});
