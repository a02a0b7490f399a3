import {
  ALERT_METRIC_KINDS,
  alertRuleSpecSchema,
  type AlertMetricKind,
  type AlertRuleDefinition,
} from '@fleetwatch/contracts';
import {
  errorsFrom,
  formatPairs,
  joinList,
  pairProblem,
  parsePairs,
  splitList,
  zodIssues,
  type Errors,
} from '../form-model';

// The alert rule form's state and its translation to the shared contract (alertRuleSpecSchema,
// the one the configuration owner applies): the form shows the very messages the API would answer
// with, and the API's issues (`condition.threshold`, `labels.severity`, a channel that does not
// exist) land on the same fields.

export interface RuleDraft {
  name: string;
  description: string;
  enabled: boolean;
  severity: string;
  targetIds: string;
  tags: string;
  sites: string;
  locations: string;
  kinds: string[];
  conditionType: 'status' | 'metric';
  statuses: string[];
  metric: AlertMetricKind;
  /** The metric's own narrowing field: mount, GPU device, queue, or a check metric's name. */
  metricFilter: string;
  op: 'above' | 'below';
  threshold: string;
  for: string;
  /** `name=value` per line. */
  labels: string;
  annotations: string;
  channels: string[];
  /** Fields of the stored rule the form does not show (grouping, keepFiringFor, repeatInterval), sent back. */
  extra: Record<string, unknown>;
}

export type RuleField = Exclude<keyof RuleDraft, 'extra'>;
export type RuleErrors = Errors<RuleField>;

export const METRIC_KINDS = ALERT_METRIC_KINDS;

/** What the metric filter field means for each metric (none: no filter). */
export const METRIC_FILTER: Partial<Record<AlertMetricKind, { key: string; label: string; numeric?: boolean }>> = {
  host_disk_pct: { key: 'mount', label: 'Mount point (empty: every disk)' },
  gpu_utilization_pct: { key: 'device', label: 'GPU index (empty: every GPU)', numeric: true },
  gpu_temperature_c: { key: 'device', label: 'GPU index (empty: every GPU)', numeric: true },
  queue_depth: { key: 'queue', label: 'Queue (empty: every queue)' },
  check_metric: { key: 'name', label: 'Series name' },
};

export const NEW_RULE: RuleDraft = {
  name: '',
  description: '',
  enabled: true,
  severity: 'warning',
  targetIds: '',
  tags: '',
  sites: '',
  locations: '',
  kinds: [],
  conditionType: 'status',
  statuses: ['DOWN'],
  metric: 'host_cpu_pct',
  metricFilter: '',
  op: 'above',
  threshold: '90',
  for: '1m',
  labels: '',
  annotations: 'summary={{ target.name }} is {{ alert.state }}',
  channels: [],
  extra: {},
};

const SHOWN = new Set([
  'name',
  'description',
  'enabled',
  'severity',
  'selector',
  'condition',
  'for',
  'labels',
  'annotations',
  'channels',
]);
const READ_ONLY = new Set(['id', 'version', 'createdAt', 'updatedAt']);

export function draftFromRule(r: AlertRuleDefinition): RuleDraft {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (!SHOWN.has(k) && !READ_ONLY.has(k)) extra[k] = v;
  const c = r.condition;
  let metricFilter = '';
  if (c.type === 'metric') {
    const spec = METRIC_FILTER[c.metric.kind];
    const value = spec ? (c.metric as Record<string, unknown>)[spec.key] : undefined;
    metricFilter = value === undefined ? '' : String(value);
    // A check metric's label filters are not on the form: kept as they are.
    if (c.metric.kind === 'check_metric') extra['__metricLabels'] = c.metric.labels;
  }
  return {
    name: r.name,
    description: r.description ?? '',
    enabled: r.enabled,
    severity: r.severity,
    targetIds: joinList(r.selector.targetIds),
    tags: joinList(r.selector.tags),
    sites: joinList(r.selector.sites),
    locations: joinList(r.selector.locations),
    kinds: [...r.selector.kinds],
    conditionType: c.type,
    statuses: c.type === 'status' ? [...c.statuses] : ['DOWN'],
    metric: c.type === 'metric' ? c.metric.kind : 'host_cpu_pct',
    metricFilter,
    op: c.type === 'metric' ? c.op : 'above',
    threshold: c.type === 'metric' ? String(c.threshold) : '90',
    for: r.for,
    labels: formatPairs(r.labels),
    annotations: formatPairs(r.annotations),
    channels: [...r.channels],
    extra,
  };
}

