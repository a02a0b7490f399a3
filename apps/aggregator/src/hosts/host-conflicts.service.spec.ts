import { register } from 'prom-client';
import type { Logger } from 'pino';
import type { HostConflictWrite, LiveStateStore } from '@fleetwatch/live-state';
import {
  CONFLICT_MARK_TTL_MS,
  CONFLICT_SWEEP_EVERY_MS,
  HostConflicts,
  type ReporterSighting,
} from './host-conflicts.service';

const I = 5_000;
const T0 = Date.parse('2026-12-07T00:00:00Z');

const logger = { warn: jest.fn(), info: jest.fn() } as unknown as Logger;

async function gauge(): Promise<number> {
  const m = await register.getSingleMetric('fleetwatch_aggregator_host_conflicts')?.get();
  return m?.values[0]?.value ?? NaN;
}

/** Live state as the writes reach it: every pipeline written (or refused while `failing`). */
function fakeLive() {
  const state = { failing: false, pipelines: [] as HostConflictWrite[][], ttls: [] as number[] };
  const live = {
    writeHostConflicts: (writes: readonly HostConflictWrite[], _owner: string, ttlMs: number) => {
      if (state.failing) return Promise.reject(new Error('OOM command not allowed'));
      state.pipelines.push([...writes]);
      state.ttls.push(ttlMs);
      return Promise.resolve(writes.length);
    },
  } as unknown as LiveStateStore;
  const ops = () => state.pipelines.flat().map((w) => `${w.op} ${w.hostId}`);
  return { state, live, ops };
}

/** Lets the queued writes land (they are written after the commit, never awaited by it). */
const settle = (c: HostConflicts) => c.flush();

/** Commits of two reporters interleaving on one host, one sample each per interval (each commit heard at its time). */
function interleave(c: HostConflicts, hostId: string, n: number, from = T0): number {
  let now = from;
  for (let i = 0; i < n; i++)
    for (const [reporter, offset] of [
      ['a', 0],
      ['b', 2_000],
    ] as const) {
      now = from + i * I + offset + 100;
      const s: ReporterSighting = { hostId, reporter, intervalMs: I, sampledAt: from + i * I + offset };
      c.fold([s], [], now);
    }
  return now;
}

/** One reporter alone, one sample per interval, from `from` for `n` intervals. */
function alone(c: HostConflicts, hostId: string, n: number, from: number): number {
  let now = from;
  for (let i = 0; i < n; i++) {
    now = from + i * I + 100;
    c.fold([{ hostId, reporter: 'a', intervalMs: I, sampledAt: from + i * I }], [], now);
  }
  return now;
}

