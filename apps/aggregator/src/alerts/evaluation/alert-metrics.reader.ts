import { Injectable } from '@nestjs/common';
import { TargetStatus, type AlertMetricKind, type HostMetricsPayload } from '@fleetwatch/contracts';
import { hostMetricSeries, type CompiledAlertRule, type MetricSeries } from '@fleetwatch/alerting';
import { CHECK_STALE_SLACK_MS } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { AlertEvaluationReaderRepository } from '@fleetwatch/persistence';
import type { ViewedTarget } from './target-view';

const HOST_KINDS = new Set<AlertMetricKind>([
  'host_cpu_pct',
  'host_memory_pct',
  'host_disk_pct',
  'gpu_utilization_pct',
  'gpu_temperature_c',
  'gpus_missing',
]);
const CHECK_KINDS = new Set<AlertMetricKind>(['check_metric', 'queue_depth']);
/**
 * The shortest window `latency_p95_ms` is computed over (a check run every 147 s or more often has this one); a check
 * run less often has LATENCY_WINDOW_INTERVALS of its intervals (latencyWindowMs). How long one computation is reused.
 */
export const LATENCY_WINDOW_MS = 5 * 60_000;
export const LATENCY_WINDOW_INTERVALS = 2;
export const LATENCY_REFRESH_MS = 15_000;

/**
 * The window (ms, back from now) of a check's `latency_p95_ms`: LATENCY_WINDOW_MS, or two of its intervals plus the
 * STALE slack when that is longer — the span after which the check itself turns STALE (two missed intervals plus
 * CHECK_STALE_SLACK_MS), so while it is not STALE its newest result is in the window (in a fixed 5 min, a check run
 * hourly had a series for 5 min after each result and none the other 55: "p95 > 300 ms for 10m" could not fire in
 * 10 min). Two, not more: on schedule that is its last two results (three for the slack's few seconds after one), and
 * one slow result holds the p95 up for two of its intervals (a check run every 30 s: for 5 min, ten of its intervals);
 * one interval alone would leave no result in the window whenever a run is a little late. The interval is the one its STALE deadlines were set with (TargetView's reportIntervalMs: the snapshot,
 * as of the last read); not known (no deadline: a collector that does not send it, a paused check): LATENCY_WINDOW_MS.
 */
export function latencyWindowMs(reportIntervalMs: number | null | undefined): number {
  const byInterval =
    reportIntervalMs !== null && reportIntervalMs !== undefined && reportIntervalMs > 0
      ? LATENCY_WINDOW_INTERVALS * reportIntervalMs + CHECK_STALE_SLACK_MS
      : 0;
  return Math.max(LATENCY_WINDOW_MS, byInterval);
}
const HOST_PREFIX = 'host:';
/** Redis calls in flight at once for check metrics (one hash per check). */
const CHECK_READ_CONCURRENCY = 32;

/** What one read found: figures by target, and the targets whose figures changed since the previous read. */
export interface MetricsRead {
  series: Map<string, MetricSeries[]>;
  changed: string[];
}

interface CheckMetric {
  name: string;
  labels?: Record<string, string>;
  value: number;
}

/**
 * The figures metric conditions read, from live state (what the aggregator projected last): hosts' latest
 * samples (`host:{id}:metrics`) and service collectors' latest figures per check (`cm:`). Read only for
 * targets some enabled metric rule selects, and only the kinds such rules ask for.
 *
 * `latency_p95_ms` is not a live figure: the p95 of each selected check's results over its window back from now
 * (latencyWindowMs: 5 min, or two of its intervals plus the STALE slack when longer; check_results, every location
 * together), recomputed at most every LATENCY_REFRESH_MS — at once when the selection or a window changed.
 */
@Injectable()
export class AlertMetricsReader {
  private latency: { at: number; ids: string[]; windows: number[]; values: Map<string, number> } = {
    at: 0,
    ids: [],
    windows: [],
    values: new Map(),
  };
  private signatures = new Map<string, string>();
  private hosts = new Map<string, { json: string; series: MetricSeries[] }>();

  constructor(
    private readonly store: LiveStateStore,
    private readonly history: AlertEvaluationReaderRepository,
  ) {}

