import { InvalidError } from '@fleetwatch/domain';
import { idempotencyKeyLines } from './idempotency-key.decorator';
import { idempotencyKeyOf } from './request-envelope';

// The Idempotency-Key header as the gateway reads it: one key of 1–255 visible ASCII characters, sent once; any other
// value is a 400 saying what is wrong with it and what the limits are (not one text for every fault).

function problemOf(header: string | string[]): string {
  try {
    idempotencyKeyOf(header);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidError);
    const { message, issues } = e as InvalidError;
    expect(issues).toEqual([{ path: 'Idempotency-Key', message: message.replace(/^Idempotency-Key: /, '') }]);
    return message;
  }
  throw new Error(`${JSON.stringify(header)} was taken`);
}

const LIMITS = '1 to 255 visible ASCII characters (! to ~: no spaces, control or non-ASCII characters)';

describe('idempotencyKeyOf', () => {
  it('takes 1 to 255 visible ASCII characters, sent once; no header is no key', () => {
    expect(idempotencyKeyOf(undefined)).toBeUndefined();
    expect(idempotencyKeyOf([])).toBeUndefined();
    expect(idempotencyKeyOf('deploy-42/create-api')).toBe('deploy-42/create-api');
    expect(idempotencyKeyOf(['x'])).toBe('x');
    expect(idempotencyKeyOf('!'.repeat(255))).toBe('!'.repeat(255));
    expect(idempotencyKeyOf('~a,b"c')).toBe('~a,b"c');
  });

  it('says the header came more than once, with the limits', () => {
    expect(problemOf(['a', 'b'])).toBe(`Idempotency-Key: sent 2 times: send the header once, with one key (${LIMITS})`);
    expect(problemOf(['a', 'a', 'a'])).toMatch(/^Idempotency-Key: sent 3 times: /);
  });

  it('says it is empty', () => {
    expect(problemOf('')).toBe(`Idempotency-Key: empty: send ${LIMITS}, or leave the header out`);
    expect(problemOf(['  '])).toMatch(/^Idempotency-Key: empty: /);
  });

  it('says how long it is and the most it may be', () => {
    expect(problemOf('x'.repeat(256))).toBe(`Idempotency-Key: 256 characters, more than 255: send ${LIMITS}`);
  });

  it('names the first character that is not visible ASCII, and what it is', () => {
    expect(problemOf('a b')).toBe(`Idempotency-Key: character 2 is a space (U+0020): send ${LIMITS}`);
    expect(problemOf('ab\tc')).toMatch(/^Idempotency-Key: character 3 is a control character \(U\+0009\): /);
    expect(problemOf('ab\x7f')).toMatch(/^Idempotency-Key: character 3 is a control character \(U\+007F\): /);
    expect(problemOf('naïve')).toMatch(/^Idempotency-Key: character 3 is not ASCII \(U\+00EF\): /);
    expect(problemOf('k😀')).toMatch(/^Idempotency-Key: character 2 is not ASCII \(U\+1F600\): /);
  });
});

describe('idempotencyKeyLines', () => {
  const request = (rawHeaders: string[] | undefined, headers: Record<string, string | string[]> = {}) => ({
    raw: { rawHeaders } as never,
    headers,
  });

  it('counts the header lines as sent (Node joins a repeated header into one value)', () => {
    const twice = request(['Host', 'x', 'Idempotency-Key', 'k', 'idempotency-KEY', 'k'], { 'idempotency-key': 'k, k' });
    expect(idempotencyKeyLines(twice)).toEqual(['k', 'k']);
    expect(idempotencyKeyLines(request(['Idempotency-Key', '']))).toEqual(['']);
    expect(idempotencyKeyLines(request(['Host', 'x']))).toBeUndefined();
  });

  it('falls back to the parsed header where there are no raw headers', () => {
    expect(idempotencyKeyLines(request(undefined, { 'idempotency-key': 'k' }))).toEqual(['k']);
    expect(idempotencyKeyLines(request(undefined))).toBeUndefined();
  });
});
