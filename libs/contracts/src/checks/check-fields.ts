import { z } from 'zod';
import { storableText, textProblem } from '../common/store-safe';
import { locationSchema, RESERVED_LOCATION } from '../events/observations.schema';
import { conditionProblem, CONDITION_LIMITS } from './conditions';

// The building blocks every check type's fields are made of (check.schema.ts for the
// probes of issue 15, service-checks.schema.ts for the service collectors of issue 16).

/** Whether `text` is an IPv6 address literal (no brackets). The URL parser's rule: the same in Node and the browser. */
export function isIpv6Literal(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':')) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Host names and address literals: letters, digits, dots, hyphens; colons only in an IPv6 address (brackets stripped).
 * `db.internal:5432` was taken as a host, and every run failed to resolve it: the port has its own field.
 */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9._:-]+$/, 'a host name or IP address (letters, digits, . - :)')
  .refine((h) => !h.includes(':') || isIpv6Literal(h), {
    message: 'a host name or IP address; a colon only in an IPv6 address (put a port in `port`)',
  });
export const portSchema = z.number().int().min(1).max(65_535);

const utf8 = new TextEncoder();
/**
 * An AMQP short string (queue, exchange, vhost, routing key): at most 255 bytes as UTF-8 — the protocol counts bytes,
 * so 200 × "é" (400 bytes) was accepted here and refused by the broker's client on every run. No NUL or line breaks.
 */
export function amqpShortString(minLength: 0 | 1) {
  return z
    .string()
    .min(minLength)
    .max(255)
    .regex(/^[^\0\r\n]*$/, 'no NUL or line breaks')
    .refine((v) => utf8.encode(v).length <= 255, { message: 'at most 255 bytes as UTF-8 (an AMQP short string)' });
}
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
      // Port 0 is no port: the client took it as "none" and probed the scheme's default (80, 443) instead.
      if (url.port === '0')
        ctx.addIssue({ code: 'custom', message: "port 0 is not a port: leave it out for the scheme's default" });
    });
}

/** What every check has (SPEC §5). */
export const commonFields = {
  name: storableText(256).trim().min(1),
  description: storableText(2048).optional(),
  /** Seconds between runs at each location (default 30). */
  intervalSeconds: z.number().int().min(1).max(86_400).default(30),
  /**
   * Seconds one attempt may take (default 10, never more than the interval; a shorter interval's when unnamed:
   * withDefaultTimeout). At least a millisecond: 5e-324 s was taken (and ran as 1 ms).
   */
  timeoutSeconds: z.number().min(0.001, 'at least 0.001 s (1 ms)').max(300).default(10),
  /** Failed attempts retried at once before the result is DOWN (default 0). */
  retries: z.number().int().min(0).max(10).default(0),
  /**
   * Locations that run it; empty = every location. Not `all`: no collector may be named so (it labels the consensus
   * series), and a check written `locations: [all]` meaning "everywhere" ran nowhere.
   */
  locations: z
    .array(
      locationSchema.refine((l) => l !== RESERVED_LOCATION, {
        message: `no collector is named "${RESERVED_LOCATION}": leave locations empty for every location`,
      }),
    )
    .max(64)
    .default([]),
  tags: z.array(tagSchema).max(64).default([]),
  /** CEL expressions over the result; all must be true for UP. */
  conditions: z.array(conditionSchema).max(32).default([]),
  /** Percentage of reporting locations DOWN that makes the consensus DOWN (default: the site's). */
  downQuorumPct: z.number().int().min(1).max(100).optional(),
  paused: z.boolean().default(false),
};
