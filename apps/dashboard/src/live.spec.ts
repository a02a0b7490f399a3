import { QueryClient } from '@tanstack/react-query';
import { TargetKind, TargetStatus, type TargetView } from '@fleetwatch/contracts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keys } from './api/queries';
import {
  invalidator,
  liveLabel,
  liveStateAfter,
  liveStatusAfter,
  onServerFrame,
  ReconnectBackoff,
  STATUS_SUBSCRIPTION,
  statusEventOf,
  type LiveState,
  type LiveStatus,
} from './live';
import { EMPTY_FILTER } from './pages/targets/target-filter';

// What a status change does to the cached queries (a real TanStack QueryClient): lists holding the target
// are patched in place and NOT refetched unless the patch cannot be exact — a list filtered by status (the
// target may enter or leave it) or one without the target — so an open page does not download every
// target again at each change.

const t = (id: string, status = TargetStatus.Up): TargetView => ({
  id,
  kind: TargetKind.Instance,
  name: id,
  status,
  consensus: status,
  locations: [],
  lastSeen: null,
  since: null,
  tags: [],
  labels: {},
  lifecycle: null,
  instanceKind: null,
});
const at = '2026-01-01T00:00:00.000Z';
const all = keys.targets({ ...EMPTY_FILTER });
const downOnly = keys.targets({ ...EMPTY_FILTER, status: [TargetStatus.Down] });
const hosts = keys.targets({ ...EMPTY_FILTER, kind: [TargetKind.Host] });

let qc: QueryClient;
beforeEach(() => {
  vi.useFakeTimers();
  qc = new QueryClient();
  qc.setQueryData(all, [t('a'), t('b')]);
  qc.setQueryData(downOnly, [t('c', TargetStatus.Down)]);
  qc.setQueryData(hosts, []);
  qc.setQueryData(keys.counts(), { all: 3 });
});
afterEach(() => {
  vi.useRealTimers();
  qc.clear();
});
const invalidated = (key: readonly unknown[]) => qc.getQueryState(key)?.isInvalidated ?? false;

describe('live status changes', () => {
  it('patch the lists holding the target; refetch only status-filtered lists and lists without it', () => {
    const changes = invalidator(qc);
    const before = qc.getQueryData<TargetView[]>(all);
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at });
    changes.status({ targetId: 'b', location: null, to: TargetStatus.Down, at });
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Up, at });
    vi.advanceTimersByTime(250); // gathered changes applied together, in order
    const after = qc.getQueryData<TargetView[]>(all);
    expect(after?.map((x) => x.status)).toEqual([TargetStatus.Up, TargetStatus.Down]);
    expect(after).not.toBe(before);
    vi.advanceTimersByTime(1_000);
    expect(invalidated(all)).toBe(false); // exact after the patch: no download of every target
    expect(invalidated(downOnly)).toBe(true); // 'a' now belongs in it
    expect(invalidated(hosts)).toBe(true); // without 'a': its filter decides
    expect(invalidated(keys.counts())).toBe(true);
  });

  it("a changed target's history (its detail page, every range) is refetched; another target's is not", () => {
    qc.setQueryData(keys.history('a', 60), { points: [] });
    qc.setQueryData(keys.history('a', 1440), { points: [] });
    qc.setQueryData(keys.history('b', 60), { points: [] });
    const changes = invalidator(qc);
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at });
    vi.advanceTimersByTime(1_250);
    expect(invalidated(keys.history('a', 60))).toBe(true);
    expect(invalidated(keys.history('a', 1440))).toBe(true);
    expect(invalidated(keys.history('b', 60))).toBe(false);
  });

  it('a location change of a listed target refetches no list that holds it, even one filtered by status', () => {
    qc.setQueryData(downOnly, [t('a', TargetStatus.Down)]);
    const changes = invalidator(qc);
    changes.status({ targetId: 'a', location: 'eu', to: TargetStatus.Down, at });
    vi.advanceTimersByTime(1_250);
    expect(invalidated(all)).toBe(false);
    expect(invalidated(downOnly)).toBe(false);
  });

  it('changes of targets no list holds leave the lists as they were (same arrays)', () => {
    const changes = invalidator(qc);
    const before = qc.getQueryData<TargetView[]>(all);
    changes.status({ targetId: 'zz', location: null, to: TargetStatus.Down, at });
    vi.advanceTimersByTime(250);
    expect(qc.getQueryData<TargetView[]>(all)).toBe(before);
    vi.advanceTimersByTime(1_000);
    expect(invalidated(all)).toBe(true); // a new target: the list's filter decides whether it belongs
  });

  it('a change the page cannot apply (no event) refetches every list, once per second at most', () => {
    const changes = invalidator(qc);
    changes.target('a');
    changes.target('b');
    vi.advanceTimersByTime(999);
    expect(invalidated(all)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(invalidated(all)).toBe(true);
    expect(invalidated(downOnly)).toBe(true);
  });

  it('statusEventOf reads the frame, or nothing when a field is missing', () => {
    const e = { targetId: 'a', location: null, to: 'DOWN', at, from: 'UP', sequence: 3, kind: 'instance' };
    expect(statusEventOf(e)).toEqual({ targetId: 'a', location: null, to: 'DOWN', at });
    expect(statusEventOf({ ...e, location: 'eu' })?.location).toBe('eu');
    expect(statusEventOf({ ...e, at: undefined })).toBeUndefined();
    expect(statusEventOf({ ...e, location: 5 })).toBeUndefined();
    expect(statusEventOf(null)).toBeUndefined();
  });
});

