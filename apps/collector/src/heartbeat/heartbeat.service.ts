import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Messages } from '@fleetwatch/contracts';
import { BusError, BusPublisher } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { hostname } from 'node:os';
import { COLLECTOR_CONFIG } from '../tokens';
import type { CollectorConfig } from '../config';

const VERSION = process.env.FLEETWATCH_VERSION ?? '0.1.0';

/**
 * Announces this collector to the site every interval (heartbeat.collector), so
 * the aggregator knows which locations are alive. A heartbeat that cannot be
 * published is not spooled: the next one supersedes it.
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  readonly collectorId: string;

  constructor(
    private readonly publisher: BusPublisher,
    @Inject(COLLECTOR_CONFIG) private readonly config: CollectorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {
    this.collectorId = config.hostId ?? `${config.location}/${hostname()}`;
  }

  onApplicationBootstrap(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.config.sampleIntervalMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async beat(): Promise<boolean> {
    try {
      await this.publisher.publish(Messages.CollectorHeartbeat, {
        kind: 'collector',
        id: this.collectorId,
        location: this.config.location,
        version: VERSION,
        startedAt: this.startedAt,
        sentAt: new Date().toISOString(),
        intervalSeconds: Math.max(1, Math.round(this.config.sampleIntervalMs / 1000)),
      });
      return true;
    } catch (e) {
      if (!(e instanceof BusError)) throw e;
      this.logger.warn({ err: e.message }, 'heartbeat not published: bus unavailable');
      return false;
    }
  }
}
