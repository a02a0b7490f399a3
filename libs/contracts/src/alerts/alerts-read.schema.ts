import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { alertRuleIdSchema } from './rule.schema';
import { channelTypeSchema } from './channel.schema';
import { alertEndReasonSchema } from './end-reason';

// The alert pages' reads (issue 18): the alerts that are pending or firing now, and the delivery log.
// Responses are zod schemas so the OpenAPI document and the dashboard share one definition.

const count = z.number().int().nonnegative();

/** Comma-separated values of an enum in a query string (`state=pending,firing`). */
function csvOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string()
    .max(200)
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(values)).min(1));
}

export const ALERT_LIST_STATES = ['pending', 'firing'] as const;
export const alertListStateSchema = z.enum(ALERT_LIST_STATES);
export type AlertListState = z.infer<typeof alertListStateSchema>;

/** The latest time an alert cursor can hold (9999-12-31T23:59:59.999Z). */
const ALERT_CURSOR_MAX_MS = Date.UTC(10_000, 0, 1) - 1;

/** `GET /api/v1/alerts` query. */
export const listAlertsQuerySchema = z.strictObject({
  /** Comma-separated: pending, firing (default both). */
  state: csvOf(ALERT_LIST_STATES).optional(),
  ruleId: alertRuleIdSchema.optional(),
  targetId: storableText(300, 1).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The previous page's `nextCursor`. */
  cursor: z
    .string()
    .regex(/^\d{1,15}_[0-9a-f]{16}$/, 'must be a nextCursor from the previous page')
    // Its time goes to Postgres as an ISO text: past 9999 that has a six-digit year, which Postgres refuses.
    .refine(
      (c) => Number(c.slice(0, c.indexOf('_'))) <= ALERT_CURSOR_MAX_MS,
      'must be a nextCursor from the previous page',
    )
    .optional(),
});
export type ListAlertsQuery = z.infer<typeof listAlertsQuerySchema>;

/** What mutes an alert's notifications now (checks and evaluation go on). */
export const alertMuteSchema = z.object({
  kind: z.enum(['silence', 'maintenance']),
  /** The silence's or the maintenance window's id. */
  id: z.string(),
});
export type AlertMute = z.infer<typeof alertMuteSchema>;

/** One pending or firing alert. */
export const alertViewSchema = z.object({
  /** The alert's fingerprint (a hash of its labels): stable, for links and for creating a silence. */
  id: z.string(),
  ruleId: z.string(),
  /** The rule's name (the `alertname` label). */
  ruleName: z.string(),
  severity: z.string(),
  targetId: z.string(),
  /** The target's name from live state; null when the target is no longer there. */
  targetName: z.string().nullable(),
  state: alertListStateSchema,
  labels: z.record(z.string(), z.string()),
  /** A metric condition's value when the alert last changed state; null for status conditions. */
  value: z.number().nullable(),
  /** Since when it is in its state: firing → firedAt, pending → activeAt. */
  since: z.iso.datetime(),
  /** Seconds in its state, at `generatedAt`. */
  durationSeconds: count,
  /** When the condition began to hold. */
  activeAt: z.iso.datetime(),
  firedAt: z.iso.datetime().nullable(),
  /** When a firing notification was last queued for it; null: never (muted, or still pending). */
  lastNotifiedAt: z.iso.datetime().nullable(),
  /** Why its notifications are muted now, or null. */
  muted: alertMuteSchema.nullable(),
  /** `muted?.kind === 'silence'`. */
  silenced: z.boolean(),
});
export type AlertView = z.infer<typeof alertViewSchema>;

/** `GET /api/v1/alerts`: newest first (by when the condition began to hold). */
export const alertListResponseSchema = z.object({
  items: z.array(alertViewSchema),
  nextCursor: z.string().nullable(),
  /** Over every alert, whatever the filters. */
  counts: z.object({ pending: count, firing: count }),
  generatedAt: z.iso.datetime(),
});
export type AlertListResponse = z.infer<typeof alertListResponseSchema>;

export const DELIVERY_OUTCOMES = ['delivered', 'retrying', 'failed', 'skipped'] as const;
/** delivered; retrying (failed, tried again at nextAttemptAt); failed (given up); skipped (nothing sent). */
export const deliveryOutcomeSchema = z.enum(DELIVERY_OUTCOMES);
export type DeliveryOutcomeName = z.infer<typeof deliveryOutcomeSchema>;

/** `GET /api/v1/alerts/deliveries` query. */
export const listDeliveriesQuerySchema = z.strictObject({
  channelId: alertRuleIdSchema.optional(),
  /** Comma-separated outcomes: delivered, retrying, failed, skipped. */
  outcome: csvOf(DELIVERY_OUTCOMES).optional(),
  /** true: test-sends only; false: no test-sends. */
  test: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The previous page's `nextCursor`. */
  cursor: z
    .string()
    .regex(/^[1-9]\d{0,17}$/, 'must be a nextCursor from the previous page')
    .optional(),
});
export type ListDeliveriesQuery = z.infer<typeof listDeliveriesQuerySchema>;

/** An alert a logged message carried. */
export const deliveryAlertRefSchema = z.object({
  /** The alert's fingerprint (AlertView.id). */
  id: z.string(),
  ruleName: z.string(),
  targetId: z.string().nullable(),
  status: z.enum(['firing', 'resolved']),
});
export type DeliveryAlertRef = z.infer<typeof deliveryAlertRefSchema>;

