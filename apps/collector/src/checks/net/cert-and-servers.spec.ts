import fc from 'fast-check';
import { daysLeft, distinguishedName } from './cert-facts';
import { parseDnsServer } from './dns-servers';
import { failureReasonOf } from './failure';

const DAY = 86_400_000;

describe('daysLeft', () => {
  it('is whole days rounded down: N days and a bit → N, an hour past → -1', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(daysLeft(new Date(now + 10 * DAY + 3_600_000), now)).toBe(10);
    expect(daysLeft(new Date(now + 10 * DAY - 1), now)).toBe(9);
    expect(daysLeft(new Date(now + 1), now)).toBe(0);
    expect(daysLeft(new Date(now - 3_600_000), now)).toBe(-1);
  });

  it('"expires within N days" is daysLeft < N exactly when less than N whole days remain', () => {
    fc.assert(
      fc.property(fc.integer({ min: -10 * DAY, max: 4000 * DAY }), fc.integer({ min: 0, max: 3650 }), (left, n) => {
        const now = Date.UTC(2026, 0, 1);
        expect(daysLeft(new Date(now + left), now) < n).toBe(left < n * DAY);
      }),
    );
  });
});

describe('distinguishedName', () => {
  it('joins attributes in order, multi-valued ones with +', () => {
    expect(distinguishedName({ CN: 'a.example', O: 'Org', OU: ['x', 'y'] } as never)).toBe(
      'CN=a.example, O=Org, OU=x+y',
    );
    expect(distinguishedName(undefined)).toBe('');
  });
});

describe('parseDnsServer', () => {
  it('keeps every IPv4 address with or without a port', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }), (ip, port) => {
        const text = port === undefined ? ip : `${ip}:${port}`;
        expect(parseDnsServer(text)).toBe(text);
      }),
    );
  });

  it('takes IPv6 bare or bracketed with a port, and never a name', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 1, max: 65_535 }), (ip, port) => {
        expect(parseDnsServer(ip)).toBe(ip);
        expect(parseDnsServer(`[${ip}]:${port}`)).toBe(`[${ip}]:${port}`);
      }),
    );
    fc.assert(fc.property(fc.domain(), (name) => expect(parseDnsServer(name)).toBeNull()));
  });
});

describe('failureReasonOf', () => {
  const live = { signal: new AbortController().signal, timeoutMs: 1000 };
  it('says timed out when the attempt was aborted for time, whatever the error', () => {
    expect(failureReasonOf(new Error('socket hang up'), { signal: AbortSignal.abort(), timeoutMs: 250 })).toBe(
      'timed out after 250 ms',
    );
    const shutdown = AbortSignal.abort(new Error('collector stopping'));
    expect(failureReasonOf(new Error('x'), { signal: shutdown, timeoutMs: 250 })).toBe('aborted: collector stopping');
  });
  it('reads errors by shape, adds a distinct cause, unwraps AggregateError', () => {
    expect(failureReasonOf({ message: 'connect ECONNREFUSED 127.0.0.1:9' }, live)).toBe(
      'connect ECONNREFUSED 127.0.0.1:9',
    );
    expect(failureReasonOf(new Error('fetch failed', { cause: new Error('other side closed') }), live)).toBe(
      'fetch failed: other side closed',
    );
    expect(failureReasonOf(new AggregateError([new Error('first'), new Error('second')]), live)).toBe('first');
  });
});
