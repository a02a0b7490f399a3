import type { Envelope } from '@fleetwatch/contracts';
import type { BatchOptions } from '../batcher';
import type { ConsumeOptions } from '../delivery';
import type { QueueRef } from '../topology';

export const CONSUME_QUEUE_METADATA = 'fleetwatch:consume-queue';

export interface ConsumeQueueOptions extends ConsumeOptions {
  /** Batch mode: the method receives `(envelopes, contexts)`. */
  batch?: BatchOptions;
  /** Batch mode: what one message counts for in `batch.maxUnits` (e.g. the events it carries). Default 1. */
  weigh?: (envelope: Envelope) => number;
  /**
   * Skip ids this handler already processed, using the module's IdempotencyStore.
   * `true` names the consumer `<Class>.<method>`; a string names it explicitly
   * (keep it stable: it is stored with every processed id).
   */
  idempotent?: boolean | string;
}

export interface ConsumeQueueMetadata {
  queue: QueueRef;
  options: ConsumeQueueOptions;
}

/**
 * Marks a provider method as the handler of a queue. The method returns a
 * promise; the message is acked only after it resolves, retried if it rejects,
 * dead-lettered at once if it throws PermanentError.
 *
 *   @Injectable()
 *   export class ObservationsHandler {
 *     @ConsumeQueue(QueueName.AggregatorObservations, { prefetch: 100, idempotent: true })
 *     async handle(envelope: Envelope, ctx: DeliveryContext): Promise<void> { … }
 *   }
 */
export function ConsumeQueue(queue: QueueRef, options: ConsumeQueueOptions = {}): MethodDecorator {
  return (_target, _key, descriptor) => {
    const metadata: ConsumeQueueMetadata = { queue, options };
    Reflect.defineMetadata(CONSUME_QUEUE_METADATA, metadata, descriptor.value as object);
    return descriptor;
  };
}
