import { BusConnection, type BusConnectionOptions } from './connection';

/**
 * A service's two AMQP connections. RabbitMQ blocks connections that publish
 * while a resource alarm (memory, disk) is raised, and a blocked connection is
 * not read at all — acks included. Consuming on a connection that never
 * publishes (dead letters go out on the publishing one) keeps consumers draining
 * and acking through an alarm. The consuming connection opens with the first
 * subscription, so a service that only publishes holds one connection.
 */
export class BusConnections {
  readonly publishing: BusConnection;
  readonly consuming: BusConnection;

  constructor(options: BusConnectionOptions) {
    const name = options.name ?? 'fleetwatch';
    this.publishing = new BusConnection({ ...options, name });
    this.consuming = new BusConnection({ ...options, name: `${name}.consume` });
  }

  /** Starts the publishing connection (the consuming one starts with the first consume). */
  start(): this {
    this.publishing.start();
    return this;
  }

  /** Publishing connected and, once consuming started, that one too. */
  isConnected(): boolean {
    return this.publishing.isConnected() && (this.consuming.state === 'idle' || this.consuming.isConnected());
  }

  async close(): Promise<void> {
    await Promise.all([this.consuming.close(), this.publishing.close()]);
  }
}
