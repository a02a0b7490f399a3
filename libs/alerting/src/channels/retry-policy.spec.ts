import {
  backoffDelay,
  channelPauseMs,
  decideRateLimit,
  decideRetry,
  DEFAULT_CHANNEL_PAUSE,
  DEFAULT_RETRY_POLICY,
  isTransientHttpStatus,
  isTransientSmtpCode,
  parseRetryAfter,
  type RetryPolicy,
} from './retry-policy';

const P: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, maxAgeMs: 3_600_000, jitter: 0.2 };
const NOW = Date.parse('2026-01-01T00:00:00Z');
const mid = () => 0.5;

describe('delivery retry policy', () => {
  it.each([
    [200, false],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [410, false],
    [413, false],
    [422, false],
    [408, true],
    [425, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
  ])('HTTP %i transient: %s', (status, transient) => expect(isTransientHttpStatus(status)).toBe(transient));

  it.each([
    [421, true],
    [450, true],
    [451, true],
    [452, true],
    [535, false],
    [550, false],
    [554, false],
  ])('SMTP %i transient: %s', (code, transient) => expect(isTransientSmtpCode(code)).toBe(transient));

  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', null],
    ['-5', null],
    ['1.5', null],
    ['', null],
    [undefined, null],
    ['Thu, 01 Jan 2026 01:00:00 GMT', 3_600_000],
    ['Thursday, 01-Jan-26 00:00:10 GMT', 10_000],
    ['2026-01-01', null],
  ])('Retry-After %j → %j ms', (value, ms) => expect(parseRetryAfter(value, NOW)).toBe(ms));

  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [5, 16_000],
    [6, 30_000],
    [40, 30_000],
  ])('backoff after attempt %i is %i ms without jitter', (attempt, ms) =>
    expect(backoffDelay(P, attempt, mid)).toBe(ms),
  );

  it('jitter spreads a delay within ±jitter and never past the cap', () => {
    expect(backoffDelay(P, 3, () => 0)).toBe(3200);
    expect(backoffDelay(P, 3, () => 0.999999)).toBe(4800);
    expect(backoffDelay(P, 10, () => 0.999999)).toBe(30_000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(P, 2, Math.random);
      expect(d).toBeGreaterThanOrEqual(1600);
      expect(d).toBeLessThanOrEqual(2400);
    }
  });

  it.each([
    ['a permanent failure', { attempt: 1, transient: false }, { retry: false, reason: 'permanent failure' }],
    ['a transient failure', { attempt: 1, transient: true }, { retry: true, at: NOW + 1000, delayMs: 1000 }],
    ['a third transient failure', { attempt: 3, transient: true }, { retry: true, at: NOW + 4000, delayMs: 4000 }],
    ['the last attempt', { attempt: 5, transient: true }, { retry: false, reason: 'gave up after 5 attempts' }],
    [
      'Retry-After longer than the backoff',
      { attempt: 1, transient: true, retryAfterMs: 20_000 },
      { retry: true, at: NOW + 20_000, delayMs: 20_000 },
    ],
    [
      'Retry-After shorter than the backoff',
      { attempt: 3, transient: true, retryAfterMs: 100 },
      { retry: true, at: NOW + 4000, delayMs: 4000 },
    ],
    [
      'Retry-After past the cap',
      { attempt: 1, transient: true, retryAfterMs: 86_400_000 },
      { retry: true, at: NOW + 30_000, delayMs: 30_000 },
    ],
    [
      'a delivery too old',
      { attempt: 2, transient: true, createdAt: NOW - 3_599_000 },
      { retry: false, reason: 'gave up: older than 60 min' },
    ],
  ])('%s', (_name, over, decision) => {
    expect(decideRetry(P, { createdAt: NOW, now: NOW, ...over }, mid)).toEqual(decision);
  });

  it('the default policy retries for a while, then gives up', () => {
    let at = NOW;
    let attempts = 0;
    for (;;) {
      attempts++;
      const d = decideRetry(DEFAULT_RETRY_POLICY, { attempt: attempts, createdAt: NOW, now: at, transient: true }, mid);
      if (!d.retry) break;
      expect(d.at).toBeGreaterThan(at);
      at = d.at;
    }
    // A receiver away for 5 h still gets the message: the age (6 h) decides, not the count.
    expect(at - NOW).toBeGreaterThan(5 * 3_600_000);
    expect(at - NOW).toBeLessThanOrEqual(DEFAULT_RETRY_POLICY.maxAgeMs);
    expect(attempts).toBeLessThan(DEFAULT_RETRY_POLICY.maxAttempts);
  });
});

