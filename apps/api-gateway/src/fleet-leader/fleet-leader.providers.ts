import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, FleetSitesRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { FleetLeaderService } from './fleet-leader.service';

/** The leader endpoints' providers (registered by ApiGatewayModule beside FleetLeaderController). */
export const fleetLeaderProviders: Provider[] = [
  {
    provide: FleetSitesRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new FleetSitesRepository(db),
  },
  FleetLeaderService,
];