  /**
   * The figures of every target some enabled metric rule selects, and the targets whose figures differ
   * from the previous read (appeared, changed or gone): only those need a metric evaluation now — time
   * alone moves an alert through its due times, which the evaluator tracks apart.
   */
  async read(rules: readonly CompiledAlertRule[], targets: Iterable<ViewedTarget>): Promise<MetricsRead> {
    const metricRules = rules.filter((r) => r.rule.enabled && r.rule.condition.type === 'metric');
    const series = new Map<string, MetricSeries[]>();
    const signatures = new Map<string, string>();
    const add = (id: string, more: MetricSeries[], signature: string) => {
      const had = series.get(id);
      series.set(id, had ? [...had, ...more] : more);
      signatures.set(id, (signatures.get(id) ?? '') + signature);
    };
    const kindsOf = (kinds: (k: AlertMetricKind) => boolean) =>
      metricRules.filter((r) => r.rule.condition.type === 'metric' && kinds(r.rule.condition.metric.kind));
    const hostRules = kindsOf((k) => HOST_KINDS.has(k));
    const checkRules = kindsOf((k) => CHECK_KINDS.has(k));
    const latencyRules = kindsOf((k) => k === 'latency_p95_ms');
    const hosts: string[] = [];
    const checks: string[] = [];
    const timed: string[] = [];
    const windows: number[] = [];
    for (const { target, status, reportIntervalMs } of metricRules.length ? targets : []) {
      if (hostRules.length && target.id.startsWith(HOST_PREFIX) && hostRules.some((r) => r.selector.matches(target))) {
        // A host's last sample stays in live state for the raw retention window after it stops reporting: once the
        // host is STALE that sample measures nothing now — its metric alerts resolve (the next tick sees its figures
        // gone and sweeps them) rather than fire on, or start firing, on a value days old.
        if (status !== TargetStatus.Stale) hosts.push(target.id);
      } else if (checkRules.length && checkRules.some((r) => r.selector.matches(target))) {
        // As a host's: a check STALE everywhere has figures from before it stopped reporting, not now.
        if (status !== TargetStatus.Stale) checks.push(target.id);
      }
      if (latencyRules.length && target.kind === 'check' && latencyRules.some((r) => r.selector.matches(target))) {
        timed.push(target.id);
        windows.push(latencyWindowMs(reportIntervalMs));
      }
    }
    if (timed.length) {
      const now = Date.now();
      // The selection, or a check's interval (so its window), changed: computed again now. Compared whole: a key of
      // the count, the ends and the windows' sum missed a check replaced in the middle, or two trading intervals.
      const same = (a: readonly (string | number)[], b: readonly (string | number)[]) =>
        a.length === b.length && a.every((x, i) => x === b[i]);
      if (
        now - this.latency.at >= LATENCY_REFRESH_MS ||
        !same(timed, this.latency.ids) ||
        !same(windows, this.latency.windows)
      )
        this.latency = {
          at: now,
          ids: timed,
          windows,
          values: await this.history.latencyP95(
            timed,
            windows.map((w) => now - w),
          ),
        };
      for (const [id, value] of this.latency.values)
        add(id, [{ kind: 'latency_p95_ms', labels: {}, value }], `l${value}`);
    }
    if (hosts.length) {
      const samples = await this.store.getHostMetricsMany(hosts.map((id) => id.slice(HOST_PREFIX.length)));
      const cache = new Map<string, { json: string; series: MetricSeries[] }>();
      for (const id of hosts) {
        const json = samples.get(id.slice(HOST_PREFIX.length));
        if (json === undefined) continue;
        // An unchanged sample (most ticks: hosts sample every few seconds) is not parsed again.
        let entry = this.hosts.get(id);
        if (entry?.json !== json) {
          try {
            entry = { json, series: hostMetricSeries(JSON.parse(json) as HostMetricsPayload) };
          } catch {
            continue; // a sample without the contract's shape gives no figures (the next one replaces it)
          }
        }
        cache.set(id, entry);
        add(id, entry.series, `h${json}`);
      }
      this.hosts = cache;
    } else this.hosts.clear();
    for (let i = 0; i < checks.length; i += CHECK_READ_CONCURRENCY) {
      const slice = checks.slice(i, i + CHECK_READ_CONCURRENCY);
      const read = await Promise.all(slice.map((id) => this.store.getCheckMetrics(id)));
      slice.forEach((id, j) => {
        const found = checkSeries(read[j]);
        if (found.length) add(id, found, `c${JSON.stringify(found)}`);
      });
    }
    const changed: string[] = [];
    for (const [id, sig] of signatures) if (this.signatures.get(id) !== sig) changed.push(id);
    for (const id of this.signatures.keys()) if (!signatures.has(id)) changed.push(id);
    this.signatures = signatures;
    return { series, changed };
  }

  /** Forget what was read: the next read reports every target as changed (after a take-over). */
  reset(): void {
    this.signatures = new Map();
    this.hosts = new Map();
    this.latency = { at: 0, ids: [], windows: [], values: new Map() };
  }
}

/**
 * How far behind the newest report of a check a location's figures may be and still count: further behind, that
 * location has stopped reporting (its collector gone) and its figures measure nothing now.
 */
export const CHECK_FIGURES_MAX_LAG_MS = 15 * 60_000;

/**
 * A check's figures, one series per name and labels (several locations' copies of one figure, or one listed twice,
 * would be one alert stepped twice per evaluation): each from the freshest location that reports it. A location
 * whose last run failed reports none (the probe read nothing): it neither hides the others' figures nor counts.
 * Taking the freshest location's whole list, as this did, made one failing location (a management API it cannot
 * reach) drop every series whenever it reported last: a pending alert reset, a firing one resolved, never to fire.
 */
export function checkSeries(byLocation: ReadonlyMap<string, { at: number; metrics: unknown[] }>): MetricSeries[] {
  let newest = -Infinity;
  for (const m of byLocation.values()) if (m.at > newest) newest = m.at;
  const reporting = [...byLocation.values()]
    .filter((m) => m.metrics.length > 0 && m.at >= newest - CHECK_FIGURES_MAX_LAG_MS)
    .sort((a, b) => b.at - a.at);
  const out: MetricSeries[] = [];
  const seen = new Set<string>();
  for (const location of reporting) {
    for (const raw of location.metrics) {
      const m = raw as Partial<CheckMetric>;
      if (typeof m?.name !== 'string' || typeof m.value !== 'number') continue;
      const labels = m.labels && typeof m.labels === 'object' ? m.labels : {};
      const key = JSON.stringify([m.name, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ kind: 'check_metric', name: m.name, labels, value: m.value });
      if (m.name === 'rabbitmq_queue_messages' && typeof labels['queue'] === 'string')
        out.push({ kind: 'queue_depth', labels: { queue: labels['queue'] }, value: m.value });
    }
  }
  return out;
}
