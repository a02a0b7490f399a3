import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { expireDeadlines } from './expiry';
import { foldObservations, type FoldItem } from './fold';
import type { Observation, TargetSnapshot } from './target-state';

const policy = { downQuorumPct: 100 };
const obs = (id: string, targetId: string, location: string, status: S, at: number): FoldItem => ({
  type: 'observation',
  id,
  observation: {
    targetId,
    kind: TargetKind.Instance,
    name: targetId,
    location,
    at,
    status,
    reason: status,
  } satisfies Observation,
});
const ping = (
  id: string,
  signal: 'start' | 'success' | 'fail',
  at: number,
  monitorId: string | null = 'm-1',
): FoldItem => ({
  type: 'ping',
  id,
  targetId: 'hb',
  location: 'push',
  name: 'nightly',
  monitorId,
  ping: { signal, at, runId: null, periodSeconds: 60, graceSeconds: 10, maxRuntimeSeconds: null },
});
/** A ping of run `runId` of monitor m-1 on this schedule. */
const runPing = (
  id: string,
  signal: 'start' | 'success' | 'fail',
  at: number,
  runId: string,
  schedule: { periodSeconds: number; graceSeconds: number; maxRuntimeSeconds: number },
): FoldItem => {
  const item = ping(id, signal, at);
  return item.type === 'ping' ? { ...item, ping: { ...item.ping, runId, ...schedule } } : item;
};
const all = (items: FoldItem[]) => new Set(items.map((i) => i.id));
const none = new Map<string, TargetSnapshot>();

