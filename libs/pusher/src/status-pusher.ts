import { randomUUID } from 'node:crypto';
import {
  ApiErrorCode,
  MAX_BATCH_UPDATES,
  statusUpdateInputSchema,
  type StatusUpdateInput,
} from '@fleetwatch/contracts';
import { nextRetryDelayMs, retryAfterMs } from './backoff';
import { MAX_DATED_AHEAD_MS } from './dated-in-order';

/** Where the pusher reports what it did; the watchers pass their JSON-lines logger. */
export interface PushLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Why updates were given up on: pushed out of a full queue, or refused by the ingest (a 4xx naming them). */
export type DropReason = 'overflow' | 'refused';

export interface StatusPusherOptions {
  /** Base URL of status-ingest (`http://127.0.0.1:3001`). */
  url: string;
  /** An API key with the `ingest` scope, sent as `Authorization: Bearer`. */
  apiKey: string;
  log: PushLog;
  /** Updates per request, at most 1000 (the ingest's batch limit). */
  maxBatch?: number;
  /** JSON bytes per request, at most (stays under the ingest's body limit, 1 MiB by default). */
  maxBatchBytes?: number;
  /** Updates waiting to be sent, at most; beyond, the oldest are dropped and counted. */
  maxQueue?: number;
  /** JSON bytes (UTF-8) of the updates waiting to be sent, at most (32 MiB); beyond, the oldest are dropped and counted. */
  maxQueueBytes?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  requestTimeoutMs?: number;
  /**
   * A lone update refused 403 without the ingest's error code is dropped (a filter's answer to its payload) only if
   * something was taken past it at least this long after it was first held (default FORBIDDEN_FLICKER_MS): not while
   * ingest replicas disagree on a key behind a proxy that replaces their error bodies (the ingest's own 403 is held).
   */
  forbiddenFlickerMs?: number;
  /**
   * How long a request waits for more updates when fewer than a batch are queued: a resync
   * or a burst of events leaves in a few large requests instead of one request per update.
   */
  lingerMs?: number;
  /**
   * Reports an instance's latest state again once this long has passed since an update of it was last accepted
   * (0: never). The aggregator marks a pushed instance STALE when nothing is heard from it for STALE_AFTER_SECONDS
   * (300 s by default), and a container that keeps running has no change to report: keep this well below that.
   * A refresh is the state last queued for the instance (by `instanceId` and `location`), with a new `updateId`
   * and dated now; a later update dated before a refresh is dated as the refresh (the aggregator ignores an
   * observation older than the one it holds). An update queued with `final` (a removal) ends the refreshes.
   */
  refreshMs?: number;
  /** Refreshes are sent only while this says so (a watcher: while it follows its source). Default: always. */
  refreshWhile?: () => boolean;
}

/** What `enqueue` is told about an update besides the update. */
export interface EnqueueOptions {
  /** The instance's last update (it was removed): it is not refreshed after this one. */
  final?: boolean;
}

/** An instance the pusher reports again while nothing changes (refreshMs). */
interface Refreshable {
  /** JSON of the last update queued for it. */
  json: string;
  /** When an update of it was last accepted (or queued). */
  lastAt: number;
  /** updateId of its latest update while that is queued or in flight. */
  pending: string | null;
  /** Epoch ms of its latest refresh: no later update of it is dated before. */
  floor: number;
}

export interface PushStats {
  /** Updates the ingest answered 202 for. */
  accepted: number;
  /** Requests sent (each attempt counts). */
  requests: number;
  /** Attempts answered 429/5xx/401/403 or lost on the network, then retried. */
  retries: number;
  /** Attempts answered 401/403 (the API key refused, or a 403 from in front for every request); held and retried. */
  authRefused: number;
  /** Attempts answered 404/405/410/415/421/426 (the URL or a proxy); the updates are held and retried. */
  endpointRefused: number;
  droppedInvalid: number;
  droppedRefused: number;
  droppedOverflow: number;
  /** Updates sent again unchanged so that their instance does not go STALE (refreshMs). */
  refreshed: number;
}

type Outcome =
  | { kind: 'accepted' }
  | { kind: 'retry'; reason: string; retryAfter?: number }
  /** `answer`: the ingest's own message, when the body is its error (`ingestRefusalOf`); absent for another's. */
  | { kind: 'unauthorized'; status: number; answer?: string }
  /** A 4xx that is no judgement of the updates (ENDPOINT_STATUSES): the URL or a proxy in front is wrong. */
  | { kind: 'endpoint'; status: number; reason: string }
  | { kind: 'refused'; status: number; reason: string; badIndexes: number[] }
  | { kind: 'too-large' };

