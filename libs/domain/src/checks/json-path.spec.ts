import fc from 'fast-check';
import { jsonPathAssertionProblem, jsonPathGet, parseJsonPath } from './json-path';

const doc = JSON.parse(
  '{"status":"UP","a":{"b":[{"ok":true},{"ok":false}]},"a b":{"c-d":null},"n":5,"__proto__":{"x":1},"items":[1,2,3]}',
) as unknown;

describe('jsonPathGet', () => {
  it.each<[string, { found: boolean; value?: unknown }]>([
    ['$', { found: true, value: doc }],
    ['$.status', { found: true, value: 'UP' }],
    ['$.a.b[0].ok', { found: true, value: true }],
    ['$.a.b[1]', { found: true, value: { ok: false } }],
    ['$["a b"]["c-d"]', { found: true, value: null }],
    ['$["a b"].c-d', { found: true, value: null }],
    ['$.n', { found: true, value: 5 }],
    // An own "__proto__" key from JSON.parse is data like any other.
    ['$.__proto__.x', { found: true, value: 1 }],
    ['$.missing', { found: false }],
    ['$.a.b[2]', { found: false }],
    ['$.a.b.ok', { found: false }],
    ['$.status.length', { found: false }],
    ['$.items.length', { found: false }],
    ['$.items["0"]', { found: false }],
    ['$.a[0]', { found: false }],
    ['$.constructor', { found: false }],
    ['$.a.toString', { found: false }],
    ['$.a.hasOwnProperty', { found: false }],
    ['$[""]', { found: false }],
  ])('%s', (path, expected) => expect(jsonPathGet(doc, path)).toEqual(expected));

  it('reads nothing through the prototype of an object built in JS', () => {
    expect(jsonPathGet({}, '$.__proto__')).toEqual({ found: false });
    expect(jsonPathGet([], '$.constructor')).toEqual({ found: false });
    expect(jsonPathGet('text', '$.length')).toEqual({ found: false });
  });

  it.each(['status', '$.', '$..a', '$[a]', '$.a[-1]', "$['a']", '$.1a', '$["a]', '$ .a'])(
    'refuses the malformed path %j',
    (path) => expect(() => jsonPathGet(doc, path)).toThrow(/not a JSON path/),
  );

  it('finds whatever a walk through any JSON value reaches', () => {
    // Walk a random document along random choices, writing the path as we go.
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.nat(), { maxLength: 8 }), (value, choices) => {
        let here: unknown = value;
        let path = '$';
        for (const choice of choices) {
          if (Array.isArray(here) && here.length > 0) {
            const i = choice % here.length;
            path += `[${i}]`;
            here = here[i] as unknown;
          } else if (typeof here === 'object' && here !== null && Object.keys(here).length > 0) {
            const keys = Object.keys(here).filter((k) => !k.includes('"'));
            if (keys.length === 0) break;
            const k = keys[choice % keys.length];
            path += /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) && choice % 2 === 0 ? `.${k}` : `["${k}"]`;
            here = (here as Record<string, unknown>)[k];
          } else break;
        }
        expect(jsonPathGet(value, path)).toEqual({ found: true, value: here });
      }),
    );
  });

  it('parses the path subset the check schema allows', () => {
    expect(parseJsonPath('$.a["b c"][12].d_e-f')).toEqual([
      { key: 'a' },
      { key: 'b c' },
      { index: 12 },
      { key: 'd_e-f' },
    ]);
  });
});

describe('jsonPathAssertionProblem', () => {
  it.each<[unknown, { path: string; equals?: string | number | boolean | null }, string | null]>([
    [doc, { path: '$.status', equals: 'UP' }, null],
    [doc, { path: '$.status' }, null],
    [doc, { path: '$["a b"]["c-d"]', equals: null }, null],
    [doc, { path: '$.n', equals: 5 }, null],
    [doc, { path: '$.a.b[0].ok', equals: true }, null],
    [doc, { path: '$.status', equals: 'DOWN' }, '$.status is "UP", expected "DOWN"'],
    [doc, { path: '$.n', equals: '5' }, '$.n is 5, expected "5"'],
    [doc, { path: '$.a.b[1]', equals: false }, '$.a.b[1] is {"ok":false}, expected false'],
    [doc, { path: '$.nope' }, '$.nope not found in the body'],
    [doc, { path: '$.nope', equals: null }, '$.nope not found in the body'],
    [undefined, { path: '$.status', equals: 'UP' }, '$.status: the body is not JSON'],
    [doc, { path: 'status' }, 'not a JSON path (must start with $): status'],
    [{ s: 'x'.repeat(200) }, { path: '$.s', equals: 'y' }, `$.s is "${'x'.repeat(78)}…, expected "y"`],
  ])('%#: %j', (body, assertion, expected) => expect(jsonPathAssertionProblem(body, assertion)).toBe(expected));
});
