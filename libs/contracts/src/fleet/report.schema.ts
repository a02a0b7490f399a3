import { z } from 'zod';
import { TargetStatus } from '../common/status';

// What a member site tells its leader (SPEC §1 "member report", §8): GET /api/v1/status/report
// and GET /api/v1/metrics/flow. Every figure a site may not know — an older site, a broker
// without its management plugin — is nullable, and the leader parses members leniently with
// these same schemas, so a member of another version degrades to nulls instead of failing.

const count = z.number().int().min(0);
const nullableCount = count.nullable().catch(null);
const nullableNumber = z.number().nullable().catch(null);

/** Message counts of one queue of the site's vhost, read from RabbitMQ itself. */
export const queueCountsSchema = z.object({
  name: z.string(),
  /** Waiting for a consumer. */
  ready: count,
  /** Delivered and not yet acked (null: only the management API knows it). */
  unacked: nullableCount,
  consumers: nullableCount,
});
export type QueueCounts = z.infer<typeof queueCountsSchema>;

export const brokerCountsSchema = z.object({
  /** `management` (the HTTP API: every queue of the vhost) or `passive` (AMQP passive declares of the known queues). */
  source: z.enum(['management', 'passive']),
  /** Messages delivered and not yet acked over the site's queues (null from passive declares). */
  inFlight: nullableCount,
  /** Messages waiting over the site's work queues (dead-letter queues not included). */
  queued: count,
  /** Messages in dead-letter queues. */
  deadLettered: count,
  queues: z.array(queueCountsSchema),
});
export type BrokerCounts = z.infer<typeof brokerCountsSchema>;

export const hostsSummarySchema = z.object({
  count: count,
  up: count,
  /** Averages (and gpuCount) over the UP hosts' latest samples — a STALE host's is not current (null: none has one). */
  cpuPct: nullableNumber,
  memoryUsedPct: nullableNumber,
  diskUsedPct: nullableNumber,
  gpuCount: count,
  gpuUtilPct: nullableNumber,
});
export type HostsSummary = z.infer<typeof hostsSummarySchema>;

/** One flow figure over a window: messages (or rows) and bytes; null where the site does not record it. */
export const flowFigureSchema = z.object({ count: nullableCount, bytes: nullableCount });
export type FlowFigure = z.infer<typeof flowFigureSchema>;

export const flowFiguresSchema = z.object({
  ingress: flowFigureSchema,
  egress: flowFigureSchema,
  stored: flowFigureSchema,
  deleted: flowFigureSchema,
});
export type FlowFigures = z.infer<typeof flowFiguresSchema>;

export const componentVersionSchema = z.object({
  component: z.string(),
  /** null: the component did not answer. */
  version: z.string().nullable(),
});

const KNOWN_STATUSES: ReadonlySet<string> = new Set(Object.values(TargetStatus));

/**
 * Targets by consensus status, each known status with a valid count kept and anything else dropped on its own: a
 * member of another version (a status this side does not know, or one it does not report) or one odd figure costs
 * that figure only. A record keyed by the status enum required every status and failed whole, so `.catch` lost them
 * all.
 */
const statusCountsSchema = z
  .record(z.string(), z.unknown())
  .transform((raw) => {
    const counts: Partial<Record<TargetStatus, number>> = {};
    for (const [status, n] of Object.entries(raw))
      if (KNOWN_STATUSES.has(status) && count.safeParse(n).success) counts[status as TargetStatus] = n as number;
    return counts;
  })
  .catch({});

export const memberReportSchema = z.object({
  site: z.string(),
  role: z.string(),
  generatedAt: z.string(),
  /** Targets by consensus status. */
  status: statusCountsSchema,
  errors: z
    .object({
      /** Targets DOWN now. */
      down: nullableCount,
      /** Failed check results over the last 15 minutes. */
      failedResults15m: nullableCount,
      /** Messages in dead-letter queues (null when the broker could not be read). */
      deadLettered: nullableCount,
    })
    .nullable()
    .catch(null),
  broker: brokerCountsSchema.nullable().catch(null),
  /** The broker's error when `broker` is null. */
  brokerError: z.string().nullable().catch(null),
  hosts: hostsSummarySchema.nullable().catch(null),
  /** Flow over the last 5 minutes. */
  flow: flowFiguresSchema.nullable().catch(null),
  components: z.array(componentVersionSchema).catch([]),
});
export type MemberReport = z.infer<typeof memberReportSchema>;

export const FLOW_MAX_MINUTES = 24 * 60;
export const flowQuerySchema = z.strictObject({
  minutes: z.coerce.number().int().min(1).max(FLOW_MAX_MINUTES).default(60),
});
export type FlowQuery = z.infer<typeof flowQuerySchema>;

export const flowPointSchema = flowFiguresSchema.extend({ at: z.string() });
export type FlowPoint = z.infer<typeof flowPointSchema>;

/** `GET /api/v1/metrics/flow?minutes=`: one point a minute, oldest first, and what each figure is measured from. */
export const flowMetricsSchema = z.object({
  site: z.string(),
  minutes: z.number().int(),
  stepSeconds: z.number().int(),
  points: z.array(flowPointSchema),
  sources: z.record(z.string(), z.string()).catch({}),
});
export type FlowMetrics = z.infer<typeof flowMetricsSchema>;
