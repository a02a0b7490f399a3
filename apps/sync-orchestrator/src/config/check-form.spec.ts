import { checkInputSchema } from '@fleetwatch/contracts';
import { configFormOf, parseCheck } from './check-form';

// SPEC §11: POST /api/v1/checks with at least {name, type, intervalSeconds} and the type's own fields creates a check.
describe('parseCheck: a check that names no timeout', () => {
  const http = (extra: Record<string, unknown>) => ({
    name: 'api',
    type: 'http',
    url: 'http://127.0.0.1:8080/health',
    ...extra,
  });

  it.each([
    [1, 1],
    [5, 5],
    [9, 9],
    [10, 10],
    [30, 10],
  ])('intervalSeconds %d: accepted with a timeout of %d s', (intervalSeconds, timeoutSeconds) => {
    const parsed = parseCheck(http({ intervalSeconds }));
    expect(parsed).toMatchObject({ ok: true, spec: { intervalSeconds, timeoutSeconds } });
  });

  it('a timeout it names is kept, and one above the interval is still refused naming it', () => {
    expect(parseCheck(http({ intervalSeconds: 5, timeoutSeconds: 2 }))).toMatchObject({
      ok: true,
      spec: { timeoutSeconds: 2 },
    });
    expect(parseCheck(http({ intervalSeconds: 5, timeoutSeconds: 10 }))).toEqual({
      ok: false,
      issues: [{ path: 'timeoutSeconds', message: 'must not exceed intervalSeconds (5)' }],
    });
  });

  it('no interval: the defaults as before (30 s, 10 s)', () => {
    expect(parseCheck(http({}))).toMatchObject({ ok: true, spec: { intervalSeconds: 30, timeoutSeconds: 10 } });
  });

  it('the config form carries a timeout that is not the default, and reads back to the same spec', () => {
    const parsed = parseCheck(http({ intervalSeconds: 5 }));
    if (!parsed.ok) throw new Error('refused');
    const form = configFormOf(parsed.spec);
    expect(form['timeoutSeconds']).toBe(5);
    expect(checkInputSchema.parse({ ...form, name: 'api' })).toEqual(parsed.spec);
    const usual = parseCheck(http({ intervalSeconds: 60 }));
    if (!usual.ok) throw new Error('refused');
    expect(configFormOf(usual.spec)).not.toHaveProperty('timeoutSeconds');
  });
});

describe('parseCheck: what is refused on write (checkWriteIssues), pathed under the prefix', () => {
  it('an empty expectedStatus and a Content-Length header are refused, naming each', () => {
    const parsed = parseCheck(
      {
        name: 'api',
        type: 'http',
        url: 'http://127.0.0.1:8080/health',
        expectedStatus: [],
        headers: { 'Content-Length': '5' },
      },
      ['checks', 'api'],
    );
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? [] : parsed.issues.map((i) => i.path)).toEqual([
      'checks.api.expectedStatus',
      'checks.api.headers.Content-Length',
    ]);
  });
});
