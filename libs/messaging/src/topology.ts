import type { Channel } from 'amqplib';
import {
  deadLetterQueueOf,
  ExchangeName,
  QUEUE_BINDINGS,
  QUEUE_MAX_LENGTH,
  QueueName,
  type QueueBinding,
} from '@fleetwatch/contracts';
import { closeQuietly } from './close-quietly';
import { SetupOrder, type BusConnection, type ConnectionSession, type ConnectionSetup } from './connection';

/** RabbitMQ 3.10 quorum queues have no default delivery limit: we always set one. */
export const DEFAULT_DELIVERY_LIMIT = 5;

/** A queue to declare: a product queue from contracts, or an explicit spec (tests, tools). */
export interface QueueSpec {
  name: string;
  bindings: readonly QueueBinding[];
  /**
   * `x-single-active-consumer`: RabbitMQ delivers to one consumer at a time, the others
   * wait (the observation shards: one target's messages are never folded concurrently).
   */
  singleActiveConsumer?: boolean;
  /** `x-max-length`: beyond it the queue rejects publishes (their confirm is a nack). Product queues: QUEUE_MAX_LENGTH. */
  maxLength?: number;
}

export type QueueRef = QueueName | QueueSpec;

export interface TopologyOptions {
  /** Queues this process consumes (or must exist before it publishes). Exchanges are always declared. */
  queues?: readonly QueueRef[];
  /** `x-delivery-limit`: failed deliveries before RabbitMQ dead-letters a message. Default 5. */
  deliveryLimit?: number;
}

export function queueSpecOf(ref: QueueRef): QueueSpec {
  if (typeof ref !== 'string') return ref;
  const maxLength = QUEUE_MAX_LENGTH[ref];
  return maxLength === undefined
    ? { name: ref, bindings: QUEUE_BINDINGS[ref] }
    : { name: ref, bindings: QUEUE_BINDINGS[ref], maxLength };
}

/** Every argument a work queue is declared with: `workQueueArguments` plus what its spec adds. */
export function queueArgumentsOf(
  spec: QueueSpec,
  deliveryLimit: number = DEFAULT_DELIVERY_LIMIT,
): Record<string, string | number | boolean> {
  const args: Record<string, string | number | boolean> = workQueueArguments(spec.name, deliveryLimit);
  if (spec.singleActiveConsumer) args['x-single-active-consumer'] = true;
  if (spec.maxLength !== undefined) args['x-max-length'] = spec.maxLength;
  return args;
}

/**
 * Arguments of every work queue. Quorum (replicated, durable), a delivery limit
 * so a poison message cannot loop forever, dead-lettering to the DLX routed by
 * the queue's own name, at-least-once dead-lettering (the DLQ confirms before
 * the source drops the message), which RabbitMQ only honours with
 * `reject-publish` overflow.
 */
export function workQueueArguments(
  queue: string,
  deliveryLimit: number = DEFAULT_DELIVERY_LIMIT,
): Record<string, string | number> {
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': deliveryLimit,
    'x-dead-letter-exchange': ExchangeName.DeadLetter,
    'x-dead-letter-routing-key': queue,
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

/** The DLQ is a plain quorum queue: nothing consumes it automatically, operators inspect and replay. */
export function deadLetterQueueArguments(): Record<string, string> {
  return { 'x-queue-type': 'quorum' };
}

export const TOPIC_EXCHANGES: readonly ExchangeName[] = [
  ExchangeName.Events,
  ExchangeName.Commands,
  ExchangeName.DeadLetter,
];

/** Declares exchanges, queues, DLQs and bindings. Idempotent; a mismatch in existing queue arguments fails loudly (PRECONDITION_FAILED). */
export async function declareTopology(channel: Channel, options: TopologyOptions = {}): Promise<void> {
  const limit = options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
  for (const exchange of TOPIC_EXCHANGES) await channel.assertExchange(exchange, 'topic', { durable: true });
  for (const ref of options.queues ?? []) {
    const spec = queueSpecOf(ref);
    const dlq = deadLetterQueueOf(spec.name);
    await channel.assertQueue(dlq, { durable: true, arguments: deadLetterQueueArguments() });
    await channel.bindQueue(dlq, ExchangeName.DeadLetter, spec.name);
    await channel.assertQueue(spec.name, { durable: true, arguments: queueArgumentsOf(spec, limit) });
    for (const b of spec.bindings) await channel.bindQueue(spec.name, b.exchange, b.routingKey);
  }
}

/**
 * Registers topology declaration as the first setup of every (re)connect, on a
 * short-lived channel (a declaration error closes only that channel, and the
 * connection then reconnects and retries with backoff).
 */
export class BusTopology {
  private readonly queues = new Map<string, QueueSpec>();
  private readonly deliveryLimit: number;
  /** The session whose setup declared everything last: a queue added later, mid-connect, is declared there too. */
  private declaredOn: ConnectionSession | undefined;

  constructor(
    readonly connection: BusConnection,
    options: TopologyOptions = {},
  ) {
    this.deliveryLimit = options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
    for (const q of options.queues ?? []) this.add(q);
    const setup: ConnectionSetup = {
      name: 'topology',
      order: SetupOrder.Topology,
      run: async (s) => {
        // Queues added while this runs are declared before it ends.
        const done = new Set<string>();
        for (
          let todo = [...this.queues.values()];
          ;
          todo = [...this.queues.values()].filter((q) => !done.has(q.name))
        ) {
          if (done.size > 0 && todo.length === 0) break;
          await this.declareOn(s.model, todo);
          for (const q of todo) done.add(q.name);
          if (todo.length === 0) break;
        }
        this.declaredOn = s;
      },
    };
    connection.addSetup(setup);
  }

  get limit(): number {
    return this.deliveryLimit;
  }

  /** Adds a queue; declared now if connected (or connecting past the topology step), and on every reconnect. */
  async ensure(ref: QueueRef): Promise<void> {
    const spec = this.add(ref);
    const session = this.connection.current() ?? this.declaredOn;
    if (session) await this.declareOn(session.model, [spec]);
  }

  /**
   * Adds a queue and declares it on `session` now, whatever the connection's state
   * (a consumer declares its queue right before consuming, even mid-connect).
   */
  async declare(session: ConnectionSession, ref: QueueRef): Promise<void> {
    await this.declareOn(session.model, [this.add(ref)]);
  }

  private add(ref: QueueRef): QueueSpec {
    const spec = queueSpecOf(ref);
    this.queues.set(spec.name, spec);
    return spec;
  }

  private async declareOn(
    model: { createChannel(): Promise<Channel> },
    queues: readonly QueueSpec[] = [...this.queues.values()],
  ): Promise<void> {
    const channel = await model.createChannel();
    let failure: Error | undefined;
    channel.on('error', (e: Error) => (failure = e));
    try {
      await declareTopology(channel, { queues, deliveryLimit: this.deliveryLimit });
    } catch (e) {
      throw failure ?? e;
    } finally {
      await closeQuietly(channel);
    }
  }
}