/**
 * Sends status updates to status-ingest exactly as an outside daemon does (SPEC §6).
 * Each update is validated with the shared contract before it is queued (one that would
 * be refused is logged and dropped here, naming the field). A request answered 429 or
 * 503 (or 5xx, or lost on the network) is retried with exponential backoff and jitter,
 * honouring Retry-After, for as long as it takes; the queue is bounded by count and by
 * JSON bytes (the oldest dropped and counted). 401/403 (a rotated or revoked key) hold
 * the queue and retry with the same backoff, logging an error at most once a minute, so
 * nothing is lost while the key is replaced. The ingest's own 403 says so in its body
 * (`{"error":{"code":"forbidden"}}`: `ingestRefusalOf`) and is held so at once; a 403 without that code can come from a filter in front (a WAF) judging
 * one payload: a batch so answered is halved as for another 4xx below, and a lone update so refused is dropped once the
 * endpoint is seen taking others past it (see the run loop) — otherwise the queue is held, as for a refused key. 404,
 * 405, 410, 415, 421 and 426 (a wrong URL, or a proxy in front
 * answering for an ingest not yet behind it during a rollout: ENDPOINT_STATUSES) say nothing about the updates: held
 * and retried like a refused key, an error logged at most once a minute. A 400 (the ingest's only answer about an
 * update's content) or another 4xx is not retried: the updates it names are logged and dropped with the reason, the
 * rest of the batch is sent again. Every update carries an `updateId` (the caller's,
 * deterministic per event; a random one otherwise), so a retry after a lost answer is
 * never stored twice.
 */
export class StatusPusher {
  readonly stats: PushStats = {
    accepted: 0,
    requests: 0,
    retries: 0,
    authRefused: 0,
    endpointRefused: 0,
    droppedInvalid: 0,
    droppedRefused: 0,
    droppedOverflow: 0,
    refreshed: 0,
  };
  private readonly queue: Queued[] = [];
  private queueBytes = 0;
  private lastAuthErrorAt = Number.NEGATIVE_INFINITY;
  private lastEndpointErrorAt = Number.NEGATIVE_INFINITY;
  private lastOverflowLogAt = Number.NEGATIVE_INFINITY;
  /** Updates dropped on overflow since the last "queue full" line. */
  private overflowUnlogged = 0;
  private readonly endpoint: string;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly maxQueue: number;
  private readonly maxQueueBytes: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly requestTimeoutMs: number;
  private readonly forbiddenFlickerMs: number;
  private readonly lingerMs: number;
  private readonly refreshMs: number;
  /** Instances reported again while nothing changes, by `instanceId` and `location`. */
  private readonly refreshable = new Map<string, Refreshable>();
  /** The instance key of each pending update that is the latest of its instance. */
  private readonly refreshKeyOf = new Map<string, string>();
  /**
   * When each instance (by `instanceId` and `location`) was last reported removed (a `final` update), epoch ms: an
   * update of it queued later is dated after that (its next life — a pod re-created under its name), since the
   * aggregator keeps a removal against an update that is not newer. The most recent REMOVALS_KEPT.
   */
  private readonly removedAt = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private inFlight = 0;
  private readonly stopSignal = new AbortController();

  constructor(private readonly opts: StatusPusherOptions) {
    // fetch refuses a URL with user:pass@ (and would echo it in its error): the API key is
    // the credential, so userinfo (and a query string, which the path replaces anyway) goes.
    this.endpoint = updatesEndpointOf(opts.url);
    if (ingestBaseUrl(opts.url) !== opts.url)
      opts.log.warn('ingest URL: userinfo and query string ignored (the API key is the credential)', {
        url: redactUrl(opts.url),
      });
    this.maxBatch = Math.max(1, Math.min(opts.maxBatch ?? 500, MAX_BATCH_UPDATES));
    this.maxBatchBytes = opts.maxBatchBytes ?? 768 * 1024;
    this.maxQueue = opts.maxQueue ?? 100_000;
    this.maxQueueBytes = opts.maxQueueBytes ?? 32 * 1024 * 1024;
    this.baseDelayMs = opts.baseDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 15_000;
    this.forbiddenFlickerMs = opts.forbiddenFlickerMs ?? FORBIDDEN_FLICKER_MS;
    this.lingerMs = opts.lingerMs ?? 20;
    this.refreshMs = Math.max(0, opts.refreshMs ?? 0);
  }

  /** JSON bytes of the updates queued (not those in flight). */
  get queuedBytes(): number {
    return this.queueBytes;
  }

  /** Updates queued or in flight. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Validates and queues one update; false (logged, counted) when the contract refuses it. */
  private readonly acceptedListeners: Array<(updates: readonly StatusUpdateInput[]) => void> = [];
  private readonly droppedListeners: Array<(updates: readonly StatusUpdateInput[], reason: DropReason) => void> = [];

  /**
   * Called with updates given up on — the oldest pushed out of a full queue, or refused by the ingest — so a
   * watcher can send the object's current state again later instead of believing it delivered.
   */
  onDropped(listener: (updates: readonly StatusUpdateInput[], reason: DropReason) => void): void {
    this.droppedListeners.push(listener);
  }

  /** Updates the queue holds at most (a caller tracking what it queued bounds its own books by this). */
  get capacity(): number {
    return this.maxQueue;
  }

