import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, StatusEventsRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { StatusService } from './status.service';

/** The status pages' reads; the gateway reads status_events (the aggregator writes them). */
export const statusProviders: Provider[] = [
  {
    provide: StatusEventsRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new StatusEventsRepository(db),
  },
  StatusService,
];
