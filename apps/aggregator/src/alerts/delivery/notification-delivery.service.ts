import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { InvalidError, UnavailableError } from '@fleetwatch/domain';
import {
  buildChannelRequest,
  decideRateLimit,
  channelSecretValues,
  clip,
  decideRetry,
  DEFAULT_CHANNEL_PAUSE,
  DEFAULT_RETRY_POLICY,
  notificationOfFlush,
  scrubSecrets,
  testNotification,
  type ChannelNotification,
  type ChannelPausePolicy,
  type ChannelRequest,
  type GroupFlush,
  type NotificationLookup,
  type RetryPolicy,
} from '@fleetwatch/alerting';
import {
  DELIVERY_ALERTS_MAX,
  DELIVERY_ERROR_MAX,
  type AlertDeliveriesRepository,
  type DeliveryAlertRef,
  type DeliveryAttempt,
  type PendingDelivery,
  type SqlTx,
} from '@fleetwatch/persistence';
import { DeliveryMetrics } from './delivery.metrics';
import type { ChannelSource, ResolvedChannel, SendResult } from './delivery.types';
import { DEFAULT_HTTP_OPTIONS, sendHttp, type HttpTransportOptions } from './http-transport';
import { DEFAULT_SMTP_OPTIONS, sendEmail, type SmtpTransportOptions } from './smtp-transport';

// Notification delivery (SPEC §7, issue 18): messages are queued in Postgres (alert_delivery_queue) — in
// the transaction of the alert state that caused them, when the caller passes it — and a worker sends the
// due ones. Each attempt is logged (alert_deliveries); a transient failure is tried again per the retry
// policy at a time stored with the message, so a restart neither loses nor forgets a schedule. Replicas
// share the queue: a message is claimed for a lease, so one replica sends it (again only if that one died
// mid-send: delivery is at least once; receivers can drop a repeat by X-Fleetwatch-Delivery, PagerDuty by
// its dedup key). Secrets are read from the channel at each attempt and scrubbed from every error text
// before it is logged or stored. A receiver that rate limits (429, or 503 with Retry-After) pauses its whole channel
// until its Retry-After (bounded: channelPause), in Postgres where claims are decided, so no replica sends the
// channel's other messages into the limit; waiting messages are not charged an attempt and keep their order.

export interface DeliveryOptions {
  /** This replica's name on its claims. */
  owner: string;
  site: string;
  /** The dashboard's base URL, for links in messages. */
  externalURL: string;
  policy: RetryPolicy;
  /** How long a channel pauses when its receiver rate limits (default without Retry-After, bounds). */
  channelPause: ChannelPausePolicy;
  pollIntervalMs: number;
  /** Messages claimed at once at most. */
  batchSize: number;
  /** Sends under way at once at most: a slot freed by a send that ends is filled by the next claim at once. */
  concurrency: number;
  /**
   * Sends of one channel under way at once at most, across every replica (the claim counts the channel's messages any
   * replica holds a live lease on): a receiver that hangs until the send timeout holds that many slots, never all of
   * them — the other channels' messages, a whole backlog of them, go out meanwhile — and a receiver never gets more than
   * that many at once from the site.
   */
  perChannel: number;
  /** How long a claim holds: longer than one send can take. */
  leaseMs: number;
  http: HttpTransportOptions;
  smtp: SmtpTransportOptions;
  /** How long the delivery log is kept. */
  logRetentionMs: number;
  now: () => number;
  random: () => number;
}

export const DEFAULT_DELIVERY_OPTIONS: Omit<DeliveryOptions, 'owner' | 'site' | 'externalURL'> = {
  policy: DEFAULT_RETRY_POLICY,
  channelPause: DEFAULT_CHANNEL_PAUSE,
  pollIntervalMs: 1000,
  batchSize: 50,
  concurrency: 8,
  perChannel: 4,
  leaseMs: 120_000,
  http: DEFAULT_HTTP_OPTIONS,
  smtp: DEFAULT_SMTP_OPTIONS,
  logRetentionMs: 30 * 86_400_000,
  now: Date.now,
  random: Math.random,
};

export interface QueuedNotification {
  channelId: string;
  notification: ChannelNotification;
}

/** What a test-send gave (contracts' ChannelTestResult). */
export interface TestSendResult {
  ok: boolean;
  outcome: 'delivered' | 'failed' | 'skipped';
  httpStatus: number | null;
  error: string | null;
  durationMs: number;
  deliveryId: string;
}

