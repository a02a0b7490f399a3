import { randomBytes } from 'node:crypto';

// Every resource a test run creates carries its run id, and the run id starts with
// the epoch second it was made: a later run can then recognise — and remove — what a
// crashed run left behind, without any bookkeeping of its own.

export const DB_PREFIX = 'fw_test_';
export const VHOST_PREFIX = 'fw-test-';
export const REDIS_PREFIX = 'fwtest:';
/** Leftovers older than this are swept by the next run's global setup. */
export const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

const RUN_ID = /^(\d{10})_[0-9a-f]{6}$/;

/** `1764000000_a1b2c3`: epoch seconds, then 6 random hex digits. Safe in DB names, vhosts and keys. */
export function newRunId(now: number = Date.now()): string {
  return `${Math.floor(now / 1000)}_${randomBytes(3).toString('hex')}`;
}

/** A short random suffix for per-file resources inside one run. */
export function shortId(): string {
  return randomBytes(4).toString('hex');
}

/** Milliseconds epoch of a run id, or null when it is not one of ours. */
export function runIdTime(runId: string): number | null {
  const m = RUN_ID.exec(runId);
  return m ? Number(m[1]) * 1000 : null;
}

/**
 * The creation time encoded in a resource name that starts with `prefix` + run id
 * (`fw_test_1764000000_a1b2c3`, `fw_test_1764000000_a1b2c3_tpl`, `fw-test-…-orders`),
 * or null when the name is not a test resource.
 */
export function resourceTime(name: string, prefix: string): number | null {
  if (!name.startsWith(prefix)) return null;
  const m = /^(\d{10})_[0-9a-f]{6}(?:$|[_-])/.exec(name.slice(prefix.length));
  return m ? Number(m[1]) * 1000 : null;
}

export function isStale(name: string, prefix: string, now: number = Date.now()): boolean {
  const t = resourceTime(name, prefix);
  return t !== null && now - t > STALE_AFTER_MS;
}
