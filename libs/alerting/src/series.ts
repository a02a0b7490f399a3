import type {
  AlertCondition,
  AlertMetric,
  AlertMetricKind,
  CheckResultPayload,
  HostMetricsPayload,
  TargetStatus,
} from '@fleetwatch/contracts';
import { seriesSuffix } from './rule';

/**
 * One figure of a target a metric condition can read: kind, labels that tell series of one target apart
 * (`mount`, `device`, `queue`, a check metric's labels) and the value. `name` is a check metric's name.
 */
export interface MetricSeries {
  kind: AlertMetricKind;
  name?: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** What a target looks like at one evaluation: its consensus status and its latest figures. */
export interface TargetObservation {
  status: TargetStatus;
  metrics?: readonly MetricSeries[];
  /**
   * How often the target reports its figures (ms): a check's interval, a host's sampling interval. A series missing
   * from them keeps its alert's state for a grace that scales with it (absentGraceMs). Absent/null: not known.
   */
  reportIntervalMs?: number | null;
}

/** Result of testing a condition on one series: whether it holds, and the value to report. */
export interface ConditionSample {
  /** Distinguishes several series of one target (empty for status conditions and single series). */
  seriesLabels: Readonly<Record<string, string>>;
  active: boolean;
  value: number | null;
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** True when a series is one the metric reference asks for. */
export function seriesMatches(metric: AlertMetric, s: MetricSeries): boolean {
  if (s.kind !== metric.kind) return false;
  switch (metric.kind) {
    case 'host_disk_pct':
      return metric.mount === undefined || s.labels['mount'] === metric.mount;
    case 'gpu_utilization_pct':
    case 'gpu_temperature_c':
      return metric.device === undefined || s.labels['device'] === String(metric.device);
    case 'queue_depth':
      return metric.queue === undefined || s.labels['queue'] === metric.queue;
    case 'check_metric':
      if (s.name !== metric.name) return false;
      for (const [k, v] of Object.entries(metric.labels)) if (s.labels[k] !== v) return false;
      return true;
    default:
      return true;
  }
}

/** above: value > threshold; below: value < threshold. NaN, ±Infinity-free and absent values never hold. */
export function thresholdHolds(op: 'above' | 'below', threshold: number, value: number | null | undefined): boolean {
  if (value === null || value === undefined || Number.isNaN(value)) return false;
  return op === 'above' ? value > threshold : value < threshold;
}

/**
 * Tests a condition against a target's observation: one sample for a status condition, one per matching
 * series for a metric condition (none when the target has no such series: nothing to alert on, like a
 * Prometheus expression with no result).
 */
export function sampleCondition(condition: AlertCondition, obs: TargetObservation): ConditionSample[] {
  if (condition.type === 'status')
    return [
      {
        seriesLabels: NO_LABELS,
        active: (condition.statuses as readonly string[]).includes(obs.status),
        value: null,
      },
    ];
  const out: ConditionSample[] = [];
  /** Where each label set's sample (by its part of the alert key) is in `out`: built once a second series matches. */
  let byLabels: Map<string, number> | undefined;
  for (const s of obs.metrics ?? []) {
    if (!seriesMatches(condition.metric, s)) continue;
    const value = Number.isNaN(s.value) ? null : s.value;
    const sample = { seriesLabels: s.labels, active: thresholdHolds(condition.op, condition.threshold, value), value };
    if (out.length > 0) {
      byLabels ??= new Map([[seriesSuffix(out[0].seriesLabels), 0]]);
      const key = seriesSuffix(s.labels);
      const at = byLabels.get(key);
      if (at !== undefined) {
        // Two figures under one label set (a mount or GPU index a sample names twice) are one alert, holding when
        // either holds: as two, the second undid the first at every evaluation (firing and dropped together). It
        // reports the worse figure (the fuller disk, the hotter GPU), whichever the sample gave first.
        if (worse(condition.op, sample, out[at])) out[at] = sample;
        continue;
      }
      byLabels.set(key, out.length);
    }
    out.push(sample);
  }
  return out;
}

/**
 * Whether `a` is the worse of two figures under one label set: the one holding, else (both holding or neither) the
 * one further past (or nearer to) the threshold in the condition's direction; a figure beats no figure (null).
 */
function worse(op: 'above' | 'below', a: ConditionSample, b: ConditionSample): boolean {
  if (a.active !== b.active) return a.active;
  if (a.value === null) return false;
  return b.value === null || (op === 'above' ? a.value > b.value : a.value < b.value);
}

const pct = (part: number, whole: number): number | null => (whole > 0 ? (part / whole) * 100 : null);

/** The series a host sample gives metric conditions (percentages 0–100, temperature °C, missing GPUs a count). */
export function hostMetricSeries(sample: HostMetricsPayload): MetricSeries[] {
  const out: MetricSeries[] = [{ kind: 'host_cpu_pct', labels: NO_LABELS, value: sample.cpu.usagePct }];
  const m = sample.memory;
  // Used memory as applications feel it: total minus what they can still get, when the OS says.
  const mem = pct(m.availableBytes !== undefined ? m.totalBytes - m.availableBytes : m.usedBytes, m.totalBytes);
  if (mem !== null) out.push({ kind: 'host_memory_pct', labels: NO_LABELS, value: mem });
  for (const d of sample.disks) {
    const used = pct(d.usedBytes, d.totalBytes);
    if (used !== null) out.push({ kind: 'host_disk_pct', labels: { mount: d.mount }, value: used });
  }
  for (const g of sample.gpus) {
    const labels = { device: String(g.index) };
    if (g.utilizationPct !== null) out.push({ kind: 'gpu_utilization_pct', labels, value: g.utilizationPct });
    if (g.temperatureC !== null) out.push({ kind: 'gpu_temperature_c', labels, value: g.temperatureC });
  }
  // GPUs seen earlier and not now: their own series are gone (their alerts end as series_absent), this one says why.
  // Only from a collector that tracks them (it sends the list, [] when none is missing, once it has seen a GPU).
  if (sample.missingGpus !== undefined)
    out.push({ kind: 'gpus_missing', labels: NO_LABELS, value: sample.missingGpus.length });
  return out;
}

/**
 * The series a check result gives: its service-collector figures as `check_metric`, queue depths as
 * `queue_depth` (`rabbitmq_queue_messages{queue}`, which the queue collector and an amqp check with a queue
 * publish; a plain `messages` figure of an amqp result too). Latency p95 comes from history (rollups), not from one result.
 */
export function checkResultSeries(result: CheckResultPayload): MetricSeries[] {
  const out: MetricSeries[] = [];
  for (const m of result.metrics ?? []) {
    const labels = m.labels ?? NO_LABELS;
    out.push({ kind: 'check_metric', name: m.name, labels, value: m.value });
    if (m.name === 'rabbitmq_queue_messages' && labels['queue'] !== undefined)
      out.push({ kind: 'queue_depth', labels: { queue: labels['queue'] }, value: m.value });
    else if (m.name === 'messages' && result.checkType === 'amqp')
      out.push({ kind: 'queue_depth', labels: NO_LABELS, value: m.value });
  }
  return out;
}
