import { Injectable } from '@nestjs/common';
import type { AlertMetricKind, HostMetricsPayload } from '@fleetwatch/contracts';
import { hostMetricSeries, type CompiledAlertRule, type MetricSeries } from '@fleetwatch/alerting';
import { LiveStateStore } from '@fleetwatch/live-state';
import type { ViewedTarget } from './target-view';

const HOST_KINDS = new Set<AlertMetricKind>([
  'host_cpu_pct',
  'host_memory_pct',
  'host_disk_pct',
  'gpu_utilization_pct',
  'gpu_temperature_c',
]);
const CHECK_KINDS = new Set<AlertMetricKind>(['check_metric', 'queue_depth']);
const HOST_PREFIX = 'host:';
/** Redis calls in flight at once for check metrics (one hash per check). */
const CHECK_READ_CONCURRENCY = 32;

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
 * Not read here: `latency_p95_ms` (a p95 over history, not a live figure) — a rule on it has no series
 * and so never fires (see the evaluator's report).
 */
@Injectable()
export class AlertMetricsReader {
  constructor(private readonly store: LiveStateStore) {}

  async read(
    rules: readonly CompiledAlertRule[],
    targets: Iterable<ViewedTarget>,
  ): Promise<Map<string, MetricSeries[]>> {
    const metricRules = rules.filter((r) => r.rule.enabled && r.rule.condition.type === 'metric');
    const out = new Map<string, MetricSeries[]>();
    if (!metricRules.length) return out;
    const hostRules = metricRules.filter(
      (r) => r.rule.condition.type === 'metric' && HOST_KINDS.has(r.rule.condition.metric.kind),
    );
    const checkRules = metricRules.filter(
      (r) => r.rule.condition.type === 'metric' && CHECK_KINDS.has(r.rule.condition.metric.kind),
    );
    const hosts: string[] = [];
    const checks: string[] = [];
    for (const { target } of targets) {
      if (hostRules.length && target.id.startsWith(HOST_PREFIX) && hostRules.some((r) => r.selector.matches(target)))
        hosts.push(target.id);
      else if (checkRules.length && checkRules.some((r) => r.selector.matches(target))) checks.push(target.id);
    }
    if (hosts.length) {
      const samples = await this.store.getHostMetricsMany(hosts.map((id) => id.slice(HOST_PREFIX.length)));
      for (const id of hosts) {
        const json = samples.get(id.slice(HOST_PREFIX.length));
        if (json === undefined) continue;
        try {
          out.set(id, hostMetricSeries(JSON.parse(json) as HostMetricsPayload));
        } catch {
          // A sample without the contract's shape gives no figures (the next sample replaces it).
        }
      }
    }
    for (let i = 0; i < checks.length; i += CHECK_READ_CONCURRENCY) {
      const slice = checks.slice(i, i + CHECK_READ_CONCURRENCY);
      const read = await Promise.all(slice.map((id) => this.store.getCheckMetrics(id)));
      slice.forEach((id, j) => {
        const series = checkSeries(read[j]);
        if (series.length) out.set(id, series);
      });
    }
    return out;
  }
}

/**
 * A check's figures from its freshest location (one series per name and labels: several locations'
 * copies of one figure would be one alert stepped twice per evaluation).
 */
export function checkSeries(byLocation: ReadonlyMap<string, { at: number; metrics: unknown[] }>): MetricSeries[] {
  let latest: { at: number; metrics: unknown[] } | undefined;
  for (const m of byLocation.values()) if (!latest || m.at > latest.at) latest = m;
  const out: MetricSeries[] = [];
  for (const raw of latest?.metrics ?? []) {
    const m = raw as Partial<CheckMetric>;
    if (typeof m?.name !== 'string' || typeof m.value !== 'number') continue;
    const labels = m.labels && typeof m.labels === 'object' ? m.labels : {};
    out.push({ kind: 'check_metric', name: m.name, labels, value: m.value });
    if (m.name === 'rabbitmq_queue_messages' && typeof labels['queue'] === 'string')
      out.push({ kind: 'queue_depth', labels: { queue: labels['queue'] }, value: m.value });
  }
  return out;
}
