import { z } from 'zod';
import { ownKeysRecord, storableNumber, storableText } from '../common/store-safe';
import { SelectableKind, selectableKindSchema, TargetStatus } from '../common/status';
import { locationSchema } from '../events/observations.schema';
import { durationSchema } from './duration';
import { alertLabelNameSchema, alertLabelValueSchema } from './matchers.schema';
import { selectorTagSchema } from '../checks/check-fields';

// An alert rule (SPEC §7) as configuration: written through sync-orchestrator's versioned path like a
// check, exported in config snapshots, evaluated by the aggregator (libs/alerting). Bounded everywhere:
// a rule set is part of every snapshot a leader sends its members.

/** Stable rule ids: a UUID given by the configuration owner, or a slug (`default.target-down`). */
export const alertRuleIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - (no spaces)');
/** Channel ids, as the configuration owner issues them. */
export const channelIdSchema = alertRuleIdSchema;
/** Tags a selector names: a check's, or a pushed instance's label as `name=value` (check-fields.ts). */
const tagSchema = selectorTagSchema;
/** Target ids (`check:<id>`, `host:<id>`, `instance:<id>`, SPEC §11). */
export const alertTargetIdSchema = storableText(300, 1);
export const siteNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits and . _ -');

const distinct = <T>(a: T[]) => new Set(a).size === a.length;

/**
 * Which targets a rule watches. Every given field must match (AND); inside a field any listed value
 * matches (OR), except tags, which must all be present. Empty or absent: no restriction.
 */
export const alertSelectorSchema = z.strictObject({
  targetIds: z.array(alertTargetIdSchema).max(1000).refine(distinct, 'each target once').default([]),
  tags: z.array(tagSchema).max(32).refine(distinct, 'each tag once').default([]),
  sites: z.array(siteNameSchema).max(64).refine(distinct, 'each site once').default([]),
  /** Targets watched from (at least one of) these locations. */
  locations: z.array(locationSchema).max(64).refine(distinct, 'each location once').default([]),
  /**
   * Target kinds (`check`, `host`, `instance`) or pushed instances' own kinds (`container`, `pod`, `process`,
   * `service`, `job`): a target matches when its kind or its instance kind is listed.
   */
  kinds: z
    .array(selectableKindSchema)
    .max(Object.keys(SelectableKind).length)
    .refine(distinct, 'each kind once')
    .default([]),
});
export type AlertSelectorInput = z.input<typeof alertSelectorSchema>;
export type AlertSelector = z.output<typeof alertSelectorSchema>;

/** Statuses a status condition can wait for (UP, PAUSED and UNKNOWN are never a problem to alert on). */
export const ALERTABLE_STATUSES = [TargetStatus.Down, TargetStatus.Partial, TargetStatus.Stale] as const;
export const alertableStatusSchema = z.enum(ALERTABLE_STATUSES);

export const statusConditionSchema = z.strictObject({
  type: z.literal('status'),
  /** The condition holds while the target's consensus status is one of these. */
  statuses: z.array(alertableStatusSchema).min(1).max(3).refine(distinct, 'each status once'),
});

/** A metric name as service collectors report it (checkMetricSchema). */
const checkMetricNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _, not starting with a digit');
const checkMetricLabelName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _');

/**
 * What a metric condition reads. Percentages are 0–100; latency in milliseconds; temperature in °C.
 * A target can have several series of one metric (one per disk, GPU, queue, labelled series): each is
 * its own alert. The optional filters narrow them down.
 */
export const alertMetricSchema = z.discriminatedUnion('kind', [
  /** p95 of a check's latency over its recent results: 5 min of them, or two of its intervals when longer. */
  z.strictObject({ kind: z.literal('latency_p95_ms') }),
  z.strictObject({ kind: z.literal('host_cpu_pct') }),
  z.strictObject({ kind: z.literal('host_memory_pct') }),
  z.strictObject({ kind: z.literal('host_disk_pct'), mount: storableText(512, 1).optional() }),
  z.strictObject({ kind: z.literal('gpu_utilization_pct'), device: z.number().int().min(0).max(63).optional() }),
  z.strictObject({ kind: z.literal('gpu_temperature_c'), device: z.number().int().min(0).max(63).optional() }),
  /**
   * GPUs the host's collector saw earlier and does not see now (fallen off the bus, nvidia-smi giving no readings):
   * 0 when none; no figure on a host whose collector never saw a GPU (or predates it). `above 0` fires on a lost GPU.
   */
  z.strictObject({ kind: z.literal('gpus_missing') }),
  /** Messages ready in a queue (an amqp check's queue or a service collector's queue series). */
  z.strictObject({ kind: z.literal('queue_depth'), queue: storableText(255, 1).optional() }),
  /** A service collector's figure (checkMetricSchema): by name, and labels that must all be equal. */
  z.strictObject({
    kind: z.literal('check_metric'),
    name: checkMetricNameSchema,
    labels: ownKeysRecord(checkMetricLabelName, storableText(256))
      .refine((l) => Object.keys(l).length <= 8, 'at most 8 labels')
      .default({}),
  }),
]);
export type AlertMetric = z.output<typeof alertMetricSchema>;
export type AlertMetricKind = AlertMetric['kind'];
export const ALERT_METRIC_KINDS = alertMetricSchema.options.map((o) => o.shape.kind.value) as AlertMetricKind[];

