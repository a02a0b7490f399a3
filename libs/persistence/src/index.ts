// Postgres for Fleetwatch: the Prisma schema and migrations (libs/persistence/prisma),
// the client factory, the Nest module and the repositories. Repositories are the only
// code that touches the generated Prisma client; nothing generated is exported here.
export {
  createPrismaClient,
  pingDatabase,
  runInTransaction,
  type DatabaseClient,
  type DatabaseTransaction,
  type DatabaseOptions,
  type DatabasePing,
  type TransactionOptions,
} from './database';
export { PersistenceModule, type PersistenceOptions, type PersistenceAsyncOptions } from './persistence.module';
export { DATABASE_CLIENT } from './tokens';
export { UsersRepository, type UserRecord, type NewUser } from './users/users.repository';
export { SessionsRepository, type SessionRecord, type NewSession, type ActiveSession } from './sessions/sessions.repository';
export { ApiKeysRepository, type ApiKeyRecord, type NewApiKey } from './api-keys/api-keys.repository';
export { API_KEY_TAG, apiKeyPrefixOf, generateApiKey, hashApiKey, verifyApiKey, type GeneratedApiKey } from './api-keys/api-key-secret';
export { HeartbeatMonitorsRepository, type HeartbeatMonitorRecord, type NewHeartbeatMonitor } from './heartbeat-monitors/heartbeat-monitors.repository';
export { generatePingToken, hashPingToken, PING_TOKEN_PATTERN } from './heartbeat-monitors/ping-token';
export { ProcessedMessagesRepository, type RunOnceOutcome } from './processed-messages/processed-messages.repository';
export {
  HistoryReadRepository,
  PUSH_DEFAULT_LOCATION,
  type HistoryWindow,
  type RawObservationRecord,
  type RollupRecord,
  type StatusEventRecord,
} from './history-read/history-read.repository';
export { databaseBootCheck } from './boot-check';
