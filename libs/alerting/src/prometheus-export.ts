import { stringify } from 'yaml';
import {
  isInstanceKind,
  RESERVED_LOCATION,
  type AlertMetricKind,
  type AlertRule,
  TargetKind,
} from '@fleetwatch/contracts';

// Rules → a Prometheus rule file over the series the gateway's /metrics exposes (issue 18,
// `GET /api/v1/alert-rules/prometheus`), so a site's own Prometheus can raise the same alerts. A rule
// that cannot be said in PromQL over those series is left out with its reason; an annotation template
// that cannot be said as a Go template is left out of its rule with a note.

/** How a metric condition's figure appears on /metrics. */
export interface MetricSeriesMapping {
  /** Series name, e.g. `fleetwatch_host_cpu_ratio`. */
  series: string;
  /** The figure is `series / denominator` (two series of the same labels, e.g. used and total bytes). */
  denominator?: string;
  /** The kind of target the series belongs to. */
  kind: TargetKind;
  /** Label holding the target (`target`, or `host` with the id's `host:` prefix stripped). */
  targetLabel: string;
  targetIdPrefix?: string;
  /** Multiply the series by this to get the rule's unit (a 0–1 ratio to a percentage: 100). */
  scale: number;
  /** Series label for each of the rule's filters (`mount`, `device`, `queue`). */
  filterLabels?: Partial<Record<'mount' | 'device' | 'queue', string>>;
}

/** Which metric kinds /metrics has a series for. */
export type PrometheusSeriesCatalogue = Partial<Record<AlertMetricKind, MetricSeriesMapping>>;

const HOST_SERIES = { kind: TargetKind.Host, targetLabel: 'host', targetIdPrefix: 'host:' };

/**
 * The series the gateway's /metrics has for metric conditions (apps/api-gateway/src/hosts/host-metrics.exporter.ts),
 * each giving the figure the engine compares (libs/alerting series.ts: percentages 0–100, °C). Not here, so their rules
 * are skipped with that reason: `host_memory_pct` (the engine counts total − available, /metrics exposes the sample's
 * used bytes: the two would disagree), latency percentiles, queue depths, check metrics and `gpus_missing` (no such
 * series). A check's
 * `latency_p95_ms` is the evaluator's own figure, the p95 of its results (check_results) over a window that scales with
 * its interval (apps/aggregator alert-metrics.reader latencyWindowMs): no /metrics series, nor a fixed `[5m]` range,
 * would give the same figure.
 */
export const FLEETWATCH_METRICS_CATALOGUE: PrometheusSeriesCatalogue = {
  host_cpu_pct: { ...HOST_SERIES, series: 'fleetwatch_host_cpu_ratio', scale: 100 },
  host_disk_pct: {
    ...HOST_SERIES,
    series: 'fleetwatch_host_disk_used_bytes',
    denominator: 'fleetwatch_host_disk_total_bytes',
    scale: 100,
    filterLabels: { mount: 'mount' },
  },
  gpu_utilization_pct: {
    ...HOST_SERIES,
    series: 'fleetwatch_host_gpu_utilization_ratio',
    scale: 100,
    filterLabels: { device: 'device' },
  },
  gpu_temperature_c: {
    ...HOST_SERIES,
    series: 'fleetwatch_host_gpu_temperature_celsius',
    scale: 1,
    filterLabels: { device: 'device' },
  },
};

/** The status series of /metrics (target-metrics.service.ts). */
export const STATUS_SERIES = 'fleetwatch_target_status';
export const UP_SERIES = 'fleetwatch_target_up';
/** `location` of the consensus series of fleetwatch_target_up. */
export const CONSENSUS_LOCATION = RESERVED_LOCATION;

export interface PrometheusExportOptions {
  /** This site's name: rules selecting other sites only are left out. */
  site: string;
  catalogue?: PrometheusSeriesCatalogue;
  groupName?: string;
}

export interface PrometheusExport {
  yaml: string;
  exported: string[];
  skipped: Array<{ ruleId: string; name: string; reason: string }>;
  notes: Array<{ ruleId: string; annotation: string; reason: string }>;
}

interface PromRule {
  alert: string;
  expr: string;
  for?: string;
  keep_firing_for?: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}

