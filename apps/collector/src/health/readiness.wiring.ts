import { Injectable, OnModuleInit } from '@nestjs/common';
import { BusConnections, busReadinessCheck } from '@fleetwatch/messaging';
import { ReadinessRegistry } from '@fleetwatch/observability';

/** The collector's only central dependency is the bus (it never touches the database). */
@Injectable()
export class ReadinessWiring implements OnModuleInit {
  constructor(
    private readonly readiness: ReadinessRegistry,
    private readonly bus: BusConnections,
  ) {}

  onModuleInit(): void {
    this.readiness.register(busReadinessCheck(this.bus));
  }
}
