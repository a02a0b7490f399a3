import { redisBootCheck } from '@fleetwatch/live-state';
import { amqpBootCheck } from '@fleetwatch/messaging';
import { bootstrapService, type RunningService } from '@fleetwatch/observability';
import { databaseBootCheck } from '@fleetwatch/persistence';
import type { IngestConfig } from './config';
import { httpsOptionsOf } from './http/tls';

/** How long an unread body (of a 413 or 401) is read and dropped before the connection is closed. */
const UNREAD_BODY_MAX_MS = 10_000;
import { StatusIngestModule } from './status-ingest.module';

/** Starts status-ingest with `config` (main.ts, and tests that boot the real server in-process). */
export function startStatusIngest(config: IngestConfig): Promise<RunningService> {
  return bootstrapService({
    module: StatusIngestModule.forRoot(config),
    config,
    dependencies: [
      databaseBootCheck(config.databaseUrl),
      redisBootCheck(config.redisUrl),
      amqpBootCheck(config.amqpUrl),
    ],
    bodyLimitBytes: config.bodyLimitBytes,
    trustedProxies: config.trustedProxies,
    https: config.tls ? httpsOptionsOf(config.tls) : undefined,
    unreadBody: { maxBytes: config.bodyDiscardLimitBytes, maxMs: UNREAD_BODY_MAX_MS },
  });
}