describe('foldObservations', () => {
  it.each<[string, FoldItem[], string[], Record<string, S>, number]>([
    [
      'one target, in order',
      [obs('1', 'a', 'eu', S.Up, 1), obs('2', 'a', 'eu', S.Down, 2)],
      ['1', '2'],
      { a: S.Down },
      0,
    ],
    [
      'two targets interleaved',
      [obs('1', 'a', 'eu', S.Up, 1), obs('2', 'b', 'eu', S.Down, 1), obs('3', 'a', 'us', S.Down, 2)],
      ['1', '2', '3'],
      { a: S.Partial, b: S.Down },
      0,
    ],
    [
      'an id seen before (not fresh) is a duplicate',
      [obs('1', 'a', 'eu', S.Up, 1), obs('2', 'a', 'eu', S.Down, 2)],
      ['1'],
      { a: S.Up },
      1,
    ],
    [
      'the same id twice in one fold counts once',
      [obs('1', 'a', 'eu', S.Up, 1), obs('1', 'a', 'eu', S.Up, 1)],
      ['1'],
      { a: S.Up },
      1,
    ],
    [
      'an older observation never moves status back',
      [obs('1', 'a', 'eu', S.Down, 5), obs('2', 'a', 'eu', S.Up, 3)],
      ['1', '2'],
      { a: S.Down },
      0,
    ],
  ])('%s', (_name, items, fresh, expected, duplicates) => {
    const out = foldObservations(none, items, new Set(fresh), policy);
    expect(Object.fromEntries([...out.changed].map((id) => [id, out.targets.get(id)?.status]))).toEqual(expected);
    expect(out.duplicates).toBe(duplicates);
  });

  it('events carry gap-free sequences per target, in delivery order', () => {
    const items = [obs('1', 'a', 'eu', S.Up, 1), obs('2', 'a', 'eu', S.Down, 2), obs('3', 'a', 'eu', S.Up, 3)];
    const out = foldObservations(none, items, all(items), policy);
    const seqs = out.events.filter((e) => e.targetId === 'a').map((e) => e.sequence);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(out.events.filter((e) => e.location === null).map((e) => `${e.from}>${e.to}`)).toEqual([
      'UNKNOWN>UP',
      'UP>DOWN',
      'DOWN>UP',
    ]);
  });

  it('marks targets of duplicates for a live-state resync, and applied only what changed state', () => {
    const items = [obs('1', 'a', 'eu', S.Up, 5), obs('2', 'b', 'eu', S.Up, 1), obs('3', 'a', 'eu', S.Up, 4)];
    const out = foldObservations(none, items, new Set(['1', '3']), policy);
    expect([...out.resync]).toEqual(['b']);
    expect([...out.applied]).toEqual(['1']);
  });

  it('starts from the targets given, without changing them', () => {
    const first = foldObservations(none, [obs('1', 'a', 'eu', S.Up, 1)], new Set(['1']), policy);
    const snapshot = JSON.stringify([...first.targets]);
    const second = foldObservations(first.targets, [obs('2', 'a', 'eu', S.Down, 2)], new Set(['2']), policy);
    expect(second.targets.get('a')?.status).toBe(S.Down);
    expect(JSON.stringify([...first.targets])).toBe(snapshot);
  });

  it('heartbeat pings: a start then a success finishes a run; ping times are kept per monitor', () => {
    const items = [ping('p1', 'start', 1000), ping('p2', 'success', 4000)];
    const out = foldObservations(none, items, all(items), policy);
    expect(out.runs).toEqual([
      { monitorId: 'm-1', targetId: 'hb', startedAt: 1000, finishedAt: 4000, durationMs: 3000, outcome: 'ok' },
    ]);
    expect(out.touches).toEqual([{ monitorId: 'm-1', lastPingAt: 4000, lastStartAt: 1000 }]);
    expect(out.targets.get('hb')?.status).toBe(S.Up);
  });

  it('a fail ping turns the monitor DOWN; pings of unstored monitors record no runs or times', () => {
    const items = [ping('p1', 'start', 1000, null), ping('p2', 'fail', 2000, null)];
    const out = foldObservations(none, items, all(items), policy);
    expect(out.targets.get('hb')?.status).toBe(S.Down);
    expect(out.runs).toEqual([]);
    expect(out.touches).toEqual([]);
  });

  it.each(['success', 'fail'] as const)(
    'a %s ping of another run leaves the open run its max runtime: it times out on time (DOWN, run recorded)',
    (signal) => {
      const schedule = { periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 60 };
      const hb = (id: string, sig: 'start' | 'success' | 'fail', at: number, runId: string) =>
        runPing(id, sig, at, runId, schedule);
      // Run r1 starts (at most 60 s); run r2, started without a start ping, finishes 10 s later.
      const items = [hb('p1', 'start', 0, 'r1'), hb('p2', signal, 10_000, 'r2')];
      const out = foldObservations(none, items, all(items), policy);
      expect(out.runs).toEqual([]);
      expect(out.targets.get('hb')?.locations.push.run).toEqual({ startedAt: 0, runId: 'r1' });
      // r1 never finishes: at 61 s its max runtime has passed.
      const swept = expireDeadlines(out.targets, [{ targetId: 'hb', location: 'push' }], 61_000, policy);
      expect(swept.timedOutRuns).toMatchObject([{ targetId: 'hb', runId: 'r1', startedAt: 0, finishedAt: 60_000 }]);
      expect(swept.changed[0]?.locations.push).toMatchObject({ status: S.Down, run: null });
    },
  );

  it("successes of other runs keep moving the monitor's deadline on while a long run is open (no DOWN between pings)", () => {
    const schedule = { periodSeconds: 60, graceSeconds: 30, maxRuntimeSeconds: 7200 };
    const hb = (id: string, sig: 'start' | 'success', at: number, runId: string) =>
      runPing(id, sig, at, runId, schedule);
    // r1 may run two hours; r2 and r3 succeed at 10 s and 70 s: the next ping is due by 70 + 90 = 160 s.
    const items = [hb('p1', 'start', 0, 'r1'), hb('p2', 'success', 10_000, 'r2'), hb('p3', 'success', 70_000, 'r3')];
    const out = foldObservations(none, items, all(items), policy);
    expect(out.targets.get('hb')?.locations.push).toMatchObject({
      status: S.Up,
      run: { startedAt: 0, runId: 'r1' },
      deadline: { at: 160_000 },
    });
    const swept = expireDeadlines(out.targets, [{ targetId: 'hb', location: 'push' }], 101_000, policy);
    expect(swept.changed).toEqual([]);
  });
});
