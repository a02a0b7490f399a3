import {
  decideRateLimit,
  decideRetry,
  DEFAULT_CHANNEL_PAUSE,
  signedStatusChangeHeaders,
  type ChannelPausePolicy,
  type RetryPolicy,
} from '@fleetwatch/alerting';
import {
  subscriptionSecretContext,
  type ClaimedSubscriptionDelivery,
  type SubscriptionAttemptRecord,
  type SecretSealer,
  type SubscriptionDeliveriesRepository,
  type SubscriptionsRepository,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { sendHttp, type HttpTransportOptions } from '../delivery/http-transport';
import type { SendResult } from '../delivery/delivery.types';

// Status-change subscriptions, the sending half (issue 18): every replica runs this worker; a due delivery
// is claimed by one (SKIP LOCKED, with a claim deadline), sent signed (a fresh timestamp per attempt over the
// same body), and the attempt logged. Transient failures (network, timeout, 408/425/429/5xx) come back with
// exponential backoff and jitter (libs/alerting's retry policy, Retry-After honoured); any other answer, a
// deleted subscription or the policy's limits end it as failed. Polls every `pollMs`, at once when kicked.
// A receiver that rate limits (429, or 503 with Retry-After) pauses its whole subscription until its Retry-After
// (bounded: `pause`, as alert channels), in Postgres where claims are decided (subscription_pauses), so no replica —
// nor one started after a restart — sends the subscription's other deliveries into the limit; the deliveries waiting
// are not charged an attempt and keep their place. The subscription is the unit: claims are per subscription, and its
// receiver URL is only read from it after the claim.

export interface SubscriptionDeliveryOptions {
  owner: string;
  policy: RetryPolicy;
  http: HttpTransportOptions;
  /** A claim outlives the longest send. */
  leaseMs: number;
  pollMs: number;
  /** Deliveries claimed per round (sent concurrently). */
  batch: number;
  /**
   * Deliveries of one subscription under way at once at most, across every replica (the claim counts the deliveries
   * any replica holds a live lease on; default half the batch, as alert delivery gives one channel half its
   * concurrency): a receiver that hangs until the send timeout, with a backlog, cannot fill every
   * claim and hold up the other subscriptions' deliveries behind it, and a lone subscription's burst still goes out
   * half a batch a round (4 cut its throughput to a fifth of the batch's).
   */
  perSubscription?: number;
  /** How long a subscription pauses when its receiver rate limits (default without Retry-After, bounds). */
  pause?: ChannelPausePolicy;
  /** Finished deliveries (and their log, and pauses over) are kept this long, then deleted (checked at most hourly). */
  retentionMs: number;
  now?: () => number;
}

const PURGE_EVERY_MS = 3_600_000;

/** While sends are in flight, a kick (or poll) makes a claim at most this often. */
const KICK_CLAIM_GAP_MS = 100;

type Target = { url: string; secret: string } | { error: string; transient: boolean };

type Attempt = SubscriptionAttemptRecord;

/**
 * A 429 (or a 503 with Retry-After) to a delivery: what is recorded — the whole subscription paused until the
 * receiver's Retry-After (bounded by `pause`), the delivery waiting uncharged in its place (`retry` with no new due
 * time), or `failed` when it would wait past the policy's age limit (the subscription pauses all the same). Null
 * when the answer asks for no pause (any other failure: decideRetry's).
 */
export function rateLimitedOutcome(
  policy: RetryPolicy,
  pause: ChannelPausePolicy,
  d: Pick<ClaimedSubscriptionDelivery, 'subscriptionId' | 'createdAt'>,
  result: Pick<SendResult, 'httpStatus' | 'retryAfterMs' | 'error'>,
  now: number,
): { outcome: 'retry' | 'failed'; error: string; pause: { subscriptionId: string; ms: number } } | null {
  const limited = decideRateLimit(policy, pause, result, d.createdAt, now);
  if (limited === null) return null;
  const answer = result.error ?? `HTTP ${result.httpStatus}`;
  const paused = { subscriptionId: d.subscriptionId, ms: limited.pauseMs };
  if (!limited.wait) return { outcome: 'failed', error: `${answer} (${limited.reason})`, pause: paused };
  return {
    outcome: 'retry',
    error: `${answer} (rate limited: the subscription pauses until ${new Date(limited.until).toISOString()}; not counted as an attempt)`,
    pause: paused,
  };
}

/**
 * Writes the attempts of sends that ended while the previous write was under way together, in one statement (group
 * commit: one write at a time; the first after a quiet spell goes at once). One record a delivery, each its own query
 * and commit on the worker's pool, held every send's slot behind the others' (bench:subscriptions, four receivers at
 * 100 ms: the 20 records of a claim took ~65 ms to get through). A write refused as a whole is retried one attempt at
 * a time, so an attempt the store refuses fails only its own delivery.
 */
export class AttemptRecorder {
  private readonly queue: Array<{ item: Attempt; done: (kept: boolean) => void; fail: (err: unknown) => void }> = [];
  private writing = false;

  constructor(
    private readonly write: (items: Attempt[]) => Promise<Set<string>>,
    private readonly most = 100,
  ) {}

  /** Whether the attempt was recorded (false: the delivery's claim was lost meanwhile). */
  record(item: Attempt): Promise<boolean> {
    return new Promise<boolean>((done, fail) => {
      this.queue.push({ item, done, fail });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        // Each delivery once per write (a second attempt of one, its claim run out and taken again by this worker,
        // waits for the next: one statement would update its row once and answer both).
        const batch: typeof this.queue = [];
        const ids = new Set<string>();
        for (let i = 0; i < this.queue.length && batch.length < this.most;) {
          const entry = this.queue[i];
          if (ids.has(entry.item.id)) i++;
          else {
            ids.add(entry.item.id);
            batch.push(entry);
            this.queue.splice(i, 1);
          }
        }
        try {
          const kept = await this.write(batch.map((b) => b.item));
          for (const b of batch) b.done(kept.has(b.item.id));
        } catch (err) {
          if (batch.length === 1) {
            batch[0].fail(err);
            continue;
          }
          // One after another: a store away fails each at once, and a hundred writes at a time would crowd the pool.
          for (const b of batch)
            await this.write([b.item]).then(
              (kept) => b.done(kept.has(b.item.id)),
              (e: unknown) => b.fail(e),
            );
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

const clip = (s: string | null, n = 1000): string | null =>
  s === null ? null : s.length > n ? `${s.slice(0, n)}…` : s;

export class SubscriptionDeliveryWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Set by kick() while a drain runs: new deliveries are queued, claim at the next turn (if a slot is free). */
  private kicked = false;
  /** Wakes a drain waiting on its sends in flight (kick(), so new deliveries need not wait for a send to end). */
  private wake: (() => void) | undefined;
  private stopped = true;
  private lastPurge = 0;
  private readonly recorder: AttemptRecorder;

  constructor(
    private readonly deliveries: SubscriptionDeliveriesRepository,
    private readonly subscriptions: SubscriptionsRepository,
    private readonly sealer: SecretSealer | null,
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
    private readonly options: SubscriptionDeliveryOptions,
  ) {
    this.recorder = new AttemptRecorder((items) => this.deliveries.recordMany(this.options.owner, items));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** New deliveries are queued: a round now rather than at the next poll. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      this.kicked = true;
      this.wake?.();
    } else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.running?.catch(() => undefined);
    await this.deliveries.release(this.options.owner).catch(() => undefined);
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (this.running) return;
      this.running = this.drain()
        .then(
          () => undefined,
          (err: unknown) => this.logger.warn({ error: (err as Error).message }, 'subscription delivery round failed'),
        )
        .finally(() => {
          this.running = undefined;
          const now = this.again;
          this.again = false;
          this.schedule(now ? 0 : this.options.pollMs);
        });
    }, delay);
    this.timer.unref();
  }

  /**
   * Sends until nothing is due (also for tests): up to `batch` sends in flight, at most `perSubscription` of one
   * subscription. A send that ends frees its slot at once — the next claim does not wait for the slowest send, so one
   * slow or hanging receiver (a send timeout) holds only its own share of the slots, not every other subscription's
   * deliveries behind it. A claim is made once half the batch's worth of sends ended since the last, or none is in
   * flight (a claim per finished send would be one query per delivery) — or, with half the slots free, at once when
   * every send in flight is of a subscription at its cap (nothing ending soon need be waited for: a hanging receiver
   * holding its cap kept a subscription with a few deliveries waiting out the send timeout), and when kick() says new
   * deliveries were queued meanwhile or a poll interval passed (retries come due), at most once per
   * KICK_CLAIM_GAP_MS. (Kicks come with every commit that queued deliveries: on any free slot they would make a
   * claim per send in a mass outage.)
   */
  async drain(): Promise<number> {
    const now = (this.options.now ?? Date.now)();
    if (now - this.lastPurge >= PURGE_EVERY_MS) {
      this.lastPurge = now;
      await this.deliveries.purgeFinished(now - this.options.retentionMs);
    }
    const slots = this.options.batch;
    const cap = this.options.perSubscription ?? Math.max(1, Math.floor(slots / 2));
    const inFlight = new Map<string, number>();
    const sending = new Set<Promise<void>>();
    let sent = 0;
    // Whether a claim may find more: at the start, after a claim that filled what it asked, and after a send ended (its
    // slot and its subscription's share are free again).
    let more = true;
    // One claim at least, as a round before (drain() is called without start() by tests); none more once stopped.
    let first = true;
    // Sends ended since the last claim: the next claim waits for half the slots' worth (or for none in flight), so
    // claims stay one per half batch, never one per send (each is a query, on the pool the sends' records use too).
    let ended = 0;
    const half = Math.ceil(slots / 2);
    // Every send in flight is of a subscription at its cap: a claim can only bring other subscriptions' deliveries.
    const allAtCap = () => {
      for (const n of inFlight.values()) if (n < cap) return false;
      return true;
    };
    let lastClaim = -Infinity;
    this.kicked = false;
    for (;;) {
      const free = slots - sending.size;
      // Early, with half the slots free: a send ended and every send in flight is of a subscription at its cap (a
      // hanging receiver holds its share; nothing ending soon need be waited for), or kick() or a poll says deliveries
      // may be due — at most one such claim per KICK_CLAIM_GAP_MS (kicks come with every commit that queued
      // deliveries).
      const early =
        free >= half &&
        ((ended > 0 && allAtCap()) || (this.kicked && performance.now() - lastClaim >= KICK_CLAIM_GAP_MS));
      if (more && (first || !this.stopped) && free > 0 && (sending.size === 0 || ended >= half || early)) {
        first = false;
        ended = 0;
        this.kicked = false;
        lastClaim = performance.now();
        let claimed: ClaimedSubscriptionDelivery[];
        try {
          claimed = await this.deliveries.claimDue(this.options.owner, free, this.options.leaseMs, cap, inFlight);
        } catch (err) {
          // The store away: the sends under way end first — left running unwatched they would outlast stop(), which
          // hands their claims back, and another replica would send them again.
          await Promise.all(sending);
          throw err;
        }
        more = claimed.length >= free;
        sent += claimed.length;
        // Each subscription's spec and key are read once per claim, not per delivery: three queries a delivery on
        // the worker's pool (spec, secret, record) kept the sends in flight to a third of the slots (bench:
        // subscriptions, four receivers at 100 ms: 6.6 requests at the receivers on average, of 20 slots).
        const targets = new Map<string, Promise<Target>>();
        for (const d of claimed) {
          inFlight.set(d.subscriptionId, (inFlight.get(d.subscriptionId) ?? 0) + 1);
          let target = targets.get(d.subscriptionId);
          if (!target) {
            target = this.targetOf(d.subscriptionId);
            // Read by every send of the claim; one that fails fails each of them (handled below).
            target.catch(() => undefined);
            targets.set(d.subscriptionId, target);
          }
          // A delivery whose handling fails (the store away) is left to its claim's end.
          const send: Promise<void> = this.deliver(d, target)
            .catch((err: unknown) =>
              this.logger.warn(
                { subscriptionId: d.subscriptionId, eventId: d.eventId, error: (err as Error).message },
                'subscription delivery not attempted; its claim runs out and it is tried again',
              ),
            )
            .finally(() => {
              ended++;
              sending.delete(send);
              const left = (inFlight.get(d.subscriptionId) ?? 1) - 1;
              if (left > 0) inFlight.set(d.subscriptionId, left);
              else inFlight.delete(d.subscriptionId);
            });
          sending.add(send);
        }
      }
      if (sending.size === 0) {
        if (!more || (this.stopped && !first)) return sent;
        continue;
      }
      // Until a send ends, kick() or stop() wakes it, or a poll interval passes (a retry come due while every send in
      // flight hangs) — or, kicked meanwhile (during the claim) with half the slots free, the kick's gap is over.
      const woken = new Promise<void>((r) => (this.wake = r));
      const wait =
        this.kicked && !this.stopped && slots - sending.size >= half
          ? Math.max(0, KICK_CLAIM_GAP_MS - (performance.now() - lastClaim))
          : this.options.pollMs;
      const poll = setTimeout(() => {
        this.kicked = true;
        this.wake?.();
      }, wait);
      await Promise.race([...sending, woken]);
      clearTimeout(poll);
      this.wake = undefined;
      more = true;
    }
  }

  private async secretOf(subscriptionId: string): Promise<{ secret: string } | { error: string; transient: boolean }> {
    const sealed = await this.subscriptions.sealedSecret(subscriptionId);
    if (sealed === null) return { error: 'the subscription was deleted', transient: false };
    if (!this.sealer)
      return { error: 'FLEETWATCH_ENCRYPTION_KEY is not set in the aggregator: cannot sign', transient: true };
    try {
      return { secret: this.sealer.open(sealed, subscriptionSecretContext(subscriptionId)) };
    } catch {
      return { error: 'the signing secret cannot be opened with the configured keys', transient: true };
    }
  }

  /** Where a subscription's deliveries go and the key that signs them, or why none can be sent now. */
  private async targetOf(subscriptionId: string): Promise<Target> {
    const spec = await this.subscriptions.find<{ url: string; enabled?: boolean }>(subscriptionId);
    if (!spec) return { error: 'the subscription was deleted', transient: false };
    if (spec.spec.enabled === false) return { error: 'the subscription was disabled', transient: false };
    const key = await this.secretOf(subscriptionId);
    return 'error' in key ? key : { url: spec.spec.url, secret: key.secret };
  }

  private async deliver(d: ClaimedSubscriptionDelivery, target: Promise<Target>): Promise<void> {
    const now = this.options.now ?? Date.now;
    const to = await target;
    let result: SendResult;
    if ('error' in to) {
      result = {
        ok: false,
        transient: to.transient,
        httpStatus: null,
        retryAfterMs: null,
        error: to.error,
        durationMs: 0,
      };
    } else {
      const headers = signedStatusChangeHeaders(to.secret, d.body, `${d.subscriptionId}:${d.eventId}`, now());
      result = await sendHttp({ kind: 'http', url: to.url, headers, body: d.body }, this.options.http);
    }
    const attempt = d.attempts + 1;
    let outcome: 'delivered' | 'retry' | 'failed' = 'delivered';
    let retryAt: number | null = null;
    let error = clip(result.error);
    let pause: Attempt['pause'];
    if (!result.ok) {
      const limited = rateLimitedOutcome(
        this.options.policy,
        this.options.pause ?? DEFAULT_CHANNEL_PAUSE,
        d,
        result,
        now(),
      );
      if (limited) {
        // The receiver rate limits: the subscription pauses, this delivery waits with it, uncharged, in its place.
        outcome = limited.outcome;
        error = clip(limited.error);
        pause = limited.pause;
      } else {
        const decision = decideRetry(this.options.policy, {
          attempt,
          createdAt: d.createdAt,
          now: now(),
          transient: result.transient,
          retryAfterMs: result.retryAfterMs,
        });
        if (decision.retry) {
          outcome = 'retry';
          retryAt = decision.at;
        } else {
          outcome = 'failed';
          error = clip(`${result.error ?? 'failed'} (${decision.reason})`);
        }
      }
      this.logger.warn(
        {
          subscriptionId: d.subscriptionId,
          eventId: d.eventId,
          attempt,
          outcome,
          httpStatus: result.httpStatus,
          error,
        },
        pause && outcome === 'retry'
          ? 'subscription delivery rate limited; the subscription pauses'
          : outcome === 'retry'
            ? 'subscription delivery failed; will retry'
            : 'subscription delivery failed for good',
      );
    }
    const kept = await this.recorder.record({
      id: d.id,
      attempt: { outcome, httpStatus: result.httpStatus, error, durationMs: result.durationMs },
      retryAt,
      pause,
    });
    if (!kept)
      this.logger.warn(
        { subscriptionId: d.subscriptionId, eventId: d.eventId },
        'subscription delivery: the claim ran out during the send (another replica may send it again)',
      );
  }
}
