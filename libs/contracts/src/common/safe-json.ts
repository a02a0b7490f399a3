import { z } from 'zod';
import { storableText, storeSafetyIssue } from './store-safe';

/** Keys that would let a payload reach Object.prototype when merged. */
export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface JsonShapeLimits {
  maxDepth: number;
  maxKeys: number;
  maxBytes: number;
}

/** Checks depth, key count and forbidden keys of a JSON value; returns a problem or null. */
export function jsonShapeProblem(value: unknown, limits: JsonShapeLimits): string | null {
  let keys = 0;
  // A level is an object or array (8 levels: eight nested, the innermost holding scalars); a scalar adds none.
  const visit = (v: unknown, depth: number): string | null => {
    if (v !== null && typeof v === 'object' && depth > limits.maxDepth)
      return `nested deeper than ${limits.maxDepth} levels`;
    if (Array.isArray(v)) {
      for (const item of v) {
        const p = visit(item, depth + 1);
        if (p) return p;
      }
      return null;
    }
    if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        if (FORBIDDEN_KEYS.has(k)) return `key "${k}" is not allowed`;
        if (++keys > limits.maxKeys) return `more than ${limits.maxKeys} keys`;
        const p = visit((v as Record<string, unknown>)[k], depth + 1);
        if (p) return p;
      }
    }
    return null;
  };
  const problem = visit(value, 1);
  if (problem) return problem;
  const size = new TextEncoder().encode(JSON.stringify(value)).length;
  if (size > limits.maxBytes) return `larger than ${limits.maxBytes} bytes when serialised`;
  return null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Checks forbidden keys on the raw value, before zod copies it: a record copy
 * would turn an own `__proto__` key (as JSON.parse creates it) into the prototype
 * and hide it from any later check.
 */
function rawKeysGuard(what: string) {
  return z.unknown().superRefine((value, ctx) => {
    if (!isPlainObject(value)) return;
    for (const k of Object.keys(value))
      if (FORBIDDEN_KEYS.has(k))
        ctx.addIssue({ code: 'custom', message: `${what} "${k}" is not allowed`, path: [k], abort: true });
  });
}

/** A JSON object bounded in depth, keys and size, free of prototype-polluting keys and of what a store cannot hold (at any depth). */
export function boundedJsonObject(limits: JsonShapeLimits) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (!isPlainObject(value)) {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object', abort: true });
        return;
      }
      const problem = jsonShapeProblem(value, limits);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem, abort: true });
        return;
      }
      const unstorable = storeSafetyIssue(value);
      if (unstorable) ctx.addIssue({ code: 'custom', message: unstorable.message, path: unstorable.path, abort: true });
    })
    .transform((value) => value as Record<string, unknown>);
}

/** String labels: bounded count, key pattern, value length. */
export const labelsSchema = rawKeysGuard('label').pipe(
  z
    .record(
      z
        .string()
        .min(1)
        .max(128)
        .regex(/^[A-Za-z_][A-Za-z0-9_./-]*$/, 'label names start with a letter or _ and use letters, digits, _ . / -'),
      storableText(1024),
    )
    .superRefine((labels, ctx) => {
      if (Object.keys(labels).length > 64) ctx.addIssue({ code: 'custom', message: 'at most 64 labels' });
    }),
);

export const isoDateTimeSchema = z.iso.datetime({ offset: true });

/** Postgres refuses a time zone displacement past ±15:59 (MAX_TZDISP_HOUR); zod's ISO date-time takes up to ±23:59. */
const MAX_UTC_OFFSET_HOURS = 15;

/**
 * An ISO date-time a store keeps as given: years 1970–9999 (zod accepts year 0000, which Postgres refuses with a
 * 22008 — a 500 after a 2xx-looking validation) and a UTC offset within ±15:59 (zod accepts up to ±23:59, Postgres
 * refuses `-16:00` the same way). For times a client chooses freely (silences, maintenance) and cursors.
 */
export const storableDateTimeSchema = isoDateTimeSchema
  .refine(
    (t) => {
      const ms = Date.parse(t);
      return ms >= 0 && ms < Date.UTC(10_000, 0, 1);
    },
    { message: 'must be between 1970 and 9999' },
  )
  .refine((t) => Number(/[+-](\d{2}):?\d{2}$/.exec(t)?.[1] ?? 0) <= MAX_UTC_OFFSET_HOURS, {
    message: 'the UTC offset must be within ±15:59',
  });
