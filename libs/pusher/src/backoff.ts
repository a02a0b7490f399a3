/** Exponential backoff with full jitter, capped (AWS "full jitter"): a herd of daemons retrying together spreads out. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
/** IMF-fixdate, RFC 850's date and asctime's (RFC 9110 §5.6.7). */
const HTTP_DATE = new RegExp(
  `^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} ${MONTH} \\d{4} ${TIME} GMT` +
    `|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT` +
    `|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} [ \\d]\\d ${TIME} \\d{4})$`,
  'i',
);

/**
 * `Retry-After` in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
 * undefined when absent or unreadable, never negative.
 */
export function retryAfterMs(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value), 24 * 3600) * 1000;
  // An HTTP date in one of its three forms (RFC 9110 §5.6.7): V8's Date.parse also takes "1.5", "-5", "2026" or
  // "soon 5" for dates (in 2001, or that year's first day): a wait of 0 ms for each, the backoff never applied.
  if (!HTTP_DATE.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * The wait before the next attempt: the server's Retry-After when it gave one (plus a
 * little jitter so a fleet does not return in the same millisecond), else backoff.
 */
export function nextRetryDelayMs(
  attempt: number,
  retryAfter: number | undefined,
  opts: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  if (retryAfter !== undefined) return Math.min(retryAfter, opts.maxMs * 4) + Math.floor(random() * opts.baseMs);
  return Math.max(1, backoffDelayMs(attempt, opts.baseMs, opts.maxMs, random));
}
