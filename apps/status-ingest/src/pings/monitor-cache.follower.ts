import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { BusConnection, ConfigChangedFollower } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { PingsService } from './pings.service';

/**
 * Drops the cached heartbeat monitors when the configuration owner says checks changed (`config.changed`): a changed
 * period or grace is in the next ping's deadline at once, and a deleted monitor's URL is a 404 at once. The cache
 * (`INGEST_PING_CACHE_MS`) kept the old schedule for its lifetime — a period raised from 15 s to 5 min still gave the
 * ping after the change a 20 s deadline (a false DOWN and its alert) — and a deleted monitor's pings were taken (200)
 * and then ignored. The cache is also dropped whenever the follower's queue is (re)made: changes may have been missed.
 */
@Injectable()
export class MonitorCacheFollower implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly follower: ConfigChangedFollower;

  constructor(bus: BusConnection, pings: PingsService, @Inject(FLEETWATCH_LOGGER) logger: Logger) {
    this.follower = new ConfigChangedFollower(
      bus,
      {
        onChanged: (p) => {
          if (p.areas.includes('checks')) pings.forgetMonitors();
        },
        onConnected: () => pings.forgetMonitors(),
      },
      logger,
    );
  }

  onApplicationBootstrap(): void {
    this.follower.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.follower.stop();
  }
}