describe('resync', () => {
  const other = ['fleetwatch', 'fleet', 'members'] as const;
  const everyQuery = () => [all, downOnly, hosts, keys.counts(), other].map(invalidated);

  it("a 'resync' frame (the gateway missed changes) invalidates every query after a random 0–2 s and drops queued patches", () => {
    qc.setQueryData(other, []);
    const changes = invalidator(qc, () => 0.1); // this page's draw: 200 ms
    const before = qc.getQueryData<TargetView[]>(all);
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at });
    const sent: string[] = [];
    expect(
      onServerFrame(JSON.stringify({ type: 'resync', reason: 'x' }), changes, qc, (f) => sent.push(f), false),
    ).toBe('resync');
    expect(everyQuery()).toEqual([false, false, false, false, false]); // not at once: pages spread their re-reads
    vi.advanceTimersByTime(199);
    expect(everyQuery()).toEqual([false, false, false, false, false]);
    vi.advanceTimersByTime(1);
    expect(everyQuery()).toEqual([true, true, true, true, true]);
    vi.advanceTimersByTime(2_000);
    expect(qc.getQueryData<TargetView[]>(all)).toBe(before); // the refetch answers, not a patch from before
    expect(sent).toEqual([]);
  });

  it('the resync wait is drawn at random up to 2 s, and resyncs within it cost one re-read', () => {
    const invalidate = vi.spyOn(qc, 'invalidateQueries');
    const everything = () => invalidate.mock.calls.filter(([f]) => f?.queryKey === keys.all).length;
    const changes = invalidator(qc, () => 0.999);
    for (let i = 0; i < 5; i++) {
      onServerFrame(JSON.stringify({ type: 'resync' }), changes, qc, () => undefined, false);
      vi.advanceTimersByTime(300);
    }
    expect(everything()).toBe(0);
    vi.advanceTimersByTime(1_998 - 5 * 300);
    expect(everything()).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(everything()).toBe(1);
    // Another one later waits its own draw.
    const early = invalidator(qc, () => 0);
    early.resync();
    vi.advanceTimersByTime(0);
    expect(everything()).toBe(2);
  });

  it("'ready' subscribes; on a socket after the first it also invalidates every query (changes made while none was open), after the resync wait", () => {
    const changes = invalidator(qc, () => 0.5);
    const sent: string[] = [];
    onServerFrame(JSON.stringify({ type: 'ready' }), changes, qc, (f) => sent.push(f), false);
    expect(JSON.parse(sent[0])).toMatchObject({ type: 'subscribe', topic: 'status' });
    vi.advanceTimersByTime(5_000);
    expect(everyQuery().slice(0, 4)).toEqual([false, false, false, false]);
    onServerFrame(JSON.stringify({ type: 'ready' }), changes, qc, (f) => sent.push(f), true);
    expect(sent).toHaveLength(2);
    expect(everyQuery().slice(0, 4)).toEqual([false, false, false, false]);
    vi.advanceTimersByTime(1_000);
    expect(everyQuery().slice(0, 4)).toEqual([true, true, true, true]);
  });

  it('ignores a frame that is not JSON', () => {
    expect(onServerFrame('nope', invalidator(qc), qc, () => undefined, false)).toBeUndefined();
  });
});

