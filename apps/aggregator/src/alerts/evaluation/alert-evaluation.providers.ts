import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy, type Provider } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Logger } from 'pino';
import { BusConnection, BusPublisher } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AdvisoryLease,
  AlertConfigRepository,
  AlertDeliveriesRepository,
  AlertEvaluationReaderRepository,
  AlertEventsRepository,
  AlertStatesRepository,
  TargetStatesRepository,
} from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../../config';
import { NotificationDelivery } from '../delivery/notification-delivery.service';
import { AlertConfigLoader } from './alert-config.loader';
import { AlertEvaluator, type AlertEvaluatorOptions } from './alert-evaluator.service';
import { AlertEventsFollower } from './alert-events.follower';
import { AlertEventsRelay } from './alert-events.relay';
import { AlertMetricsReader } from './alert-metrics.reader';

/** Nest tokens of the evaluator, its lease and its options. */
export const ALERT_EVALUATOR = Symbol('fleetwatch.aggregator.AlertEvaluator');
export const ALERT_EVALUATOR_LEASE = Symbol('fleetwatch.aggregator.AlertEvaluatorLease');
export const ALERT_EVALUATION_OPTIONS = Symbol('fleetwatch.aggregator.AlertEvaluationOptions');
export const ALERT_EVENTS_RELAY = Symbol('fleetwatch.aggregator.AlertEventsRelay');

/** Name of the advisory lock (and of its epoch row) the evaluating replica holds. */
export const ALERT_EVALUATOR_LEASE_NAME = 'fleetwatch.aggregator.alert-evaluator';

export interface AlertEvaluationOptions extends AlertEvaluatorOptions {
  /** How often the holder evaluates every alert (`for`, metrics, repeats, group waits) and confirms the lease. */
  tickMs: number;
  /** How often the holder publishes alert events a decision could not (the outbox). */
  relayMs: number;
}

export function alertEvaluationOptionsOf(config: AggregatorConfig): AlertEvaluationOptions {
  // The dashboard's address is the delivery side's setting (FLEETWATCH_EXTERNAL_URL): one value for both.
  const extra = config as AggregatorConfig & { alertDelivery?: { externalURL?: string } };
  return {
    holder: config.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    site: config.site,
    externalURL: extra.alertDelivery?.externalURL ?? '',
    leaseName: ALERT_EVALUATOR_LEASE_NAME,
    tickMs: 1000,
    relayMs: 5000,
    resyncMs: 300_000,
    now: Date.now,
  };
}

/**
 * Runs the evaluator: every `tickMs` it confirms or takes the lease; the holder ticks, a replica that
 * lost it forgets its state (its decisions would be fenced anyway). Events are followed on every replica
 * and acted on by the holder only.
 */
