import type { Envelope, MessageDefinition, PayloadOf } from '@fleetwatch/contracts';
import type { DeliveryContext, MessageHandler } from './delivery';
import { PermanentError } from './errors';

export type TypedHandler<D extends MessageDefinition> = (
  envelope: Envelope<PayloadOf<D>>,
  context: DeliveryContext,
) => Promise<void> | void;

/**
 * Dispatches a queue's messages by envelope type to typed handlers. A type with
 * no route is dead-lettered at once (PermanentError): it would never succeed.
 *
 *   consumer.consume(QueueName.AggregatorObservations, new MessageRouter()
 *     .on(Messages.CheckResult, (env) => results.record(env.payload))
 *     .on(Messages.HostMetrics, (env) => hosts.record(env.payload))
 *     .handler());
 */
export class MessageRouter {
  private readonly routes = new Map<string, MessageHandler>();

  on<D extends MessageDefinition>(definition: D, handler: TypedHandler<D>): this {
    if (this.routes.has(definition.type)) throw new Error(`a handler for ${definition.type} is already registered`);
    this.routes.set(definition.type, handler as MessageHandler);
    return this;
  }

  get types(): string[] {
    return [...this.routes.keys()];
  }

  handler(): MessageHandler {
    const routes = this.routes;
    return (envelope, context) => {
      const route = routes.get(envelope.type);
      if (!route) throw new PermanentError(`no handler for message type "${envelope.type}" on ${context.queue}`);
      return route(envelope, context);
    };
  }
}
