import { useEffect, useState } from 'react';
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import type { TargetView } from '@fleetwatch/contracts';
import { keys } from './api/queries';
import { patchTarget, type StatusEvent } from './live-patch';

// Live updates over the gateway's WebSocket (/ws, protocol `fleetwatch.v1`): the page
// subscribes to status changes, shows each at once in the cached lists and target (no
// request), then invalidates the queries they affect (at most once per INVALIDATE_MS, so a
// storm of changes costs one refetch, not thousands).
// The browser sends the session cookie with the upgrade; no token is offered. While no
// socket is open (a gateway without /ws, a restart) queries poll every LIVE_POLL_MS and
// the socket is retried with backoff. Close 4401 means the session ended: sign in again.
// A `resync` frame (the gateway's Redis feed was interrupted, changes may have been missed),
// and every socket opened after the first (changes made while none was open were not seen),
// invalidate every query of the page: what is shown is read again — after a random 0–2 s
// (RESYNC_SPREAD_MS), so the pages of a site do not all refetch everything at the same instant,
// and several resyncs within that wait cost one re-read. The reconnect backoff starts again at
// 1 s only once a socket has stayed up STABLE_MS (30 s): a client the gateway keeps dropping
// (too slow, 4408) backs off to 30 s instead of looping reconnect → re-read all → dropped.
// A `degraded` frame (the gateway lost its live-state feed: no changes come until it is back) turns
// the footer's state to 'degraded' — the queries' own polling goes on — until the `resync` that ends it.
// An `error` frame naming the page's own subscription (STATUS_SUBSCRIPTION: the gateway refused it, e.g. too many
// subscriptions on the socket) means no change will come over this socket: the footer says so with the gateway's words
// ('refused') — the queries' polling goes on — until the next socket's `ready`. The page subscribes to nothing else:
// a target's or host's detail page reads over REST, whose 404 it shows itself.

/** Polling while no socket is open; a slow safety net while one is. */
export const LIVE_POLL_MS = 10_000;
const INVALIDATE_MS = 1_000;
const SESSION_ENDED = 4401;
/** A resync re-reads after a random wait of up to this long. */
export const RESYNC_SPREAD_MS = 2_000;
/** A socket that stayed up this long resets the reconnect backoff. */
export const STABLE_MS = 30_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/**
 * The waits between reconnects: doubling from 1 s to 30 s, back to 1 s only after a socket that stayed up STABLE_MS
 * (not at each `ready`: a socket the gateway drops seconds after opening keeps backing off).
 */
export class ReconnectBackoff {
  private next = BACKOFF_MIN_MS;
  private upSince: number | null = null;

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** The socket is ready. */
  opened(): void {
    this.upSince = this.now();
  }

  /** The socket closed: how long to wait before the next attempt. */
  closed(): number {
    if (this.upSince !== null && this.now() - this.upSince >= STABLE_MS) this.next = BACKOFF_MIN_MS;
    this.upSince = null;
    const wait = this.next;
    this.next = Math.min(this.next * 2, BACKOFF_MAX_MS);
    return wait;
  }
}

export type LiveState = 'connecting' | 'live' | 'polling' | 'degraded' | 'refused';

/** The id of the page's one subscription (status changes, sent at `ready`): an `error` frame naming it refused it. */
export const STATUS_SUBSCRIPTION = 'status';
/** What onServerFrame answers for an `error` frame naming STATUS_SUBSCRIPTION. */
export const REFUSED = 'refused';

/**
 * The state after a frame of type `type` on an open socket: `ready` and `resync` (the feed is back) make it live,
 * `degraded` (the gateway's live-state feed is lost) degraded, REFUSED (the page's subscription was refused: nothing
 * comes over this socket) refused until the next socket's `ready`; any other frame leaves it.
 */
export function liveStateAfter(state: LiveState, type: string | undefined): LiveState {
  if (type === 'ready') return 'live';
  if (type === REFUSED || state === 'refused') return 'refused';
  if (type === 'resync') return 'live';
  if (type === 'degraded') return 'degraded';
  return state;
}

/** The gateway's words when a frame is an `error` naming the page's subscription (REFUSED), else null. */
export function refusalOf(data: unknown): string | null {
  try {
    const msg = JSON.parse(String(data)) as { type?: unknown; id?: unknown; message?: unknown } | null;
    if (msg?.type !== 'error' || msg.id !== STATUS_SUBSCRIPTION) return null;
    return typeof msg.message === 'string' && msg.message ? msg.message : 'no reason given';
  } catch {
    return null;
  }
}

