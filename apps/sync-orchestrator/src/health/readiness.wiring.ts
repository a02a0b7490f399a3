import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { LiveStateStore } from '@fleetwatch/live-state';
import { BusConnections, busReadinessCheck } from '@fleetwatch/messaging';
import { ReadinessRegistry } from '@fleetwatch/observability';
import { pingSqlPool, SQL_POOL, type SqlPool } from '@fleetwatch/persistence';

/** /readyz asks the three real dependencies. */
@Injectable()
export class ReadinessWiring implements OnModuleInit {
  constructor(
    private readonly readiness: ReadinessRegistry,
    @Inject(SQL_POOL) private readonly db: SqlPool,
    private readonly live: LiveStateStore,
    private readonly bus: BusConnections,
  ) {}

  onModuleInit(): void {
    this.readiness.register({ name: 'database', check: () => pingSqlPool(this.db) });
    this.readiness.register({ name: 'redis', check: () => this.live.ping() });
    this.readiness.register(busReadinessCheck(this.bus));
  }
}
