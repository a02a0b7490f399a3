import { z } from 'zod';

// Durations in alert configuration are written as Prometheus writes them ("30s", "5m", "1h30m", "1d"),
// so a rule exports to a Prometheus rule file unchanged. The grammar is Prometheus' `model.ParseDuration`:
// one or more <integer><unit> parts, units from largest to smallest, each at most once, or a bare "0".

const UNITS = [
  ['y', 365 * 86_400_000],
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;
const UNIT_MS = new Map<string, number>(UNITS);
const UNIT_RANK = new Map<string, number>(UNITS.map(([u], i) => [u, i]));

/** The longest duration any alert setting accepts (a year is more than any `for` or repeat interval needs). */
export const MAX_ALERT_DURATION_MS = 366 * 86_400_000;

export type DurationParse = { ms: number; problem?: undefined } | { ms?: undefined; problem: string };

/** Reads a Prometheus-style duration strictly; says what is wrong instead of guessing. */
export function parseDuration(text: string): DurationParse {
  if (text === '0') return { ms: 0 };
  if (text === '') return { problem: 'empty: write a duration like 30s, 5m or 1h30m' };
  if (text.length > 32) return { problem: 'longer than 32 characters' };
  const part = /(\d+)([a-z]+)/gy;
  let ms = 0;
  let lastRank = -1;
  let at = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    const [, digits, unit] = m;
    const factor = UNIT_MS.get(unit);
    const rank = UNIT_RANK.get(unit);
    if (factor === undefined || rank === undefined)
      return { problem: `unknown unit "${unit}" (use ms, s, m, h, d, w, y)` };
    if (rank <= lastRank)
      return {
        problem:
          rank === lastRank
            ? `unit "${unit}" given twice`
            : `units must go from largest to smallest ("1h30m", not "30m1h")`,
      };
    lastRank = rank;
    ms += Number(digits) * factor;
    at = part.lastIndex;
  }
  if (at !== text.length) {
    const rest = text.slice(at);
    if (/^\d+$/.test(rest)) return { problem: `"${rest}" has no unit (write ${rest}s, ${rest}m …)` };
    return { problem: `cannot read "${rest}": write a duration like 30s, 5m or 1h30m` };
  }
  if (!Number.isSafeInteger(ms)) return { problem: 'too large' };
  return { ms };
}

/** Milliseconds of a duration that passed validation; throws on one that did not (a bug, not input). */
export function durationMs(text: string): number {
  const r = parseDuration(text);
  if (r.problem !== undefined) throw new Error(`invalid duration "${text}": ${r.problem}`);
  return r.ms;
}

/** Writes milliseconds as the shortest Prometheus duration ("90000" → "1m30s"); "0s" for zero. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`not a duration: ${ms}`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, factor] of UNITS) {
    // Prometheus prints weeks and years only when they divide exactly; days and below always.
    if ((unit === 'y' || unit === 'w') && rest % factor !== 0) continue;
    const n = Math.floor(rest / factor);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * factor;
    }
  }
  return out;
}

/** A duration string within [min, max] milliseconds; the string is kept as written (it exports as is). */
export function durationSchema(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? 0;
  const max = opts.max ?? MAX_ALERT_DURATION_MS;
  return z
    .string()
    .max(32)
    .superRefine((text, ctx) => {
      const r = parseDuration(text);
      if (r.problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: `not a duration: ${r.problem}` });
        return;
      }
      if (r.ms < min) ctx.addIssue({ code: 'custom', message: `at least ${formatDuration(min)}` });
      if (r.ms > max) ctx.addIssue({ code: 'custom', message: `at most ${formatDuration(max)}` });
    });
}
