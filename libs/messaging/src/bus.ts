import type { MessageSource } from '@fleetwatch/contracts';
import type { BackoffOptions } from './backoff';
import type { BusConnection } from './connection';
import { BusConnections } from './connections';
import { BusConsumer } from './consumer';
import type { BusLogger } from './logger';
import { BusPublisher } from './publisher';
import { BusTopology, type QueueRef } from './topology';

export interface BusOptions {
  /** `amqp://user:pass@host:5672/vhost` (AMQP_URL). */
  url: string;
  /** Default envelope source of everything this process publishes. */
  source: MessageSource;
  /** Connection name (defaults to the service). */
  name?: string;
  /** Queues to declare (with DLQs and bindings) on every connect: those this process consumes, plus any it must not publish into the void. */
  queues?: readonly QueueRef[];
  /** `x-delivery-limit` of the queues. Default 5. */
  deliveryLimit?: number;
  /** Publish deadline (connection wait + backpressure + confirm). Default 5000. */
  /** See PublisherOptions.shardObservations (default true). */
  shardObservations?: boolean;
  publishTimeoutMs?: number;
  heartbeatSeconds?: number;
  connectTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  logger?: BusLogger;
}

/** The bus of one process, wired without Nest: connections, topology, publisher, consumer. */
export interface Bus {
  readonly connections: BusConnections;
  /** The publishing connection (`connections.publishing`). */
  readonly connection: BusConnection;
  readonly topology: BusTopology;
  readonly publisher: BusPublisher;
  readonly consumer: BusConsumer;
  isConnected(): boolean;
  /** Graceful: stop consumers (in-flight handlers finish and ack), close the publisher, then the connection. */
  close(): Promise<void>;
}

export function createBus(options: BusOptions): Bus {
  const connections = new BusConnections({
    url: options.url,
    name: options.name ?? options.source.service,
    heartbeatSeconds: options.heartbeatSeconds,
    connectTimeoutMs: options.connectTimeoutMs,
    backoff: options.backoff,
    logger: options.logger,
  });
  const { publishing, consuming } = connections;
  // Exchanges and queues exist before anything is published; consumers declare theirs on their own connection.
  const topology = new BusTopology(publishing, { queues: options.queues, deliveryLimit: options.deliveryLimit });
  const publisher = new BusPublisher(publishing, {
    source: options.source,
    timeoutMs: options.publishTimeoutMs,
    shardObservations: options.shardObservations,
  });
  const consumer = new BusConsumer(consuming, { topology, logger: options.logger, publishing });
  connections.start();
  return {
    connections,
    connection: publishing,
    topology,
    publisher,
    consumer,
    isConnected: () => connections.isConnected(),
    close: async () => {
      await consumer.stop();
      await publisher.close();
      await connections.close();
    },
  };
}

type ReadinessSubject = Pick<BusConnection, 'isConnected' | 'state' | 'lastError' | 'blocked'>;

/**
 * A /readyz check (observability's ReadinessCheck shape): fails while a
 * connection is down, or while the broker blocks publishing (resource alarm).
 * Given BusConnections, the consuming connection counts once it was started.
 */
export function busReadinessCheck(
  bus: ReadinessSubject | BusConnections,
  name = 'bus',
): { name: string; check: () => void } {
  // `readinessReason`: the word /readyz shows instead of this text, which is logged (observability's health.ts).
  const down = (c: ReadinessSubject, role: string) =>
    Object.assign(new Error(`RabbitMQ${role} ${c.state}${c.lastError ? `: ${c.lastError.message}` : ''}`), {
      readinessReason: 'unreachable',
    });
  return {
    name,
    check: () => {
      const publishing = bus instanceof BusConnections ? bus.publishing : bus;
      if (!publishing.isConnected()) throw down(publishing, bus instanceof BusConnections ? ' (publishing)' : '');
      if (publishing.blocked !== undefined)
        throw Object.assign(new Error(`RabbitMQ blocks publishing (resource alarm: ${publishing.blocked})`), {
          readinessReason: 'blocked',
        });
      if (bus instanceof BusConnections && bus.consuming.state !== 'idle' && !bus.consuming.isConnected())
        throw down(bus.consuming, ' (consuming)');
    },
  };
}
