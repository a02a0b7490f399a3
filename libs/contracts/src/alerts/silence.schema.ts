import { z } from 'zod';
import { storableDateTimeSchema } from '../common/safe-json';
import { storableText } from '../common/store-safe';
import { durationSchema } from './duration';
import { compileMatcherRegex, labelMatcherSchema, matcherRegexProblem } from './matchers.schema';
import { alertTargetIdSchema, siteNameSchema } from './rule.schema';
import { selectorTagSchema } from '../checks/check-fields';

// Silences and maintenance windows (SPEC §7): both mute notifications, neither stops checks.
// A silence mutes alerts by their labels for a time range; a maintenance window mutes alerts of the
// targets it covers (by id, tag or site), once or on a recurring schedule.

/** A silence as a client writes it. Active while startsAt ≤ now < endsAt. */
export const silenceSpecSchema = z
  .strictObject({
    /** Every matcher must match the alert's labels. */
    matchers: z.array(labelMatcherSchema).min(1).max(32),
    startsAt: storableDateTimeSchema,
    endsAt: storableDateTimeSchema,
    createdBy: storableText(256).trim().min(1),
    comment: storableText(1024).trim().min(1),
  })
  .superRefine((s, ctx) => {
    if (Date.parse(s.endsAt) <= Date.parse(s.startsAt))
      ctx.addIssue({ code: 'custom', path: ['endsAt'], message: 'must be after startsAt' });
    if (s.matchers.every((m) => matchesEmpty(m)))
      ctx.addIssue({
        code: 'custom',
        path: ['matchers'],
        message: 'at least one matcher must need a non-empty label (these would silence every alert)',
      });
  });
export type SilenceInput = z.input<typeof silenceSpecSchema>;
export type SilenceSpec = z.output<typeof silenceSpecSchema>;
export type Silence = SilenceSpec & { id: string };

/**
 * What a silence's times must be when it is written (created), beside the schema's checks, which hold for
 * stored silences too (an expired one stays listed, so the schema cannot refuse a past end): it must end after
 * `now` — Alertmanager refuses a past end too ("end time can't be in the past"): it would be expired at once,
 * mute nothing and only look like it did. As in Alertmanager there is no upper bound but the schema's (year 9999).
 * Expiring a silence (ending it now) is not a write of these times and is not checked.
 */
export function silenceWriteIssues(spec: { endsAt: string }, now: number): { path: string; message: string }[] {
  const ends = Date.parse(spec.endsAt);
  if (ends <= now) return [{ path: 'endsAt', message: "can't be in the past: the silence would be expired at once" }];
  return [];
}

/** Alertmanager's rule: a silence whose matchers all match the empty string would match everything. */
function matchesEmpty(m: z.output<typeof labelMatcherSchema>): boolean {
  if ((m.op === '=~' || m.op === '!~') && matcherRegexProblem(m.value)) return false; // reported on the matcher
  switch (m.op) {
    case '=':
      return m.value === '';
    case '!=':
      return m.value !== '';
    case '=~':
      return compileMatcherRegex(m.value).test('');
    case '!~':
      return !compileMatcherRegex(m.value).test('');
  }
}

const distinct = <T>(a: T[]) => new Set(a).size === a.length;
/** Tags a selector names: a check's, or a pushed instance's label as `name=value` (check-fields.ts). */
const tagSchema = selectorTagSchema;

/** What a window covers: a target is covered when it is listed, carries one of the tags, or is in one of the sites. */
export const maintenanceScopeSchema = z
  .strictObject({
    targetIds: z.array(alertTargetIdSchema).max(1000).refine(distinct, 'each target once').default([]),
    tags: z.array(tagSchema).max(32).refine(distinct, 'each tag once').default([]),
    sites: z.array(siteNameSchema).max(64).refine(distinct, 'each site once').default([]),
  })
  .refine((s) => s.targetIds.length + s.tags.length + s.sites.length > 0, 'name at least one target, tag or site');

/** Five-field cron (minute hour day-of-month month day-of-week); names and steps allowed, no seconds field. */
export const CRON_FIELD_PATTERN = /^[A-Za-z0-9*/,?#LW-]{1,64}$/;
export const cronExpressionSchema = z
  .string()
  .max(128)
  .superRefine((expr, ctx) => {
    const fields = expr.trim().split(/\s+/);
    if (fields.length !== 5) {
      ctx.addIssue({
        code: 'custom',
        message: `a cron expression has 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
      });
      return;
    }
    const bad = fields.findIndex((f) => !CRON_FIELD_PATTERN.test(f));
    if (bad >= 0) ctx.addIssue({ code: 'custom', message: `field ${bad + 1} ("${fields[bad]}") is not a cron field` });
  });

/** An IANA time zone this runtime knows (`Europe/Berlin`, `UTC`). */
export const timeZoneSchema = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone like Europe/Berlin or UTC');

export const maintenanceScheduleSchema = z.discriminatedUnion('type', [
  z
    .strictObject({ type: z.literal('once'), startsAt: storableDateTimeSchema, endsAt: storableDateTimeSchema })
    .refine((s) => Date.parse(s.endsAt) > Date.parse(s.startsAt), {
      message: 'must be after startsAt',
      path: ['endsAt'],
    }),
  z
    .strictObject({
      type: z.literal('recurring'),
      /** When each window opens, in `timezone` (DST-aware). */
      cron: cronExpressionSchema,
      /** How long each window stays open. */
      duration: durationSchema({ min: 60_000, max: 31 * 86_400_000 }),
      timezone: timeZoneSchema.default('UTC'),
      /** Optional bounds of the whole series. */
      from: storableDateTimeSchema.optional(),
      until: storableDateTimeSchema.optional(),
    })
    .refine((s) => !s.from || !s.until || Date.parse(s.until) > Date.parse(s.from), {
      message: 'must be after from',
      path: ['until'],
    }),
]);
export type MaintenanceSchedule = z.output<typeof maintenanceScheduleSchema>;

export const maintenanceWindowSpecSchema = z.strictObject({
  name: storableText(256).trim().min(1),
  scope: maintenanceScopeSchema,
  schedule: maintenanceScheduleSchema,
  createdBy: storableText(256).trim().min(1),
  comment: storableText(1024).optional(),
});
export type MaintenanceWindowInput = z.input<typeof maintenanceWindowSpecSchema>;
export type MaintenanceWindowSpec = z.output<typeof maintenanceWindowSpecSchema>;
export type MaintenanceWindow = MaintenanceWindowSpec & { id: string };
