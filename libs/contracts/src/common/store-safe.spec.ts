import fc from 'fast-check';
import { statusUpdateInputSchema } from '../events/observations.schema';
import { alertRuleSpecSchema } from '../alerts/rule.schema';
import { httpCheckFields } from '../checks/check.schema';
import { createUserRequestSchema } from '../http/gateway-admin.schema';
import { z } from 'zod';
import { channelInputSchema } from '../alerts/channel.schema';
import {
  loneSurrogateProblem,
  ownKeysRecord,
  storableNumber,
  storeSafetyIssue,
  textProblem,
  toStorable,
  truncateText,
} from './store-safe';

// Code units 0..0xFFFF, so NUL and lone surrogates (both halves) come up often.
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const rawString = fc.string({
  unit: fc.oneof(anyUnit, fc.constantFrom('\u0000', '\ud800', '\udfff', '\\', 'u0000', '😀')),
  maxLength: 40,
});
const storable = (s: string) => !s.includes('\u0000') && s.isWellFormed();

describe('textProblem', () => {
  it.each([
    ['plain', 'hello', null],
    ['emoji (a surrogate pair)', 'ok 😀', null],
    ['a literal backslash-u0000', '\\u0000', null],
    ['NUL', 'a\u0000b', /NUL character \(U\+0000\) at position 1/],
    ['lone high surrogate', 'x\ud800', /lone surrogate \(U\+D800\) at position 1/],
    ['lone low surrogate', '\udc00x', /lone surrogate \(U\+DC00\) at position 0/],
    ['reversed pair', '\ude00\ud83d', /lone surrogate \(U\+DE00\) at position 0/],
  ])('%s', (_name, value, expected) => {
    const problem = textProblem(value);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it('finds a problem exactly when a store could not hold the string', () => {
    fc.assert(fc.property(rawString, (s) => (textProblem(s) === null) === storable(s)));
  });
});

describe('loneSurrogateProblem', () => {
  it('names a lone surrogate only (a NUL is for textProblem), as textProblem words it', () => {
    expect(loneSurrogateProblem('a\u0000b')).toBeNull();
    expect(loneSurrogateProblem('ok 😀')).toBeNull();
    expect(loneSurrogateProblem('a\u0000\udc00')).toMatch(/lone surrogate \(U\+DC00\) at position 2/);
    expect(loneSurrogateProblem('x\ud800')).toBe(textProblem('x\ud800'));
  });

  it("a new password's refusal is about the surrogate, even beside a NUL (which it keeps)", () => {
    const base = { username: 'someone', role: 'viewer' as const };
    expect(createUserRequestSchema.safeParse({ ...base, password: 'pass\u0000word' }).success).toBe(true);
    const both = createUserRequestSchema.safeParse({ ...base, password: 'pass\u0000word\ud800' });
    expect(both.success).toBe(false);
    expect(both.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['password', expect.stringMatching(/lone surrogate \(U\+D800\)/)],
    ]);
  });
});

describe('storeSafetyIssue', () => {
  it('names the path of the first bad key or string at any depth', () => {
    expect(storeSafetyIssue({ a: [1, { b: 'x\u0000' }] })).toMatchObject({ path: ['a', 1, 'b'] });
    expect(storeSafetyIssue({ a: { 'k\ud800': 1 } })).toMatchObject({
      path: ['a', 'k\ud800'],
      message: expect.stringMatching(/^key contains a lone surrogate/),
    });
    expect(storeSafetyIssue({ a: [true, null, 1.5, 'ok', -0, 1.7976931348623157e308] })).toBeNull();
    expect(storeSafetyIssue(JSON.parse('{"big":[1e400]}'))).toMatchObject({
      path: ['big', 0],
      message: expect.stringMatching(/^number out of range \(Infinity\)/),
    });
  });
});

describe('toStorable', () => {
  it('returns storable values unchanged (same object) and cleans the others', () => {
    const ok = { a: ['x', { b: 'y' }] };
    expect(toStorable(ok)).toBe(ok);
    expect(toStorable({ 'k\u0000': ['a\u0000b', 'c\ud800'] })).toEqual({ k: ['ab', 'c\ufffd'] });
  });
  it('always yields what a store can hold', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 3 }),
        rawString,
        (v, s) => storeSafetyIssue(toStorable({ v, s, [s]: v })) === null,
      ),
    );
  });
});

describe('truncateText', () => {
  it('never splits a surrogate pair', () => {
    expect(truncateText('ab😀', 3)).toBe('ab');
    expect(truncateText('ab😀', 4)).toBe('ab😀');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.nat(50), (s, n) => {
        const t = truncateText(s, n);
        return t.length <= n && s.startsWith(t) && t.isWellFormed();
      }),
    );
  });
});

describe('storableNumber', () => {
  it('reads back through JSON as it was accepted: -0 is taken as 0, every other number kept', () => {
    expect(Object.is(storableNumber().parse(-0), 0)).toBe(true);
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        const accepted = storableNumber().parse(n);
        expect(JSON.parse(JSON.stringify(accepted))).toBe(accepted);
        expect(accepted === n).toBe(true);
      }),
    );
    expect(storableNumber().safeParse(Infinity).success).toBe(false);
    expect(storableNumber().safeParse(NaN).success).toBe(false);
  });

  it('a rule threshold and a check assertion of -0 are accepted as 0', () => {
    const rule = alertRuleSpecSchema.parse({
      name: 'r',
      condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: -0 },
    });
    expect(rule.condition).toHaveProperty('threshold');
    expect(Object.is((rule.condition as { threshold: number }).threshold, 0)).toBe(true);
    const [assertion] = httpCheckFields.shape.jsonPath.parse([{ path: '$.a', equals: -0 }]);
    expect(Object.is(assertion.equals, 0)).toBe(true);
  });
});

