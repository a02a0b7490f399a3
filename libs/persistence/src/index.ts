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
export { UserDisabledRepository } from './users/user-disabled.repository';
export {
  SessionsRepository,
  type SessionRecord,
  type NewSession,
  type ActiveSession,
} from './sessions/sessions.repository';
export { ApiKeysRepository, type ApiKeyRecord, type NewApiKey } from './api-keys/api-keys.repository';
export {
  API_KEY_TAG,
  apiKeyPrefixOf,
  apiKeyShapeOf,
  generateApiKey,
  hashApiKey,
  verifyApiKey,
  type ApiKeyShape,
  type GeneratedApiKey,
} from './api-keys/api-key-secret';
export {
  ApiKeyVerifier,
  type ApiKeyLookup,
  type ApiKeyVerifierOptions,
  type VerifiedApiKey,
} from './api-keys/api-key-verifier';
export {
  HeartbeatMonitorsRepository,
  type HeartbeatMonitorRecord,
} from './heartbeat-monitors/heartbeat-monitors.repository';
export {
  generatePingToken,
  hashPingToken,
  pingTokenShapeOf,
  PING_TOKEN_PATTERN,
  type PingTokenShape,
} from './heartbeat-monitors/ping-token';
export {
  PingTokenResolver,
  type PingTokenLookup,
  type PingTokenResolverOptions,
} from './heartbeat-monitors/ping-token-resolver';
export { withChecksum } from './credentials/checksum';
export { BoundedLookups, type KeyLookupLimits, type SessionLookup } from './credentials/bounded-lookups';
export { ProcessedMessagesRepository, type RunOnceOutcome } from './processed-messages/processed-messages.repository';
export {
  HistoryReadRepository,
  type HistoryWindow,
  type HistoryObservation,
  type HistoryRollup,
  type HistoryStatusEvent,
} from './history-read/history-read.repository';
export {
  ReceivedRepository,
  type ReceivedPage,
  type StoredPing,
  type StoredUpdate,
} from './history-read/received.repository';
export { databaseBootCheck, databaseReadinessCheck } from './boot-check';
export { TargetStatesRepository, type DeadlineRow } from './target-states/target-states.repository';
export {
  HistoryRepository,
  RETENTION_COLUMNS,
  ROLLUP_TABLES,
  type RetentionTable,
  type StatusUpdateRow,
  type CheckResultRow,
  type HostMetricRow,
  type HostRetirementRow,
  type HeartbeatPingRow,
  type HeartbeatRunRow,
  type MonitorTouch,
  type RollupKey,
  type RollupRecord,
  type RecomputeOptions,
} from './history/history.repository';
export {
  SqlPoolModule,
  SQL_POOL,
  createSqlPool,
  closeSqlPool,
  runInSqlTransaction,
  pingSqlPool,
  type SqlPool,
  type SqlPoolOptions,
  type SqlTransaction,
  type SqlHandle,
  type SqlTx,
} from './sql/sql-pool';
export { StatusEventsRepository, type StatusEventRecord } from './status-events/status-events.repository';
export { AdvisoryLease, type AdvisoryLeaseOptions } from './leases/advisory-lease';
export { AdvisoryLockSet, type AdvisoryLockSetOptions } from './leases/advisory-lock-set';
export { ShardEpochsRepository, ShardNotLockedError } from './leases/shard-epochs.repository';
export { LeasedLoop, type Lease, type LeasedJob, type LeasedLoopOptions } from './leases/leased-loop';
export {
  ChecksRepository,
  type CheckWrite,
  type CheckListFilter,
  type CheckAssignmentRows,
} from './config/checks.repository';
export {
  ConfigVersionsRepository,
  type ConfigHead,
  type AuditDraft,
  type AuditQuery,
  type NewConfigVersion,
  type PendingConfigChanged,
} from './config/config-versions.repository';
export { PushMonitorsRepository, type PushMonitorWrite, type OrphanMonitor } from './config/push-monitors.repository';
export {
  HostHistoryRepository,
  HOST_SERIES,
  type HostSeriesName,
  type HostSeries,
  type HostSeriesPoint,
  type HostRollupRecord,
  type HostRollupKey,
  type LatestHostSample,
} from './hosts/host-history.repository';
export { CheckMetricsHistoryRepository, type LatestCheckMetrics } from './history/check-metrics.repository';
export {
  AlertDeliveriesRepository,
  DELIVERY_ALERTS_MAX,
  DELIVERY_ERROR_MAX,
  type DeliveryAlertRef,
  type DeliveryAttempt,
  type DeliveryDraft,
  type DeliveryLogEntry,
  type DeliveryLogQuery,
  type DeliveryOutcome,
  type PendingDelivery,
} from './alert-deliveries/alert-deliveries.repository';
export {
  AlertStatesRepository,
  escapeKey as escapeAlertKey,
  type StoredAlertState,
  type StoredNotificationGroup,
} from './alerting/alert-states.repository';
export {
  AlertEventsRepository,
  type AlertEventDraft,
  type AlertEventQuery,
  type AlertEventRecord,
  type AlertEventState,
} from './alerting/alert-events.repository';
export { AlertEvaluationReaderRepository, type SilenceSpecRow } from './alerting/alert-evaluation-reader.repository';
export {
  AlertsReadRepository,
  type AlertListFilter,
  type AlertReadState,
  type AlertRow,
} from './alerting/alerts-read.repository';
export {
  AlertConfigRepository,
  type AlertConfigArea,
  type AlertConfigRecord,
  type AlertConfigWrite,
} from './alerting/alert-config.repository';
export { SilencesRepository, type SilenceListState, type SilenceRecord } from './alerting/silences.repository';
export {
  StatusPagesRepository,
  type StatusPageChange,
  type StatusPageCoverage,
  type StatusPageRecord,
  type StatusPageTarget,
} from './status-pages/status-pages.repository';
export { PropertiesRepository, type PropertyRecord, type PropertyWrite } from './properties/properties.repository';
export {
  SecretSealer,
  SecretSealingError,
  channelSecretContext,
  generateSealingKeyText,
  parseSealingKey,
  type SealingKey,
} from './secrets/secret-sealer';
export {
  FleetSitesRepository,
  FleetPollFencedError,
  type FleetPollFence,
  type FleetSiteRecord,
  type FleetSiteWrite,
  type FleetPollOutcome,
} from './fleet/fleet-sites.repository';
export { FlowRepository, type StoredMinute } from './fleet/flow.repository';
export {
  SubscriptionsRepository,
  subscriptionSecretContext,
  type SubscriptionRecord,
} from './subscriptions/subscriptions.repository';
export {
  SubscriptionDeliveriesRepository,
  type ClaimedSubscriptionDelivery,
  type NewSubscriptionDelivery,
  type SubscriptionAttemptLog,
  type SubscriptionAttemptRecord,
  type SubscriptionDeliveryRow,
} from './subscriptions/subscription-deliveries.repository';
