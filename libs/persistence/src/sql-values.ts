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

/**
 * SQL: the exact numeric `expr` (a mean of stored figures) as float8, with 0 where float8 rounds it to zero.
 * Postgres refuses (22003, "out of range for type double precision") a nonzero numeric below half the smallest float8
 * subnormal (2^-1075) instead of rounding it to 0, and the mean of a tiny figure the contracts accept (Number.MIN_VALUE)
 * and zeros is one: it failed the whole statement — a rollup run (every host's minutes in it, its marks taken again
 * first at every run) or a read. Anything at or above the threshold converts as before (to Number.MIN_VALUE or more).
 */
export function float8Of(expr: string): string {
  return `(CASE WHEN abs(${expr}) < 2.4703282292062328e-324 THEN 0 ELSE ${expr} END)::float8`;
}

/**
 * PAUSE_CLOCK — the end of a rate-limit pause (alert_channel_pauses, subscription_pauses), as SQL: the database's
 * `now()` plus `param` ms (float8 or int). The pause's end is both stored and compared on one clock, the database's:
 * the claims (every replica's) read `paused_until > now()`, the owner's answers show it, the owner's writes end it. An
 * end computed on the aggregator's clock (its `Date.now()` + the pause) and compared with `now()`, or with another
 * replica's clock, would shorten or stretch every pause by the clocks' skew. The aggregator only says how long; the
 * "pauses until …" in its log texts is its own estimate.
 */
export const PAUSE_END = (param: string): string => `(now() + make_interval(secs => ${param}::float8 / 1000))`;
