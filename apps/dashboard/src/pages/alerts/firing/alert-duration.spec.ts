import { describe, expect, it } from 'vitest';
import { compileMatcherRegex, matcherRegexProblem } from '@fleetwatch/contracts';
import { formatDuration, secondsNow } from './alert-duration';
import { fromLocalInput, parsePairs, toLocalInput } from '../form-model';
import { parseMatcher, silenceLinkFor } from '../silences/silence-form-model';

describe('alert durations', () => {
  it.each([
    [0, '0 s'],
    [59.9, '59 s'],
    [60, '1 min'],
    [3599, '59 min'],
    [3600, '1 h'],
    [3900, '1 h 5 min'],
    [86_400, '1 d'],
    [86_400 + 4 * 3600 + 59, '1 d 4 h'],
    [-5, '0 s'],
  ])('%s s → %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it('counts on from the answer’s time', () => {
    const at = '2026-12-02T10:00:00.000Z';
    expect(secondsNow(30, at, Date.parse(at) + 15_000)).toBe(45);
    expect(secondsNow(30, 'not a time', Date.now())).toBe(30);
  });
});

describe('silence prefill from an alert', () => {
  it('every label becomes an exact matcher, and the link reads back the same', () => {
    const labels = { alertname: 'API down', target: 'instance:web=1', severity: 'critical' };
    const url = new URL(silenceLinkFor(labels), 'http://x');
    expect(url.pathname).toBe('/alerts/silences/new');
    const matchers = url.searchParams.getAll('matcher').map(parseMatcher);
    expect(matchers).toEqual([
      { name: 'alertname', op: '=', value: 'API down' },
      { name: 'target', op: '=', value: 'instance:web=1' },
      { name: 'severity', op: '=', value: 'critical' },
    ]);
  });

  it('a value starting with ~ reads back as a regex of itself, matching only that value', () => {
    const url = new URL(silenceLinkFor({ note: '~(a.b)+ x-y/z' }), 'http://x');
    const m = parseMatcher(url.searchParams.get('matcher') ?? '');
    expect(m?.op).toBe('=~');
    expect(matcherRegexProblem(m?.value ?? '')).toBeNull();
    const re = compileMatcherRegex(m?.value ?? '');
    expect(re.test('~(a.b)+ x-y/z')).toBe(true);
    expect(re.test('~aab')).toBe(false);
  });

  it.each([
    ['job!=api', { name: 'job', op: '!=', value: 'api' }],
    ['job=~web-.*', { name: 'job', op: '=~', value: 'web-.*' }],
    ['job!~a|b', { name: 'job', op: '!~', value: 'a|b' }],
    ['no operator', null],
  ])('%s', (text, m) => expect(parseMatcher(text)).toEqual(m));
});

describe('form text', () => {
  it('name=value lines split at the first =', () => {
    expect(parsePairs('summary={{ a == b }}\n\n team = ops \nbare')).toEqual({
      summary: '{{ a == b }}',
      team: 'ops',
      bare: '',
    });
  });

  it('a local date-time input round-trips to the same instant', () => {
    const iso = '2026-12-02T10:07:00.000Z';
    expect(fromLocalInput(toLocalInput(iso))).toBe(iso);
    expect(fromLocalInput('garbage')).toBe('garbage');
  });
});