describe('channel pause on rate limiting', () => {
  const B = { defaultMs: 60_000, maxMs: 3_600_000, minMs: 1000 };
  it.each([
    // 429: the receiver's Retry-After, else the default; bounded both ways.
    [429, 30_000, 30_000],
    [429, null, 60_000],
    [429, undefined, 60_000],
    [429, 0, 1000],
    [429, 500, 1000],
    [429, 3_600_000, 3_600_000],
    [429, 86_400_000, 3_600_000],
    // 503 pauses the channel only when it says until when.
    [503, 5000, 5000],
    [503, 7_200_000, 3_600_000],
    [503, null, null],
    // Anything else is one message's failure.
    [500, 5000, null],
    [502, null, null],
    [408, 5000, null],
    [200, null, null],
    [null, null, null],
  ])('HTTP %j with Retry-After %j ms → pause %j ms', (status, retryAfter, pause) =>
    expect(channelPauseMs(status, retryAfter, B)).toBe(pause),
  );

  it('a Retry-After HTTP date an hour and more away is bounded to the longest pause', () => {
    const retryAfter = parseRetryAfter('Fri, 02 Jan 2026 00:00:00 GMT', NOW);
    expect(retryAfter).toBe(86_400_000);
    expect(channelPauseMs(429, retryAfter, B)).toBe(3_600_000);
  });

  it('the default bounds: a minute when the receiver says nothing, at most an hour, at least a second', () => {
    expect(DEFAULT_CHANNEL_PAUSE).toEqual({ defaultMs: 60_000, maxMs: 3_600_000, minMs: 1000 });
    expect(channelPauseMs(429, null)).toBe(60_000);
  });
});

describe('decideRateLimit (a rate-limiting answer: the pause, and whether the message waits it out)', () => {
  const B = { defaultMs: 60_000, maxMs: 3_600_000, minMs: 1000 };

  it('a 429 pauses for its Retry-After, bounded; a message young enough waits it out', () => {
    expect(decideRateLimit(P, B, { httpStatus: 429, retryAfterMs: 30_000 }, NOW - 60_000, NOW)).toEqual({
      pauseMs: 30_000,
      until: NOW + 30_000,
      wait: true,
    });
    expect(decideRateLimit(P, B, { httpStatus: 429, retryAfterMs: 86_400_000 }, NOW, NOW)).toEqual({
      pauseMs: 3_600_000,
      until: NOW + 3_600_000,
      wait: true,
    });
    expect(decideRateLimit(P, B, { httpStatus: 503, retryAfterMs: 0 }, NOW, NOW)).toMatchObject({ pauseMs: 1000 });
  });

  it('no pause for any other answer (a 503 without Retry-After is an ordinary failure)', () => {
    expect(decideRateLimit(P, B, { httpStatus: 503, retryAfterMs: null }, NOW, NOW)).toBeNull();
    expect(decideRateLimit(P, B, { httpStatus: 500, retryAfterMs: 5000 }, NOW, NOW)).toBeNull();
    expect(decideRateLimit(P, B, { httpStatus: null }, NOW, NOW)).toBeNull();
  });

  it('a message that would wait past the age limit gives up (the pause holds all the same); at the limit it waits', () => {
    // maxAgeMs: an hour. Enqueued 59 min ago, a 2 min pause ends 61 min after it: too old.
    expect(decideRateLimit(P, B, { httpStatus: 429, retryAfterMs: 120_000 }, NOW - 59 * 60_000, NOW)).toEqual({
      pauseMs: 120_000,
      until: NOW + 120_000,
      wait: false,
      reason: 'gave up: older than 60 min',
    });
    expect(decideRateLimit(P, B, { httpStatus: 429, retryAfterMs: 60_000 }, NOW - 59 * 60_000, NOW)).toEqual({
      pauseMs: 60_000,
      until: NOW + 60_000,
      wait: true,
    });
  });
});