/** What the page's footer says of a state (`refusal`: the gateway's words, for 'refused'). */
export function liveLabel(state: LiveState, refusal?: string | null): string {
  switch (state) {
    case 'live':
      return '● Live';
    case 'degraded':
      return '◐ Live updates paused (the gateway lost live state); refreshing every 10 s';
    case 'refused':
      return `○ Live updates refused by the gateway: ${refusal ?? 'no reason given'}; refreshing every 10 s`;
    case 'polling':
      return '○ Refreshing every 10 s';
    default:
      return '○ Connecting…';
  }
}

/** Server messages this page acts on (the rest of the protocol is ignored). */
type ServerMessage =
  | { type: 'ready' }
  | { type: 'status.changed'; event?: StatusEvent }
  | { type: 'target'; target?: { id?: string } }
  | { type: 'host-metrics'; hostId?: string }
  | { type: 'resync'; reason?: string }
  | { type: 'degraded'; reason?: string }
  | { type: 'error'; id?: string; message?: string }
  | { type: string };

const LISTS = [...keys.all, 'targets', 'list'] as const;

/** Whether a cached target list is filtered by status (its key's filter, see keys.targets). */
function byStatus(key: readonly unknown[]): boolean {
  const filter = key[LISTS.length] as { status?: readonly unknown[] } | undefined;
  return (filter?.status?.length ?? 0) > 0;
}

/** Status changes gathered this long are applied to the cached lists together: one new array per list. */
const PATCH_MS = 250;

/** Status changes are kept this long (at most RECENT_MAX of them) to re-apply to list answers read before them. */
const RECENT_MS = 60_000;
const RECENT_MAX = 10_000;

/** The list with `events` applied in order (the same array when none is for a target it holds). */
export function reapply(list: TargetView[], events: readonly StatusEvent[]): TargetView[] {
  if (events.length === 0) return list;
  const index = new Map(list.map((t, i) => [t.id, i]));
  let next: TargetView[] | undefined;
  for (const e of events) {
    const i = index.get(e.targetId);
    if (i === undefined) continue;
    next ??= list.slice();
    next[i] = patchTarget(next[i], e);
  }
  return next ?? list;
}

