export interface BackoffOptions {
  /** Delay before the first retry. */
  initialDelayMs: number;
  /** Upper bound of any delay, jitter included. */
  maxDelayMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Fraction (0–1) of the delay that is randomised downwards, so replicas don't reconnect in lockstep. */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = {
  initialDelayMs: 200,
  maxDelayMs: 15_000,
  factor: 2,
  jitter: 0.5,
};

/**
 * Exponential backoff with jitter, capped: attempt 1 waits about `initialDelayMs`,
 * each later attempt `factor` times more, never more than `maxDelayMs`. The jitter
 * takes up to `jitter × delay` off, so the cap is never exceeded.
 */
export function backoffDelay(
  attempt: number,
  options: Partial<BackoffOptions> = {},
  random: () => number = Math.random,
): number {
  const o = { ...DEFAULT_BACKOFF, ...options };
  const n = Math.max(1, Math.floor(attempt));
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * Math.pow(Math.max(1, o.factor), n - 1));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.max(0, Math.round(base * (1 - jitter * random())));
}
