import type { MessageSource } from '@fleetwatch/contracts';
import type { BackoffOptions } from './backoff';
import { BusConnection } from './connection';
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
  publishTimeoutMs?: number;
  heartbeatSeconds?: number;
  connectTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  logger?: BusLogger;
}

/** The bus of one process, wired without Nest: connection, topology, publisher, consumer. */
export interface Bus {
  readonly connection: BusConnection;
  readonly topology: BusTopology;
  readonly publisher: BusPublisher;
  readonly consumer: BusConsumer;
  isConnected(): boolean;
  /** Graceful: stop consumers (in-flight handlers finish and ack), close the publisher, then the connection. */
  close(): Promise<void>;
}

export function createBus(options: BusOptions): Bus {
  const connection = new BusConnection({
    url: options.url,
    name: options.name ?? options.source.service,
    heartbeatSeconds: options.heartbeatSeconds,
    connectTimeoutMs: options.connectTimeoutMs,
    backoff: options.backoff,
    logger: options.logger,
  });
  const topology = new BusTopology(connection, { queues: options.queues, deliveryLimit: options.deliveryLimit });
  const publisher = new BusPublisher(connection, { source: options.source, timeoutMs: options.publishTimeoutMs });
  const consumer = new BusConsumer(connection, { topology, logger: options.logger });
  connection.start();
  return {
    connection,
    topology,
    publisher,
    consumer,
    isConnected: () => connection.isConnected(),
    close: async () => {
      await consumer.stop();
      await publisher.close();
      await connection.close();
    },
  };
}

/** A /readyz check (observability's ReadinessCheck shape): fails while the bus is not connected. */
export function busReadinessCheck(connection: Pick<BusConnection, 'isConnected' | 'state' | 'lastError'>, name = 'bus'): { name: string; check: () => void } {
  return {
    name,
    check: () => {
      if (!connection.isConnected()) {
        throw new Error(`RabbitMQ ${connection.state}${connection.lastError ? `: ${connection.lastError.message}` : ''}`);
      }
    },
  };
}