const PRUNE_EVERY_MS = 3_600_000;

export class NotificationDelivery {
  private readonly options: DeliveryOptions;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private lastPruneAt = 0;
  /** Sends under way in the scheduled rounds, by channel: they count against `perChannel` at each claim. */
  private readonly inFlight = new Map<string, number>();
  /** Ends a round's wait for a free slot (a kick: messages queued; stop). */
  private wake: (() => void) | null = null;
  private readonly metrics = new DeliveryMetrics();

  constructor(
    private readonly repo: AlertDeliveriesRepository,
    private readonly channels: ChannelSource,
    private readonly logger: Logger,
    options: Partial<DeliveryOptions> & Pick<DeliveryOptions, 'owner' | 'site' | 'externalURL'>,
  ) {
    this.options = { ...DEFAULT_DELIVERY_OPTIONS, ...options };
  }

  /** Queues messages (in `tx` when given: commit them with the alert state that caused them). */
  async enqueue(items: readonly QueuedNotification[], tx?: SqlTx): Promise<string[]> {
    const ids = await this.repo.enqueue(
      items.map((i) => ({ channelId: i.channelId, groupKey: i.notification.groupKey, notification: i.notification })),
      tx,
      this.options.now(),
    );
    // Outside a transaction the rows are visible now; inside one, the caller kicks after commit.
    if (!tx) this.kick();
    return ids;
  }

  /** Queues the messages of grouping flushes (one per channel and group). */
  enqueueFlushes(flushes: readonly GroupFlush[], lookup: NotificationLookup, tx?: SqlTx): Promise<string[]> {
    return this.enqueue(
      flushes.map((f) => ({ channelId: f.channelId, notification: notificationOfFlush(f, lookup) })),
      tx,
    );
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops taking messages, waits for sends in flight, and hands back this replica's claims. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    await this.repo.releaseClaims(this.options.owner).catch(() => undefined);
  }

  /** Runs a round soon (after an enqueue outside a transaction, or by the caller after its commit). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      this.wake?.();
    } else this.schedule(0);
  }

  /**
   * A message whose handling fails (the store away while its claim is renewed) is left to its claim's end; never
   * rejects.
   */
  private deliverSafely(p: PendingDelivery): Promise<void> {
    return this.deliver(p).catch((err: unknown) =>
      this.logger.warn(
        { deliveryId: p.id, err: { message: (err as Error).message } },
        'alert delivery not attempted; its claim runs out and it is tried again',
      ),
    );
  }

  /**
   * A test-send to a channel by id: null when there is no such channel. A channel that cannot be used now
   * (its secrets not openable, its stored form not valid) is a `skipped` test, logged, with the reason.
   */
  async testSendTo(channelId: string, limits: { timeoutMs?: number } = {}): Promise<TestSendResult | null> {
    let channel: ResolvedChannel | null;
    try {
      channel = await this.channels.get(channelId);
    } catch (err) {
      if (!(err instanceof InvalidError) && !(err instanceof UnavailableError)) throw err;
      const now = this.options.now();
      const deliveryId = randomUUID();
      const error = clip(`channel unavailable: ${(err as Error).message}`, DELIVERY_ERROR_MAX);
      await this.repo
        .logAttempt({
          deliveryId,
          channelId,
          channelType: 'unknown',
          groupKey: 'test',
          status: 'firing',
          attempt: 1,
          outcome: 'skipped',
          httpStatus: null,
          error,
          durationMs: 0,
          nextAttemptAt: null,
          test: true,
          at: now,
        })
        .catch(() => undefined);
      return { ok: false, outcome: 'skipped', httpStatus: null, error, durationMs: 0, deliveryId };
    }
    return channel ? this.testSend(channel, limits) : null;
  }

