import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { describeIssues, Messages } from '@fleetwatch/contracts';
import { BusPublisher, publishRequest, type PublishRequest } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { ConfigVersionsRepository, type PendingConfigChanged } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { CONFIG_RELAY_INTERVAL_MS } from './config.tokens';
import { lifecycleMessageId } from './check-lifecycle';

type RelayLogger = Pick<Logger, 'warn' | 'error'>;

/** Messages handed to the broker in one publish (whole outbox rows: a bulk write's row may hold ~1,000 alone). */
const MESSAGES_PER_PUBLISH = 1000;

/** How long answers of config writes are kept by request id (config_requests). */
const REQUESTS_KEPT_MS = 86_400_000;
const PRUNE_EVERY_MS = 60_000;

/**
 * Publishes `config.changed` from the outbox (transactional outbox, like the aggregator's
 * StatusEventsRelay): a write commits its outbox row with the version, then kicks this;
 * rows are published in version order with broker confirms, the outbox row's id as the
 * message id (a republish after a crash is the same message: consumers de-duplicate), and
 * deleted once confirmed. What is left — the bus away, the process gone between commit
 * and publish — is picked up at start and every `intervalMs`. A row also carries the
 * write's `check.lifecycle` messages (ids derived from the row's): they go first, and the
 * row is done only when they and its config.changed are all confirmed.
 *
 * The same loop keeps config_requests (answers of config writes by request id, see
 * ConfigWriter) small: at most once a minute it forgets answers older than a day and, of requests
 * whose deadline has passed (their redelivery no longer runs, their caller no longer waits), clears
 * the ping tokens and cuts the answer down to its version (an import's plan lists every check).
 */
@Injectable()
export class ConfigChangedRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private chain: Promise<unknown> = Promise.resolve();
  private queued: Promise<number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private pruning: Promise<unknown> | null = null;
  private lastPruneAt = 0;

  constructor(
    private readonly publisher: BusPublisher,
    private readonly versions: ConfigVersionsRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: RelayLogger,
    @Optional() @Inject(CONFIG_RELAY_INTERVAL_MS) private readonly intervalMs = 5000,
  ) {}

  onApplicationBootstrap(): void {
    void this.kick();
    this.timer = setInterval(() => {
      void this.kick();
      if (Date.now() - this.lastPruneAt >= PRUNE_EVERY_MS) void this.pruneRequests();
    }, this.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain;
    await this.pruning;
  }

  /**
   * Forgets recorded answers older than `keepMs` (default a day); of requests past their deadline
   * clears the secrets and cuts the answer to its version (ConfigVersionsRepository.pruneRequests). Never rejects;
   * one pass at a time (a call meanwhile shares it).
   */
  pruneRequests(keepMs = REQUESTS_KEPT_MS): Promise<{ deleted: number; cleared: number }> {
    this.lastPruneAt = Date.now();
    this.pruning ??= this.versions
      .pruneRequests(keepMs)
      .catch((err: unknown) => {
        this.logger.warn({ err: (err as Error).message }, 'config_requests prune failed; retried in a minute');
        return { deleted: 0, cleared: 0 };
      })
      .finally(() => (this.pruning = null));
    return this.pruning as Promise<{ deleted: number; cleared: number }>;
  }

  /**
   * Runs a pass after the one in progress (kicks meanwhile share it); resolves with how
   * many were confirmed. Never rejects: what fails stays in the outbox.
   */
  kick(): Promise<number> {
    if (this.queued) return this.queued;
    const pass = this.chain.then(() => {
      this.queued = null;
      return this.relayPending();
    });
    this.queued = pass;
    this.chain = pass;
    return pass;
  }

  /**
   * Publishes outbox rows in version order, whole rows at a time (about MESSAGES_PER_PUBLISH
   * messages, a larger row alone): each row's `check.lifecycle` messages, then its
   * `config.changed`. A row is dropped from the outbox once all of its messages are
   * confirmed; the first row with one unconfirmed stops the pass (it and later rows wait).
   */
  private async publishRows(rows: readonly PendingConfigChanged[]): Promise<{ confirmed: number; stopped: boolean }> {
    let confirmed = 0;
    for (let start = 0; start < rows.length;) {
      const requests: PublishRequest[] = [];
      const rowOf: number[] = [];
      let end = start;
      while (
        end < rows.length &&
        (end === start || requests.length + rows[end].lifecycle.length < MESSAGES_PER_PUBLISH)
      ) {
        for (const r of this.requestsOf(rows[end])) {
          requests.push(r);
          rowOf.push(end);
        }
        end++;
      }
      const outcomes = await this.publisher.publishManySettled(requests);
      const failedAt = outcomes.findIndex((o) => !o.ok);
      const done = failedAt < 0 ? end : rowOf[failedAt];
      await this.versions.markPublished(rows.slice(start, done).map((r) => r.messageId));
      confirmed += done - start;
      if (failedAt >= 0) {
        const failed = outcomes[failedAt];
        this.logger.warn(
          {
            version: rows[done].version,
            type: failed.envelope.type,
            error: failed.ok ? undefined : failed.error.message,
          },
          'config.changed or check.lifecycle not confirmed; left in the outbox for the next pass',
        );
        return { confirmed, stopped: true };
      }
      start = end;
    }
    return { confirmed, stopped: false };
  }

  /** A row's messages: its lifecycle ones (sharded by target, for the aggregator), then its config.changed. */
  private requestsOf(row: PendingConfigChanged): PublishRequest[] {
    const lifecycle: PublishRequest[] = [];
    for (const payload of row.lifecycle) {
      // One no schema accepts would hold the outbox (and every later version) forever: drop it loudly.
      const parsed = Messages.CheckLifecycle.payload.safeParse(payload);
      if (!parsed.success) {
        this.logger.error(
          { version: row.version, checkId: payload.checkId, reason: describeIssues(parsed.error) },
          'check.lifecycle cannot be published; left out',
        );
        continue;
      }
      lifecycle.push(
        publishRequest(Messages.CheckLifecycle, payload, {
          id: lifecycleMessageId(row.messageId, payload.checkId),
          occurredAt: row.createdAt,
          // The aggregator's shard queues are declared by this service too: unroutable is an error.
          mandatory: true,
        }),
      );
    }
    return [
      ...lifecycle,
      publishRequest(Messages.ConfigChanged, row.payload, {
        id: row.messageId,
        occurredAt: row.createdAt,
        // A fact for whoever listens (collectors, gateways): none bound yet is not an error.
        mandatory: false,
      }),
    ];
  }

  private async relayPending(): Promise<number> {
    if (this.stopped || !this.publisher.isConnected()) return 0;
    let total = 0;
    try {
      for (;;) {
        const pending = await this.versions.pendingChanged(100);
        if (pending.length === 0) break;
        const { confirmed, stopped } = await this.publishRows(pending);
        total += confirmed;
        if (stopped || pending.length < 100) break;
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'config.changed relay pass failed; retried on the next pass');
    }
    return total;
  }
}
