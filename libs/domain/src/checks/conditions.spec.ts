import fc from 'fast-check';
import { CONDITION_CACHE_SIZE, conditionCacheSize, evaluateConditions, type ConditionFacts } from './conditions';

const http = (extra: Partial<ConditionFacts> = {}): ConditionFacts => ({
  ok: true,
  latencyMs: 120,
  status: 200,
  headers: { 'content-type': 'application/json; charset=utf-8', constructor: 'x' },
  bodyText: '{"status":"UP","count":5,"ratio":0.7,"items":[{"ok":true}]}',
  body: { status: 'UP', count: 5, ratio: 0.7, items: [{ ok: true }], nested: { deep: { n: 2 } } },
  ...extra,
});
const tcp: ConditionFacts = { ok: true, latencyMs: 3 };
const series = (name: string, labels: Record<string, string>, value: number) => ({ name, labels, value });
const scrape: ConditionFacts = {
  ok: true,
  latencyMs: 8,
  status: 200,
  metrics: [
    series('up', {}, 1),
    series('pg_lag_seconds', { instance: 'a' }, 12.5),
    series('pg_lag_seconds', { instance: 'b' }, 40),
    series('queue_depth', { queue: 'q', vhost: '/' }, 7),
  ],
};

const passes: [string, ConditionFacts][] = [
  ['status == 200', http()],
  ['status in [200, 201]', http()],
  ['latency < 300', http()],
  ['latency < 300.5 && status >= 200', http()],
  ['ok', tcp],
  ['body.status == "UP"', http()],
  ['body.count > 3', http()],
  ['body.count > 3.5', http()],
  ['body.count == 5', http()],
  ['body.count + 1 == 6', http()],
  ['body.count % 2 == 1', http()],
  ['body.ratio > 0.5', http()],
  ['body.ratio > 0', http()],
  ['body.items[0].ok', http()],
  ['size(body.items) == 1', http()],
  ['body.items.exists(i, i.ok)', http()],
  ['body.nested.deep.n == 2', http()],
  ['has(body.count) && !has(body.missing)', http()],
  ['"status" in body', http()],
  ['bodyText.contains("UP")', http()],
  ['headers["content-type"].startsWith("application/json")', http()],
  ['headers["constructor"] == "x"', http()],
  [
    'cert.daysLeft > 14',
    http({ cert: { daysLeft: 20, subject: 'CN=x', issuer: 'CN=ca', validTo: '2030-01-01', authorized: true } }),
  ],
  [
    'cert.authorized && cert.subject == "CN=x"',
    http({ cert: { daysLeft: 2, subject: 'CN=x', issuer: 'CN=ca', validTo: '2030-01-01', authorized: true } }),
  ],
  ['"10.0.0.1" in answers', { ok: true, latencyMs: 1, answers: ['10.0.0.1'] }],
  ['result.messages < 10 && result.consumers >= 1', { ok: true, latencyMs: 1, result: { messages: 3, consumers: 1 } }],
  ['result.row.n == 1', { ok: true, latencyMs: 1, result: { row: { n: 1 } } }],
  ['result.cpuPct < 50.0', { ok: true, latencyMs: 1, result: { cpuPct: 12.25 } }],
  ['metric("up") == 1.0', scrape],
  // An unlabelled series beside labelled ones of its name: the one with no label beyond those named.
  ['metric("lag") == 12.5', { ...scrape, metrics: [series('lag', {}, 12.5), series('lag', { replica: 'a' }, 40)] }],
  [
    'metric("lag", {"replica": ""}) == 12.5',
    { ...scrape, metrics: [series('lag', {}, 12.5), series('lag', { replica: 'a' }, 40)] },
  ],
  [
    'metric("lag", {"db": "x"}) == 1.0',
    { ...scrape, metrics: [series('lag', { db: 'x' }, 1), series('lag', { db: 'x', replica: 'a' }, 40)] },
  ],
  ['metric("pg_lag_seconds", {"instance": "a"}) < 30', scrape],
  ['metric("queue_depth", {"queue": "q"}) < 10', scrape],
  ['body == null', http({ body: null })],
  ['body == "plain text"', http({ body: 'plain text' })],
];

