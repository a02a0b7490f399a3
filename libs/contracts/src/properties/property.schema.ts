import { z } from 'zod';
import { storableText, textProblem } from '../common/store-safe';
import { actorSchema, type WriteResult } from '../checks/config-rpc.schema';

// Site properties (SPEC §1 config snapshot, §8 drift; issue 19): a map of key → JSON value that a
// site keeps as configuration — owned by sync-orchestrator, written through the same versioned,
// audited path as checks and alert rules, in config as code (`properties:`) and in the snapshot's
// `properties` area, where a leader's per-member `propertyOverrides` keep a key out of drift.
//
// Everything accepted here is what Postgres (jsonb) stores and gives back equal: no NUL (U+0000,
// refused by jsonb even as `\u0000`), no lone surrogates, finite numbers only; -0 is stored as 0
// (JSON has one zero), so the schema's output already is 0. Bounded in size and depth so that a
// value never costs more than its limit anywhere it travels (versions, snapshots, the leader).

export const PROPERTY_LIMITS = {
  /** A key's length (UTF-16 code units; the charset is ASCII, so bytes too). */
  keyLength: 128,
  /** A value's canonical JSON, in UTF-8 bytes. */
  valueBytes: 16_384,
  /** Nesting of arrays and objects inside a value (the value itself is depth 1). */
  depth: 32,
  /** Properties one site may hold (an import beyond is refused). */
  count: 10_000,
} as const;

/** `site.displayName`, `retention_days`, `feature:beta-ui`: letters, digits and `. _ - :`, starting with a letter or digit. */
export const PROPERTY_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

export const propertyKeySchema = z
  .string()
  .min(1, 'a property key is at least 1 character')
  .max(PROPERTY_LIMITS.keyLength, `a property key is at most ${PROPERTY_LIMITS.keyLength} characters`)
  .regex(PROPERTY_KEY_PATTERN, 'letters, digits, ".", "_", "-" and ":", starting with a letter or digit');

export interface PropertyValueIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * The first reason `value` cannot be a property value (with its path inside the value), or null:
 * JSON types only (no undefined, functions, …), not null at the top (DELETE removes a property),
 * storable keys and strings, finite numbers, at most PROPERTY_LIMITS.depth levels deep.
 */
export function propertyValueIssue(value: unknown): PropertyValueIssue | null {
  if (value === null) return { path: [], message: 'a property value is any JSON value but null (DELETE removes one)' };
  return walk(value, [], 1);
}

function walk(value: unknown, path: Array<string | number>, depth: number): PropertyValueIssue | null {
  if (value === null || typeof value === 'boolean') return null;
  if (typeof value === 'number')
    return Number.isFinite(value)
      ? null
      : { path, message: `number out of range (${value}): a JSON number must fit a 64-bit float` };
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path, message: problem } : null;
  }
  if (typeof value !== 'object') return { path, message: `not a JSON value (${typeof value})` };
  if (depth > PROPERTY_LIMITS.depth)
    return { path, message: `nested deeper than ${PROPERTY_LIMITS.depth} levels of arrays and objects` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = walk(value[i], [...path, i], depth + 1);
      if (issue) return issue;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return { path, message: 'not a plain JSON object' };
  for (const [k, v] of Object.entries(value)) {
    const keyProblem = textProblem(k);
    if (keyProblem) return { path: [...path, k], message: `key ${keyProblem}` };
    const issue = walk(v, [...path, k], depth + 1);
    if (issue) return issue;
  }
  return null;
}

/** UTF-8 bytes of the value's JSON text (the stored form's size up to whitespace and key order). */
export const propertyValueBytes = (value: unknown): number =>
  new TextEncoder().encode(JSON.stringify(value) ?? '').length;

/**
 * A property's value: any JSON value but null, storable, bounded. The output is the value as JSON
 * reads it back (a plain copy; -0 becomes 0), so what is accepted is exactly what is stored.
 */
export const propertyValueSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required: the property value (any JSON value but null)' });
      return;
    }
    const issue = propertyValueIssue(value);
    if (issue) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return;
    }
    const bytes = propertyValueBytes(value);
    if (bytes > PROPERTY_LIMITS.valueBytes)
      ctx.addIssue({
        code: 'custom',
        message: `too large: ${bytes} bytes of JSON, at most ${PROPERTY_LIMITS.valueBytes}`,
      });
  })
  .transform((value): PropertyValue => JSON.parse(JSON.stringify(value)) as PropertyValue);

/** A JSON value (not null at the top: see propertyValueSchema). */
export type PropertyValue = string | number | boolean | PropertyValue[] | { [key: string]: PropertyValue | null };

/** `PUT /api/v1/properties/{key}`'s body. */
export const propertyBodySchema = z.strictObject({ value: propertyValueSchema });

/** A stored property as the API answers it; `version` is the config version that last wrote it (its ETag). */
export interface PropertyDefinition {
  key: string;
  value: PropertyValue;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export enum PropertyRpcMethod {
  Put = 'properties.put',
  Delete = 'properties.delete',
  List = 'properties.list',
  Get = 'properties.get',
}

/** The version a write expects the property at (If-Match); 0: the property must not exist yet. */
const expectedVersion = z.number().int().nonnegative().max(2_147_483_647).optional();
/** Keys in RPC params are checked again by the owner (a 400 naming `key`): only bounded here. */
const rpcKey = storableText(PROPERTY_LIMITS.keyLength * 4, 1);

export const propertyRpcParams = {
  /** Creates or replaces; `body` is `{value}`, validated by the owner (issues named `value…`). */
  [PropertyRpcMethod.Put]: z.strictObject({ actor: actorSchema, key: rpcKey, body: z.unknown(), expectedVersion }),
  [PropertyRpcMethod.Delete]: z.strictObject({ actor: actorSchema, key: rpcKey, expectedVersion }),
  [PropertyRpcMethod.List]: z.strictObject({ prefix: storableText(PROPERTY_LIMITS.keyLength).optional() }),
  [PropertyRpcMethod.Get]: z.strictObject({ key: rpcKey }),
} as const satisfies Record<PropertyRpcMethod, z.ZodType>;

export type PropertyRpcParams<M extends PropertyRpcMethod> = z.input<(typeof propertyRpcParams)[M]>;

export interface PropertyRpcResults {
  [PropertyRpcMethod.Put]: { property: PropertyDefinition; created: boolean } & WriteResult;
  [PropertyRpcMethod.Delete]: WriteResult;
  /** Every property (a site holds at most PROPERTY_LIMITS.count), by key in byte order. */
  [PropertyRpcMethod.List]: { items: PropertyDefinition[] };
  [PropertyRpcMethod.Get]: { property: PropertyDefinition };
}
