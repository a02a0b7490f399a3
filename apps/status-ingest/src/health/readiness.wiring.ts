import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { BusConnections, busReadinessCheck } from '@fleetwatch/messaging';
import { ReadinessRegistry } from '@fleetwatch/observability';
import { DATABASE_CLIENT, databaseReadinessCheck, type DatabaseClient } from '@fleetwatch/persistence';

/** /readyz: the database (API keys, monitors) and the bus (every accepted push is published). */
@Injectable()
export class ReadinessWiring implements OnModuleInit {
  constructor(
    private readonly readiness: ReadinessRegistry,
    @Inject(DATABASE_CLIENT) private readonly db: DatabaseClient,
    private readonly bus: BusConnections,
  ) {}

  onModuleInit(): void {
    this.readiness.register(databaseReadinessCheck(this.db));
    this.readiness.register(busReadinessCheck(this.bus));
  }
}