@Injectable()
export class AlertEvaluationLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  private follower: AlertEventsFollower;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private relayedAt = 0;
  private relaying: Promise<void> | undefined;

  constructor(
    @Inject(ALERT_EVALUATOR) private readonly evaluator: AlertEvaluator,
    @Inject(ALERT_EVENTS_RELAY) private readonly relay: AlertEventsRelay,
    @Inject(ALERT_EVALUATOR_LEASE) private readonly lease: AdvisoryLease,
    @Inject(ALERT_EVALUATION_OPTIONS) private readonly options: AlertEvaluationOptions,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    bus: BusConnection,
  ) {
    this.follower = new AlertEventsFollower(
      bus,
      {
        onStatusChanged: (e) => evaluator.onStatusChanged(e),
        onConfigChanged: (p) => {
          if (p.areas.some((a) => a === 'rules' || a === 'maintenance' || a === 'silences' || a === 'channels'))
            evaluator.onConfigChanged();
          // A check's tags or name: part of what selects and labels its alerts.
          if (p.areas.includes('checks')) evaluator.requestResync();
        },
        // Events may have been missed while the bus was away: targets and configuration (a silence, a rule) reread.
        onConnected: () => {
          evaluator.requestResync();
          evaluator.onConfigChanged();
        },
      },
      logger,
    );
  }

  onApplicationBootstrap(): void {
    this.follower.start();
    this.schedule(0);
  }

  /** One round (also for tests): lease, then tick or drop. */
  async round(): Promise<void> {
    if (await this.lease.tryAcquire()) {
      await this.evaluator
        .tick()
        .catch((err: unknown) => this.logger.warn({ error: (err as Error).message }, 'alert evaluation tick failed'));
      // Alert events a decision left unpublished (the bus away, a crash after its commit): on the holder only, one run
      // at a time, not awaited — with the bus away a publish waits for its session, and the tick (`for`, repeats) must
      // not wait with it.
      const now = Date.now();
      if (this.evaluator.active && !this.relaying && now - this.relayedAt >= this.options.relayMs) {
        this.relayedAt = now;
        this.relaying = this.relay
          .relayPending()
          .then(
            () => undefined,
            (err: unknown) =>
              this.logger.warn({ error: (err as Error).message }, 'alert events relay failed; tried again later'),
          )
          .finally(() => (this.relaying = undefined));
      }
    } else if (this.evaluator.active) await this.evaluator.drop();
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => {
        this.running = undefined;
        this.schedule(this.options.tickMs);
      });
    }, delay);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.relaying;
    await this.follower.stop();
    await this.evaluator.drop();
    await this.lease.release();
  }
}

/** The evaluator's providers, for AggregatorModule (needs SQL_POOL, LiveStateStore, BusConnection, TargetStatesRepository). */
export function alertEvaluationProviders(config: AggregatorConfig): Provider[] {
  return [
    { provide: ALERT_EVALUATION_OPTIONS, useValue: alertEvaluationOptionsOf(config) },
    {
      provide: ALERT_EVALUATOR_LEASE,
      useFactory: () =>
        new AdvisoryLease({
          databaseUrl: config.lockDatabaseUrl,
          name: ALERT_EVALUATOR_LEASE_NAME,
          applicationName: 'fleetwatch aggregator alert lease',
        }),
    },
    AlertConfigRepository,
    AlertEvaluationReaderRepository,
    AlertStatesRepository,
    AlertDeliveriesRepository,
    AlertEventsRepository,
    AlertConfigLoader,
    AlertMetricsReader,
    {
      provide: ALERT_EVENTS_RELAY,
      inject: [BusPublisher, AlertEventsRepository, FLEETWATCH_LOGGER],
      useFactory: (publisher: BusPublisher, events: AlertEventsRepository, logger: Logger) =>
        new AlertEventsRelay(publisher, events, logger.child({ context: 'alert-events' })),
    },
    {
      provide: ALERT_EVALUATOR,
      inject: [
        AlertConfigLoader,
        AlertStatesRepository,
        AlertDeliveriesRepository,
        TargetStatesRepository,
        AlertMetricsReader,
        FLEETWATCH_LOGGER,
        ALERT_EVALUATION_OPTIONS,
        ALERT_EVENTS_RELAY,
        ModuleRef,
      ],
      useFactory: (
        loader: AlertConfigLoader,
        repo: AlertStatesRepository,
        deliveries: AlertDeliveriesRepository,
        targets: TargetStatesRepository,
        metrics: AlertMetricsReader,
        logger: Logger,
        options: AlertEvaluationOptions,
        relay: AlertEventsRelay,
        refs: ModuleRef,
      ) => {
        // The delivery worker, when this aggregator runs one: woken after a commit that queued messages.
        const kick = () => {
          try {
            refs.get(NotificationDelivery, { strict: false }).kick();
          } catch {
            // No worker in this module: the queue is polled.
          }
        };
        return new AlertEvaluator(
          loader,
          repo,
          deliveries,
          targets,
          metrics,
          logger.child({ context: 'alert-evaluator' }),
          options,
          relay,
          kick,
        );
      },
    },
    AlertEvaluationLifecycle,
  ];
}
