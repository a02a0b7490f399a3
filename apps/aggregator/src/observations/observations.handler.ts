import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  BUS_BATCH_MAX_BYTES,
  BUS_BATCH_MAX_UPDATES,
  Messages,
  QueueName,
  type Envelope,
  type StatusUpdateBatchPayload,
} from '@fleetwatch/contracts';
import { BusConnection, BusConsumer, type Subscription } from '@fleetwatch/messaging';
import type { AggregatorConfig } from '../config';
import { AGGREGATOR_CONFIG } from '../tokens';
import { ObservationsService } from './observations.service';

/** Updates a message carries: a `status.update.batch` up to 1000, anything else one. */
export function updatesIn(envelope: Envelope): number {
  return envelope.type === Messages.StatusUpdateBatch.type
    ? (envelope.payload as StatusUpdateBatchPayload).updates.length
    : 1;
}

/**
 * The observations queue in batch mode: the service commits a batch in one
 * transaction and the consumer acks it only after that (a throw nacks the
 * batch for a retry). One consumer per queue keeps each target's observations in
 * delivery order. Subscribed here rather than with @ConsumeQueue because prefetch,
 * batch size and the in-flight budget come from the configuration. The budget
 * counts updates, not messages: a consumer that starts on a backlog of maximal
 * batch messages takes only what fits (prefetch = budget / 1000 at first).
 */
@Injectable()
export class ObservationsHandler implements OnApplicationBootstrap, OnModuleDestroy {
  private subscription: Subscription | undefined;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly connection: BusConnection,
    private readonly consumer: BusConsumer,
    private readonly service: ObservationsService,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
  ) {}

  onApplicationBootstrap(): void {
    // Subscribe once connected: a setup added while the connection is still running its
    // setups (state "connecting") is not run until the next reconnect (libs/messaging).
    if (this.connection.isConnected()) return this.subscribe();
    this.unlisten = this.connection.onState((state) => {
      if (state !== 'connected' || this.subscription) return;
      this.unlisten?.();
      this.subscribe();
    });
  }

  private subscribe(): void {
    this.subscription = this.consumer.consume(
      QueueName.AggregatorObservations,
      (envelopes: Envelope[]) => this.service.processBatch(envelopes),
      {
        prefetch: this.config.prefetch,
        batch: this.config.batch,
        weigh: updatesIn,
        // Our producers send at most BUS_BATCH_MAX_UPDATES updates (~BUS_BATCH_MAX_BYTES) a message: the prefetch is
        // sized for a window of such messages at all times, so the budget holds for a burst of them after a quiet spell
        // of small ones. A larger message (an older producer's 1000-update batch) pauses intake when it arrives.
        budget: {
          ...this.config.budget,
          unitsPerMessageHint: BUS_BATCH_MAX_UPDATES,
          bytesPerMessageHint: BUS_BATCH_MAX_BYTES,
          worstCase: { units: BUS_BATCH_MAX_UPDATES, bytes: BUS_BATCH_MAX_BYTES },
        },
        stopTimeoutMs: Math.max(1000, this.config.shutdownTimeoutMs - 2000),
      },
    );
  }

  /** Graceful shutdown: no new deliveries; the batch in flight commits and is acked. */
  async onModuleDestroy(): Promise<void> {
    this.unlisten?.();
    this.service.stop();
    await this.subscription?.stop();
  }

  /** For tests and readiness: the subscription is consuming. */
  get active(): boolean {
    return this.subscription?.active ?? false;
  }
}
