import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, PropertiesRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { PropertiesOwner } from './properties-owner.service';

/** Site properties (issue 19): writes to their owner over the bus; the snapshot reads the table here. */
export const propertiesProviders: Provider[] = [
  PropertiesOwner,
  {
    provide: PropertiesRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new PropertiesRepository(db),
  },
];
