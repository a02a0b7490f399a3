import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, StatusPagesRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { PUBLIC_STATUS_LIMITS, PUBLIC_STATUS_OPTIONS, PublicStatusService } from './public-status.service';
import { StatusPagesOwner } from './status-pages-owner.service';

/** Status pages (issue 17): writes to their owner over the bus; the public view read from Postgres here. */
export const statusPagesProviders: Provider[] = [
  StatusPagesOwner,
  {
    provide: StatusPagesRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new StatusPagesRepository(db),
  },
  {
    provide: PUBLIC_STATUS_OPTIONS,
    useValue: { cacheMs: PUBLIC_STATUS_LIMITS.cacheMs, perAddressPerMinute: PUBLIC_STATUS_LIMITS.perAddressPerMinute },
  },
  PublicStatusService,
];