describe('HostConflicts', () => {
  afterEach(() => jest.useRealTimers());

  it('the gauge forgets a marked host gone quiet even when no commit follows (a replica whose shards moved away)', async () => {
    const { live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 12);
    expect(c.count).toBe(1);
    jest.useFakeTimers({ now: last + I });
    expect(await gauge()).toBe(1);
    // No sample of any host since: the host's collectors stopped, or its shard went to another replica (which counts it
    // there). Well past ten intervals and the sweep period, this replica must not count it any more.
    jest.setSystemTime(last + 30 * I + 61_000);
    expect(await gauge()).toBe(0);
    expect(c.count).toBe(0);
    // …and its mark leaves live state (this replica's only: another one's raised since is not touched — the store).
    jest.useRealTimers();
    await settle(c);
    expect(ops()).toEqual(['raise clone-host', 'clear clone-host']);
  });

  it('writes a mark when it is raised, not with every sample; clears it once one reporter alone goes on', async () => {
    const { state, live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 20);
    await settle(c);
    expect(ops()).toEqual(['raise clone-host']);
    const raised = state.pipelines[0][0];
    expect(raised).toEqual({ hostId: 'clone-host', op: 'raise', mark: { reporters: 2, since: expect.any(Number) } });
    expect(state.ttls[0]).toBe(CONFLICT_MARK_TTL_MS);
    alone(c, 'clone-host', 24, last + I);
    await settle(c);
    expect(c.count).toBe(0);
    expect(ops()).toEqual(['raise clone-host', 'clear clone-host']);
  });

  it('a host gone quiet (STALE) loses its mark at the sweep, with no sample after', async () => {
    const { live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 12);
    await settle(c);
    await c.tick(last + 11 * I);
    expect(ops()).toEqual(['raise clone-host', 'clear clone-host']);
  });

  it('a retired host is forgotten at once: its mark dropped (whoever wrote it), and none on its next life', async () => {
    const { live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 12);
    expect(c.count).toBe(1);
    c.fold([], ['clone-host'], last + 100);
    expect(c.count).toBe(0);
    // Retired on this replica though it never marked it (a restart since, or another replica's mark): dropped too.
    c.fold([], ['other-host'], last + 200);
    // The next life's first sample (one collector): nothing written for it.
    c.fold([{ hostId: 'clone-host', reporter: 'a', intervalMs: I, sampledAt: last + I }], [], last + I + 100);
    await settle(c);
    expect(ops()).toEqual(['raise clone-host', 'drop clone-host', 'drop other-host']);
    // Nothing held any more: the periodic write has nothing to renew.
    await c.tick(last + I + 200);
    expect(ops()).toEqual(['raise clone-host', 'drop clone-host', 'drop other-host']);
  });

  it('live state refusing the write fails no commit; the change is written at the next commit', async () => {
    const { state, live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    state.failing = true;
    const last = interleave(c, 'clone-host', 12);
    await settle(c);
    expect(c.count).toBe(1);
    expect(ops()).toEqual([]);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ err: expect.stringContaining('OOM') }),
      expect.stringContaining('not written to live state'),
    );
    state.failing = false;
    interleave(c, 'clone-host', 1, last + I);
    await settle(c);
    expect(ops()).toEqual(['raise clone-host']);
  });

  it('renews the marks it holds at each sweep, and after a rebuild of live state', async () => {
    const { live, ops } = fakeLive();
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 12);
    await settle(c);
    await c.tick(last + 1_000);
    await c.republish();
    expect(ops()).toEqual(['raise clone-host', 'refresh clone-host', 'refresh clone-host']);
    expect(CONFLICT_SWEEP_EVERY_MS).toBeLessThan(CONFLICT_MARK_TTL_MS / 2);
  });

  it('a change of the reporters counted is written (3 → the mark says 3)', async () => {
    const { state, live } = fakeLive();
    const c = new HostConflicts(live, logger);
    let now = T0;
    for (let i = 0; i < 12; i++)
      for (const [reporter, offset] of [
        ['a', 0],
        ['b', 1_000],
        ...(i >= 6 ? ([['c', 2_000]] as const) : []),
      ] as const) {
        now = T0 + i * I + offset + 100;
        c.fold([{ hostId: 'h', reporter, intervalMs: I, sampledAt: T0 + i * I + offset }], [], now);
      }
    await settle(c);
    const marks = state.pipelines.flat().map((w) => ('mark' in w ? w.mark.reporters : w.op));
    expect(marks).toEqual([2, 3]);
  });

  it('a raise Redis refused stays a raise when a renewal of the mark was queued meanwhile (it takes another’s over)', async () => {
    // The shard moved here: the mark in live state is the former holder's, which only a raise replaces. The raise is
    // in flight when the sweep queues the mark's renewal; Redis refuses the raise.
    const writes: { ops: string[]; settle: (() => void) | null } = { ops: [], settle: null };
    const live = {
      writeHostConflicts: (batch: readonly HostConflictWrite[]) => {
        if (writes.settle === null && writes.ops.length === 0)
          return new Promise<number>((_, reject) => {
            writes.settle = () => reject(new Error('READONLY You can’t write against a read only replica.'));
          });
        writes.ops.push(...batch.map((w) => `${w.op} ${w.hostId}`));
        return Promise.resolve(batch.length);
      },
    } as unknown as LiveStateStore;
    const c = new HostConflicts(live, logger);
    const last = interleave(c, 'clone-host', 12);
    expect(writes.settle).not.toBeNull();
    const sweep = c.tick(last + 1_000);
    writes.settle?.();
    await sweep;
    await c.flush();
    expect(writes.ops).toEqual(['raise clone-host']);
  });

  it('a change queued while the last write was landing is written without waiting for the next commit or sweep', async () => {
    const { live, ops } = fakeLive();
    const writeHostConflicts = live.writeHostConflicts.bind(live);
    let hook: (() => void) | null = null;
    // A commit whose fold runs just after the write it waited on landed (the same Redis reply resolves both).
    live.writeHostConflicts = (...args: Parameters<LiveStateStore['writeHostConflicts']>) => {
      const written = writeHostConflicts(...args);
      void written.then().then(() => {
        const h = hook;
        hook = null;
        h?.();
      });
      return written;
    };
    const c = new HostConflicts(live, logger);
    let last = 0;
    hook = () => c.fold([], ['retired-host'], last + 100);
    last = interleave(c, 'clone-host', 12);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(hook).toBeNull();
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(ops()).toEqual(['raise clone-host', 'drop retired-host']);
  });
});
