import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { csvOf } from '../common/csv-filter';
import { InstanceKind, instanceKindSchema, TargetStatus, targetKindSchema, targetStatusSchema } from '../common/status';

// Routes the dashboard's overview and pushed-instances pages read (issue 17). Responses
// are zod schemas so the OpenAPI document is generated from the same definition.

const count = z.number().int().nonnegative();

/** `GET /api/v1/status/summary`: counts over every target, whatever a list page filters. */
export const statusSummaryResponseSchema = z.object({
  total: count,
  byStatus: z.record(targetStatusSchema, count),
  byKind: z.record(targetKindSchema, count),
  alerts: z.object({
    /** Alerts firing now (issue 18); null while the alert store does not answer. */
    firing: count.nullable(),
  }),
  generatedAt: z.iso.datetime(),
});
export type StatusSummaryResponse = z.infer<typeof statusSummaryResponseSchema>;

export const statusEventsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** The previous page's `nextCursor`. */
  cursor: storableText(200, 1)
    // The id part is a UUID exactly (Postgres refuses anything else with a 22P02, a 500 here).
    .regex(
      /^\d{1,15}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
      'must be a nextCursor from the previous page',
    )
    // Its time goes to Postgres: past 9999 (15 digits reach year 33658) Postgres refused it, a 500.
    .refine(
      (c) => Number(c.slice(0, c.indexOf('_'))) < Date.UTC(10_000, 0, 1),
      'must be a nextCursor from the previous page',
    )
    .optional(),
  /** Only this target's events. */
  targetId: storableText(300, 1).optional(),
});
export type StatusEventsQuery = z.infer<typeof statusEventsQuerySchema>;

export const statusEventViewSchema = z.object({
  id: z.string(),
  targetId: z.string(),
  kind: targetKindSchema,
  /** null: the target's consensus changed. */
  location: z.string().nullable(),
  from: targetStatusSchema,
  to: targetStatusSchema,
  reason: z.string(),
  at: z.iso.datetime(),
  sequence: z.number().int(),
});
export type StatusEventView = z.infer<typeof statusEventViewSchema>;

/** `GET /api/v1/status/events`: newest first. */
export const statusEventsResponseSchema = z.object({
  items: z.array(statusEventViewSchema),
  nextCursor: z.string().nullable(),
});
export type StatusEventsResponse = z.infer<typeof statusEventsResponseSchema>;

/** Statuses, comma-separated, in any case (`down` as `/targets` and `/hosts` take it). */
const csvStatuses = csvOf(TargetStatus);

/** `GET /api/v1/instances`: pushed instances (targets `instance:{instanceId}`). */
export const listInstancesQuerySchema = z.strictObject({
  status: csvStatuses.optional(),
  /** What the instances are, as their latest update said (`container`, `pod`, …; comma-separated: any of them). */
  kind: csvOf(InstanceKind).optional(),
  tag: storableText(128).optional(),
  location: storableText(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: storableText(512).optional(),
});
export type ListInstancesQuery = z.infer<typeof listInstancesQuerySchema>;

const locationViewSchema = z.object({
  location: z.string(),
  status: targetStatusSchema,
  lastSeen: z.iso.datetime().nullable(),
  latencyMs: z.number().nullable(),
  detail: z.string().nullable(),
});

/** A pushed instance as the list shows it: its target's live view plus its instance id. */
export const instanceViewSchema = z.object({
  instanceId: z.string(),
  id: z.string().describe('target id: instance:{instanceId}'),
  name: z.string(),
  status: targetStatusSchema,
  instanceKind: instanceKindSchema
    .nullable()
    .describe('what the instance is, as its latest update said (container, pod, …); null: not known yet'),
  lifecycle: z.string().nullable().describe('the pushed lifecycle state (Running, Restarting, …)'),
  locations: z.array(locationViewSchema),
  lastSeen: z.iso.datetime().nullable(),
  since: z.iso.datetime().nullable(),
  tags: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
});
export type InstanceView = z.infer<typeof instanceViewSchema>;

export const instanceListResponseSchema = z.object({
  items: z.array(instanceViewSchema),
  nextCursor: z.string().nullable(),
  total: count.describe('instances matching the filters'),
});
export type InstanceListResponse = z.infer<typeof instanceListResponseSchema>;

/** `DELETE /api/v1/instances/{instanceId}` → 202: the removal the broker confirmed, on its way to the aggregator. */
export const instanceRemovalAcceptedSchema = z.object({
  instanceId: z.string(),
  targetId: z.string().describe('`instance:{instanceId}`'),
  removedAt: z.iso
    .datetime()
    .describe(
      "when it was removed (now, or its newest update's time when that is later): a newer update brings it back",
    ),
  locations: z.array(z.string()).describe('the locations it was removed from (every one it had)'),
  messageId: z.string().describe("the removal's message id on the bus"),
});
export type InstanceRemovalAccepted = z.infer<typeof instanceRemovalAcceptedSchema>;
