// When a failed delivery is tried again (SPEC §7: delivery is retried and logged). Transient failures —
// network errors, timeouts, 408/425/429 and 5xx answers, SMTP 4xx replies — are retried with exponential
// backoff and jitter (so many deliveries failing together do not come back together), honouring a
// receiver's Retry-After; any other answer (400, 401, 404 …) means the request itself is wrong and is not
// retried. A delivery gives up after `maxAttempts` or once it is older than `maxAgeMs`.

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A delivery first enqueued longer ago than this is not tried again. */
  maxAgeMs: number;
  /** Spread of each delay: ±jitter × delay (0–1). */
  jitter: number;
}

/**
 * Retried for up to 6 h: the delays double from 2 s to 10 min (~17 min for the first ten attempts), then every 10 min.
 * Ten attempts, as before, gave up after ~17 min — a receiver (or PagerDuty) away for longer lost the firing message
 * for good, and its resolve went out alone; 50 leave the age to decide.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 50,
  baseDelayMs: 2000,
  maxDelayMs: 10 * 60_000,
  maxAgeMs: 6 * 3_600_000,
  jitter: 0.2,
};

/** HTTP answers worth another try: the receiver is busy or broken, not the request. */
export function isTransientHttpStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599);
}

/** SMTP replies worth another try: 4xx are the protocol's "transient negative completion". */
export function isTransientSmtpCode(code: number): boolean {
  return code >= 400 && code <= 499;
}

/** Retry-After (delta seconds or an HTTP date) as a delay in ms from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (!Number.isFinite(at) || !/[a-z]/i.test(text)) return null;
  return Math.max(0, at - now);
}

/**
 * How long a channel pauses when its receiver says it is rate limiting (SPEC §7): every message of the channel waits,
 * not only the one answered, so the others are not sent into the limit one after another, each collecting a 429.
 */
export interface ChannelPausePolicy {
  /** A 429 without a readable Retry-After. */
  defaultMs: number;
  /** The longest pause a receiver's Retry-After gets (a date a day away is not believed). */
  maxMs: number;
  /** The shortest (`Retry-After: 0` on every answer would otherwise be a busy loop of sends that are not counted). */
  minMs: number;
}

export const DEFAULT_CHANNEL_PAUSE: ChannelPausePolicy = { defaultMs: 60_000, maxMs: 3_600_000, minMs: 1000 };

/**
 * The pause of a whole channel an answer asks for, in ms, or null for none: a 429 (its Retry-After, or the default),
 * a 503 with a Retry-After (the receiver says when it is back). Bounded to [minMs, maxMs]. A 503 without one is an
 * ordinary transient failure of that message.
 */
export function channelPauseMs(
  httpStatus: number | null,
  retryAfterMs: number | null | undefined,
  policy: ChannelPausePolicy = DEFAULT_CHANNEL_PAUSE,
): number | null {
  let ms: number;
  if (httpStatus === 429) ms = retryAfterMs ?? policy.defaultMs;
  else if (httpStatus === 503 && retryAfterMs != null) ms = retryAfterMs;
  else return null;
  return Math.min(policy.maxMs, Math.max(policy.minMs, ms));
}

/**
 * What a rate-limiting answer (channelPauseMs) means for the message answered, the one decision alert channels and
 * subscriptions share: null when the answer asks for no pause; else the pause (`pauseMs`, ending `until` = now +
 * pauseMs on the caller's clock, for its texts) and whether the message waits it out uncharged in its place (`wait`)
 * or gives up, being too old to wait past `until` (the channel/subscription pauses all the same). Each caller words
 * its own error text and record.
 */
export type RateLimitDecision =
  { pauseMs: number; until: number; wait: true } | { pauseMs: number; until: number; wait: false; reason: string };

export function decideRateLimit(
  policy: RetryPolicy,
  pause: ChannelPausePolicy,
  answer: { httpStatus: number | null; retryAfterMs?: number | null },
  /** When the message was first enqueued (ms). */
  createdAt: number,
  now: number,
): RateLimitDecision | null {
  const pauseMs = channelPauseMs(answer.httpStatus, answer.retryAfterMs, pause);
  if (pauseMs === null) return null;
  const until = now + pauseMs;
  if (until - createdAt > policy.maxAgeMs)
    return { pauseMs, until, wait: false, reason: `gave up: older than ${Math.round(policy.maxAgeMs / 60_000)} min` };
  return { pauseMs, until, wait: true };
}

/** The backoff before attempt `attempt + 1`, after `attempt` attempts (1-based), jittered by `random()` ∈ [0, 1). */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const spread = exp * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(policy.maxDelayMs, Math.round(exp + spread)));
}

export interface FailedAttempt {
  /** Attempts made so far, this one included (1 after the first). */
  attempt: number;
  /** When the delivery was first enqueued (ms). */
  createdAt: number;
  now: number;
  transient: boolean;
  /** From the answer's Retry-After (parseRetryAfter). */
  retryAfterMs?: number | null;
}

export type RetryDecision = { retry: true; at: number; delayMs: number } | { retry: false; reason: string };

export function decideRetry(
  policy: RetryPolicy,
  failed: FailedAttempt,
  random: () => number = Math.random,
): RetryDecision {
  if (!failed.transient) return { retry: false, reason: 'permanent failure' };
  if (failed.attempt >= policy.maxAttempts) return { retry: false, reason: `gave up after ${failed.attempt} attempts` };
  let delayMs = backoffDelay(policy, failed.attempt, random);
  // A receiver that says when to come back is believed, within the longest delay we would wait anyway.
  if (failed.retryAfterMs != null) delayMs = Math.min(policy.maxDelayMs, Math.max(delayMs, failed.retryAfterMs));
  const at = failed.now + delayMs;
  if (at - failed.createdAt > policy.maxAgeMs)
    return { retry: false, reason: `gave up: older than ${Math.round(policy.maxAgeMs / 60_000)} min` };
  return { retry: true, at, delayMs };
}
