import { toStorable } from '@fleetwatch/contracts';

// Parameter helpers for the batched (unnest) statements of the history repositories.
// The contracts refuse at the edge what Postgres cannot hold (NUL, lone surrogates);
// these only guard messages that did not pass the edge's rules (older producers),
// cleaning instead of failing a whole batch. Values that passed the edge go through
// unchanged, so they read back equal.

/** Text Postgres can hold: NUL removed, lone surrogates as U+FFFD (what the pg driver would send anyway). */
export function clean(value: string): string {
  return toStorable(value);
}

export function cleanOrNull(value: string | null | undefined): string | null {
  return value === null || value === undefined ? null : clean(value);
}

/**
 * JSON text for a jsonb parameter. Cleaned as a value, before serialising: jsonb
 * refuses the `\u0000` and lone-surrogate escapes, and editing the JSON text
 * instead would corrupt a literal backslash-u0000 in a string.
 */
export function jsonOrNull(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return JSON.stringify(toStorable(value));
}

/** Epoch ms → ISO string for a timestamptz parameter. */
export function iso(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}

/** `extract(epoch …) * 1000` read back as float8 → integral epoch ms. */
export function ms(value: number | string | null): number | null {
  return value === null ? null : Math.round(Number(value));
}