  private tell(
    listeners: ReadonlyArray<(updates: readonly StatusUpdateInput[], reason: DropReason) => void>,
    updates: readonly StatusUpdateInput[],
    reason: DropReason = 'refused',
  ): void {
    for (const listener of listeners) {
      try {
        listener(updates, reason);
      } catch (e) {
        this.opts.log.warn('push listener failed', { error: (e as Error).message });
      }
    }
  }

  /** Called with each batch the ingest answered 202 for (what a watcher may record as delivered). */
  onAccepted(listener: (updates: readonly StatusUpdateInput[]) => void): void {
    this.acceptedListeners.push(listener);
  }

  enqueue(update: StatusUpdateInput, options: EnqueueOptions = {}): boolean {
    let withId = update.updateId ? update : { ...update, updateId: randomUUID() };
    const key = this.refreshMs > 0 ? refreshKey(withId) : null;
    const final = options.final === true;
    const removedKey = final || this.removedAt.size > 0 ? refreshKey(withId) : null;
    const refreshFloor = key === null ? 0 : (this.refreshable.get(key)?.floor ?? 0);
    // After a removal of the instance: strictly later (a removal wins a tie at the aggregator).
    const removed = removedKey === null || final ? undefined : this.removedAt.get(removedKey);
    const floor = Math.max(refreshFloor, removed === undefined ? 0 : removed + 1);
    // Never dated before a refresh of its instance: the aggregator would take it for older than what it holds. Nor
    // moved more than MAX_DATED_AHEAD_MS past this clock (as datedAfter): a floor further ahead was set before the
    // clock was stepped back, and an update moved to it is refused by the ingest (its future allowance) and dropped —
    // and so every later one of the instance until the clock caught up. Such an update keeps its own date.
    if (
      floor > 0 &&
      floor <= Date.now() + MAX_DATED_AHEAD_MS &&
      typeof withId.occurredAt === 'string' &&
      Date.parse(withId.occurredAt) < floor
    )
      withId = { ...withId, occurredAt: new Date(floor).toISOString() };
    const parsed = statusUpdateInputSchema.safeParse(withId);
    if (!parsed.success) {
      this.stats.droppedInvalid++;
      this.opts.log.warn('update dropped: the contract refuses it', {
        instanceId: typeof update.instanceId === 'string' ? update.instanceId.slice(0, 256) : undefined,
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(update)'}: ${i.message}`),
      });
      return false;
    }
    const json = JSON.stringify(withId);
    const bytes = Buffer.byteLength(json);
    if (key !== null) this.remember(key, withId.updateId as string, json, final);
    if (final && removedKey !== null) {
      const at = typeof withId.occurredAt === 'string' ? Date.parse(withId.occurredAt) : Date.now();
      const before = this.removedAt.get(removedKey) ?? 0;
      // Re-inserted: the map's order is the removals' (the oldest is forgotten first).
      this.removedAt.delete(removedKey);
      this.removedAt.set(removedKey, Math.max(at, before));
      if (this.removedAt.size > REMOVALS_KEPT) this.removedAt.delete(this.removedAt.keys().next().value as string);
    }
    this.queue.push({ update: withId, bytes });
    this.queueBytes += bytes;
    let over = 0;
    const pushedOut: StatusUpdateInput[] = [];
    while (this.queue.length > 1 && (this.queue.length > this.maxQueue || this.queueBytes > this.maxQueueBytes)) {
      const oldest = this.queue.shift();
      this.queueBytes -= oldest?.bytes ?? 0;
      // Positions past the head move with it: the updates held there, and where the batch in flight goes back.
      if (this.held > 0) this.held--;
      if (this.takenAt > 0) this.takenAt--;
      if (oldest) {
        pushedOut.push(oldest.update);
        this.forbiddenSince.delete(oldest.update.updateId as string);
      }
      over++;
    }
    if (pushedOut.length > 0) {
      this.settleRefresh(pushedOut, 'overflow');
      this.tell(this.droppedListeners, pushedOut, 'overflow');
    }
    if (over > 0) {
      this.stats.droppedOverflow += over;
      this.overflowUnlogged += over;
      // Once a minute at most: during a long outage every new update drops one, which would flood the log.
      const now = Date.now();
      if (now - this.lastOverflowLogAt >= 60_000) {
        this.lastOverflowLogAt = now;
        this.opts.log.error('push queue full: oldest updates dropped', {
          dropped: this.overflowUnlogged,
          droppedTotal: this.stats.droppedOverflow,
          maxQueue: this.maxQueue,
          maxQueueBytes: this.maxQueueBytes,
        });
        this.overflowUnlogged = 0;
      }
    }
    this.wake?.();
    return true;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
    if (this.refreshMs > 0) {
      this.refreshTimer = setInterval(() => this.refreshDue(), Math.max(50, Math.min(5_000, this.refreshMs / 4)));
      this.refreshTimer.unref();
    }
  }

