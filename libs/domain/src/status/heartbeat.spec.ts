import { TargetStatus as S } from '@fleetwatch/contracts';
import { expireDeadlines } from './expiry';
import { foldObservations, type FoldItem } from './fold';
import type { TargetSnapshot } from './target-state';
import {
  CHECK_INTERVAL_CHANGED,
  checkStaleReason,
  failReasonOf,
  heartbeatStep,
  hostIntervalOf,
  hostStaleReason,
  pingWindowOf,
  pingWindowReason,
  reportIntervalOf,
} from './heartbeat';

// Heartbeat pings folded out of order: the edge stamps each ping when it receives it, and the
// bus may deliver one later than a newer one (a client's retry, another ingest replica's slow
// confirm, a redelivery).

const policy = { downQuorumPct: 100 };
const none = new Map<string, TargetSnapshot>();
const schedule = { periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 600 };

function hb(id: string, signal: 'start' | 'success' | 'fail', at: number, runId: string | null = null): FoldItem {
  return {
    type: 'ping',
    id,
    targetId: 'hb',
    location: 'push',
    name: 'nightly',
    monitorId: 'm-1',
    ping: { signal, at, runId, ...schedule },
  };
}
const fold = (items: FoldItem[], current: ReadonlyMap<string, TargetSnapshot> = none) =>
  foldObservations(current, items, new Set(items.map((i) => i.id)), policy);

describe('heartbeat: a start delivered after a newer one', () => {
  it('leaves the newer open run, its start and its max-runtime deadline as they were', () => {
    // A success at 0; run B starts at 100 s; A's start, received at 50 s, is delivered after it.
    const out = fold([hb('p0', 'success', 0), hb('pB', 'start', 100_000), hb('pA', 'start', 50_000)]);
    expect(out.targets.get('hb')?.locations.push).toMatchObject({
      status: S.Up,
      run: { startedAt: 100_000, runId: null },
      deadline: { at: 100_000 + 600_000, reason: 'run not finished within max runtime 600s' },
    });
    // B is still within its max runtime at 660 s (A's deadline, 650 s, is not B's).
    const swept = expireDeadlines(out.targets, [{ targetId: 'hb', location: 'push' }], 655_000, policy);
    expect(swept.changed).toEqual([]);
    expect(out.touches).toEqual([{ monitorId: 'm-1', lastPingAt: 100_000, lastStartAt: 100_000 }]);
  });

  it('a later success finishes the newer run (its start, its duration), not the late one', () => {
    const out = fold([
      hb('p0', 'success', 0),
      hb('pB', 'start', 100_000),
      hb('pA', 'start', 50_000),
      hb('pS', 'success', 130_000),
    ]);
    expect(out.runs).toEqual([
      { monitorId: 'm-1', targetId: 'hb', startedAt: 100_000, finishedAt: 130_000, durationMs: 30_000, outcome: 'ok' },
    ]);
    expect(out.targets.get('hb')?.locations.push).toMatchObject({ status: S.Up, run: null });
  });

  it('with run ids: the newer run is still open for its own finishing ping', () => {
    const out = fold([
      hb('p0', 'success', 0, 'r0'),
      hb('pB', 'start', 100_000, 'rB'),
      hb('pA', 'start', 50_000, 'rA'),
      hb('pS', 'success', 130_000, 'rB'),
    ]);
    expect(out.runs).toMatchObject([{ startedAt: 100_000, finishedAt: 130_000, outcome: 'ok' }]);
  });

  it('the same late start folded in a later batch (state read back) changes nothing either', () => {
    const first = fold([hb('p0', 'success', 0), hb('pB', 'start', 100_000)]);
    const second = fold([hb('pA', 'start', 50_000)], first.targets);
    expect(second.targets.get('hb')?.locations.push).toEqual(first.targets.get('hb')?.locations.push);
  });

  it('a start newer than the open run still replaces it (a new run began)', () => {
    const out = fold([hb('p0', 'success', 0), hb('pA', 'start', 50_000), hb('pB', 'start', 100_000)]);
    expect(out.targets.get('hb')?.locations.push?.run).toEqual({ startedAt: 100_000, runId: null });
  });
});