/** One attempt to deliver a message to a channel (or a test-send). */
export const deliveryLogEntrySchema = z.object({
  id: z.string(),
  /** The message: every attempt at it shares this id (receivers see it as X-Fleetwatch-Delivery). */
  deliveryId: z.string(),
  channelId: z.string(),
  /** The channel's name now; null when the channel was deleted since. */
  channelName: z.string().nullable(),
  /** `unknown` when the channel could not be read at the time. */
  channelType: z.union([channelTypeSchema, z.literal('unknown')]),
  /** The message's status: firing while any of its alerts fires. */
  status: z.enum(['firing', 'resolved']),
  /** The alerts of the message (at most 20; empty for a test-send and for rows logged before this field). */
  alerts: z.array(deliveryAlertRefSchema),
  /** Total alerts the message carried. */
  alertCount: count,
  attempt: z.number().int().positive(),
  outcome: deliveryOutcomeSchema,
  /** The receiver's HTTP status (webhook, Slack, Teams, PagerDuty), or null. */
  httpStatus: z.number().int().nullable(),
  /** Why it failed or was skipped; secrets scrubbed. */
  error: z.string().nullable(),
  durationMs: count,
  /** When a `retrying` attempt is tried again. */
  nextAttemptAt: z.iso.datetime().nullable(),
  test: z.boolean(),
  at: z.iso.datetime(),
});
export type DeliveryLogEntryView = z.infer<typeof deliveryLogEntrySchema>;

/** `GET /api/v1/alerts/deliveries`: newest first. */
export const deliveryLogResponseSchema = z.object({
  items: z.array(deliveryLogEntrySchema),
  nextCursor: z.string().nullable(),
});
export type DeliveryLogResponse = z.infer<typeof deliveryLogResponseSchema>;

/** `POST /api/v1/channels/{id}/test`: how the test notification went (sent once, never retried). */
export const channelTestResultSchema = z.object({
  ok: z.boolean(),
  /** delivered, failed (the receiver refused or could not be reached) or skipped (nothing could be sent). */
  outcome: deliveryOutcomeSchema,
  /** The receiver's HTTP status, or null (SMTP, or no answer). */
  httpStatus: z.number().int().nullable(),
  /** The error or the receiver's refusal, secrets scrubbed; null when delivered. */
  error: z.string().nullable(),
  durationMs: count,
  /** The delivery log entry's message id. */
  deliveryId: z.string(),
});
export type ChannelTestResult = z.infer<typeof channelTestResultSchema>;

export const ALERT_HISTORY_STATES = ['inactive', 'pending', 'firing', 'resolved'] as const;

/** `GET /api/v1/alerts/history` query. */
export const alertHistoryQuerySchema = z.strictObject({
  ruleId: alertRuleIdSchema.optional(),
  targetId: storableText(300, 1).optional(),
  /** Only changes at or after this instant. */
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The previous page's `nextCursor`. */
  cursor: z
    .string()
    .regex(
      /^\d{1,15}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      'must be a nextCursor from the previous page',
    )
    .refine(
      (c) => Number(c.slice(0, c.indexOf('_'))) <= ALERT_CURSOR_MAX_MS,
      'must be a nextCursor from the previous page',
    )
    .optional(),
});
export type AlertHistoryQuery = z.infer<typeof alertHistoryQuerySchema>;

/** One state change of an alert (alert_events; published as `alert.state-changed`). */
export const alertHistoryEntrySchema = z.object({
  /** The event's id (the id of its `alert.state-changed` message). */
  id: z.string(),
  ruleId: z.string(),
  /** The rule's name when the change happened (the `alertname` label). */
  ruleName: z.string(),
  severity: z.string(),
  /** The alert's fingerprint (AlertView.id). */
  fingerprint: z.string(),
  targetId: z.string(),
  from: z.enum(ALERT_HISTORY_STATES),
  to: z.enum(ALERT_HISTORY_STATES),
  labels: z.record(z.string(), z.string()),
  /** A metric condition's value at the change; null for status conditions. */
  value: z.number().nullable(),
  at: z.iso.datetime(),
  /**
   * Why the alert ended, on a change to `resolved` (or `pending → inactive`): `condition_cleared` when its figures
   * recovered, else what ended it without them (`series_absent`: no data for its grace; the target gone, stale, paused
   * or unknown; the rule disabled, changed, deleted or no longer selecting the target). Null on other changes and on
   * changes recorded before reasons were kept (`alertEndReasonText` reads it).
   */
  endReason: alertEndReasonSchema.nullable(),
  /**
   * The end reason as a person reads it, with how long the data was missing when that is recorded ("series absent (no
   * data for 20 min)": the grace scales with how often the target reports); null when `endReason` is. Absent from
   * answers of servers before it existed (read `endReason` then).
   */
  endReasonText: z.string().nullable().optional(),
});
export type AlertHistoryEntry = z.infer<typeof alertHistoryEntrySchema>;

/** `GET /api/v1/alerts/history`: newest first. */
export const alertHistoryResponseSchema = z.object({
  items: z.array(alertHistoryEntrySchema),
  nextCursor: z.string().nullable(),
});
export type AlertHistoryResponse = z.infer<typeof alertHistoryResponseSchema>;
