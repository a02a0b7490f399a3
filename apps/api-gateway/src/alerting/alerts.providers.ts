import type { Provider } from '@nestjs/common';
import {
  AlertConfigRepository,
  AlertDeliveriesRepository,
  AlertEvaluationReaderRepository,
  AlertEventsRepository,
  AlertsReadRepository,
  DATABASE_CLIENT,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import { AlertsReadService } from './alerts-read.service';

/** The alert pages' reads: alert_states, the delivery log, silences and windows (the gateway reads, never writes). */
export const alertsReadProviders: Provider[] = [
  ...[
    AlertsReadRepository,
    AlertDeliveriesRepository,
    AlertConfigRepository,
    AlertEvaluationReaderRepository,
    AlertEventsRepository,
  ].map((repo): Provider => ({
    provide: repo,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new repo(db),
  })),
  AlertsReadService,
];
