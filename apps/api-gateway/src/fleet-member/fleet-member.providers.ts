import type { Provider } from '@nestjs/common';
import { AlertConfigRepository, DATABASE_CLIENT, FlowRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { MemberReportService } from './member-report.service';
import { SnapshotService } from './snapshot.service';

/** The member endpoints' providers (registered by ApiGatewayModule beside FleetMemberController). */
export const fleetMemberProviders: Provider[] = [
  { provide: FlowRepository, inject: [DATABASE_CLIENT], useFactory: (db: DatabaseClient) => new FlowRepository(db) },
  {
    provide: AlertConfigRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new AlertConfigRepository(db),
  },
  MemberReportService,
  SnapshotService,
];
