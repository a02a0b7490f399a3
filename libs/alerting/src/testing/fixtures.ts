import { alertRuleSpecSchema, TargetKind, type AlertRule, type AlertRuleInput } from '@fleetwatch/contracts';
import type { AlertTarget } from '../selector';
import type { PrometheusSeriesCatalogue } from '../prometheus-export';

/** A validated rule from input as JSON carries it (kinds as plain strings), as the configuration path stores it. */
export function ruleOf(id: string, input: AlertRuleInput | Record<string, unknown>): AlertRule {
  return { id, ...alertRuleSpecSchema.parse(input) };
}

export function targetOf(id: string, over: Partial<AlertTarget> = {}): AlertTarget {
  return {
    id,
    kind: TargetKind.Check,
    name: id,
    site: 'site-a',
    tags: [],
    locations: ['eu'],
    ...over,
  };
}

export const SEC = 1000;
export const MIN = 60 * SEC;
export const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A catalogue with host series, as the gateway would have once it exposes them (names as issue 16 plans). */
export const HOST_CATALOGUE: PrometheusSeriesCatalogue = {
  host_cpu_pct: {
    series: 'fleetwatch_host_cpu_ratio',
    kind: TargetKind.Host,
    targetLabel: 'host',
    targetIdPrefix: 'host:',
    scale: 100,
  },
  host_disk_pct: {
    series: 'fleetwatch_host_disk_used_ratio',
    kind: TargetKind.Host,
    targetLabel: 'host',
    targetIdPrefix: 'host:',
    scale: 100,
    filterLabels: { mount: 'mount' },
  },
};
