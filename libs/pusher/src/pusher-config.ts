import { env } from '@fleetwatch/config';
import { z } from 'zod';
import { reportedLocationSchema } from '@fleetwatch/contracts';
import { ingestBaseUrl } from './status-pusher';

/** The variables every pushing daemon reads (README, "Watchers"), for its parseEnv shape. */
export const pusherShape = {
  /** Base URL of status-ingest; userinfo and a query string are ignored (and never logged). */
  FLEETWATCH_INGEST_URL: z
    .string()
    .default('http://127.0.0.1:3001')
    .refine(
      (s) => /^https?:\/\/[^/]+/.test(s) && URL.canParse(s),
      'must be an http(s) URL of status-ingest, e.g. http://127.0.0.1:3001',
    ),
  /** An API key with the ingest scope (made at the gateway: POST /api/v1/api-keys). */
  FLEETWATCH_INGEST_API_KEY: z.string({ message: 'is required: an API key with the ingest scope' }).min(1),
  /**
   * `location` of every update (where this daemon runs). Unset: the update is sent without one and gets the location
   * of the status-ingest that received it (its FLEETWATCH_LOCATION, `local` by default).
   */
  FLEETWATCH_LOCATION: reportedLocationSchema.optional(),
  LOG_LEVEL: env.logLevel(),
  WATCHER_BATCH_MAX: env.int(500, 1, 1000),
  WATCHER_QUEUE_MAX: env.int(100_000, 100, 10_000_000),
  /** JSON bytes of the queued updates, at most (32 MiB): long messages must not outgrow the heap in an outage. */
  WATCHER_QUEUE_MAX_BYTES: env.int(32 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
  WATCHER_RETRY_BASE_MS: env.int(500, 10, 60_000),
  WATCHER_RETRY_MAX_MS: env.int(30_000, 100, 600_000),
  /** Oldest `occurredAt` sent: a state older than this is reported as of now minus this. */
  WATCHER_MAX_EVENT_AGE_HOURS: env.int(24, 1, 24 * 6),
  /**
   * Each followed container or pod is reported again (same state, new updateId) this long after its last update
   * was accepted: the aggregator marks a pushed instance STALE after STALE_AFTER_SECONDS (300) without one, and a
   * running container has nothing new to say. 0: never (every steady instance then goes STALE).
   */
  WATCHER_REFRESH_SECONDS: env.int(60, 0, 86_400),
};

type PusherValues = z.output<z.ZodObject<typeof pusherShape>>;

export function pusherSettings(v: PusherValues) {
  return {
    // Without userinfo or query string: the watchers log it, and the API key is the credential.
    ingestUrl: ingestBaseUrl(v.FLEETWATCH_INGEST_URL),
    apiKey: v.FLEETWATCH_INGEST_API_KEY,
    location: v.FLEETWATCH_LOCATION,
    logLevel: v.LOG_LEVEL,
    maxBatch: v.WATCHER_BATCH_MAX,
    maxQueue: v.WATCHER_QUEUE_MAX,
    maxQueueBytes: v.WATCHER_QUEUE_MAX_BYTES,
    retryBaseMs: v.WATCHER_RETRY_BASE_MS,
    retryMaxMs: v.WATCHER_RETRY_MAX_MS,
    maxAgeMs: v.WATCHER_MAX_EVENT_AGE_HOURS * 3600_000,
    refreshMs: v.WATCHER_REFRESH_SECONDS * 1000,
  };
}
