import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, UserDisabledRepository, type DatabaseClient } from '@fleetwatch/persistence';

/** What user admin needs beyond PersistenceModule: the disabled state (users.disabled_at). */
export const usersProviders: Provider[] = [
  {
    provide: UserDisabledRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new UserDisabledRepository(db),
  },
];