export function invalidator(
  queryClient: QueryClient,
  random: () => number = Math.random,
  now: () => number = Date.now,
) {
  const pending = new Set<string>();
  /** Status changes of the last RECENT_MS, in arrival order, with when they arrived (this page's clock). */
  let recent: { e: StatusEvent; t: number }[] = [];
  /** When each target list's fetch in flight started (this page's clock), by query hash. */
  const fetchStarted = new Map<string, number>();
  /**
   * A list answer from the server (not our own patch) was read after its fetch started: the changes that
   * arrived since then may be missing from it (a refetch in flight when they came), so they are applied to it
   * again, in arrival order. Times are this page's own (arrival, fetch start), never the servers' or the
   * collectors' clocks. A change the answer already holds is applied again harmlessly (the last one wins
   * either way). Lists filtered by status are left to their refetch (a change may move a row out of them).
   */
  const unsubscribe = queryClient.getQueryCache().subscribe((ev) => {
    if (ev.type !== 'updated') return;
    const key = ev.query.queryKey;
    if (key.length <= LISTS.length || LISTS.some((part, i) => key[i] !== part)) return;
    if (ev.action.type === 'fetch') {
      fetchStarted.set(ev.query.queryHash, now());
      return;
    }
    if (ev.action.type !== 'success' || ev.action.manual) return;
    const started = fetchStarted.get(ev.query.queryHash);
    fetchStarted.delete(ev.query.queryHash);
    const list = ev.query.state.data as TargetView[] | undefined;
    if (started === undefined || !list || byStatus(key)) return;
    const missed = recent.filter((r) => r.t >= started).map((r) => r.e);
    const next = reapply(list, missed);
    if (next !== list) queryClient.setQueryData<TargetView[]>(key, next);
  });
  let resyncTimer: ReturnType<typeof setTimeout> | null = null;
  /** Target lists the in-place patch could not make exact: refetched at the next flush. */
  const staleLists = new Map<string, readonly unknown[]>();
  let everyList = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  /** Status changes not yet applied, in arrival order. */
  let queued: StatusEvent[] = [];
  let patchTimer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    timer = null;
    const targets = [...pending];
    pending.clear();
    if (everyList) void queryClient.invalidateQueries({ queryKey: LISTS });
    // A refetch already running is left to finish (cancelled and restarted at every flush, a long list's
    // refetch under a steady stream of changes would never finish); its answer gets the changes since its start.
    else
      for (const key of staleLists.values())
        void queryClient.invalidateQueries({ queryKey: key, exact: true }, { cancelRefetch: false });
    staleLists.clear();
    everyList = false;
    void queryClient.invalidateQueries({ queryKey: keys.counts() });
    // The overview's latest changes: a change is a new first row.
    void queryClient.invalidateQueries({ queryKey: keys.recent() });
    // Pushed instances are targets too: their list and counts follow the same changes.
    void queryClient.invalidateQueries({ queryKey: [...keys.all, 'instances'] });
    for (const id of targets) {
      void queryClient.invalidateQueries({ queryKey: keys.target(id) });
      // Its detail page's results and status changes: the header said DOWN while "Status changes" ended at UP for
      // up to 30 s (the history's own poll). Only a page showing it refetches.
      // A refetch running is left to finish (a 90-day range of a flapping target would restart for ever).
      void queryClient.invalidateQueries({ queryKey: keys.historyOf(id) }, { cancelRefetch: false });
    }
  };
  const later = () => (timer ??= setTimeout(flush, INVALIDATE_MS));
  /**
   * Applies the queued changes: each cached list holding a changed target gets one new array (its other
   * entries the same objects, so React skips their rows); a list is refetched only where the patch cannot be
   * exact — filtered by status (the target may enter or leave it) or without the target (a new one, or one its
   * filter may now take). Under load (~100 changes a second) a page re-renders 4 times a second and downloads
   * nothing, instead of re-downloading every target (at 10,000 targets, 3.7 MB) each second.
   */
  const applyPatches = () => {
    patchTimer = null;
    const events = queued;
    queued = [];
    if (events.length === 0) return;
    for (const [key, list] of queryClient.getQueriesData<TargetView[]>({ queryKey: LISTS })) {
      const filteredByStatus = byStatus(key);
      let next: TargetView[] | undefined;
      let index: Map<string, number> | undefined;
      for (const e of events) {
        index ??= new Map((list ?? []).map((t, i) => [t.id, i]));
        const i = index.get(e.targetId);
        if (i === undefined || (e.location === null && filteredByStatus)) staleLists.set(JSON.stringify(key), key);
        if (i === undefined || !list) continue;
        next ??= list.slice();
        next[i] = patchTarget(next[i], e);
      }
      if (next) queryClient.setQueryData<TargetView[]>(key, next);
    }
    for (const e of events) {
      queryClient.setQueryData<TargetView>(keys.target(e.targetId), (t) => (t ? patchTarget(t, e) : t));
      pending.add(e.targetId);
    }
    later();
  };
  return {
    /** A status change: shown within PATCH_MS in every cached list holding the target and in the target itself. */
    status(e: StatusEvent | undefined) {
      if (!e?.targetId) return this.target(undefined);
      queued.push(e);
      const t = now();
      recent.push({ e, t });
      // Trimmed in chunks (not one entry per push): the window, and at most RECENT_MAX changes.
      if (recent.length > RECENT_MAX || recent[0].t < t - 2 * RECENT_MS) {
        const keep = recent.findIndex((r) => r.t >= t - RECENT_MS);
        recent = recent.slice(Math.max(keep < 0 ? recent.length : keep, recent.length - RECENT_MAX / 2));
      }
      patchTimer ??= setTimeout(applyPatches, PATCH_MS);
    },
    /** Something about a target changed that the page cannot apply itself: refetch what shows it. */
    target(id: string | undefined) {
      if (id) pending.add(id);
      everyList = true;
      later();
    },
    /**
     * Changes may have been missed: every query is read again after a random 0–RESYNC_SPREAD_MS (queued patches are
     * then superseded by the answers); resyncs asked for meanwhile are covered by that one.
     */
    resync() {
      resyncTimer ??= setTimeout(resyncNow, Math.floor(random() * RESYNC_SPREAD_MS));
    },
    cancel() {
      unsubscribe();
      if (timer) clearTimeout(timer);
      if (patchTimer) clearTimeout(patchTimer);
      if (resyncTimer) clearTimeout(resyncTimer);
    },
  };
  function resyncNow() {
    resyncTimer = null;
    queued = [];
    if (patchTimer) clearTimeout(patchTimer);
    patchTimer = null;
    if (timer) clearTimeout(timer);
    timer = null;
    pending.clear();
    staleLists.clear();
    everyList = false;
    void queryClient.invalidateQueries({ queryKey: keys.all });
  }
}

