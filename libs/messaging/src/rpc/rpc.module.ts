import {
  DynamicModule,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import { BusConnection } from '../connection';
import { BusConnections } from '../connections';
import { BusConsumer } from '../consumer';
import { MESSAGING_OPTIONS, type MessagingModuleOptions } from '../nest/messaging.module';
import { RpcClient } from './rpc-client';
import { RpcServer, type RpcServerOptions } from './rpc-server';

export interface RpcClientModuleOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
  ownerName?: string;
}

@Injectable()
class RpcClientLifecycle implements OnApplicationShutdown {
  constructor(private readonly client: RpcClient) {}
  // After the HTTP server stopped taking requests: calls still waiting fail with `unavailable`.
  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }
}

@Injectable()
class RpcServerLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(private readonly server: RpcServer) {}
  // Handlers register in their providers' onModuleInit, which all ran by now.
  onApplicationBootstrap(): void {
    this.server.start();
  }
  async onModuleDestroy(): Promise<void> {
    await this.server.stop();
  }
}

/**
 * Nest wiring of request/response over the bus, on top of MessagingModule (import
 * that first: these use its connections, consumer and options).
 *
 * - `RpcClientModule.forRoot()` provides `RpcClient` (requests on the publishing
 *   connection, replies on the consuming one); the gateway calls the owner with it.
 * - `RpcServerModule.forRoot()` provides `RpcServer`, started at application bootstrap:
 *
 *     @Injectable()
 *     export class ChecksRpcHandlers implements OnModuleInit {
 *       constructor(private readonly rpc: RpcServer, private readonly checks: ChecksService) {}
 *       onModuleInit(): void {
 *         this.rpc.handle(ConfigRpcMethod.ChecksCreate, (p, ctx) => this.checks.create(p.actor, p.check, ctx));
 *       }
 *     }
 */
@Module({})
export class RpcClientModule {
  static forRoot(options: RpcClientModuleOptions = {}): DynamicModule {
    return {
      module: RpcClientModule,
      global: true,
      providers: [
        {
          provide: RpcClient,
          inject: [BusConnections, MESSAGING_OPTIONS],
          useFactory: (connections: BusConnections, o: MessagingModuleOptions) =>
            new RpcClient(connections.publishing, connections.consuming, {
              source: { site: o.site, service: o.service, location: o.location },
              timeoutMs: options.timeoutMs,
              ownerName: options.ownerName,
              logger: o.logger,
            }),
        },
        RpcClientLifecycle,
      ],
      exports: [RpcClient],
    };
  }
}

@Module({})
export class RpcServerModule {
  static forRoot(options: RpcServerOptions = {}): DynamicModule {
    return {
      module: RpcServerModule,
      global: true,
      providers: [
        {
          provide: RpcServer,
          inject: [BusConsumer, BusConnection, MESSAGING_OPTIONS],
          useFactory: (consumer: BusConsumer, publishing: BusConnection, o: MessagingModuleOptions) =>
            new RpcServer(consumer, publishing, { logger: o.logger, ...options }),
        },
        RpcServerLifecycle,
      ],
      exports: [RpcServer],
    };
  }
}
