import { conditionProblem } from './conditions';
import { checkInputSchema } from './check.schema';

describe('condition expressions (CEL): accepted when saved only if they parse and type-check to a boolean', () => {
  it.each([
    'status == 200',
    'latency < 300',
    'latency < 300.5',
    'body.status == "UP"',
    'cert.daysLeft > 14',
    'metric("pg_lag_seconds") < 30',
    'metric("up", {"job": "node"}) == 1.0',
    'metric("up") == 1',
    'ok && status >= 200 && status < 400',
    'headers["content-type"].startsWith("application/json")',
    '"10.0.0.1" in answers',
    'result.messages < 1000',
    'size(bodyText) > 0',
  ])('valid: %s', (expr) => {
    expect(conditionProblem(expr)).toBeNull();
  });

  it.each<[string, number, number, RegExp]>([
    ['status == 200 &&', 1, 17, /Unexpected token: EOF/],
    ['a +* b', 1, 4, /Unexpected token/],
    ['nope == 1', 1, 1, /Unknown variable: nope/],
    ['status == "x"', 1, 1, /no such overload/],
    ['latency', 1, 1, /must be true or false, this one is double/],
    ['metric(1) < 3', 1, 1, /found no matching overload|no such overload|metric/],
    ['', 1, 1, /cannot be empty/],
    ['status == 200 &&\n  latency <', 2, 12, /Unexpected token: EOF/],
    ['x'.repeat(1025), 1, 1025, /at most 1024 characters/],
  ])('invalid: %j at line %i column %i', (expr, line, column, message) => {
    const p = conditionProblem(expr);
    expect(p).not.toBeNull();
    expect(p?.message).toMatch(message);
    expect({ line: p?.line, column: p?.column }).toEqual({ line, column });
  });

  it('a check with a bad condition is refused naming the condition and its position', () => {
    const r = checkInputSchema.safeParse({
      name: 'api',
      type: 'http',
      url: 'http://127.0.0.1:8080/health',
      conditions: ['status == 200', 'latency <'],
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ path: ['conditions', 1] });
    expect(r.error?.issues[0].message).toMatch(/^line 1, column 10: Unexpected token: EOF/);
  });
});