  /**
   * Queues the latest state of every instance whose last update was accepted `refreshMs` ago or more, with a new
   * updateId and dated now (what the timer started by `start` does). Returns how many were queued.
   */
  refreshDue(now: number = Date.now()): number {
    if (this.refreshMs <= 0 || !(this.opts.refreshWhile?.() ?? true)) return 0;
    let queued = 0;
    for (const [key, entry] of [...this.refreshable]) {
      // A last acceptance ahead of `now` was timed before this clock was stepped back: due now (counted from it, the
      // instance went unrefreshed, and STALE, until the clock caught up).
      const waited = entry.lastAt > now ? this.refreshMs : now - entry.lastAt;
      if (entry.pending !== null || waited < this.refreshMs || this.refreshable.get(key) !== entry) continue;
      const last = JSON.parse(entry.json) as StatusUpdateInput;
      const again: StatusUpdateInput = { ...last, updateId: randomUUID() };
      if (last.occurredAt !== undefined) {
        again.occurredAt = new Date(now).toISOString();
        entry.floor = now;
      }
      if (this.enqueue(again)) queued++;
      // Whatever happened to it, this instance is not looked at again before its next period.
      entry.lastAt = now;
    }
    this.stats.refreshed += queued;
    return queued;
  }

  /**
   * An instance whose state the ingest already has from an earlier run (a watcher's ledger), not sent again: it is
   * refreshed like one accepted long ago (at the next refresh). Nothing changes for an instance already followed.
   */
  keep(update: StatusUpdateInput): void {
    if (this.refreshMs <= 0 || !statusUpdateInputSchema.safeParse(update).success) return;
    const key = refreshKey(update);
    if (this.refreshable.has(key)) return;
    this.refreshable.set(key, { json: JSON.stringify(update), pending: null, lastAt: 0, floor: 0 });
  }

  /**
   * The caller no longer knows the instance's state (a container its engine cannot describe): its refreshes end — a
   * refresh says "as last reported", which nobody knows any more — so it goes STALE unless a new update comes. A later
   * update (or keep) of it starts them again. Nothing is sent.
   */
  release(update: Pick<StatusUpdateInput, 'instanceId' | 'location'>): void {
    const key = refreshKey(update);
    const entry = this.refreshable.get(key);
    if (!entry) return;
    if (entry.pending) this.refreshKeyOf.delete(entry.pending);
    this.refreshable.delete(key);
  }

  private remember(key: string, updateId: string, json: string, final: boolean): void {
    const entry = this.refreshable.get(key);
    if (entry?.pending) this.refreshKeyOf.delete(entry.pending);
    if (final) {
      this.refreshable.delete(key);
      return;
    }
    if (entry) {
      entry.json = json;
      entry.pending = updateId;
      entry.lastAt = Date.now();
    } else this.refreshable.set(key, { json, pending: updateId, lastAt: Date.now(), floor: 0 });
    this.refreshKeyOf.set(updateId, key);
  }

  /**
   * An instance's latest update was answered: accepted (its period starts again), pushed out of the queue (the
   * next refresh sends its state), or refused (no longer refreshed: it would be refused again).
   */
  private settleRefresh(updates: readonly StatusUpdateInput[], outcome: 'accepted' | 'overflow' | 'refused'): void {
    if (this.refreshKeyOf.size === 0) return;
    const now = Date.now();
    for (const u of updates) {
      const key = this.refreshKeyOf.get(u.updateId as string);
      if (key === undefined) continue;
      this.refreshKeyOf.delete(u.updateId as string);
      const entry = this.refreshable.get(key);
      if (!entry || entry.pending !== u.updateId) continue;
      entry.pending = null;
      if (outcome === 'accepted') entry.lastAt = now;
      else if (outcome === 'refused') this.refreshable.delete(key);
    }
  }

