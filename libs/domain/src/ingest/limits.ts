import { InvalidError } from '../errors';

export interface TimeWindow {
  maxFutureSkewMs: number;
  maxAgeMs: number;
}

/** `occurredAt` must be plausible: not minutes in the future, not older than raw retention. */
export function occurredAtProblem(occurredAt: string, now: number, window: TimeWindow): string | null {
  const t = Date.parse(occurredAt);
  if (Number.isNaN(t)) return 'is not a valid timestamp';
  if (t - now > window.maxFutureSkewMs)
    return `is ${Math.round((t - now) / 1000)} s in the future (allowed skew: ${Math.round(window.maxFutureSkewMs / 1000)} s)`;
  if (now - t > window.maxAgeMs)
    return `is older than the history retention (${Math.round(window.maxAgeMs / 86_400_000)} days)`;
  return null;
}

export function assertOccurredAt(path: string, occurredAt: string, now: number, window: TimeWindow): void {
  const problem = occurredAtProblem(occurredAt, now, window);
  if (problem) throw new InvalidError(`${path} ${problem}`, [{ path, message: problem }]);
}

/** Token bucket state: pure, so the limiter's rule is tested without clocks or Redis. */
export interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface BucketDecision {
  allowed: boolean;
  bucket: Bucket;
  /** Seconds until `cost` tokens are available (when refused). */
  retryAfterSeconds: number;
}

export function takeTokens(
  bucket: Bucket | undefined,
  cost: number,
  now: number,
  ratePerSecond: number,
  burst: number,
): BucketDecision {
  const current = bucket ?? { tokens: burst, updatedAt: now };
  const elapsed = Math.max(0, now - current.updatedAt) / 1000;
  const tokens = Math.min(burst, current.tokens + elapsed * ratePerSecond);
  if (cost <= tokens) return { allowed: true, bucket: { tokens: tokens - cost, updatedAt: now }, retryAfterSeconds: 0 };
  const wait = cost > burst ? Math.ceil(burst / ratePerSecond) : Math.ceil((cost - tokens) / ratePerSecond);
  return { allowed: false, bucket: { tokens, updatedAt: now }, retryAfterSeconds: Math.max(1, wait) };
}
