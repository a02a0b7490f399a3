import {
  alertRuleSpecSchema,
  channelInputSchema,
  maintenanceWindowSpecSchema,
  silenceSpecSchema,
  type AlertRuleSpec,
  type ChannelSpecWithSecrets,
  type ConfigChangedPayload,
  type ConfigDiffEntry,
  type MaintenanceWindowSpec,
  type SilenceSpec,
} from '@fleetwatch/contracts';
import { alertRuleIssues, maintenanceWindowIssues } from '@fleetwatch/alerting';
import type { ErrorIssue } from '@fleetwatch/domain';
import type { z } from 'zod';
import { canonicalJson, jsonDiff, sha256Hex } from '../config/canonical-json';

// Alert configuration as the configuration owner keeps it (issue 18): the three areas that are
// configuration (in snapshots, config as code and the config hash), each entry keyed by its id and
// stored in its config form — the contract's output (defaults applied), without the id; a channel's
// form is its public part (its secrets never leave the owner). Validation is the contract's schema,
// then libs/alerting's checks the schema cannot make (templates, cron in its zone).

/** An area of `config.changed`. */
export type ConfigArea = ConfigChangedPayload['areas'][number];

export const ALERT_AREAS = ['alertRules', 'channels', 'maintenanceWindows'] as const;
export type AlertArea = (typeof ALERT_AREAS)[number];

/** The `config.changed` area of each. */
export const AREA_EVENT: Record<AlertArea, ConfigArea> = {
  alertRules: 'rules',
  channels: 'channels',
  maintenanceWindows: 'maintenance',
};

/** One version's changes of an area: id → config form after the write, or null (the id left). */
export type AreaChanges = Record<string, Record<string, unknown> | null>;
export type AlertChanges = Partial<Record<AlertArea, AreaChanges>>;

export type Parsed<T> = { ok: true; spec: T } | { ok: false; issues: ErrorIssue[] };

const pathOf = (prefix: (string | number)[], path: readonly PropertyKey[]) =>
  [...prefix, ...path].map(String).join('.');

function parseWith<T>(
  schema: z.ZodType<T>,
  input: unknown,
  prefix: (string | number)[],
  more: (spec: T) => ErrorIssue[] = () => [],
): Parsed<T> {
  const r = schema.safeParse(input);
  if (!r.success)
    return {
      ok: false,
      issues: r.error.issues.map((i) => ({ path: pathOf(prefix, i.path), message: i.message })),
    };
  const extra = more(r.data).map((i) => ({ path: pathOf(prefix, i.path.split('.')), message: i.message }));
  return extra.length ? { ok: false, issues: extra } : { ok: true, spec: r.data };
}

export const parseRule = (input: unknown, prefix: (string | number)[] = []): Parsed<AlertRuleSpec> =>
  parseWith(alertRuleSpecSchema as z.ZodType<AlertRuleSpec>, input, prefix, alertRuleIssues);

export const parseWindow = (input: unknown, prefix: (string | number)[] = []): Parsed<MaintenanceWindowSpec> =>
  parseWith(maintenanceWindowSpecSchema as z.ZodType<MaintenanceWindowSpec>, input, prefix, maintenanceWindowIssues);

export const parseChannel = (input: unknown, prefix: (string | number)[] = []): Parsed<ChannelSpecWithSecrets> =>
  parseWith(channelInputSchema as z.ZodType<ChannelSpecWithSecrets>, input, prefix);

export const parseSilence = (input: unknown, prefix: (string | number)[] = []): Parsed<SilenceSpec> =>
  parseWith(silenceSpecSchema as z.ZodType<SilenceSpec>, input, prefix);

/** An entry's content hash: sha256 of the canonical JSON of its form with its area and id (never its secrets). */
export function alertEntryHash(area: AlertArea, id: string, form: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ ...form, __area: area, __id: id }));
}

/** A change of one entry, as the audit log records it. */
export function entryDiff(before: object | null, after: object | null): ConfigDiffEntry[] {
  return jsonDiff((before ?? {}) as Record<string, unknown>, (after ?? {}) as Record<string, unknown>);
}

/** A plain copy of a form (defineProperty: an id may be `__proto__`-like; forms are JSON). */
export function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