/** A number when the text is one; else the text itself, so that the contract names the field. */
const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s.trim());

/** The request body for POST / PUT /api/v1/alert-rules. */
export function draftToInput(d: RuleDraft): Record<string, unknown> {
  const { __metricLabels, ...extra } = d.extra;
  let condition: Record<string, unknown>;
  if (d.conditionType === 'status') condition = { type: 'status', statuses: d.statuses };
  else {
    const metric: Record<string, unknown> = { kind: d.metric };
    const spec = METRIC_FILTER[d.metric];
    if (spec && d.metricFilter.trim()) metric[spec.key] = spec.numeric ? num(d.metricFilter) : d.metricFilter.trim();
    if (d.metric === 'check_metric' && __metricLabels) metric['labels'] = __metricLabels;
    condition = { type: 'metric', metric, op: d.op, threshold: num(d.threshold) };
  }
  const body: Record<string, unknown> = {
    ...extra,
    name: d.name,
    enabled: d.enabled,
    severity: d.severity,
    selector: {
      targetIds: splitList(d.targetIds),
      tags: splitList(d.tags),
      sites: splitList(d.sites),
      locations: splitList(d.locations),
      kinds: d.kinds,
    },
    condition,
    for: d.for.trim(),
    labels: parsePairs(d.labels),
    annotations: parsePairs(d.annotations),
    channels: d.channels,
  };
  if (d.description.trim()) body['description'] = d.description.trim();
  return body;
}

const SELECTOR_FIELDS = new Set(['targetIds', 'tags', 'sites', 'locations', 'kinds']);
const TOP_FIELDS = new Set(['name', 'description', 'severity', 'for', 'channels', 'enabled']);

/** `condition.statuses.0` → statuses; `labels.severity` → labels ("severity: …"); unknown → the form. */
export function errorsFromIssues(issues: readonly { path: string; message: string }[]): RuleErrors {
  return errorsFrom<RuleField>(issues, ([head, second, third]) => {
    if (head === 'selector' && second && SELECTOR_FIELDS.has(second))
      return { field: second as RuleField, prefix: third === undefined ? undefined : `entry ${Number(third) + 1}` };
    if (head === 'condition') {
      if (second === 'statuses') return { field: 'statuses' };
      if (second === 'metric') return { field: third && third !== 'kind' ? 'metricFilter' : 'metric' };
      if (second === 'op') return { field: 'op' };
      if (second === 'threshold') return { field: 'threshold' };
      if (second === 'type') return { field: 'conditionType' };
      return { field: 'form', prefix: 'condition' };
    }
    if (head === 'labels' || head === 'annotations') return { field: head, prefix: second };
    if (head === 'channels') return { field: 'channels' };
    if (head && TOP_FIELDS.has(head)) return { field: head as RuleField };
    return { field: 'form' };
  });
}

/** The contract's verdict on the draft, as messages per field (empty: valid). */
export function validateRule(d: RuleDraft): RuleErrors {
  const r = alertRuleSpecSchema.safeParse(draftToInput(d));
  const errors = r.success ? {} : errorsFromIssues(zodIssues(r.error.issues));
  for (const field of ['labels', 'annotations'] as const) {
    const problem = pairProblem(d[field]);
    if (problem !== undefined) errors[field] = problem;
  }
  return errors;
}