describe('evaluateConditions', () => {
  it('passes with no conditions', () => expect(evaluateConditions([], tcp)).toEqual({ ok: true }));

  it.each(passes)('%s holds', (expression, facts) =>
    expect(evaluateConditions([expression], facts)).toEqual({ ok: true }),
  );

  it.each<[string[], ConditionFacts, number, string]>([
    [
      ['status == 200', 'latency < 300'],
      http({ latencyMs: 412 }),
      1,
      'condition 2 "latency < 300" was false (latency = 412)',
    ],
    [
      ['body.status == "UP"'],
      http({ body: { status: 'DOWN' } }),
      0,
      'condition 1 "body.status == \\"UP\\"" was false (body.status = "DOWN")',
    ],
    [
      ['body.status == "UP"'],
      http({ body: { other: 1 } }),
      0,
      'condition 1 "body.status == \\"UP\\"" could not be evaluated: no such key: status',
    ],
    [['status == 200'], tcp, 0, 'condition 1 "status == 200" could not be evaluated: this result has no status'],
    [
      ['latency < 300'],
      { ok: false, latencyMs: null },
      0,
      'condition 1 "latency < 300" could not be evaluated: this result has no latency',
    ],
    [
      ['status == 200 && latency < 100'],
      http({ status: 503 }),
      0,
      'condition 1 "status == 200 && latency < 100" was false (status = 503, latency = 120)',
    ],
    [
      ['cert.daysLeft > 14'],
      http({ cert: { daysLeft: 9, subject: '', issuer: '', validTo: '', authorized: true } }),
      0,
      'condition 1 "cert.daysLeft > 14" was false (cert.daysLeft = 9)',
    ],
    [
      ['body.items[0].ok'],
      http({ body: { items: [{ ok: false }] } }),
      0,
      'condition 1 "body.items[0].ok" was false (body.items[0].ok = false)',
    ],
    [
      ['body["a b"] == 1'],
      http({ body: { 'a b': 2 } }),
      0,
      'condition 1 "body[\\"a b\\"] == 1" was false (body["a b"] = 2)',
    ],
    [['body.count'], http(), 0, 'condition 1 "body.count" gave 5, not true or false (body.count = 5)'],
    [
      ['body.constructor == null'],
      http(),
      0,
      'condition 1 "body.constructor == null" could not be evaluated: no such key: constructor',
    ],
    [
      ['body.__proto__ == null'],
      http(),
      0,
      'condition 1 "body.__proto__ == null" could not be evaluated: no such key: __proto__',
    ],
    [
      ['body.count * 1.5 > 1'],
      http(),
      0,
      'condition 1 "body.count * 1.5 > 1" could not be evaluated: no such overload: dyn<int> * double',
    ],
    [['status =='], http(), 0, 'condition 1 "status ==" could not be compiled: unexpected token: EOF'],
    [['metric("up") == 0.0'], scrape, 0, 'condition 1 "metric(\\"up\\") == 0.0" was false (metric("up") = 1)'],
    [
      ['metric("pg_lag_seconds") < 30'],
      scrape,
      0,
      'condition 1 "metric(\\"pg_lag_seconds\\") < 30" could not be evaluated: 2 series "pg_lag_seconds" ({instance="a"}, {instance="b"}): name labels to pick one, metric("pg_lag_seconds", {"label": "value"})',
    ],
    [
      ['metric("pg_lag_seconds", {"instance": "b"}) < 30'],
      scrape,
      0,
      'condition 1 "metric(\\"pg_lag_seconds\\", {\\"instance\\": \\"b\\"}) < 30" was false (metric("pg_lag_seconds", {"instance": "b"}) = 40)',
    ],
    [
      ['metric("pg_lag_seconds", {"instance": "c"}) < 30'],
      scrape,
      0,
      'condition 1 "metric(\\"pg_lag_seconds\\", {\\"instance\\": \\"c\\"}) < 30" could not be evaluated: no series "pg_lag_seconds" with labels {instance="c"}; it has {instance="a"}, {instance="b"}',
    ],
    [
      ['metric("nope") < 30'],
      scrape,
      0,
      'condition 1 "metric(\\"nope\\") < 30" could not be evaluated: no series named "nope" among 4 samples',
    ],
    [
      ['metric("up") == 1.0'],
      tcp,
      0,
      'condition 1 "metric(\\"up\\") == 1.0" could not be evaluated: no series named "up": this result has no metrics',
    ],
  ])('%j fails', (conditions, facts, index, reason) =>
    expect(evaluateConditions(conditions, facts)).toEqual({
      ok: false,
      failed: { index, expression: conditions[index], reason },
    }),
  );

  it('stops at the first failing condition', () => {
    const verdict = evaluateConditions(['ok', 'status == 500', 'status == "not even the right type"'], http());
    expect(verdict.failed?.index).toBe(1);
  });

  it('does not leak one result’s metrics into the next evaluation', () => {
    expect(evaluateConditions(['metric("up") == 1.0'], scrape).ok).toBe(true);
    expect(evaluateConditions(['metric("up") == 1.0'], tcp).ok).toBe(false);
  });

  it('compares an integer status like JS does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.integer({ min: 100, max: 599 }), (status, t) => {
        expect(evaluateConditions([`status < ${t}`], http({ status })).ok).toBe(status < t);
        expect(evaluateConditions([`status == ${t}`], http({ status })).ok).toBe(status === t);
      }),
    );
  });

  it('compares a latency like JS does, whole or fractional', () => {
    const latency = fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.double({ min: 0, max: 100_000, noNaN: true }));
    fc.assert(
      fc.property(latency, fc.integer({ min: 0, max: 100_000 }), (latencyMs, t) => {
        expect(evaluateConditions([`latency < ${t}`], http({ latencyMs })).ok).toBe(latencyMs < t);
        expect(evaluateConditions([`latency >= ${t}.5`], http({ latencyMs })).ok).toBe(latencyMs >= t + 0.5);
      }),
    );
  });

  it('compares any JSON number in a body against int and double literals like JS does', () => {
    const n = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.maxSafeInteger());
    fc.assert(
      fc.property(n, fc.integer({ min: -1_000_000, max: 1_000_000 }), (count, k) => {
        const facts = http({ body: JSON.parse(JSON.stringify({ count })) as unknown });
        const parsed = (JSON.parse(JSON.stringify(count)) as number) + 0; // -0 becomes 0 in JSON
        expect(evaluateConditions([`body.count > ${k}`], facts).ok).toBe(parsed > k);
        // `${k}.25` is k + 0.25 for k ≥ 0 but k − 0.25 for negative k: compare with the literal's own value.
        expect(evaluateConditions([`body.count <= ${k}.25`], facts).ok).toBe(parsed <= Number(`${k}.25`));
        expect(evaluateConditions([`result.n == ${k}`], { ok: true, latencyMs: 1, result: { n: parsed } }).ok).toBe(
          parsed === k,
        );
      }),
    );
  });

  it('never throws for any JSON body, whatever the expression reads', () => {
    const expressions = ['body.a > 1', 'body.a == "x"', 'size(body) > 0', 'body[0] == 1', 'has(body.a)', 'body.a.b.c'];
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(...expressions), (body, expression) => {
        const verdict = evaluateConditions([expression], http({ body }));
        if (!verdict.ok) expect(verdict.failed?.reason).toMatch(/^condition 1 "/);
      }),
    );
  });

  it('keeps the compiled-expression cache bounded and still right after evictions', () => {
    for (let i = 0; i < CONDITION_CACHE_SIZE + 500; i++)
      expect(evaluateConditions([`latency < ${i}`], http({ latencyMs: 1000 })).ok).toBe(1000 < i);
    expect(conditionCacheSize()).toBeLessThanOrEqual(CONDITION_CACHE_SIZE);
    expect(evaluateConditions(['latency < 3'], http({ latencyMs: 1 })).ok).toBe(true);
  });
});