export const metricConditionSchema = z.strictObject({
  type: z.literal('metric'),
  metric: alertMetricSchema,
  /** `above`: holds while value > threshold; `below`: while value < threshold. NaN or no value never holds. */
  op: z.enum(['above', 'below']),
  threshold: storableNumber().min(-1e15).max(1e15),
});

export const alertConditionSchema = z.discriminatedUnion('type', [statusConditionSchema, metricConditionSchema]);
export type AlertCondition = z.output<typeof alertConditionSchema>;

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export const severitySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof severitySchema>;

/** Labels every alert gets from the engine; a rule's own labels may not set them. */
export const RESERVED_ALERT_LABELS = ['alertname', 'severity', 'target', 'rule_id'] as const;

/** Longest annotation template; rendered text is bounded separately (libs/alerting templates). */
export const ANNOTATION_TEMPLATE_MAX = 4096;

/**
 * How notifications of one channel are batched (Alertmanager's route timing): alerts with equal values
 * of `groupBy` labels go out together; a new group waits `groupWait` for company, later changes go out
 * at most every `groupInterval`, and still-firing alerts are sent again every `repeatInterval`.
 * `groupBy: ["..."]` groups by every label (each alert alone).
 */
export const alertGroupingSchema = z.strictObject({
  groupBy: z
    .array(z.union([alertLabelNameSchema, z.literal('...')]))
    .max(16)
    .refine(distinct, 'each label once')
    .refine((g) => !g.includes('...') || g.length === 1, '"..." stands alone')
    .default(['alertname']),
  groupWait: durationSchema({ max: 3_600_000 }).default('30s'),
  groupInterval: durationSchema({ min: 1_000, max: 86_400_000 }).default('5m'),
  repeatInterval: durationSchema({ min: 60_000 }).default('4h'),
});
export type AlertGroupingInput = z.input<typeof alertGroupingSchema>;
export type AlertGrouping = z.output<typeof alertGroupingSchema>;

/** A rule as a client writes it (POST, PUT, YAML). */
export const alertRuleSpecSchema = z
  .strictObject({
    name: storableText(256).trim().min(1),
    description: storableText(2048).optional(),
    enabled: z.boolean().default(true),
    selector: alertSelectorSchema.default({
      targetIds: [],
      tags: [],
      sites: [],
      locations: [],
      kinds: [],
    }),
    condition: alertConditionSchema,
    /** How long the condition must hold before the alert fires (pending until then). */
    for: durationSchema().default('0s'),
    /** Keep firing this long after the condition stops holding (Prometheus `keep_firing_for`). */
    keepFiringFor: durationSchema().optional(),
    severity: severitySchema.default('warning'),
    labels: ownKeysRecord(alertLabelNameSchema, alertLabelValueSchema)
      .refine((l) => Object.keys(l).length <= 16, 'at most 16 labels')
      .default({}),
    /** Liquid templates (`{{ target.name }} is {{ alert.state }}`): summary, description, runbook_url … */
    annotations: ownKeysRecord(alertLabelNameSchema, storableText(ANNOTATION_TEMPLATE_MAX))
      .refine((a) => Object.keys(a).length <= 16, 'at most 16 annotations')
      .default({}),
    /** Send a still-firing alert again this often (default: the grouping's repeatInterval). */
    repeatInterval: durationSchema({ min: 60_000 }).optional(),
    /** Where notifications go; none: the alert is evaluated and shown, never sent. */
    channels: z.array(channelIdSchema).max(16).refine(distinct, 'each channel once').default([]),
    /** Overrides the site's grouping for this rule's notifications. */
    grouping: alertGroupingSchema.optional(),
  })
  .superRefine((r, ctx) => {
    for (const k of Object.keys(r.labels))
      if ((RESERVED_ALERT_LABELS as readonly string[]).includes(k))
        ctx.addIssue({ code: 'custom', path: ['labels', k], message: `"${k}" is set by the engine` });
  });
export type AlertRuleInput = z.input<typeof alertRuleSpecSchema>;
export type AlertRuleSpec = z.output<typeof alertRuleSpecSchema>;
/** A rule with its id: what the engine evaluates. */
export type AlertRule = AlertRuleSpec & { id: string };
/** A stored rule, as the configuration owner returns it. */
export type AlertRuleDefinition = AlertRule & { version: number; createdAt: string; updatedAt: string };