describe('statusUpdateInputSchema refuses what a store cannot hold, naming the field', () => {
  const base = { instanceId: 'web-1', kind: 'container', status: 'running' };
  it.each([
    ['message', { message: 'a\u0000' }, ['message']],
    ['source', { source: '\ud800' }, ['source']],
    ['a label value', { labels: { team: 'x\u0000' } }, ['labels', 'team']],
    ['a metadata string deep inside', { metadata: { a: { b: ['ok', 'no\udc00'] } } }, ['metadata', 'a', 'b', 1]],
    ['a metadata key', { metadata: { 'bad\u0000key': 1 } }, ['metadata', 'bad\u0000key']],
  ])('%s', (_name, extra, path) => {
    const r = statusUpdateInputSchema.safeParse({ ...base, ...extra });
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues[0].path).toEqual(path);
  });

  it('accepts a literal backslash-u0000 and keeps it', () => {
    expect(statusUpdateInputSchema.parse({ ...base, message: '\\u0000', metadata: { k: '\\u0000' } })).toMatchObject({
      message: '\\u0000',
      metadata: { k: '\\u0000' },
    });
  });

  it('accepts an update exactly when all its strings and keys are storable', () => {
    fc.assert(
      fc.property(rawString, rawString, rawString, (message, key, value) => {
        const r = statusUpdateInputSchema.safeParse({ ...base, message, metadata: { [key]: value, n: 1 } });
        return (
          r.success ===
          (storable(message) &&
            storable(key) &&
            storable(value) &&
            key !== '__proto__' &&
            key !== 'constructor' &&
            key !== 'prototype')
        );
      }),
    );
  });
});

describe('ownKeysRecord', () => {
  const schema = ownKeysRecord(z.string(), z.string());

  it('refuses an own __proto__ key (as JSON.parse makes it), naming it, where z.record drops it silently', () => {
    const input: unknown = JSON.parse('{"__proto__": "x", "a": "b"}');
    expect(z.record(z.string(), z.string()).parse(input)).toEqual({ a: 'b' }); // why the guard exists
    const r = schema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['__proto__', 'the key "__proto__" is not allowed'],
    ]);
  });

  it('is the record otherwise: same output, same JSON Schema on both sides', () => {
    expect(schema.parse({ a: 'b', constructor: 'c' })).toEqual({ a: 'b', constructor: 'c' });
    expect(schema.safeParse({ a: 1 }).success).toBe(false);
    const plain = z.record(z.string(), z.string());
    for (const io of ['input', 'output'] as const)
      expect(z.toJSONSchema(schema, { io })).toEqual(z.toJSONSchema(plain, { io }));
  });

  it('keeps a default in the JSON Schema of what a client sends (OpenAPI request bodies), refined or not', () => {
    const fields = (record: typeof schema) =>
      z.object({ h: record.refine((h) => Object.keys(h).length <= 2, 'at most 2').default({}), i: record.default({}) });
    const own = fields(schema);
    const plain = fields(z.record(z.string(), z.string()));
    for (const io of ['input', 'output'] as const)
      expect(z.toJSONSchema(own, { io })).toEqual(z.toJSONSchema(plain, { io }));
    // Still the record it says it is, and still guarded once refined.
    expect(schema).toBeInstanceOf(z.ZodRecord);
    const r = own.safeParse({ h: JSON.parse('{"__proto__": "x", "a": "b"}'), i: { a: 1 } });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['h.__proto__', 'i.a']);
  });
});

describe('a __proto__ key in a configuration record is refused, not dropped', () => {
  /** An object with an own `__proto__` key, as JSON.parse makes it. */
  const proto = (extra: Record<string, string> = {}): unknown =>
    JSON.parse(JSON.stringify({ x: 'x', ...extra }).replace('"x":', '"__proto__":'));
  it.each([
    [
      'rule labels',
      () =>
        alertRuleSpecSchema.safeParse({
          name: 'r',
          condition: { type: 'status', statuses: ['DOWN'] },
          labels: proto(),
        }),
      'labels.__proto__',
    ],
    [
      'rule annotations',
      () =>
        alertRuleSpecSchema.safeParse({
          name: 'r',
          condition: { type: 'status', statuses: ['DOWN'] },
          annotations: proto(),
        }),
      'annotations.__proto__',
    ],
    [
      'http check headers',
      () => httpCheckFields.safeParse({ url: 'http://example.com/', headers: proto({ a: 'b' }) }),
      'headers.__proto__',
    ],
    [
      'webhook channel headers',
      () =>
        channelInputSchema.safeParse({
          type: 'webhook',
          name: 'w',
          url: 'https://hooks.example.com/in',
          headers: proto(),
        }),
      'headers.__proto__',
    ],
  ])('%s', (_what, parse, path) => {
    const r = parse();
    expect({ success: r.success, paths: r.error?.issues.map((i) => i.path.join('.')) }).toEqual({
      success: false,
      paths: expect.arrayContaining([path]) as unknown,
    });
  });
});