describe('the live state the footer shows', () => {
  /** The states a socket goes through, frame by frame, as useLiveUpdates sets them. */
  const through = (frames: string[], start: LiveState = 'connecting') => {
    const changes = invalidator(qc, () => 0);
    const states: LiveState[] = [];
    let state = start;
    for (const f of frames) {
      state = liveStateAfter(
        state,
        onServerFrame(f, changes, qc, () => undefined, false),
      );
      states.push(state);
    }
    changes.cancel();
    return states;
  };
  const frame = (type: string) => JSON.stringify({ type, reason: 'x' });

  it("'degraded' (the gateway lost its live-state feed) shows paused until the 'resync' that ends it", () => {
    expect(
      through([frame('ready'), frame('status.changed'), frame('degraded'), frame('pong'), frame('resync')]),
    ).toEqual(['live', 'live', 'degraded', 'degraded', 'live']);
    // Opened during an outage: ready, then degraded at once.
    expect(through([frame('ready'), frame('degraded')])).toEqual(['live', 'degraded']);
    expect(through(['not json'], 'degraded')).toEqual(['degraded']);
  });

  it("an 'error' naming the page's subscription (refused) shows the gateway's words until the next socket's 'ready'", () => {
    const changes = invalidator(qc, () => 0);
    let status: LiveStatus = { state: 'connecting', refusal: null };
    const seen: LiveStatus[] = [];
    const words = 'at most 20 subscriptions per socket: unsubscribe first';
    const frames = [
      frame('ready'),
      JSON.stringify({ type: 'error', id: STATUS_SUBSCRIPTION, message: words }),
      // Nothing comes over this socket: a resync or a degraded does not make it live again.
      frame('resync'),
      frame('degraded'),
      // An error of another request (not the page's subscription) says nothing of it.
      JSON.stringify({ type: 'error', id: 'other', message: 'no target "x"' }),
      frame('ready'),
      JSON.stringify({ type: 'error', id: 'other', message: 'no target "x"' }),
    ];
    for (const f of frames) {
      status = liveStatusAfter(
        status,
        onServerFrame(f, changes, qc, () => undefined, false),
        f,
      );
      seen.push(status);
    }
    changes.cancel();
    const refused = { state: 'refused', refusal: words };
    expect(seen).toEqual([
      { state: 'live', refusal: null },
      refused,
      refused,
      refused,
      refused,
      { state: 'live', refusal: null },
      { state: 'live', refusal: null },
    ]);
    // The footer says it, in the gateway's words.
    expect(liveLabel('refused', words)).toBe(`○ Live updates refused by the gateway: ${words}; refreshing every 10 s`);
  });

  it('says so in words', () => {
    expect(liveLabel('degraded')).toMatch(/paused/);
    expect(liveLabel('live')).toBe('● Live');
    expect(liveLabel('polling')).toBe('○ Refreshing every 10 s');
    expect(liveLabel('connecting')).toBe('○ Connecting…');
  });
});