class Unexpressible extends Error {}

/** A PromQL string literal. */
const q = (s: string): string => JSON.stringify(s);
/** A value as a literal inside an RE2 regex. */
const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const alternation = (values: readonly string[]): string => values.map(reEscape).join('|');
/** Text that Prometheus will run through Go templates, kept literal. */
const goLiteral = (s: string): string => s.replace(/\{\{/g, '{{ "{{" }}');

function matcher(label: string, values: readonly string[]): string {
  return values.length === 1 ? `${label}=${q(values[0])}` : `${label}=~${q(alternation(values))}`;
}

function selectorJoins(rule: AlertRule, site: string): string {
  const s = rule.selector;
  if (s.tags.length) throw new Unexpressible('selects by tag, and tags are not labels of /metrics series');
  if (s.sites.length && !s.sites.includes(site))
    throw new Unexpressible(`selects sites ${s.sites.join(', ')} only; this export is of site ${site}`);
  const instanceKinds = s.kinds.filter(isInstanceKind);
  if (instanceKinds.length)
    throw new Unexpressible(
      `selects instance kinds (${instanceKinds.join(', ')}), and a pushed instance's own kind is not a label of /metrics series`,
    );
  let joins = '';
  if (s.kinds.length)
    joins += ` and on (target) ${UP_SERIES}{location=${q(CONSENSUS_LOCATION)},${matcher('kind', s.kinds)}}`;
  if (s.locations.length) joins += ` and on (target) ${UP_SERIES}{${matcher('location', s.locations)}}`;
  return joins;
}

function expressionOf(rule: AlertRule, opts: PrometheusExportOptions): string {
  const c = rule.condition;
  const ids = rule.selector.targetIds;
  if (c.type === 'status') {
    const filters = [matcher('status', c.statuses), ...(ids.length ? [matcher('target', ids)] : [])];
    return `max by (target) (${STATUS_SERIES}{${filters.join(',')}}) == 1${selectorJoins(rule, opts.site)}`;
  }
  const m = (opts.catalogue ?? FLEETWATCH_METRICS_CATALOGUE)[c.metric.kind];
  if (!m && c.metric.kind === 'latency_p95_ms')
    throw new Unexpressible(
      "/metrics has no series for latency_p95_ms: the evaluator computes it from the check's results over a window that scales with its interval (5 min, or two intervals when longer)",
    );
  if (!m && c.metric.kind === 'gpus_missing')
    throw new Unexpressible(
      "/metrics has no series for gpus_missing: a lost GPU's series simply disappear from /metrics, and the count of GPUs the collector saw earlier and misses now is the evaluator's own figure (the host sample's missingGpus)",
    );
  if (!m) throw new Unexpressible(`/metrics has no series for ${c.metric.kind}`);
  if (c.metric.kind === 'check_metric') throw new Unexpressible('check metrics are not on /metrics');
  if (rule.selector.kinds.length && !rule.selector.kinds.some((k) => k === m.kind))
    throw new Unexpressible(`${m.series} covers ${m.kind} targets only, and the rule selects none`);
  const filters: string[] = [];
  if (ids.length) {
    const prefix = m.targetIdPrefix ?? '';
    const values = ids.filter((id) => id.startsWith(prefix)).map((id) => id.slice(prefix.length));
    if (!values.length) throw new Unexpressible(`none of the rule's targets has a ${m.series} series`);
    filters.push(matcher(m.targetLabel, values));
  }
  const f = c.metric as { mount?: string; device?: number; queue?: string };
  for (const key of ['mount', 'device', 'queue'] as const) {
    if (f[key] === undefined) continue;
    const label = m.filterLabels?.[key];
    if (!label) throw new Unexpressible(`${m.series} has no label for ${key}`);
    filters.push(matcher(label, [String(f[key])]));
  }
  const selected = (name: string) => `${name}${filters.length ? `{${filters.join(',')}}` : ''}`;
  // A ratio over a total of 0 is no figure (the engine gives none; used / 0 would be +Inf, over any threshold).
  let series = m.denominator ? `${selected(m.series)} / (${selected(m.denominator)} > 0)` : selected(m.series);
  if (m.targetLabel !== 'target' || m.targetIdPrefix)
    series = `label_replace(${series}, "target", ${q(`${m.targetIdPrefix ?? ''}$1`)}, ${q(m.targetLabel)}, "(.*)")`;
  // One series per target and device: every gateway replica exposes the same figures (told apart by the scrape's
  // own labels, `instance`, `pod`…), and the alert is one, as the engine raises it.
  const keep = [...new Set(['target', m.targetLabel, ...Object.values(m.filterLabels ?? {})])];
  series = `max by (${keep.join(', ')}) (${series})`;
  const op = c.op === 'above' ? '>' : '<';
  const joins = selectorJoins(rule, opts.site);
  if (m.scale === 1) return `${series} ${op} ${c.threshold}${joins}`;
  // Compared as the engine compares: a ratio of two series scaled in the engine's order (part / whole × scale); a
  // series the gateway exposes as the figure ÷ scale against the threshold ÷ scale (the figure × scale back is not
  // always the figure: 0.07 × 100 = 7.000000000000001 > 7), then scaled for the alert's value.
  return m.denominator
    ? `${series} * ${m.scale} ${op} ${c.threshold}${joins}`
    : `(${series} ${op} ${c.threshold / m.scale}) * ${m.scale}${joins}`;
}

/** Liquid variables with a Go-template equivalent in a Prometheus alert. */
function goTemplateOf(rule: AlertRule, source: string): string {
  let out = '';
  let at = 0;
  const token = /\{\{-?\s*([^}]*?)\s*-?\}\}|\{%/g;
  for (let m = token.exec(source); m; m = token.exec(source)) {
    out += goLiteral(source.slice(at, m.index));
    at = m.index + m[0].length;
    if (m[0] === '{%') throw new Unexpressible('uses Liquid tags');
    const expr = m[1];
    const label = /^labels\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr);
    if (label) out += `{{ $labels.${label[1]} }}`;
    else if (expr === 'target.id') out += '{{ $labels.target }}';
    else if (expr === 'alert.value') out += '{{ $value }}';
    else if (expr === 'alert.name' || expr === 'rule.name') out += goLiteral(rule.name);
    else if (expr === 'rule.id') out += goLiteral(rule.id);
    else if (expr === 'alert.severity') out += rule.severity;
    else throw new Unexpressible(`"{{ ${expr} }}" has no Prometheus equivalent`);
  }
  return out + goLiteral(source.slice(at));
}

/** The rules as one Prometheus rule file (YAML), with what was left out and why. */
export function exportPrometheusRules(rules: readonly AlertRule[], opts: PrometheusExportOptions): PrometheusExport {
  const result: PrometheusExport = { yaml: '', exported: [], skipped: [], notes: [] };
  const promRules: PromRule[] = [];
  for (const rule of rules) {
    if (!rule.enabled) {
      result.skipped.push({ ruleId: rule.id, name: rule.name, reason: 'disabled' });
      continue;
    }
    let expr: string;
    try {
      expr = expressionOf(rule, opts);
    } catch (err) {
      if (!(err instanceof Unexpressible)) throw err;
      result.skipped.push({ ruleId: rule.id, name: rule.name, reason: err.message });
      continue;
    }
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(rule.labels)) labels[k] = goLiteral(v);
    labels['severity'] = rule.severity;
    labels['rule_id'] = goLiteral(rule.id);
    const annotations: Record<string, string> = {};
    for (const [name, source] of Object.entries(rule.annotations)) {
      try {
        annotations[name] = goTemplateOf(rule, source);
      } catch (err) {
        if (!(err instanceof Unexpressible)) throw err;
        result.notes.push({ ruleId: rule.id, annotation: name, reason: err.message });
      }
    }
    const r: PromRule = { alert: rule.name, expr, labels };
    if (rule.for !== '0s' && rule.for !== '0') r.for = rule.for;
    if (rule.keepFiringFor) r.keep_firing_for = rule.keepFiringFor;
    if (Object.keys(annotations).length) r.annotations = annotations;
    promRules.push(r);
    result.exported.push(rule.id);
  }
  result.yaml = stringify({ groups: [{ name: opts.groupName ?? 'fleetwatch', rules: promRules }] }, { lineWidth: 0 });
  return result;
}
