import { alertRuleSpecSchema, TargetKind, type AlertRule, type AlertRuleInput } from '@fleetwatch/contracts';
import type { AlertTarget } from '../selector';
import { FLEETWATCH_METRICS_CATALOGUE, type PrometheusSeriesCatalogue } from '../prometheus-export';

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

/** The catalogue of the gateway's /metrics (the exports' default), named for the tests that pass it. */
export const HOST_CATALOGUE: PrometheusSeriesCatalogue = FLEETWATCH_METRICS_CATALOGUE;