  /**
   * Sends a test notification to a channel once (no retry), logs it (marked as a test), and says how it went.
   * `timeoutMs`: a bound tighter than the delivery timeout (the caller's deadline).
   */
  async testSend(channel: ResolvedChannel, limits: { timeoutMs?: number } = {}): Promise<TestSendResult> {
    const started = Date.now();
    const now = this.options.now();
    const n = testNotification(this.options.site, this.options.externalURL, now);
    const deliveryId = randomUUID();
    const { result, request } = await this.attempt(channel, n, deliveryId, now, limits.timeoutMs);
    const error = this.cleanError(channel, result.error);
    const outcome = result.ok ? 'delivered' : request ? 'failed' : 'skipped';
    // The send happened: its outcome is the answer even if the log cannot be written now.
    await this.repo
      .logAttempt({
        deliveryId,
        channelId: channel.id,
        channelType: channel.config.type,
        groupKey: n.groupKey,
        status: n.status,
        attempt: 1,
        outcome,
        httpStatus: result.httpStatus,
        error,
        durationMs: result.durationMs,
        nextAttemptAt: null,
        test: true,
        at: now,
      })
      .catch((err: unknown) =>
        this.logger.warn({ deliveryId, err: { message: (err as Error).message } }, 'test-send not logged'),
      );
    this.metrics.record(channel.config.type, outcome, result.durationMs, !!request);
    this.logger.info(
      {
        channelId: channel.id,
        channelType: channel.config.type,
        deliveryId,
        ok: result.ok,
        httpStatus: result.httpStatus,
        error,
      },
      'alert channel test-send',
    );
    // PagerDuty opens an incident for a trigger: a test must not leave one open on someone's on-call. The same
    // dedup key resolved at once, logged as the test's second attempt; its failure is said in the answer.
    let resolveError: string | null = null;
    if (result.ok && channel.config.type === 'pagerduty') {
      // Within what is left of the caller's bound (the gateway stops waiting then).
      const left = limits.timeoutMs === undefined ? undefined : Math.max(1, limits.timeoutMs - (Date.now() - started));
      resolveError = await this.resolveTest(channel, n, deliveryId, { timeoutMs: left });
    }
    return {
      ok: result.ok,
      outcome,
      httpStatus: result.httpStatus,
      error: resolveError ? clip(`trigger delivered; resolving it failed: ${resolveError}`, DELIVERY_ERROR_MAX) : error,
      durationMs: result.durationMs,
      deliveryId,
    };
  }

