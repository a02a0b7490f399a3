import { BusClosedError, errorMessage } from './errors';
import { ConfirmSender } from './confirm-sender';
import type { BusConnection } from './connection';
import type { BatchConsumeOptions, BatchHandler, ConsumeOptions, MessageHandler } from './delivery';
import { stderrBusLogger, type BusLogger } from './logger';
import { BusMetrics } from './metrics';
import { Subscription, type SubscriptionDeps } from './subscription';
import { DEFAULT_DELIVERY_LIMIT, queueSpecOf, type BusTopology, type QueueRef } from './topology';

export interface BusConsumerOptions {
  /** Declares consumed queues (with their DLQs) on every reconnect. */
  topology?: BusTopology;
  /** Must equal the queues' `x-delivery-limit`. Default: the topology's, else 5. */
  deliveryLimit?: number;
  /** Timeout for confirming a dead-lettered copy. Default 5000. */
  deadLetterTimeoutMs?: number;
  /**
   * The connection dead-lettered copies are published on: the service's
   * publishing connection, so the consuming one never publishes and a broker
   * alarm never blocks its acks. Default: the consuming connection.
   */
  publishing?: BusConnection;
  logger?: BusLogger;
}

/**
 * Consumes quorum queues with manual acks: a message is acked only after its
 * handler's promise resolved, held and retried in place with backoff when the
 * handler fails transiently (TransientError, a store away), retried (nack +
 * requeue, counted by the queue's delivery limit) when it throws otherwise, and
 * dead-lettered with its reason when it is invalid, when the handler throws
 * PermanentError, or when its last allowed attempt fails. A failing batch is
 * split until only the messages that fail alone remain. Resubscribes after
 * reconnects; `stop()` drains.
 */
export class BusConsumer {
  private readonly subscriptions = new Set<Subscription>();
  private readonly deadLetters: ConfirmSender;
  private readonly deps: SubscriptionDeps;
  readonly deliveryLimit: number;
  private readonly logger: BusLogger;
  private stopped = false;

  constructor(
    readonly connection: BusConnection,
    private readonly options: BusConsumerOptions = {},
  ) {
    this.deliveryLimit = options.deliveryLimit ?? options.topology?.limit ?? DEFAULT_DELIVERY_LIMIT;
    this.logger = options.logger ?? stderrBusLogger;
    this.deadLetters = new ConfirmSender(options.publishing ?? connection);
    this.deps = {
      connection,
      logger: this.logger,
      metrics: BusMetrics.get(),
      deliveryLimit: this.deliveryLimit,
      deadLetters: this.deadLetters,
      deadLetterTimeoutMs: options.deadLetterTimeoutMs ?? 5_000,
    };
  }

  /** Starts consuming `queue`. Per message, or in batches when `options.batch` is set. */
  consume(queue: QueueRef, handler: MessageHandler, options?: ConsumeOptions): Subscription;
  consume(queue: QueueRef, handler: BatchHandler, options: BatchConsumeOptions): Subscription;
  consume(
    queue: QueueRef,
    handler: MessageHandler | BatchHandler,
    options: ConsumeOptions | BatchConsumeOptions = {},
  ): Subscription {
    if (this.stopped) throw new BusClosedError('consumer is stopped');
    const spec = queueSpecOf(queue);
    const topology = this.options.topology;
    // Also declared through the topology's own connection (the publishing one in a service), so what is published there is routed.
    if (topology && topology.connection !== this.connection) {
      topology
        .ensure(queue)
        .catch((e: unknown) =>
          this.logger.warn(
            { queue: spec.name, error: errorMessage(e) },
            'could not declare queue; retried on reconnect',
          ),
        );
    }
    // The queue (with its DLQ and bindings) is declared on each channel open, right before consuming.
    const sub = new Subscription(
      this.deps,
      spec.name,
      handler,
      options,
      topology ? (session) => topology.declare(session, queue) : undefined,
    );
    this.subscriptions.add(sub);
    sub.onStopped(() => this.subscriptions.delete(sub));
    sub.start();
    this.connection.start();
    return sub;
  }

  /** Graceful: cancels every consumer, waits for in-flight handlers to finish and ack, closes channels. */
  async stop(timeoutMs?: number): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop(timeoutMs)));
    await this.deadLetters.close();
  }
}
