import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { Messages } from '@fleetwatch/contracts';
import { BusPublisher, publishRequest } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { ConfigVersionsRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { CONFIG_RELAY_INTERVAL_MS } from './config.tokens';

type RelayLogger = Pick<Logger, 'warn' | 'error'>;

/** How long answers of config writes are kept by request id (config_requests). */
const REQUESTS_KEPT_MS = 86_400_000;
const PRUNE_EVERY_MS = 60_000;

/**
 * Publishes `config.changed` from the outbox (transactional outbox, like the aggregator's
 * StatusEventsRelay): a write commits its outbox row with the version, then kicks this;
 * rows are published in version order with broker confirms, the outbox row's id as the
 * message id (a republish after a crash is the same message: consumers de-duplicate), and
 * deleted once confirmed. What is left — the bus away, the process gone between commit
 * and publish — is picked up at start and every `intervalMs`.
 *
 * The same loop keeps config_requests (answers of config writes by request id, see
 * ConfigWriter) small: at most once a minute it forgets answers older than a day and clears
 * the ping tokens of requests whose deadline has passed (their redelivery no longer runs).
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
   * Forgets recorded answers older than `keepMs` (default a day) and clears the secrets of
   * requests past their deadline (ConfigVersionsRepository.pruneRequests). Never rejects;
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

  private async relayPending(): Promise<number> {
    if (this.stopped || !this.publisher.isConnected()) return 0;
    let total = 0;
    try {
      for (;;) {
        const pending = await this.versions.pendingChanged(100);
        if (pending.length === 0) break;
        const outcomes = await this.publisher.publishManySettled(
          pending.map((p) =>
            publishRequest(Messages.ConfigChanged, p.payload, {
              id: p.messageId,
              occurredAt: p.createdAt,
              // A fact for whoever listens (collectors, gateways): none bound yet is not an error.
              mandatory: false,
            }),
          ),
        );
        // Versions in order: stop at the first unconfirmed one, later ones wait with it.
        const firstFailed = outcomes.findIndex((o) => !o.ok);
        const confirmed = (firstFailed < 0 ? outcomes : outcomes.slice(0, firstFailed)).map((o) => o.envelope.id);
        await this.versions.markPublished(confirmed);
        total += confirmed.length;
        if (firstFailed >= 0) {
          const failed = outcomes[firstFailed];
          this.logger.warn(
            { version: pending[firstFailed].version, error: failed.ok ? undefined : failed.error.message },
            'config.changed not confirmed; left in the outbox for the next pass',
          );
          break;
        }
        if (pending.length < 100) break;
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'config.changed relay pass failed; retried on the next pass');
    }
    return total;
  }
}