export type Changes = ReturnType<typeof invalidator>;

/**
 * Acts on one frame from the gateway. `ready`: subscribes (and, when this is not the first socket, resyncs:
 * changes made while no socket was open were not seen); returns the frame's type for the caller's state.
 */
export function onServerFrame(
  data: unknown,
  changes: Changes,
  queryClient: QueryClient,
  send: (frame: string) => void,
  reconnected: boolean,
): string | undefined {
  let msg: ServerMessage;
  try {
    msg = JSON.parse(String(data)) as ServerMessage;
  } catch {
    return undefined;
  }
  if (msg.type === 'ready') {
    // Subscribe once the gateway says it is listening (a frame sent on open could arrive first).
    send(JSON.stringify({ type: 'subscribe', id: STATUS_SUBSCRIPTION, topic: 'status', filter: {} }));
    if (reconnected) changes.resync();
  } else if (msg.type === 'status.changed') changes.status(statusEventOf((msg as { event?: unknown }).event));
  else if (msg.type === 'target') changes.target((msg as { target?: { id?: string } }).target?.id);
  else if (msg.type === 'host-metrics') void queryClient.invalidateQueries({ queryKey: keys.hosts() });
  else if (msg.type === 'resync') changes.resync();
  else if (msg.type === 'error' && (msg as { id?: unknown }).id === STATUS_SUBSCRIPTION) return REFUSED;
  return msg.type;
}

/** The fields the page applies from a `status.changed` frame's event, or undefined when they are not all there. */
export function statusEventOf(e: unknown): StatusEvent | undefined {
  const v = e as Partial<StatusEvent> | null | undefined;
  if (!v || typeof v.targetId !== 'string' || typeof v.to !== 'string' || typeof v.at !== 'string') return undefined;
  if (v.location !== null && typeof v.location !== 'string') return undefined;
  return { targetId: v.targetId, location: v.location, to: v.to, at: v.at };
}

/** What the footer shows: the socket's state, and the gateway's words when it refused the page's subscription. */
export interface LiveStatus {
  state: LiveState;
  refusal: string | null;
}

/** The status after one frame from the gateway (`type`: what onServerFrame answered for it). */
export function liveStatusAfter(status: LiveStatus, type: string | undefined, data: unknown): LiveStatus {
  const state = liveStateAfter(status.state, type);
  const refusal = type === REFUSED ? refusalOf(data) : state === 'refused' ? status.refusal : null;
  return state === status.state && refusal === status.refusal ? status : { state, refusal };
}

/** Holds one socket while signed in; returns its state for the page to show. */
export function useLiveUpdates(signedIn: boolean, onSessionEnded: () => void): LiveStatus {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<LiveStatus>({ state: 'connecting', refusal: null });
  useEffect(() => {
    if (!signedIn || typeof WebSocket === 'undefined') return;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const backoff = new ReconnectBackoff();
    let stopped = false;
    let opened = false;
    const changes = invalidator(queryClient);

    const connect = () => {
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
      socket = new WebSocket(url);
      socket.onmessage = (e) => {
        const type = onServerFrame(e.data, changes, queryClient, (frame) => socket?.send(frame), opened);
        if (type === 'ready') {
          opened = true;
          backoff.opened();
        }
        setStatus((current) => liveStatusAfter(current, type, e.data));
      };
      socket.onclose = (e) => {
        socket = null;
        if (stopped) return;
        if (e.code === SESSION_ENDED) {
          onSessionEnded();
          return;
        }
        setStatus({ state: 'polling', refusal: null });
        retry = setTimeout(connect, backoff.closed());
      };
    };
    connect();
    return () => {
      stopped = true;
      changes.cancel();
      if (retry) clearTimeout(retry);
      socket?.close(1000, 'signed out');
    };
  }, [signedIn, queryClient, onSessionEnded]);
  return signedIn ? status : { state: 'connecting', refusal: null };
}
