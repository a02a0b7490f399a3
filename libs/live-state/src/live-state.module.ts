import { DynamicModule, Inject, InjectionToken, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedis, logRedisErrors, type RedisErrorLogger } from './redis';
import { LiveStateStore } from './live-state.store';

export const LIVE_STATE_REDIS = Symbol('LIVE_STATE_REDIS');

export interface LiveStateModuleOptions {
  url: string;
  keyPrefix: string;
  connectionName: string;
  /** A command without an answer within this fails (bounds hot-path calls when Redis stalls); default: none. */
  commandTimeoutMs?: number;
  /** A provider of the service's logger (warn): the connection's errors are logged there, rate-limited. */
  logger?: InjectionToken;
}

/** Redis for a service: the connection (token LIVE_STATE_REDIS) and the LiveStateStore; closed on shutdown. */
@Module({})
export class LiveStateModule implements OnApplicationShutdown {
  constructor(@Inject(LIVE_STATE_REDIS) private readonly redis: Redis) {}

  static forRoot(options: LiveStateModuleOptions): DynamicModule {
    return {
      module: LiveStateModule,
      global: true,
      providers: [
        {
          provide: LIVE_STATE_REDIS,
          inject: options.logger ? [options.logger] : [],
          useFactory: (logger?: RedisErrorLogger) => {
            const redis = createRedis({
              url: options.url,
              keyPrefix: options.keyPrefix,
              connectionName: options.connectionName,
              commandTimeoutMs: options.commandTimeoutMs,
            });
            if (logger) logRedisErrors(redis, logger, options.connectionName);
            return redis;
          },
        },
        {
          provide: LiveStateStore,
          inject: [LIVE_STATE_REDIS],
          useFactory: (redis: Redis) => new LiveStateStore(redis, { keyPrefix: options.keyPrefix }),
        },
      ],
      exports: [LIVE_STATE_REDIS, LiveStateStore],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
