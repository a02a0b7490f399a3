import {
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
  OnModuleInit,
  Optional,
  type FactoryProvider,
  type ModuleMetadata,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { ServiceName } from '@fleetwatch/contracts';
import type { BackoffOptions } from '../backoff';
import { BusConnection } from '../connection';
import { BusConnections } from '../connections';
import { BusConsumer } from '../consumer';
import type { BatchHandler, MessageHandler } from '../delivery';
import type { Subscription } from '../subscription';
import { idempotent, idempotentBatch, type IdempotencyStore } from '../idempotency';
import { stderrBusLogger, type BusLogger } from '../logger';
import { BusPublisher } from '../publisher';
import { BusTopology, type QueueRef } from '../topology';
import { CONSUME_QUEUE_METADATA, type ConsumeQueueMetadata } from './consume-queue.decorator';

export const MESSAGING_OPTIONS = Symbol('FLEETWATCH_MESSAGING_OPTIONS');
/** The module's IdempotencyStore (from the `idempotencyStore` option; null when none), used by `@ConsumeQueue({ idempotent })`. */
export const IDEMPOTENCY_STORE = Symbol('FLEETWATCH_IDEMPOTENCY_STORE');

export interface MessagingModuleOptions {
  /** AMQP_URL. */
  url: string;
  site: string;
  service: ServiceName;
  location?: string;
  /** Queues to declare besides those consumed by @ConsumeQueue handlers. */
  queues?: readonly QueueRef[];
  deliveryLimit?: number;
  publishTimeoutMs?: number;
  /** See PublisherOptions.shardObservations (default true). */
  shardObservations?: boolean;
  heartbeatSeconds?: number;
  backoff?: Partial<BackoffOptions>;
  /** A pino logger fits (observability's FLEETWATCH_LOGGER). */
  logger?: BusLogger;
  idempotencyStore?: IdempotencyStore;
  /** How long shutdown waits for in-flight handlers. Default 10 s. */
  stopTimeoutMs?: number;
}

export interface MessagingModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => MessagingModuleOptions | Promise<MessagingModuleOptions>;
}

/**
 * Starts the connection, registers @ConsumeQueue handlers once the app has
 * bootstrapped, and on shutdown stops consuming first (in-flight handlers finish
 * and ack) before closing the publisher and the connection.
 */
@Injectable()
export class MessagingLifecycle
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown
{
  private readonly subscriptions: Subscription[] = [];

  constructor(
    @Inject(MESSAGING_OPTIONS) private readonly options: MessagingModuleOptions,
    private readonly connections: BusConnections,
    private readonly publisher: BusPublisher,
    private readonly consumer: BusConsumer,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Optional() @Inject(IDEMPOTENCY_STORE) private readonly store?: IdempotencyStore,
  ) {}

  onModuleInit(): void {
    this.connections.start();
  }

  onApplicationBootstrap(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || wrapper.isNotMetatype) continue;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (!prototype) continue;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const fn = (instance as Record<string, unknown>)[method];
        if (typeof fn !== 'function') continue;
        const meta = Reflect.getMetadata(CONSUME_QUEUE_METADATA, fn) as ConsumeQueueMetadata | undefined;
        if (!meta) continue;
        this.register(instance, method, fn as (...args: never[]) => unknown, meta);
      }
    }
  }

  async onModuleDestroy(): Promise<void> {
    // Stop taking work before other modules (databases) close under running handlers.
    await this.consumer.stop(this.options.stopTimeoutMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.publisher.close();
    await this.connections.close();
  }

  /** Subscriptions started from @ConsumeQueue handlers. */
  get started(): readonly Subscription[] {
    return this.subscriptions;
  }

  private register(
    instance: object,
    method: string,
    fn: (...args: never[]) => unknown,
    meta: ConsumeQueueMetadata,
  ): void {
    const { batch, idempotent: idem, ...consumeOptions } = meta.options;
    const consumerName = typeof idem === 'string' ? idem : `${instance.constructor.name}.${method}`;
    if (idem && !this.store) {
      throw new Error(`${consumerName} is @ConsumeQueue({ idempotent }) but MessagingModule has no idempotencyStore`);
    }
    const bound = (fn as (...args: unknown[]) => unknown).bind(instance);
    if (batch) {
      let handler: BatchHandler = async (envelopes, contexts) => void (await bound(envelopes, contexts));
      if (idem && this.store) handler = idempotentBatch(handler, this.store, consumerName);
      this.subscriptions.push(this.consumer.consume(meta.queue, handler, { ...consumeOptions, batch }));
    } else {
      let handler: MessageHandler = async (envelope, context) => void (await bound(envelope, context));
      if (idem && this.store) handler = idempotent(handler, this.store, consumerName);
      this.subscriptions.push(this.consumer.consume(meta.queue, handler, consumeOptions));
    }
    (this.options.logger ?? stderrBusLogger).info(
      { queue: typeof meta.queue === 'string' ? meta.queue : meta.queue.name, handler: consumerName },
      'consuming',
    );
  }
}

function coreProviders(): Provider[] {
  return [
    {
      provide: BusConnections,
      inject: [MESSAGING_OPTIONS],
      useFactory: (o: MessagingModuleOptions) =>
        new BusConnections({
          url: o.url,
          name: o.service,
          heartbeatSeconds: o.heartbeatSeconds,
          backoff: o.backoff,
          logger: o.logger,
        }),
    },
    // The publishing connection; consumers run on `BusConnections.consuming`.
    { provide: BusConnection, inject: [BusConnections], useFactory: (c: BusConnections) => c.publishing },
    {
      provide: BusTopology,
      inject: [BusConnection, MESSAGING_OPTIONS],
      useFactory: (c: BusConnection, o: MessagingModuleOptions) =>
        new BusTopology(c, { queues: o.queues, deliveryLimit: o.deliveryLimit }),
    },
    {
      provide: BusPublisher,
      inject: [BusConnection, MESSAGING_OPTIONS],
      useFactory: (c: BusConnection, o: MessagingModuleOptions) =>
        new BusPublisher(c, {
          source: { site: o.site, service: o.service, location: o.location },
          timeoutMs: o.publishTimeoutMs,
          shardObservations: o.shardObservations,
        }),
    },
    {
      provide: BusConsumer,
      inject: [BusConnections, BusTopology, MESSAGING_OPTIONS],
      useFactory: (c: BusConnections, t: BusTopology, o: MessagingModuleOptions) =>
        new BusConsumer(c.consuming, { topology: t, logger: o.logger, publishing: c.publishing }),
    },
    {
      provide: IDEMPOTENCY_STORE,
      inject: [MESSAGING_OPTIONS],
      useFactory: (o: MessagingModuleOptions) => o.idempotencyStore ?? null,
    },
    MessagingLifecycle,
  ];
}

const EXPORTS = [
  BusConnections,
  BusConnection,
  BusTopology,
  BusPublisher,
  BusConsumer,
  IDEMPOTENCY_STORE,
  MESSAGING_OPTIONS,
];

/**
 * The bus as Nest providers (BusPublisher, BusConsumer, BusConnections and the
 * publishing BusConnection) plus
 * @ConsumeQueue handler discovery. Global: import it once in the app module.
 */
@Module({})
export class MessagingModule {
  static forRoot(options: MessagingModuleOptions): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: MESSAGING_OPTIONS, useValue: options }, ...coreProviders()],
      exports: EXPORTS,
    };
  }

  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: MESSAGING_OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory },
        ...coreProviders(),
      ],
      exports: EXPORTS,
    };
  }
}
