import type { Envelope } from '@fleetwatch/contracts';
import type { BatchHandler, DeliveryContext, MessageHandler } from './delivery';

/**
 * Remembers which message ids a consumer has processed (SPEC §3: consumers are
 * idempotent by message id). Keyed by (messageId, consumer) so two consumers of
 * the same event each process it once.
 */
export interface IdempotencyStore {
  /**
   * Atomically records the pair; true when this call recorded it (process the
   * message), false when it was already there (skip it, still ack).
   */
  claim(messageId: string, consumer: string): Promise<boolean>;
  /** Whether the pair is recorded. */
  seen(messageId: string, consumer: string): Promise<boolean>;
  /** Forgets a claim whose side effect failed, so the redelivery is processed. */
  release(messageId: string, consumer: string): Promise<void>;
}

/** In-memory store with LRU eviction, for tests and single-process tools. Not durable. */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, true>();

  constructor(private readonly capacity = 100_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get size(): number {
    return this.entries.size;
  }

  async claim(messageId: string, consumer: string): Promise<boolean> {
    return this.claimSync(messageId, consumer);
  }

  async seen(messageId: string, consumer: string): Promise<boolean> {
    const key = keyOf(messageId, consumer);
    if (!this.entries.has(key)) return false;
    this.touch(key);
    return true;
  }

  async release(messageId: string, consumer: string): Promise<void> {
    this.entries.delete(keyOf(messageId, consumer));
  }

  /** Synchronous claim: check-and-set cannot interleave with another handler. */
  claimSync(messageId: string, consumer: string): boolean {
    const key = keyOf(messageId, consumer);
    if (this.entries.has(key)) {
      this.touch(key);
      return false;
    }
    this.entries.set(key, true);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return true;
  }

  private touch(key: string): void {
    this.entries.delete(key);
    this.entries.set(key, true);
  }
}

function keyOf(messageId: string, consumer: string): string {
  return `${consumer}\u0000${messageId}`;
}

/**
 * The Postgres pattern: claim the id in the same transaction as the side effect,
 * so the claim commits or rolls back with it (a crash before commit leaves no
 * claim; the redelivery runs again). persistence's ProcessedMessagesRepository
 * has this shape (`runOnce(consumer, messageId, fn)`); apps inject it —
 * messaging never imports persistence.
 */
export interface TransactionalIdempotency<Tx> {
  runOnce<T>(
    consumer: string,
    messageId: string,
    fn: (tx: Tx) => Promise<T>,
  ): Promise<{ duplicate: true } | { duplicate: false; result: T }>;
}

export type TransactionalHandler<Tx> = (envelope: Envelope, tx: Tx, context: DeliveryContext) => Promise<void>;

/**
 * Exactly-once side effects in Postgres: runs `handler` inside `runner`'s
 * transaction together with the claim of the message id; a duplicate is
 * skipped (and acked).
 *
 *   consumer.consume(QueueName.AggregatorObservations,
 *     exactlyOnce(processedMessages, 'aggregator.history', (env, tx) => history.insert(env.payload, tx)));
 */
export function exactlyOnce<Tx>(
  runner: TransactionalIdempotency<Tx>,
  consumer: string,
  handler: TransactionalHandler<Tx>,
): MessageHandler {
  return async (envelope, context) => {
    await runner.runOnce(consumer, envelope.id, (tx) => handler(envelope, tx, context));
  };
}

/**
 * Wraps a handler so a message id already processed by `consumer` is skipped
 * (and still acked). The id is claimed before the handler runs — so a
 * concurrent redelivery cannot run it twice — and released if the handler
 * throws, so the retry runs it again. With a durable store that cannot share
 * the side effect's transaction, a crash between claim and effect would skip the
 * message on redelivery: use `exactlyOnce` for database effects, or give claims
 * a lease (e.g. Redis `SET NX PX`).
 */
export function idempotent(handler: MessageHandler, store: IdempotencyStore, consumer: string): MessageHandler {
  return async (envelope: Envelope, context: DeliveryContext): Promise<void> => {
    if (!(await store.claim(envelope.id, consumer))) return;
    try {
      await handler(envelope, context);
    } catch (e) {
      await store.release(envelope.id, consumer);
      throw e;
    }
  };
}

/** Batch form of `idempotent`: the handler gets only envelopes not processed before (and is skipped if none remain). */
export function idempotentBatch(handler: BatchHandler, store: IdempotencyStore, consumer: string): BatchHandler {
  return async (envelopes: Envelope[], contexts: DeliveryContext[]): Promise<void> => {
    const fresh: Envelope[] = [];
    const freshContexts: DeliveryContext[] = [];
    const seenInBatch = new Set<string>();
    for (let i = 0; i < envelopes.length; i++) {
      const id = envelopes[i].id;
      if (seenInBatch.has(id)) continue;
      seenInBatch.add(id);
      if (await store.claim(id, consumer)) {
        fresh.push(envelopes[i]);
        freshContexts.push(contexts[i]);
      }
    }
    if (fresh.length === 0) return;
    try {
      await handler(fresh, freshContexts);
    } catch (e) {
      await Promise.all(fresh.map((env) => store.release(env.id, consumer)));
      throw e;
    }
  };
}