describe('heartbeat: one location per monitor', () => {
  const loc = (
    status: S,
    at: number,
    extra: Partial<TargetSnapshot['locations'][string]> = {},
  ): TargetSnapshot['locations'][string] => ({
    status,
    observedAt: at,
    lastSeen: at,
    latencyMs: null,
    detail: null,
    lifecycle: null,
    deadline: null,
    run: null,
    ...extra,
  });
  const stored = (status: S, locations: TargetSnapshot['locations']): Map<string, TargetSnapshot> =>
    new Map([
      [
        'hb',
        {
          id: 'hb',
          kind: 'check',
          name: 'nightly',
          status,
          since: 0,
          lastSeen: 100_000,
          lastLatencyMs: null,
          lifecycle: null,
          tags: [],
          labels: {},
          seq: 3,
          locations,
        } as TargetSnapshot,
      ],
    ]);

  it('a state kept at the ingest locations of before is carried into the one location (the freshest: its open run) and the others dropped', () => {
    // Before: each ping at the location of the ingest replica that received it. The run started through site-a.
    const before = stored(
      S.Partial,
      Object.fromEntries([
        [
          'site-a',
          loc(S.Up, 0, {
            lastSeen: 100_000,
            run: { startedAt: 100_000, runId: null },
            deadline: { at: 700_000, expireTo: S.Down, reason: 'run not finished within max runtime 600s' },
          }),
        ],
        ['site-b', loc(S.Down, 50_000)],
      ]),
    );
    const out = fold([hb('pS', 'success', 130_000)], before);
    const t = out.targets.get('hb') as TargetSnapshot;
    expect(Object.keys(t.locations)).toEqual(['push']);
    expect(t.locations.push).toMatchObject({ status: S.Up, run: null, deadline: { at: 130_000 + 3_660_000 } });
    expect(t.status).toBe(S.Up);
    expect(out.runs).toMatchObject([{ startedAt: 100_000, finishedAt: 130_000, durationMs: 30_000, outcome: 'ok' }]);
    expect(out.dropped).toEqual([
      { targetId: 'hb', location: 'site-a' },
      { targetId: 'hb', location: 'site-b' },
    ]);
    expect(out.events.map((e) => [e.location, e.from, e.to, e.sequence])).toEqual([[null, S.Partial, S.Up, 4]]);
  });

  it('the consensus follows the one location even when the ping itself is older than its state', () => {
    const before = stored(
      S.Partial,
      Object.fromEntries([
        ['site-a', loc(S.Down, 90_000)],
        ['site-b', loc(S.Up, 80_000)],
      ]),
    );
    const out = fold([hb('pOld', 'success', 10_000)], before);
    const t = out.targets.get('hb') as TargetSnapshot;
    expect(Object.keys(t.locations)).toEqual(['push']);
    expect([t.status, t.locations.push.status]).toEqual([S.Down, S.Down]);
    expect(out.events.map((e) => [e.location, e.from, e.to])).toEqual([[null, S.Partial, S.Down]]);
    // Stored state to write: the target's row, its one location, and the two dropped.
    expect(out.dropped.map((d) => d.location)).toEqual(['site-a', 'site-b']);
  });

  it('a monitor already at its one location drops nothing', () => {
    const out = fold([hb('p1', 'start', 1000), hb('p2', 'success', 4000)]);
    expect(out.dropped).toEqual([]);
    expect(Object.keys(out.targets.get('hb')?.locations ?? {})).toEqual(['push']);
  });
});

describe('heartbeat: ingest replicas whose clocks differ', () => {
  it("a finishing ping with the open run's own run id finishes it even when stamped before its start (another replica's clock behind)", () => {
    const short = { periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 60 };
    const at = (id: string, signal: 'start' | 'success', t: number): FoldItem => {
      const item = hb(id, signal, t, 'r1');
      return item.type === 'ping' ? { ...item, ping: { ...item.ping, ...short } } : item;
    };
    // Started through a replica 40 ms ahead; finished 10 ms later through one on time.
    const out = fold([hb('p0', 'success', 0), at('pS', 'start', 100_040), at('pE', 'success', 100_010)]);
    expect(out.runs).toMatchObject([{ startedAt: 100_040, finishedAt: 100_040, durationMs: 0, outcome: 'ok' }]);
    expect(out.targets.get('hb')?.locations.push).toMatchObject({ status: S.Up, run: null });
    // Nothing left to time out at the run's max runtime.
    const swept = expireDeadlines(out.targets, [{ targetId: 'hb', location: 'push' }], 161_000, policy);
    expect(swept.changed).toEqual([]);
  });

  it('without run ids, a finishing ping stamped before the open run started is not taken for it', () => {
    const out = fold([hb('p0', 'success', 0), hb('pS', 'start', 100_000), hb('pE', 'success', 99_000)]);
    expect(out.runs).toEqual([]);
    expect(out.targets.get('hb')?.locations.push?.run).toEqual({ startedAt: 100_000, runId: null });
  });
});

