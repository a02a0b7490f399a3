import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  BUS_BATCH_MAX_BYTES,
  BUS_BATCH_MAX_UPDATES,
  MAX_BATCH_UPDATES,
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
 * counts updates, not messages, and the prefetch of each queue is sized for the
 * largest message it may get: the observations queue takes messages of at most
 * BUS_BATCH_MAX_UPDATES (prefetch budget / 100), the bulk queue the large ones
 * (a 1000-update batch POST: prefetch budget / 1000). Both feed the same service,
 * whose serial lane commits one batch at a time.
 */
@Injectable()
export class ObservationsHandler implements OnApplicationBootstrap, OnModuleDestroy {
  private subscriptions: Subscription[] = [];
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
      if (state !== 'connected' || this.subscriptions.length > 0) return;
      this.unlisten?.();
      this.subscribe();
    });
  }

  private subscribe(): void {
    const options = (worstCase: { units: number; bytes: number }) => ({
      prefetch: this.config.prefetch,
      batch: this.config.batch,
      weigh: updatesIn,
      // The prefetch is sized for a window of the largest messages the queue may get, at all times: the budget
      // holds for a burst of them after a quiet spell of small ones. A larger message pauses intake when it arrives.
      budget: {
        ...this.config.budget,
        unitsPerMessageHint: worstCase.units,
        bytesPerMessageHint: worstCase.bytes,
        worstCase,
      },
      stopTimeoutMs: Math.max(1000, this.config.shutdownTimeoutMs - 2000),
    });
    const handler = (envelopes: Envelope[]) => this.service.processBatch(envelopes);
    this.subscriptions = [
      this.consumer.consume(
        QueueName.AggregatorObservations,
        handler,
        options({ units: BUS_BATCH_MAX_UPDATES, bytes: BUS_BATCH_MAX_BYTES }),
      ),
      // A batch POST of up to 1000 updates in one message, at most ~1 KiB an update (the ingest body limit's default).
      this.consumer.consume(
        QueueName.AggregatorBulkObservations,
        handler,
        options({ units: MAX_BATCH_UPDATES, bytes: MAX_BATCH_UPDATES * 1024 }),
      ),
    ];
  }

  /** Graceful shutdown: no new deliveries; the batch in flight commits and is acked. */
  async onModuleDestroy(): Promise<void> {
    this.unlisten?.();
    this.service.stop();
    await Promise.all(this.subscriptions.map((s) => s.stop()));
  }

  /** For tests and readiness: both queues are being consumed. */
  get active(): boolean {
    return this.subscriptions.length > 0 && this.subscriptions.every((s) => s.active);
  }
}