  /** Resolves a test trigger (PagerDuty); answers the error, or null when resolved. */
  private async resolveTest(
    channel: ResolvedChannel,
    trigger: ChannelNotification,
    deliveryId: string,
    limits: { timeoutMs?: number },
  ): Promise<string | null> {
    const now = this.options.now();
    const endsAt = new Date(now).toISOString();
    const n: ChannelNotification = {
      ...trigger,
      status: 'resolved',
      alerts: trigger.alerts.map((a) => ({ ...a, status: 'resolved', endsAt })),
    };
    const { result } = await this.attempt(channel, n, deliveryId, now, limits.timeoutMs);
    const error = result.ok ? null : (this.cleanError(channel, result.error) ?? `HTTP ${result.httpStatus ?? '?'}`);
    await this.repo
      .logAttempt({
        deliveryId,
        channelId: channel.id,
        channelType: channel.config.type,
        groupKey: n.groupKey,
        status: 'resolved',
        attempt: 2,
        outcome: result.ok ? 'delivered' : 'failed',
        httpStatus: result.httpStatus,
        error,
        durationMs: result.durationMs,
        nextAttemptAt: null,
        test: true,
        at: now,
      })
      .catch((err: unknown) =>
        this.logger.warn({ deliveryId, err: { message: (err as Error).message } }, 'test-send resolve not logged'),
      );
    return error;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round().finally(() => {
        this.running = null;
        const soon = this.again;
        this.again = false;
        this.schedule(soon ? 0 : this.options.pollIntervalMs);
      });
    }, delayMs);
    this.timer.unref?.();
  }

  /**
   * Sends what is due, `concurrency` at once, `perChannel` of one channel at once; a send that ends frees its slot for
   * the next claim, which does not wait for the slowest send. (Waiting for a whole claimed batch to end held every
   * channel to the pace of the slowest receiver: in a storm, a receiver that hangs let the others' backlog out
   * `perChannel` per send timeout.) A claim is made when nothing is in flight; once half a channel's share of sends
   * ended since the last (not a query per send); when a send ended and every send in flight is of a channel at its cap
   * (hanging receivers: nothing ending soon need be waited for); and when kick() says messages were queued or a poll
   * interval passed (retries come due), with a slot free. Ends when nothing is due and nothing is in flight —
   * never before its sends have ended: sends left running unwatched would outlast stop(), which hands their claims
   * back, and another replica would send them again.
   */
  private async round(): Promise<void> {
    const { owner, concurrency, batchSize, leaseMs, perChannel } = this.options;
    const sends = new Set<Promise<void>>();
    const half = Math.ceil(concurrency / 2);
    // Sends ended that make a claim worth its query: half of one channel's share, so one busy channel keeps between
    // half its share and all of it under way (a claim per send would be a query per message in a storm).
    const enough = Math.max(1, Math.min(half, Math.ceil(perChannel / 2)));
    const allAtCap = () => {
      for (const n of this.inFlight.values()) if (n < perChannel) return false;
      return true;
    };
    // Whether a claim may find more (at the start, after one that got all it asked for, after a wake); sends ended
    // since the last claim; a kick or a poll since then.
    let more = true;
    let ended = 0;
    let woken = false;
    try {
      while (!this.stopped) {
        const free = concurrency - sends.size;
        // Woken (a kick: messages queued; a poll: retries come due) with any slot free, not only half: receivers that
        // hang on channels below their cap (five of them, one send each) left 3 of 8 slots idle and a new message of
        // another channel waiting out the send timeout. At most one claim per kick or poll interval.
        const claimNow = sends.size === 0 || ended >= enough || (ended > 0 && allAtCap()) || woken;
        if (more && free > 0 && claimNow) {
          // The last slot is kept for a channel with nothing under way (claimed alone, when it is the only one free):
          // channels whose receivers hang, with backlogs, took every slot (4 + 4 of 8), and any other channel's
          // message waited out a send timeout for one.
          const reserve = concurrency > 1 ? 1 : 0;
          const ask = Math.min(free - reserve, batchSize);
          ended = 0;
          woken = false;
          let due: PendingDelivery[];
          try {
            due = await this.repo.claimDue(
              owner,
              this.options.now(),
              Math.max(ask, 1),
              leaseMs,
              perChannel,
              this.inFlight,
              ask <= 0,
            );
          } catch (err) {
            // The sends under way go on; the next claim is at the next poll (a claim error ending the round held every
            // new message until the slowest send in flight had ended).
            this.logger.warn({ err: { message: (err as Error).message } }, 'alert delivery claim failed; trying again');
            due = [];
          }
          more = due.length >= Math.max(ask, 1);
          for (const p of due) sends.add(this.track(p, sends, () => ended++));
        }
        if (!sends.size) {
          if (!more) break;
          continue;
        }
        woken = (await this.slotFreed(sends)) || woken;
        more = true;
      }
    } catch (err) {
      this.logger.warn({ err: { message: (err as Error).message } }, 'alert delivery round failed; trying again');
    } finally {
      await Promise.all(sends);
    }
    await this.pruneIfDue();
  }

  /** A send of the round, counted against its channel while under way. */
  private track(p: PendingDelivery, sends: Set<Promise<void>>, onEnd: () => void): Promise<void> {
    this.inFlight.set(p.channelId, (this.inFlight.get(p.channelId) ?? 0) + 1);
    const send: Promise<void> = this.deliverSafely(p).finally(() => {
      sends.delete(send);
      const left = (this.inFlight.get(p.channelId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(p.channelId, left);
      else this.inFlight.delete(p.channelId);
      onEnd();
    });
    return send;
  }

  /**
   * Until a send ends, messages are queued (kick), stop() — or the poll interval passes (retries coming due). True
   * when woken by a kick or the poll, not by a send.
   */
  private async slotFreed(sends: ReadonlySet<Promise<void>>): Promise<boolean> {
    // A kick while the round was claiming (no wake to call then): seen now, not at the next poll.
    if (this.again) {
      this.again = false;
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        ...[...sends].map((s) => s.then(() => false)),
        new Promise<boolean>((resolve) => {
          this.wake = () => resolve(true);
          timer = setTimeout(() => resolve(true), this.options.pollIntervalMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.wake = null;
    }
  }

  private async attempt(
    channel: ResolvedChannel,
    n: ChannelNotification,
    deliveryId: string,
    now: number,
    timeoutMs?: number,
  ): Promise<{ result: SendResult; request: ChannelRequest | null; unbuildable?: true }> {
    let request: ChannelRequest | null;
    try {
      request = buildChannelRequest(channel.config, channel.secrets, n, { now, deliveryId });
    } catch (err) {
      // The channel cannot make a request (a secret it needs is missing, …): not a choice, a failure.
      return { result: notSent((err as Error).message), request: null, unbuildable: true };
    }
    if (!request)
      return {
        result: notSent(
          n.recipients
            ? 'nothing to send: the channel no longer lists the recipients this retry was for'
            : 'nothing to send: resolved alerts only and sendResolved is off',
        ),
        request,
      };
    const { http, smtp } = this.options;
    const bound = (t: number) => (timeoutMs === undefined ? t : Math.max(1, Math.min(t, timeoutMs)));
    const result =
      request.kind === 'http'
        ? await sendHttp(request, { ...http, timeoutMs: bound(http.timeoutMs) })
        : await sendEmail(request, { ...smtp, timeoutMs: bound(smtp.timeoutMs) });
    return { result, request };
  }

  private async deliver(p: PendingDelivery): Promise<void> {
    // A batch is claimed at once but sent a few at a time: a slow receiver can outlast the claim of the messages
    // behind it, which another replica may then take. Renewed right before sending, or left to that replica.
    if (!(await this.repo.renewClaim(p.id, this.options.owner, this.options.now() + this.options.leaseMs))) return;
    const n = p.notification as ChannelNotification;
    const attempt = p.attempts + 1;
    const base = {
      deliveryId: p.id,
      channelId: p.channelId,
      groupKey: p.groupKey,
      status: typeof n?.status === 'string' ? n.status : 'firing',
      attempt,
      test: false,
      ...alertRefsOf(n),
    };
    let record: DeliveryAttempt;
    try {
      const channel = await this.channels.get(p.channelId);
      const now = this.options.now();
      if (!channel || !channel.config.enabled) {
        const why = channel ? 'channel disabled' : 'channel not found';
        record = { ...base, channelType: channel?.config.type ?? 'unknown', ...skipped(why, now) };
      } else {
        const { result, request, unbuildable } = await this.attempt(channel, n, p.id, now);
        const error = this.cleanError(channel, result.error);
        const at = this.options.now();
        const paused = request && !result.ok ? this.rateLimited(p, base, channel.config.type, result, error, at) : null;
        // A firing notification that could not be built is lost for this channel: `failed` (shown by the log's
        // failed filter), never retried (waiting does not add a secret); `skipped` is only "nothing to send".
        if (!request && unbuildable)
          record = {
            ...base,
            channelType: channel.config.type,
            ...skipped(clip(`not sent: ${error ?? 'request could not be built'}`, DELIVERY_ERROR_MAX), at),
            outcome: 'failed',
          };
        else if (!request) record = { ...base, channelType: channel.config.type, ...skipped(error ?? 'not sent', at) };
        else if (result.ok)
          record = {
            ...base,
            channelType: channel.config.type,
            outcome: 'delivered',
            httpStatus: result.httpStatus,
            error,
            durationMs: result.durationMs,
            nextAttemptAt: null,
            at,
          };
        // The receiver rate limits: the channel pauses, this message waits with it, uncharged.
        else if (paused) record = paused;
        else {
          const decision = decideRetry(
            this.options.policy,
            {
              attempt,
              createdAt: p.createdAt,
              now: at,
              transient: result.transient,
              retryAfterMs: result.retryAfterMs,
            },
            this.options.random,
          );
          record = {
            ...base,
            channelType: channel.config.type,
            outcome: decision.retry ? 'retrying' : 'failed',
            httpStatus: result.httpStatus,
            error: decision.retry ? error : clip(`${error ?? 'failed'} (${decision.reason})`, DELIVERY_ERROR_MAX),
            durationMs: result.durationMs,
            nextAttemptAt: decision.retry ? decision.at : null,
            at,
            // Some recipients have it: the retry goes to the others only.
            ...(decision.retry && result.retryRecipients?.length
              ? { notification: { ...n, recipients: result.retryRecipients } }
              : {}),
          };
        }
      }
    } catch (err) {
      // The channel could not be read (its store away, its secrets not openable yet): try again later. A
      // stored channel that is not valid will not become so by waiting.
      const at = this.options.now();
      const decision = decideRetry(
        this.options.policy,
        { attempt, createdAt: p.createdAt, now: at, transient: !(err instanceof InvalidError) },
        this.options.random,
      );
      record = {
        ...base,
        channelType: 'unknown',
        outcome: decision.retry ? 'retrying' : 'failed',
        httpStatus: null,
        error: clip(
          `channel unavailable: ${(err as Error).message}${decision.retry ? '' : ` (${decision.reason})`}`,
          DELIVERY_ERROR_MAX,
        ),
        durationMs: 0,
        nextAttemptAt: decision.retry ? decision.at : null,
        at,
      };
    }
    this.logAttempt(record);
    try {
      await this.repo.recordAttempt(this.options.owner, record);
    } catch (err) {
      // Not recorded: the claim runs out and the message is sent again (at least once).
      this.logger.error({ deliveryId: p.id, err: { message: (err as Error).message } }, 'alert delivery not recorded');
    }
  }

  /**
   * A 429 (or a 503 with Retry-After): the record that pauses the whole channel until the receiver's Retry-After
   * (bounded), not charging this message an attempt; null when the answer asks for no pause. A message that would
   * wait past the policy's age limit gives up as any other would (the channel pauses all the same).
   */
  private rateLimited(
    p: PendingDelivery,
    base: Omit<
      DeliveryAttempt,
      'channelType' | 'outcome' | 'httpStatus' | 'error' | 'durationMs' | 'nextAttemptAt' | 'at'
    >,
    channelType: string,
    result: SendResult,
    error: string | null,
    at: number,
  ): DeliveryAttempt | null {
    const limited = decideRateLimit(this.options.policy, this.options.channelPause, result, p.createdAt, at);
    if (limited === null) return null;
    this.metrics.rateLimited(channelType);
    const { until, pauseMs } = limited;
    const common = { ...base, channelType, httpStatus: result.httpStatus, durationMs: result.durationMs, at };
    if (!limited.wait) {
      return {
        ...common,
        outcome: 'failed',
        error: clip(`${error ?? 'rate limited'} (${limited.reason})`, DELIVERY_ERROR_MAX),
        nextAttemptAt: null,
        pauseChannelMs: pauseMs,
      };
    }
    return {
      ...common,
      outcome: 'retrying',
      error: clip(
        `${error ?? `HTTP ${result.httpStatus}`} (rate limited: the channel pauses until ${new Date(until).toISOString()}; not counted as an attempt)`,
        DELIVERY_ERROR_MAX,
      ),
      nextAttemptAt: until,
      pauseChannelMs: pauseMs,
    };
  }

  private cleanError(channel: ResolvedChannel, error: string | null): string | null {
    if (error === null) return null;
    return clip(scrubSecrets(error, channelSecretValues(channel.config, channel.secrets)), DELIVERY_ERROR_MAX);
  }

  private logAttempt(r: DeliveryAttempt): void {
    const line = {
      deliveryId: r.deliveryId,
      channelId: r.channelId,
      channelType: r.channelType,
      attempt: r.attempt,
      outcome: r.outcome,
      httpStatus: r.httpStatus,
      durationMs: r.durationMs,
      ...(r.error ? { error: r.error } : {}),
      ...(r.nextAttemptAt ? { nextAttemptAt: new Date(r.nextAttemptAt).toISOString() } : {}),
    };
    this.metrics.record(r.channelType, r.outcome, r.durationMs, r.outcome !== 'skipped');
    if (r.outcome === 'delivered') this.logger.info(line, 'alert notification delivered');
    else this.logger.warn(line, `alert notification ${r.outcome}`);
  }

  private async pruneIfDue(): Promise<void> {
    const now = this.options.now();
    if (now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    await this.repo.pruneLog(now - this.options.logRetentionMs).catch(() => undefined);
  }
}

/** The alerts a message carried, as its log rows name them (the first DELIVERY_ALERTS_MAX). */
function alertRefsOf(n: ChannelNotification | undefined): { alerts: DeliveryAlertRef[]; alertCount: number } {
  const alerts = Array.isArray(n?.alerts) ? n.alerts : [];
  return {
    alerts: alerts.slice(0, DELIVERY_ALERTS_MAX).map((a) => ({
      id: String(a.fingerprint ?? ''),
      ruleName: a.labels?.['alertname'] ?? a.labels?.['rule_id'] ?? '',
      targetId: a.labels?.['target'] ?? null,
      status: a.status === 'resolved' ? 'resolved' : 'firing',
    })),
    alertCount: alerts.length,
  };
}

function notSent(error: string): SendResult {
  return { ok: false, transient: false, httpStatus: null, retryAfterMs: null, error, durationMs: 0 };
}

function skipped(error: string, at: number) {
  return { outcome: 'skipped' as const, httpStatus: null, error, durationMs: 0, nextAttemptAt: null, at };
}