describe('reconnect backoff', () => {
  it('a socket dropped seconds after it opened (too slow, 4408) keeps backing off up to 30 s; one up 30 s resets it', () => {
    const backoff = new ReconnectBackoff();
    const waits: number[] = [];
    // The gateway drops the client 3 s after each ready: each cycle would re-read everything.
    for (let i = 0; i < 8; i++) {
      const wait = i === 0 ? 0 : waits[waits.length - 1];
      vi.advanceTimersByTime(wait);
      backoff.opened();
      vi.advanceTimersByTime(3_000);
      waits.push(backoff.closed());
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    // A socket that stayed up 30 s: the next drop is retried after 1 s again.
    backoff.opened();
    vi.advanceTimersByTime(29_999);
    expect(backoff.closed()).toBe(30_000);
    backoff.opened();
    vi.advanceTimersByTime(30_000);
    expect(backoff.closed()).toBe(1_000);
    expect(backoff.closed()).toBe(2_000); // a failed attempt (no ready) keeps doubling
  });
});

describe('a list answer read before a change', () => {
  const later = '2026-01-01T00:00:10.000Z';
  const row = (id: string, status: TargetStatus, since: string | null) => ({ ...t(id, status), since });
  const pending = () => {
    let answer: (rows: TargetView[]) => void = () => undefined;
    const promise = new Promise<TargetView[]>((r) => (answer = r));
    return { promise, answer: (rows: TargetView[]) => answer(rows) };
  };

  it('does not undo the change: a refetch in flight when it came keeps the changed row', async () => {
    const changes = invalidator(qc);
    const p = pending();
    const inFlight = qc.fetchQuery({ queryKey: all, queryFn: () => p.promise });
    vi.advanceTimersByTime(5);
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at: later });
    vi.advanceTimersByTime(250);
    expect(qc.getQueryData<TargetView[]>(all)?.[0].status).toBe(TargetStatus.Down);
    // The answer was read before the change reached it: the change is applied to it again.
    p.answer([row('a', TargetStatus.Up, at), row('b', TargetStatus.Up, at)]);
    await inFlight;
    expect(qc.getQueryData<TargetView[]>(all)?.map((x) => [x.status, x.since])).toEqual([
      [TargetStatus.Down, later],
      [TargetStatus.Up, at],
    ]);
    changes.cancel();
  });

  it('an answer whose fetch started after the changes is kept as it is, whatever the servers’ clocks say', async () => {
    const changes = invalidator(qc);
    // Two locations' collectors disagree on the time: the later change carries the earlier timestamp.
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at: '2026-01-01T00:00:30.000Z' });
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Up, at: '2026-01-01T00:00:10.000Z' });
    vi.advanceTimersByTime(250);
    await qc.fetchQuery({
      queryKey: all,
      queryFn: async () => [row('a', TargetStatus.Stale, later), row('b', TargetStatus.Up, at)],
    });
    expect(qc.getQueryData<TargetView[]>(all)?.[0].status).toBe(TargetStatus.Stale);
    changes.cancel();
  });

  it('several changes that came during the fetch apply in arrival order, locations included', async () => {
    const changes = invalidator(qc);
    const p = pending();
    const inFlight = qc.fetchQuery({ queryKey: all, queryFn: () => p.promise });
    vi.advanceTimersByTime(5);
    changes.status({ targetId: 'a', location: 'eu', to: TargetStatus.Down, at: later });
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Down, at: later });
    changes.status({ targetId: 'a', location: null, to: TargetStatus.Up, at: '2026-01-01T00:00:05.000Z' });
    vi.advanceTimersByTime(250);
    p.answer([
      {
        ...row('a', TargetStatus.Up, at),
        locations: [{ location: 'eu', status: TargetStatus.Up, lastSeen: at, latencyMs: null, detail: null }],
      },
    ]);
    await inFlight;
    const a = qc.getQueryData<TargetView[]>(all)?.[0];
    expect([a?.status, a?.locations[0].status]).toEqual([TargetStatus.Up, TargetStatus.Down]);
    changes.cancel();
  });

  it('a list filtered by status is left to its refetch (a change may move a row out of it)', async () => {
    const changes = invalidator(qc);
    const p = pending();
    const inFlight = qc.fetchQuery({ queryKey: downOnly, queryFn: () => p.promise });
    vi.advanceTimersByTime(5);
    changes.status({ targetId: 'c', location: null, to: TargetStatus.Up, at: later });
    vi.advanceTimersByTime(250);
    p.answer([row('c', TargetStatus.Down, at)]);
    await inFlight;
    expect(qc.getQueryData<TargetView[]>(downOnly)?.[0].status).toBe(TargetStatus.Down);
    vi.advanceTimersByTime(1_000);
    expect(invalidated(downOnly)).toBe(true);
    changes.cancel();
  });
});