describe('heartbeat: deadlines count from when a ping was heard, when that is later than its stamp', () => {
  const heard = (item: FoldItem, heardAt: number): FoldItem =>
    item.type === 'ping' ? { ...item, ping: { ...item.ping, heardAt } } : item;

  it('a start stamped by a replica 20 minutes behind gets its whole max runtime from its arrival; its run keeps its own start', () => {
    const arrived = 1_200_000;
    const r = fold([heard(hb('s', 'start', 0, 'run-1'), arrived)]);
    const location = r.targets.get('hb')?.locations['push'];
    expect(location?.deadline?.at).toBe(arrived + 600_000);
    expect(location?.run?.startedAt).toBe(0);
  });

  it('a success heard late is due period + grace after it was heard; heard earlier than stamped, after the stamp', () => {
    const late = fold([heard(hb('a', 'success', 0), 500_000)]).targets.get('hb');
    expect(late?.locations['push']?.deadline?.at).toBe(500_000 + 3_660_000);
    const early = fold([heard(hb('b', 'success', 500_000), 0)]).targets.get('hb');
    expect(early?.locations['push']?.deadline?.at).toBe(500_000 + 3_660_000);
  });
});

describe('pingWindowOf (the window a ping-waiting deadline was set with, read from its reason)', () => {
  it.each([
    [pingWindowReason(3600, 60), 3_660_000],
    ['no ping within period + grace (70s) of the resume', 70_000],
    ['no ping within period + grace (70s)', 70_000],
    ['run not finished within max runtime 600s', undefined],
    ['no result within 2 × 30s', undefined],
  ])('%s → %s', (reason, windowMs) => {
    expect(pingWindowOf(reason)).toBe(windowMs);
  });
});

describe('failReasonOf', () => {
  it("names the first non-empty line of the job's output, cut at 200 characters", () => {
    expect(failReasonOf(undefined)).toBe('fail ping');
    expect(failReasonOf('  \n\r\n ')).toBe('fail ping');
    expect(failReasonOf('\n  disk full  \nexit 1')).toBe('fail ping: disk full');
    const long = failReasonOf('é'.repeat(500));
    expect(long).toBe(`fail ping: ${'é'.repeat(199)}…`);
    // Never splits a character of two UTF-16 units.
    expect(failReasonOf('💥'.repeat(300)).endsWith('💥…')).toBe(true);
  });

  /** The step of a fail ping carrying `output` (and an exit code, when given). */
  const failStep = (exitCode?: number) =>
    heartbeatStep(undefined, {
      signal: 'fail',
      at: 1000,
      runId: null,
      periodSeconds: 60,
      graceSeconds: 0,
      maxRuntimeSeconds: null,
      output: 'backup failed\nmore',
      ...(exitCode === undefined ? {} : { exitCode }),
    });

  it('is the reason of a fail ping with a body', () => {
    expect(failStep()).toMatchObject({ status: 'DOWN', reason: 'fail ping: backup failed' });
  });

  it('names the exit code of /ping/{token}/{code} when the job sent one (0 included), before its output', () => {
    expect(failReasonOf(undefined, 3)).toBe('fail ping (exit code 3)');
    expect(failReasonOf('disk full\n', 3)).toBe('fail ping (exit code 3): disk full');
    expect(failReasonOf('disk full', null)).toBe('fail ping: disk full');
    expect(failReasonOf(undefined, 0)).toBe('fail ping (exit code 0)');
    expect(failStep(7)).toMatchObject({ status: 'DOWN', reason: 'fail ping (exit code 7): backup failed' });
  });
});

describe('how often a target reports (reportIntervalOf)', () => {
  const at = (reason: string, expireTo: S = S.Stale) => ({
    status: S.Up,
    observedAt: 0,
    lastSeen: 0,
    latencyMs: null,
    detail: null,
    lifecycle: null,
    deadline: { at: 1, expireTo, reason },
    run: null,
  });

  it("is a probed check's interval, a host's sampling interval, as their STALE deadlines name them", () => {
    expect(reportIntervalOf({ locations: { eu: at(checkStaleReason(600)) } })).toBe(600_000);
    expect(reportIntervalOf({ locations: { eu: at(`${checkStaleReason(3600)} of the resume`) } })).toBe(3_600_000);
    expect(reportIntervalOf({ locations: { eu: at(checkStaleReason(900) + CHECK_INTERVAL_CHANGED) } })).toBe(900_000);
    expect(reportIntervalOf({ locations: { lab: at(hostStaleReason(15)) } })).toBe(15_000);
    expect(hostIntervalOf(hostStaleReason(15))).toBe(15_000);
  });

  it('is the longest of its locations, and null when none says', () => {
    expect(
      reportIntervalOf({ locations: { eu: at(checkStaleReason(60)), us: at(checkStaleReason(300)), ap: at('x') } }),
    ).toBe(300_000);
    expect(reportIntervalOf({ locations: {} })).toBeNull();
    expect(reportIntervalOf({ locations: { eu: { ...at(checkStaleReason(60)), deadline: null } } })).toBeNull();
    expect(reportIntervalOf({ locations: { lab: at('no metrics for 90s') } })).toBeNull();
    // A heartbeat monitor's ping window is DOWN, not STALE: it reports no figures.
    expect(reportIntervalOf({ locations: { push: at(pingWindowReason(3600, 60), S.Down) } })).toBeNull();
  });
});
