import { TargetStatus as S } from '@fleetwatch/contracts';
import { foldObservations, type FoldItem } from './fold';
import type { TargetSnapshot } from './target-state';

// Heartbeat pings, wherever they were received.

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
