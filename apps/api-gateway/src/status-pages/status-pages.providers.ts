import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, StatusPagesRepository, type DatabaseClient } from '@fleetwatch/persistence';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import {
  PUBLIC_STATUS_LIMITS,
  PUBLIC_STATUS_OPTIONS,
  PublicStatusService,
  type PublicStatusOptions,
} from './public-status.service';
import { StatusPagesOwner } from './status-pages-owner.service';

/**
 * Status pages (issue 17): writes to their owner over the bus; the public view read from Postgres here (with the
 * maintenance windows, through the AlertConfigRepository the alert reads provide).
 */
export const statusPagesProviders: Provider[] = [
  StatusPagesOwner,
  {
    provide: StatusPagesRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new StatusPagesRepository(db),
  },
  {
    provide: PUBLIC_STATUS_OPTIONS,
    inject: [GATEWAY_CONFIG],
    useFactory: (config: Pick<GatewayConfig, 'site'>): PublicStatusOptions => ({
      cacheMs: PUBLIC_STATUS_LIMITS.cacheMs,
      perAddressPerMinute: PUBLIC_STATUS_LIMITS.perAddressPerMinute,
      site: config.site,
    }),
  },
  PublicStatusService,
];
