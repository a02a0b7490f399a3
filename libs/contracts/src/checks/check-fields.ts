import { z } from 'zod';
import { storableText, textProblem } from '../common/store-safe';
import { locationSchema } from '../events/observations.schema';
import { conditionProblem, CONDITION_LIMITS } from './conditions';

// The building blocks every check type's fields are made of (check.schema.ts for the
// probes of issue 15, service-checks.schema.ts for the service collectors of issue 16).

/** Host names and address literals: letters, digits, dots, hyphens, colons (IPv6), brackets stripped. */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9._:-]+$/, 'a host name or IP address (letters, digits, . - :)');
export const portSchema = z.number().int().min(1).max(65_535);
/**
 * Only variables named `FLEETWATCH_SECRET_…` may be referenced: a check is written by any operator and sends
 * the value to a host it names, so it must never reach the collector's own settings (AMQP_URL with the broker's
 * credentials, cloud tokens). The collector hands probes nothing else (checks.service.ts).
 */
export const CHECK_SECRET_ENV_PREFIX = 'FLEETWATCH_SECRET_';
export const envNameSchema = z
  .string()
  .regex(
    /^FLEETWATCH_SECRET_[A-Z0-9_]{1,100}$/,
    'an environment variable of the collector named FLEETWATCH_SECRET_<NAME> (A-Z, 0-9, _)',
  );
const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/=-]*$/;
export const tagSchema = z.string().min(1).max(64).regex(TAG_PATTERN, 'use letters, digits and . _ : / = -');

/** A pushed instance's label as a tag (tagsOfLabels): `name=value`, the name as labels take it, the value any text. */
const LABEL_TAG_PATTERN = /^[A-Za-z_][A-Za-z0-9_./-]{0,127}=/;
/**
 * A tag a selector names (alert rules, silences, status page components): a tag as checks carry them (tagSchema), or
 * a pushed instance's label as `name=value` — whose value may hold any text a label does (`team=Platform Ops`): such
 * tags were refused, so no selector could name them.
 */
export const selectorTagSchema = z
  .string()
  .min(1)
  .max(128 + 1 + 1024)
  .superRefine((tag, ctx) => {
    if (tag.length <= 64 && TAG_PATTERN.test(tag)) return;
    const label = LABEL_TAG_PATTERN.exec(tag);
    if (!label) {
      ctx.addIssue({
        code: 'custom',
        message: "use letters, digits and . _ : / = - (at most 64), or a label as name=value (any text after '=')",
      });
      return;
    }
    const value = tag.slice(label[0].length);
    // Lists of tags are written comma-separated and trimmed where people edit them (the dashboard's forms): a value
    // with a comma or edge spaces would come back from an edit as other tags.
    const problem =
      value.length > 1024
        ? 'a label value is at most 1024 characters'
        : value.includes(',') || value.trim() !== value
          ? 'a label value selected by tag holds no comma and no spaces at its ends'
          : textProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const conditionSchema = z
  .string()
  .max(CONDITION_LIMITS.maxLength)
  .superRefine((expr, ctx) => {
    const p = conditionProblem(expr);
    if (p) ctx.addIssue({ code: 'custom', message: `line ${p.line}, column ${p.column}: ${p.message}` });
  });

/** A URL whose scheme is one of `schemes` (no `file:`, `data:`, `gopher:` …), without credentials. */
export function urlOf(schemes: readonly string[]) {
  return z
    .string()
    .max(2048)
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a valid absolute URL' });
        return;
      }
      const scheme = url.protocol.replace(/:$/, '');
      if (!schemes.includes(scheme)) {
        ctx.addIssue({ code: 'custom', message: `scheme "${scheme}:" not allowed here (use ${schemes.join(', ')})` });
        return;
      }
      if (url.username || url.password)
        ctx.addIssue({
          code: 'custom',
          message: 'credentials do not belong in the URL: name an environment variable of the collector instead',
        });
      if (!url.hostname) ctx.addIssue({ code: 'custom', message: 'the URL needs a host' });
    });
}

/** What every check has (SPEC §5). */
export const commonFields = {
  name: storableText(256).trim().min(1),
  description: storableText(2048).optional(),
  /** Seconds between runs at each location (default 30). */
  intervalSeconds: z.number().int().min(1).max(86_400).default(30),
  /** Seconds one attempt may take (default 10, never more than the interval; a shorter interval's when unnamed: withDefaultTimeout). */
  timeoutSeconds: z.number().positive().max(300).default(10),
  /** Failed attempts retried at once before the result is DOWN (default 0). */
  retries: z.number().int().min(0).max(10).default(0),
  /** Locations that run it; empty = every location. */
  locations: z.array(locationSchema).max(64).default([]),
  tags: z.array(tagSchema).max(64).default([]),
  /** CEL expressions over the result; all must be true for UP. */
  conditions: z.array(conditionSchema).max(32).default([]),
  /** Percentage of reporting locations DOWN that makes the consensus DOWN (default: the site's). */
  downQuorumPct: z.number().int().min(1).max(100).optional(),
  paused: z.boolean().default(false),
};
