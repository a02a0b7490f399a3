import { z } from 'zod';

// What every store downstream can hold (SPEC §6: "a 202 is a promise"). Postgres
// text and jsonb refuse NUL (U+0000) — in jsonb even as the `\u0000` escape — and
// jsonb refuses lone surrogate escapes (`\ud800`); the pg driver silently turns a
// lone surrogate in a text parameter into U+FFFD, so it would not read back equal
// either. Such values are refused where they enter (the HTTP edge and the bus
// schemas), naming the field, instead of failing a batch of other clients' updates.

/** The problem with a string a store cannot hold, or null. */
export function textProblem(value: string): string | null {
  const nul = value.indexOf('\u0000');
  if (nul >= 0) return `contains a NUL character (U+0000) at position ${nul}; stores cannot hold it`;
  return loneSurrogateProblem(value);
}

/** The problem with a string holding a lone surrogate (UTF-8 can only write it as U+FFFD), or null. */
export function loneSurrogateProblem(value: string): string | null {
  if (value.isWellFormed()) return null;
  const at = firstLoneSurrogate(value);
  return `contains a lone surrogate (U+${value.charCodeAt(at).toString(16).toUpperCase()}) at position ${at}: not valid Unicode`;
}

function firstLoneSurrogate(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

export interface StoreSafetyIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Walks a JSON value (keys, strings and numbers, at any depth) and returns the first
 * value a store cannot hold, with its path; null when every key and string is storable.
 */
export function storeSafetyIssue(value: unknown, path: Array<string | number> = []): StoreSafetyIssue | null {
  // JSON.parse reads 1e400 as Infinity, which JSON (and so jsonb) can only write back as null.
  if (typeof value === 'number')
    return Number.isFinite(value)
      ? null
      : { path, message: `number out of range (${value}): a JSON number must fit a 64-bit float` };
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path, message: problem } : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = storeSafetyIssue(value[i], [...path, i]);
      if (issue) return issue;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const keyProblem = textProblem(k);
      if (keyProblem) return { path: [...path, k], message: `key ${keyProblem}` };
      const issue = storeSafetyIssue(v, [...path, k]);
      if (issue) return issue;
    }
  }
  return null;
}

/** Adds a zod issue (with the path inside the value) when the value holds something a store refuses. */
export function refineStoreSafe(value: unknown, ctx: z.RefinementCtx): void {
  const issue = storeSafetyIssue(value);
  if (issue) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
}

/** A string every store can hold, bounded in length (UTF-16 code units, as zod counts). */
export function storableText(max: number, min = 0) {
  return z
    .string()
    .min(min)
    .max(max)
    .superRefine((s, ctx) => {
      const problem = textProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/**
 * A finite number as every store gives it back: JSON (jsonb, the bus) writes -0 as 0, so -0 is taken as 0 where it
 * enters and what is stored reads back equal to what was accepted (the same threshold either way). `.overwrite` keeps
 * the schema a plain number (its JSON Schema unchanged).
 */
export function storableNumber() {
  return z.number().overwrite((n) => (n === 0 ? 0 : n));
}

/** Shortens to at most `max` code units without splitting a surrogate pair (which would leave a lone surrogate). */
export function truncateText(value: string, max: number): string {
  if (value.length <= max) return value;
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return value.slice(0, end);
}

/**
 * Makes a value storable when it did not come through the edge (older producers,
 * messages queued before this rule): NUL removed, lone surrogates → U+FFFD, in
 * keys and strings at any depth. Returns the same object when nothing changes.
 */
export function toStorable<T>(value: T): T {
  if (typeof value === 'string')
    return (textProblem(value) ? value.replaceAll('\u0000', '').toWellFormed() : value) as T;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const c = toStorable(v);
      if (c !== v) changed = true;
      return c;
    });
    return (changed ? out : value) as T;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const key = toStorable(k);
      const c = toStorable(v);
      if (key !== k || c !== v) changed = true;
      Object.defineProperty(out, key, { value: c, enumerable: true, writable: true, configurable: true });
    }
    return (changed ? out : value) as T;
  }
  return value;
}

/**
 * `z.record(key, value)`, but an own `__proto__` key (JSON.parse and the YAML reader make one) is a 400 naming it:
 * zod's record skips that key without a word, so `labels: {"__proto__": "x"}` was accepted and stored as `{}` — a
 * 2xx for a value that did not read back as sent. A record itself (not a preprocess pipe, whose transform made
 * toJSONSchema drop a `.default()` from the input side, i.e. from OpenAPI request bodies), so typed and described
 * (JSON Schema, either side) as the record; `.refine()` and other clones keep the guard (same constructor).
 */
const OwnKeysRecord = z.core.$constructor('OwnKeysRecord', (inst: z.ZodRecord, def: z.core.$ZodRecordDef) => {
  z.ZodRecord.init(inst, def);
  const parse = inst._zod.parse;
  inst._zod.parse = (payload, ctx) => {
    const input = payload.value;
    if (input !== null && typeof input === 'object' && Object.hasOwn(input, '__proto__'))
      payload.issues.push({
        code: 'custom',
        message: 'the key "__proto__" is not allowed',
        path: ['__proto__'],
        input,
        inst,
      });
    return parse(payload, ctx);
  };
});

export function ownKeysRecord<K extends z.core.$ZodRecordKey, V extends z.core.SomeType>(
  key: K,
  value: V,
): z.ZodRecord<K, V> {
  const def = {
    type: 'record',
    keyType: key,
    valueType: value as unknown as z.core.$ZodType,
  } satisfies z.core.$ZodRecordDef;
  return new OwnKeysRecord(def) as unknown as z.ZodRecord<K, V>;
}