  /** Resolves once everything queued so far has been answered (accepted or dropped). */
  async drained(): Promise<void> {
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops sending; waits up to `graceMs` for the queue to drain first. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    // Nothing new is queued while the queue drains.
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.drained(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.running = false;
    this.stopSignal.abort();
    this.wake?.();
    await this.loop;
    if (this.queue.length) this.opts.log.warn('stopped with updates unsent', { unsent: this.queue.length });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      if (this.queue.length === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (this.lingerMs > 0 && this.queue.length < this.maxBatch && this.splitNext === 0)
        await this.sleep(this.lingerMs);
      // While held by an endpoint that refused even a lone update (refusingAll), the retry leaves the queue's head out
      // when there is more: if the rest is taken, the endpoint refuses that payload, not every request (a WAF's 403 or
      // 406 for one update's content), so the head is sent again alone and dropped if still refused — before, one
      // such update held every later one for ever. A key refused or a wrong URL refuses the rest too: still held.
      // The updates refused alone with nothing taken since (`held`) are all left out, and a probe is halved (413, or
      // refused) past them, not from the head — which would be refused again and held, for ever.
      const probe = this.refusingAll && this.queue.length > this.held ? this.held : 0;
      const half = this.splitNext > 0;
      const taken = this.takeBatch(probe);
      const batch = taken.map((q) => q.update);
      this.takenAt = probe;
      this.inFlight = batch.length;
      let outcome = await this.send(batch);
      this.inFlight = 0;
      // A lone update refused by another 4xx than 400 is dropped only if the endpoint took something since the halving
      // began: otherwise it refuses every request (a filter answering 406 or 451 for all), which says nothing about
      // the updates — held and retried as for a wrong URL, not every update dropped in turn (and its refreshes ended).
      // Once so found, a batch refused the same way is held at once (no halving chain per retry) until one is taken.
      if (
        outcome.kind === 'refused' &&
        outcome.status !== 400 &&
        (batch.length === 1 ? !this.mayDrop(outcome.status, batch[0]?.updateId as string) : this.refusingAll)
      ) {
        if (outcome.status === 403 && batch.length === 1 && !this.forbiddenSince.has(batch[0]?.updateId as string))
          this.forbiddenSince.set(batch[0]?.updateId as string, Date.now());
        outcome =
          outcome.status === 403
            ? { kind: 'unauthorized', status: 403 }
            : { kind: 'endpoint', status: outcome.status, reason: outcome.reason };
        this.refusalChain = null;
        this.refusingAll = true;
        // Held (one request per backoff), but the probes go on: a refused probe's next try is its first half, and a
        // lone update so refused is held with those before it, the next probe starting past it. Before, one more
        // payload refused among the probe's held every later update for ever. The held updates themselves, sent
        // together once nothing else is queued, are halved too: one of them refused for its payload (a filter) kept
        // the others — refused alone only while the key was revoked — held with it until another update came.
        if (batch.length === 1) this.held = probe + 1;
        else {
          this.held = Math.max(this.held, 1);
          this.splitNext = Math.ceil(batch.length / 2);
        }
      }
      if (outcome.kind === 'accepted') {
        // A whole batch from the head taken: whatever was refused is gone (or was refused for a moment): the chain
        // ends, so a later refusal (a key revoked) starts from no evidence. A half taken: evidence for the chain.
        if (!half && !probe) this.refusalChain = null;
        else if (this.refusalChain) this.refusalChain.accepted = true;
        // The rest taken past a refused head: the head is sent next, alone, and dropped if refused again.
        else if (probe && this.refusingAll) this.refusalChain = { accepted: true, afterHold: true, at: Date.now() };
        for (const u of batch) this.forbiddenSince.delete(u.updateId as string);
        this.refusingAll = false;
        this.held = 0;
        this.stats.accepted += batch.length;
        attempt = 0;
        this.settleRefresh(batch, 'accepted');
        this.tell(this.acceptedListeners, batch);
      } else if (outcome.kind === 'retry' || outcome.kind === 'unauthorized' || outcome.kind === 'endpoint') {
        this.requeue(taken, this.takenAt);
        // Whatever a halving had seen taken is old news after an outage (a key revoked meanwhile would have a lone
        // update dropped on it): the next refusal starts from no evidence (held, then probed).
        this.refusalChain = null;
        if (!this.running) break;
        this.stats.retries++;
        const delay = nextRetryDelayMs(attempt++, outcome.kind === 'retry' ? outcome.retryAfter : undefined, {
          baseMs: this.baseDelayMs,
          maxMs: this.maxDelayMs,
        });
        if (outcome.kind === 'retry') {
          this.opts.log.warn('push deferred, retrying', {
            reason: redactText(outcome.reason),
            updates: batch.length,
            delayMs: delay,
          });
        } else if (outcome.kind === 'endpoint') {
          this.stats.endpointRefused++;
          const now = Date.now();
          if (now - this.lastEndpointErrorAt >= 60_000) {
            this.lastEndpointErrorAt = now;
            this.opts.log.error(
              `the ingest URL answers ${outcome.status}: updates held and retried; check FLEETWATCH_INGEST_URL and any proxy in front of status-ingest`,
              {
                status: outcome.status,
                endpoint: redactUrl(this.endpoint),
                answer: redactText(outcome.reason.slice(0, 200)),
                pending: this.pending,
                delayMs: delay,
                endpointRefused: this.stats.endpointRefused,
              },
            );
          }
        } else {
          this.stats.authRefused++;
          const now = Date.now();
          if (now - this.lastAuthErrorAt >= 60_000) {
            this.lastAuthErrorAt = now;
            this.opts.log.error(
              outcome.status !== 403
                ? `the ingest refuses the API key (${outcome.status}): updates held and retried, replace FLEETWATCH_INGEST_API_KEY`
                : outcome.answer !== undefined
                  ? "the ingest refuses the API key (403): updates held and retried; check the key's scopes, allowed networks and certificate (FLEETWATCH_INGEST_API_KEY)"
                  : "the ingest refuses the API key (403), or a filter in front refuses every update sent: updates held and retried; check the key's scopes, allowed networks and certificate (FLEETWATCH_INGEST_API_KEY) and any proxy in front",
              {
                status: outcome.status,
                ...(outcome.answer !== undefined ? { answer: redactText(outcome.answer.slice(0, 200)) } : {}),
                pending: this.pending,
                delayMs: delay,
                authRefused: this.stats.authRefused,
              },
            );
          }
        }
        await this.sleep(delay);
      } else if (outcome.kind === 'too-large') {
        if (batch.length === 1) {
          this.drop(batch, 413, 'the update alone is over the ingest body limit');
        } else {
          // Send the halves one after the other.
          const half = Math.ceil(batch.length / 2);
          this.requeue(taken, this.takenAt);
          this.splitNext = half;
        }
      } else {
        attempt = 0;
        const bad = new Set(outcome.badIndexes.filter((i) => i >= 0 && i < batch.length));
        if (batch.length === 1) {
          this.refusalChain = null;
          this.drop(batch, outcome.status, outcome.reason);
        } else if (bad.size === 0) {
          // A refusal naming no update (a filter in front judging the payload): halves until the one it refuses is
          // alone, so the rest of the batch is not dropped with it.
          this.refusalChain ??= { accepted: false, afterHold: false, at: 0 };
          this.requeue(taken, this.takenAt);
          this.splitNext = Math.ceil(batch.length / 2);
        } else {
          this.drop(
            batch.filter((_, i) => bad.has(i)),
            outcome.status,
            outcome.reason,
          );
          this.requeue(
            taken.filter((_, i) => !bad.has(i)),
            this.takenAt,
          );
        }
      }
    }
  }

  private splitNext = 0;
  /** While a refused batch is being halved: whether the endpoint accepted anything since (see the run loop). */
  private refusalChain: { accepted: boolean; afterHold: boolean; at: number } | null = null;
  /** Lone updates held on a 403, by updateId: when first so refused (see mayDrop). */
  private readonly forbiddenSince = new Map<string, number>();

  /**
   * Whether a lone update refused with `status` (a 4xx but 400) is dropped: only if the endpoint took something since
   * the halving began. For a 403 without the ingest's error code (the ingest's own never comes here: `send` holds it)
   * — a filter's answer, or a refused key's behind a proxy that replaces error bodies — only if it took something past
   * that update (a probe) at least FORBIDDEN_FLICKER_MS after it was first held: while ingest replicas disagree about a
   * key (each caches its verdict, INGEST_AUTH_CACHE_MS, at most 4 s), 403 and 202 alternate, and a good update was
   * dropped on a probe one replica still took — the halves taken before it, or a probe a moment after.
   */
  private mayDrop(status: number, updateId: string): boolean {
    const chain = this.refusalChain;
    if (chain === null || !chain.accepted) return false;
    if (status !== 403) return true;
    const since = this.forbiddenSince.get(updateId);
    return chain.afterHold && since !== undefined && chain.at - since >= this.forbiddenFlickerMs;
  }
  /** The endpoint refused every request of a halving chain (nothing taken since): it refuses all, not a payload. */
  private refusingAll = false;
  /** While refusingAll: how many updates at the queue's head were each refused alone (left out of the probes). */
  private held = 0;
  /** Where the batch in flight was taken from, and goes back to (a queue overflowing meanwhile moves it). */
  private takenAt = 0;

  /** Takes the next batch from the queue, from position `from` (the updates held at its head left out: the run loop). */
  private takeBatch(from: number): Queued[] {
    const limit = this.splitNext > 0 ? this.splitNext : this.maxBatch;
    this.splitNext = 0;
    let bytes = 2;
    let n = 0;
    // The ingest refuses a batch holding one updateId twice (all of it): a repeat of an update already in this
    // batch is the same update (same updateId = same update), so it is taken out and sent once. A repeat of a head
    // left out is that update too.
    const ids = new Set<string>(this.queue.slice(0, from).map((q) => q.update.updateId as string));
    while (from + n < this.queue.length && n < limit) {
      const q = this.queue[from + n] as Queued;
      const id = q.update.updateId as string;
      if (ids.has(id)) {
        this.queue.splice(from + n, 1);
        this.queueBytes -= q.bytes;
        continue;
      }
      const size = q.bytes + 1;
      if (n > 0 && bytes + size > this.maxBatchBytes) break;
      bytes += size;
      ids.add(id);
      n++;
    }
    const taken = this.queue.splice(from, n);
    for (const q of taken) this.queueBytes -= q.bytes;
    return taken;
  }

  /** Puts a batch back where it was taken from (the head, or past it), in order (retries never re-order). */
  private requeue(taken: Queued[], at = 0): void {
    this.queue.splice(at, 0, ...taken);
    for (const q of taken) this.queueBytes += q.bytes;
  }

  private drop(updates: StatusUpdateInput[], status: number, reason: string): void {
    for (const u of updates) this.forbiddenSince.delete(u.updateId as string);
    this.stats.droppedRefused += updates.length;
    this.settleRefresh(updates, 'refused');
    this.tell(this.droppedListeners, updates, 'refused');
    this.opts.log.error('updates refused by the ingest: dropped, not retried', {
      status,
      // Only a 403 without the ingest's error code is ever dropped (its own holds the queue: see send).
      ...(status === 403
        ? { refusedBy: "a filter in front of the ingest (a 403 without the ingest's error code)" }
        : {}),
      reason: redactText(reason.slice(0, 2000)),
      updateIds: updates.slice(0, 10).map((u) => u.updateId),
      count: updates.length,
    });
  }

  private async send(batch: StatusUpdateInput[]): Promise<Outcome> {
    const body = JSON.stringify(batch.length === 1 ? batch[0] : { updates: batch });
    this.stats.requests++;
    // The request's own signal, aborted by its timer (the answer, body included, within requestTimeoutMs) or by stop.
    // Not AbortSignal.any([AbortSignal.timeout(…), stop]): `any` holds its sources weakly, and so does the timer behind
    // AbortSignal.timeout, so once nothing else held the timeout signal a garbage collection took it and its abort
    // never reached the composite — an endpoint that never answered, or sent its headers and then stalled the body,
    // hung the pusher for ever (every update held) unless it was stopped. The timer and the stop listener hold this
    // controller until the answer is read.
    const request = new AbortController();
    const timer = setTimeout(
      () => request.abort(new DOMException(`no whole answer within ${this.requestTimeoutMs} ms`, 'TimeoutError')),
      this.requestTimeoutMs,
    );
    timer.unref();
    const onStop = (): void => request.abort(this.stopSignal.signal.reason);
    if (this.stopSignal.signal.aborted) onStop();
    else this.stopSignal.signal.addEventListener('abort', onStop, { once: true });
    let res: Response;
    let text: string;
    try {
      try {
        res = await fetch(this.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.opts.apiKey}` },
          body,
          signal: request.signal,
        });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        return { kind: 'retry', reason: `network: ${e.cause?.code ?? e.name}: ${e.message}` };
      }
      // At most ANSWER_READ_LIMIT_BYTES of it (a WAF's page or a proxy's stream may have no end); a body that fails
      // (reset, the request timeout) is read as empty: a 403 so answered is judged as one without the ingest's code.
      text = await answerTextOf(res, ANSWER_READ_LIMIT_BYTES);
    } finally {
      clearTimeout(timer);
      this.stopSignal.signal.removeEventListener('abort', onStop);
    }
    if (res.status === 202 || res.status === 200) return { kind: 'accepted' };
    if (res.status === 413) return { kind: 'too-large' };
    // A 401 is about credentials (the ingest's: an unknown or revoked key; a proxy's own login), never a payload: held.
    if (res.status === 401) return { kind: 'unauthorized', status: 401, answer: ingestRefusalOf(401, text) };
    if (res.status === 403) {
      // Our ingest's 403 carries its error code (`{"error":{"code":"forbidden",…}}`) and is about the key (scope,
      // address, certificate), whatever the updates: held at once, never halved — halving it only sent more requests
      // and, with replicas disagreeing on the key a moment (403, 202, 403), could drop a good update. A 403 without it
      // (a WAF's HTML page, an empty body, another JSON) is something in front judging the payload, perhaps: judged as
      // another 4xx naming no update (halved; the refused update held until others are taken past it: mayDrop).
      const answer = ingestRefusalOf(403, text);
      if (answer !== undefined) return { kind: 'unauthorized', status: 403, answer };
      return { kind: 'refused', status: 403, reason: text, badIndexes: [] };
    }
    if (res.status === 429 || res.status === 408 || res.status >= 500)
      return {
        kind: 'retry',
        reason: `${res.status} ${text.slice(0, 200)}`,
        retryAfter: retryAfterMs(res.headers.get('retry-after')),
      };
    if (ENDPOINT_STATUSES.has(res.status)) return { kind: 'endpoint', status: res.status, reason: text };
    return {
      kind: 'refused',
      status: res.status,
      reason: text,
      badIndexes: batch.length > 1 ? badIndexesOf(text) : [],
    };
  }

  private sleep(ms: number): Promise<void> {
    const { signal } = this.stopSignal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      // The listener goes with the wait: one left per wait would pile up on a daemon that runs for weeks.
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Answers about the route, whatever the updates (a wrong URL, a proxy in front without the ingest behind it yet, one
 * that wants another protocol): the updates are held and retried. Another 4xx (406, 422, … from a filter in front
 * that may judge one payload) is a refusal as a 400 is, or one such update would hold the queue for ever.
 */
const ENDPOINT_STATUSES: ReadonlySet<number> = new Set([404, 405, 410, 415, 421, 426]);

/**
 * The most of an answer's body the pusher reads, in bytes: the ingest's own answers are far smaller (a 400 lists at
 * most 100 issues; a 202 names the ids of one batch). The rest of a longer one (a filter's page, a proxy streaming
 * without end) is left unread and the connection closed: before, it was read whole, into memory, until it ended or
 * the request timed out — hundreds of megabytes in a few seconds on a fast link, enough to take a watcher (and its
 * queue, held in memory) down.
 */
export const ANSWER_READ_LIMIT_BYTES = 1024 * 1024;

/** The first `limit` bytes of `res`'s body as text; '' when reading it fails (reset, the request's timeout). */
async function answerTextOf(res: Response, limit: number): Promise<string> {
  const body = res.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  try {
    while (size < limit) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        break;
      }
      chunks.push(next.value);
      size += next.value.byteLength;
    }
  } catch {
    return '';
  } finally {
    // What is left unread is dropped with its connection (cancel closes it), not drained.
    if (!done) void reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, limit));
}

/** Longer than status-ingest caches a key's verdict (INGEST_AUTH_CACHE_MS, capped at 4 s): see StatusPusher.mayDrop. */
export const FORBIDDEN_FLICKER_MS = 5_000;

/** Removals remembered (see StatusPusher.removedAt): a few hundred kilobytes at most. */
const REMOVALS_KEPT = 10_000;

/** The instance an update is about, for refreshes: its id and location. */
function refreshKey(update: Pick<StatusUpdateInput, 'instanceId' | 'location'>): string {
  return `${String(update.instanceId)}\u0000${update.location ?? ''}`;
}

interface Queued {
  update: StatusUpdateInput;
  /** UTF-8 bytes of its JSON. */
  bytes: number;
}

/** The updates endpoint's path under the ingest's base URL. */
const UPDATES_PATH = 'api/v1/status/updates';

/**
 * Where updates are posted: `api/v1/status/updates` under the path of the ingest URL, so that an ingest behind a
 * proxy that routes a prefix (`https://edge.example/fleetwatch-ingest`) is reached there, not at the host's root.
 * A URL that already names the endpoint (`…/api/v1/status/updates`: a setting that worked while the pusher ignored
 * the path) is that endpoint — posted under itself, every update would be answered 404 and dropped.
 */
export function updatesEndpointOf(raw: string): string {
  const base = new URL(ingestBaseUrl(raw));
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  if (base.pathname.endsWith(`/${UPDATES_PATH}/`)) base.pathname = base.pathname.slice(0, -1);
  else base.pathname += UPDATES_PATH;
  return base.toString();
}

/** The ingest URL the pusher sends to: no userinfo, query string or fragment (unchanged when it has none). */
export function ingestBaseUrl(raw: string): string {
  const u = new URL(raw);
  if (!u.username && !u.password && !u.search && !u.hash) return raw;
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** A URL fit for a log: userinfo and query string replaced by `***`. */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return redactText(raw);
  }
  const hadUser = u.username !== '' || u.password !== '';
  const hadQuery = u.search !== '';
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  let out = u.toString();
  if (hadUser) out = out.replace('://', '://***@');
  if (hadQuery) out += '?***';
  return out;
}

/** Any URL inside free text (an error message) with its userinfo and query string replaced by `***`. */
export function redactText(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1***@')
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s?#"']*)\?[^\s#"']*/gi, '$1?***');
}

/**
 * The ingest's own message when `body` is its answer to a refused key — `{"error":{"code":"unauthorized"|"forbidden",
 * "message":…}}` (libs/observability's error filter) for a 401 or 403 — and undefined for anything else: a filter's or
 * proxy's page, an empty body, JSON of another shape. A 403 so recognised is about the key, never the updates.
 */
export function ingestRefusalOf(status: 401 | 403, body: string): string | undefined {
  const code = status === 401 ? ApiErrorCode.Unauthorized : ApiErrorCode.Forbidden;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const error = (parsed as { error?: unknown } | null)?.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code: got, message } = error as { code?: unknown; message?: unknown };
  return got === code && typeof message === 'string' ? message : undefined;
}

/** The batch positions a 400 names (`updates.3.status: …`), so only those are dropped. */
export function badIndexesOf(body: string): number[] {
  const found = new Set<number>();
  // The issues' paths name the bad updates; their messages may mention others ("repeats updates.0.updateId").
  let paths: string[] | null = null;
  try {
    const parsed = JSON.parse(body) as { issues?: unknown; error?: { issues?: unknown } };
    const issues = parsed.error?.issues ?? parsed.issues;
    if (Array.isArray(issues))
      paths = issues
        .map((i) => (i as { path?: unknown } | null)?.path)
        .map((p) => (Array.isArray(p) ? p.join('.') : String(p ?? '')))
        .filter(Boolean);
  } catch {
    paths = null;
  }
  for (const text of paths ?? [body])
    for (const m of text.matchAll(/(?:^|[^\w])updates[.[](\d+)/g)) found.add(Number(m[1]));
  return [...found].sort((a, b) => a - b);
}
