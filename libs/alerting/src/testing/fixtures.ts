import { alertRuleSpecSchema, TargetKind, type AlertRule, type AlertRuleInput } from '@fleetwatch/contracts';
import type { AlertTarget } from '../selector';

/** A validated rule from input, as the configuration path would store it. */
export function ruleOf(id: string, input: AlertRuleInput): AlertRule {
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
