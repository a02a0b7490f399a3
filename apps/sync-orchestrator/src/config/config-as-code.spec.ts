import type { CheckDefinition, CheckSpec } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import fc from 'fast-check';
import { canonicalJson, contentHash, jsonDiff } from './canonical-json';
import { arbitraryChecks } from './check.arbitrary';
import { configFormOf, parseCheck } from './check-form';
import { withStoredSecrets } from './check-secrets';
import { planImport, snapshotOf } from './config-plan';
import { parseConfigDocument, parseConfigYaml, renderConfigYaml } from './config-yaml';

// Config as code without a database: canonical JSON and diffs, the config form (defaults
// left out), YAML export and import, and the import plan. The round trip export → import
// = no change is a property over generated valid checks of every type.

const stored = (spec: CheckSpec, i: number): CheckDefinition => ({
  ...spec,
  id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  targetId: `check:${i}`,
  version: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
});

const spec = (input: Record<string, unknown>): CheckSpec => {
  const p = parseCheck(input);
  if (!p.ok) throw new Error(JSON.stringify(p.issues));
  return p.spec;
};

function invalidOf(fn: () => unknown): InvalidError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidError) return e;
    throw e;
  }
  throw new Error('expected an InvalidError');
}

describe('canonical JSON', () => {
  it('sorts keys at every depth and hashes key order away', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}',
    );
    expect(contentHash({ a: 1, b: 2 })).toBe(contentHash({ b: 2, a: 1 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: 2 }));
  });

  it('diffs leaves with dotted paths; absent differs from null', () => {
    expect(
      jsonDiff(
        { conditions: ['a', 'b'], headers: { A: '1' }, x: null },
        { conditions: ['a', 'c', 'd'], headers: { B: '2' } },
      ),
    ).toEqual([
      { path: 'conditions.1', before: 'b', after: 'c' },
      { path: 'conditions.2', after: 'd' },
      { path: 'headers.A', before: '1' },
      { path: 'headers.B', after: '2' },
      { path: 'x', before: null },
    ]);
    expect(jsonDiff({ a: [1] }, { a: [1] })).toEqual([]);
    // A member named __proto__ (JSON.parse makes it an own key) is a member like any other.
    expect(jsonDiff({}, JSON.parse('{"__proto__": {"x": 1}}'))).toEqual([{ path: '__proto__', after: { x: 1 } }]);
  });

  it('diff is empty exactly when canonical JSON is equal (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        expect(jsonDiff(a, b).length === 0).toBe(canonicalJson(a) === canonicalJson(b));
        expect(jsonDiff(a, a)).toEqual([]);
      }),
    );
  });
});

describe('config form', () => {
  it('leaves out defaults, puts type first and keeps what differs', () => {
    const s = spec({ name: 'web', type: 'http', url: 'http://a/', method: 'GET', intervalSeconds: 60, paused: false });
    expect(configFormOf(s)).toEqual({ type: 'http', intervalSeconds: 60, url: 'http://a/' });
    expect(Object.keys(configFormOf(s))[0]).toBe('type');
    // Written out or left out, a default is the same check.
    expect(configFormOf(spec({ name: 'web', type: 'http', url: 'http://a/', intervalSeconds: 60 }))).toEqual(
      configFormOf(s),
    );
  });
});

describe('YAML', () => {
  it('refuses YAML nested past its limits (flow, compact, indentation) at once, naming it, before the parser recurses', () => {
    // 1,000,000 levels took the parser ~5 s of CPU (the service's event loop blocked) to end in a stack overflow.
    const n = 1_000_000;
    const started = performance.now();
    const e = invalidOf(() => parseConfigYaml(`checks:\n  a: ${'['.repeat(n)}${']'.repeat(n)}\n`));
    expect(e.message).toMatch(/nested deeper than 64 levels/);
    expect(performance.now() - started).toBeLessThan(1000);
    // A closing bracket in a quoted scalar closes nothing.
    expect(
      invalidOf(() => parseConfigYaml(`checks:\n  a: ${'["]", \'}\', '.repeat(100)}1${']'.repeat(100)}\n`)).message,
    ).toMatch(/nested deeper than 64 levels/);
    // Compact block collections nest a level every two bytes on one line: a million took ~2 s, then the overflow.
    const compact = invalidOf(() => parseConfigYaml(`checks:\n  a:\n    ${'- '.repeat(n)}x\n`));
    expect(compact.message).toMatch(/more than 64 collections opened on one line/);
    expect(invalidOf(() => parseConfigYaml(`checks:\n  a:\n    ${'? '.repeat(65)}x\n`)).message).toMatch(
      /more than 64 collections opened on one line/,
    );
    // Indentation nests a level a column: 4,000 levels overflowed the parser's stack.
    const indented = Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k:`).join('\n');
    expect(invalidOf(() => parseConfigYaml(`checks:\n${indented} 1\n`)).message).toMatch(
      /a line indented past 256 columns/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
    // Mappings count too, and so does a document that is all flow.
    expect(invalidOf(() => parseConfigYaml(`{checks: ${'{a: '.repeat(70)}1${'}'.repeat(71)}`)).message).toMatch(
      /nested deeper than 64 levels/,
    );
  });

  it('takes brackets and dashes inside quoted and block scalars and comments as text, and passes nesting at the limits', () => {
    const text = [
      'checks:',
      '  web:',
      '    type: http',
      `    url: "https://example.com/?q=${'['.repeat(100)}"`,
      `    # ${'{'.repeat(100)}`,
      '    headers:',
      `      X-A: '${'['.repeat(100)}'`,
      `      X-C: "${'- '.repeat(100)}x"`,
      '      X-B: |-',
      `        ${'['.repeat(100)}`,
      '',
    ].join('\n');
    const [web] = parseConfigYaml(text);
    expect(web.spec).toMatchObject({ url: `https://example.com/?q=${'['.repeat(100)}` });
    // The limits themselves pass the check (what they hold is then the contract's to judge).
    const deep = invalidOf(() => parseConfigYaml(`checks:\n  a: ${'['.repeat(64)}${']'.repeat(64)}\n`));
    expect(deep.message).not.toMatch(/nested deeper/);
    const indented = Array.from({ length: 200 }, (_, i) => `${' '.repeat(i + 2)}k${i}:`).join('\n');
    const atLimits = invalidOf(() =>
      parseConfigYaml(`checks:\n${indented}\n${' '.repeat(256)}${'- '.repeat(64)}${'['.repeat(64)}${']'.repeat(64)}\n`),
    );
    expect(atLimits.message).not.toMatch(/nested deeper|opened on one line|indented past/);
  });

  it('export → import gives the same specs and a plan of nothing but unchanged (property)', () => {
    fc.assert(
      fc.property(arbitraryChecks(6), (checks) => {
        const specs = checks.map((c) => c.spec);
        const yaml = renderConfigYaml(snapshotOf(specs), 'header\nline two');
        // Credential headers export as `{set: true}`: the import keeps the site's values.
        const site = new Map(specs.map((s) => [s.name, s]));
        const back = parseConfigYaml(yaml).map((c) => ({
          ...c,
          spec: withStoredSecrets(c.spec, c.marks, site.get(c.name) ?? null).spec,
        }));
        const byName = new Map(back.map((c) => [c.name, c.spec]));
        expect(back).toHaveLength(specs.length);
        for (const s of specs) expect(canonicalJson(byName.get(s.name))).toBe(canonicalJson(s));
        // Same content, same hash: the snapshot of the import is the snapshot exported.
        expect(contentHash(snapshotOf(back.map((c) => c.spec)))).toBe(contentHash(snapshotOf(specs)));
        const plan = planImport(
          specs.map(stored),
          back.map((c) => c.spec),
          true,
        );
        expect(plan.creates.length + plan.changes.length + plan.deletes.length).toBe(0);
        expect(plan.items.every((i) => i.action === 'unchanged')).toBe(true);
        // Deterministic: the same configuration renders to the same text.
        expect(renderConfigYaml(snapshotOf([...back].reverse().map((c) => c.spec)), 'header\nline two')).toBe(yaml);
      }),
      { numRuns: 150 },
    );
  });

  it('a check named __proto__ or like a YAML keyword survives the round trip', () => {
    const specs = ['__proto__', 'true', 'null', '123', 'a: b', '- x'].map((name) =>
      spec({ name, type: 'tcp', host: 'db', port: 5432 }),
    );
    const back = parseConfigYaml(renderConfigYaml(snapshotOf(specs)));
    expect(back.map((c) => c.name).sort()).toEqual(specs.map((s) => s.name).sort());
  });

  it('reports YAML syntax errors with line and column', () => {
    const e = invalidOf(() => parseConfigYaml('checks:\n  web: {type: http\n  db: 1\n'));
    expect(e.message).toMatch(/^not valid YAML: line \d+, column \d+: /);
  });

  it('an alias bomb is refused as invalid (not a crash of the import: that was a 500)', () => {
    const ten = (a: string) => `[${Array(10).fill(`*${a}`).join(', ')}]`;
    const yaml = [
      'checks:',
      '  web:',
      '    type: http',
      '    url: http://127.0.0.1/',
      '    t0: &t0 [x]',
      `    t1: &t1 ${ten('t0')}`,
      `    t2: &t2 ${ten('t1')}`,
      `    t3: ${ten('t2')}`,
      '',
    ].join('\n');
    const e = invalidOf(() => parseConfigYaml(yaml));
    expect(e.issues[0]).toMatchObject({ path: 'checks.web' });
    expect(e.issues[0].message).toMatch(/alias/i);
  });

  it('refuses a duplicate key at any depth, in block and flow mappings, naming each place; 1 and "1" are one key once read', () => {
    const e = invalidOf(() =>
      parseConfigDocument(
        [
          'checks:',
          '  a: {type: tcp, host: x, port: 1, port: 2}',
          '  b:',
          '    type: tcp',
          '    host: y',
          '    host: z',
          '    port: 1',
          'checks: {}',
          '',
        ].join('\n'),
      ),
    );
    expect(e.issues.map((i) => i.message)).toEqual([
      'line 2, column 36: Map keys must be unique',
      'line 6, column 5: Map keys must be unique',
      'line 8, column 1: Map keys must be unique',
    ]);
    // 1 and "1" (a number and a string) are one key once read into an object: a duplicate, not a value dropped.
    for (const map of ['{1: a, "1": b}', '{true: a, "true": b}', '{~: a, "": b}', '{0x10: a, "16": b}'])
      expect(() => parseConfigDocument(`checks: {}\nproperties:\n  app.dup: ${map}\n`)).toThrow(
        /line 3, column \d+: Map keys must be unique/,
      );
  });

  it('refuses a sequence or mapping key (or an alias of one) at its line and column, never read as its YAML text', () => {
    // Read as "[ a, b ]" / "{ k: v }" (a key nobody wrote), never compared: stored, or silently replacing the key
    // spelled so.
    const cases: Array<[string, string]> = [
      [
        'checks: {}\nproperties:\n  app.x:\n    ? [a, b]\n    : 1\n    "[ a, b ]": 2\n',
        'line 4, column 7: a key must be a scalar (a string, number, boolean or null), not a sequence',
      ],
      [
        'checks: {}\nproperties:\n  app.x: {? {k: v} : 1, "{ k: v }": 2}\n',
        'line 3, column 13: a key must be a scalar (a string, number, boolean or null), not a mapping',
      ],
      [
        'checks: {}\nproperties:\n  app.a: &m {k: v}\n  app.b:\n    ? *m\n    : 1\n',
        'line 5, column 7: a key must be a scalar (a string, number, boolean or null), not an alias of a mapping',
      ],
      [
        'checks:\n  ? [a, b]\n  : {type: tcp, host: x, port: 1}\n',
        'line 2, column 5: a key must be a scalar (a string, number, boolean or null), not a sequence',
      ],
      [
        '? [checks]\n: {}\n',
        'line 1, column 3: a key must be a scalar (a string, number, boolean or null), not a sequence',
      ],
    ];
    for (const [yaml, message] of cases)
      expect([yaml, invalidOf(() => parseConfigDocument(yaml)).issues]).toEqual([yaml, [{ path: '', message }]]);
    // An alias of a scalar is that scalar: a key like any other, compared as one.
    const ok = parseConfigDocument('checks: {}\nproperties:\n  app.a: &k x\n  app.b: {? *k : 1, y: 2}\n');
    expect(ok.properties?.get('app.b')).toEqual({ x: 1, y: 2 });
    expect(() => parseConfigDocument('checks: {}\nproperties:\n  app.a: &k x\n  app.b: {? *k : 1, x: 2}\n')).toThrow(
      /line 4, column 21: Map keys must be unique/,
    );
  });

  it('resolves alias keys in one pass: 4,000 of them (110 KB) are read in well under a second (it took 16 s)', () => {
    const n = 4000;
    const anchors = Array.from({ length: n }, (_, i) => `&a${i} k${i}`).join(', ');
    const keys = Array.from({ length: n }, (_, i) => `    *a${i} : 1\n`).join('');
    const yaml = `checks: {}\nproperties:\n  app.a: [${anchors}]\n  app.b:\n${keys}    ? [x]\n    : 1\n`;
    const started = performance.now();
    expect(invalidOf(() => parseConfigDocument(yaml)).issues).toEqual([
      {
        path: '',
        message: `line ${n + 5}, column 7: a key must be a scalar (a string, number, boolean or null), not a sequence`,
      },
    ]);
    expect(performance.now() - started).toBeLessThan(6000); // quadratic: ~20 s; linear: ~0.6 s (room for a loaded machine)
  });

  it('names a tag it refuses as written (!foo, !!foo, !e!foo, !<…>), at the tag, once', () => {
    const refused = (yaml: string) =>
      invalidOf(() => parseConfigDocument(`checks: {}\nproperties:\n  app.a: ${yaml}\n`)).issues;
    const notCore = 'is not allowed: only the YAML 1.2 core tags (what JSON holds)';
    expect(refused('!foo 1')).toEqual([{ path: '', message: `line 3, column 10: the tag !foo ${notCore}` }]);
    expect(refused('!!foo 1')).toEqual([{ path: '', message: `line 3, column 10: the tag !!foo ${notCore}` }]);
    expect(refused('!!omap [a: 1]')).toEqual([{ path: '', message: `line 3, column 10: the tag !!omap ${notCore}` }]);
    expect(refused('!<tag:yaml.org,2002:foo> 1')).toEqual([
      { path: '', message: `line 3, column 10: the tag !<tag:yaml.org,2002:foo> ${notCore}` },
    ]);
    expect(refused('{a: !!float 80}')).toEqual([
      { path: '', message: 'line 3, column 14: the tag !!float does not fit its value' },
    ]);
    const e = invalidOf(() =>
      parseConfigDocument('%TAG !e! tag:example.com,2000:\n---\nchecks: {}\nproperties:\n  app.a: !e!foo 1\n'),
    );
    expect(e.issues).toEqual([{ path: '', message: `line 5, column 10: the tag !e!foo ${notCore}` }]);
    for (const i of [...e.issues, ...refused('!!foo 1')]) expect(i.message).not.toMatch(/tag:/);
    // Core tags as written are JSON: read as usual.
    expect(parseConfigDocument('checks: {}\nproperties:\n  app.a: !!str 12\n  app.b: ! x\n').properties).toEqual(
      new Map([
        ['app.a', '12'],
        ['app.b', 'x'],
      ]),
    );
  });

  it('in a %YAML 1.1 document, merges every `<<` of a mapping (as the yaml package does) and refuses a timestamp key', () => {
    const merged = parseConfigDocument(
      '%YAML 1.1\n---\nchecks: {}\nproperties:\n  app.x: &x {a: 1}\n  app.y: &y {c: 1}\n  app.m:\n    <<: *x\n    <<: *y\n    b: 2\n',
    );
    expect(merged.properties?.get('app.m')).toEqual({ a: 1, c: 1, b: 2 });
    // An unquoted date is a YAML 1.1 timestamp (a JS Date, no tag written): as a key it was stored as the server's
    // Date#toString ("Thu Jan 01 2026 00:00:00 GMT+0000 (…)"), not as sent.
    expect(() => parseConfigDocument('%YAML 1.1\n---\nchecks: {}\nproperties:\n  app.t: {2026-01-01: a}\n')).toThrow(
      /line 5, column 11: .*timestamp/,
    );
  });

  it('refuses duplicate names, also once trimmed', () => {
    expect(
      invalidOf(() =>
        parseConfigYaml('checks:\n  a: {type: tcp, host: x, port: 1}\n  a: {type: tcp, host: y, port: 1}\n'),
      ).message,
    ).toMatch(/line 3, column 3: Map keys must be unique/);
    const e = invalidOf(() =>
      parseConfigYaml('checks:\n  a: {type: tcp, host: x, port: 1}\n  " a": {type: tcp, host: y, port: 1}\n'),
    );
    expect(e.issues).toEqual([{ path: 'checks. a', message: 'line 3, column 3: same name as "a" once trimmed' }]);
  });

  it('names each bad field as checks.<name>.<field>, with its line', () => {
    const e = invalidOf(() =>
      parseConfigYaml(
        [
          'checks:',
          '  web:',
          '    type: http',
          '    url: file:///etc/passwd',
          '  api:',
          '    type: http',
          '    url: http://api/',
          '    conditions: ["status == 200", "status =="]',
          '  ok:',
          '    type: tcp',
          '    host: db',
          '    port: 5432',
        ].join('\n'),
      ),
    );
    expect(e.issues).toEqual([
      { path: 'checks.web.url', message: expect.stringMatching(/^line 2, column 3: scheme "file:" not allowed/) },
      { path: 'checks.api.conditions.1', message: expect.stringMatching(/^line 5, column 3: line 1, column \d+: /) },
    ]);
  });

  it('refuses what is not a configuration', () => {
    expect(invalidOf(() => parseConfigYaml('- a\n- b\n')).message).toMatch(/mapping with a `checks:` section/);
    expect(invalidOf(() => parseConfigYaml('rules: {}\n')).issues).toEqual([
      {
        path: 'rules',
        message:
          'line 1, column 1: unknown section (expected: checks, alertRules, channels, maintenanceWindows, properties, statusPages)',
      },
      { path: 'checks', message: 'missing: the document needs a `checks:` section' },
    ]);
    // Silences are operational state, never in a file (docs/api.md): none exported, none imported — so no silence
    // in a file can have ended since it was exported.
    expect(invalidOf(() => parseConfigYaml('checks: {}\nsilences: {}\n')).issues).toEqual([
      { path: 'silences', message: expect.stringMatching(/^line 2, column 1: unknown section/) },
    ]);
    expect(invalidOf(() => parseConfigYaml('checks:\n  web: [1]\n')).issues[0].path).toBe('checks.web');
    expect(
      invalidOf(() => parseConfigYaml('checks:\n  web: {name: other, type: tcp, host: a, port: 1}\n')).issues[0].path,
    ).toBe('checks.web.name');
    // `checks:` with nothing under it: an empty configuration, said explicitly.
    expect(parseConfigYaml('checks:\n')).toEqual([]);
  });
});

describe('import plan', () => {
  const a = spec({ name: 'a', type: 'tcp', host: 'db', port: 5432 });
  const b = spec({ name: 'b', type: 'tcp', host: 'cache', port: 6379 });
  const site = [stored(a, 1), stored(b, 2)];

  it('creates, changes, deletes (prune) and leaves unchanged, by name', () => {
    const a2 = spec({ name: 'a', type: 'tcp', host: 'db', port: 5433, tags: ['x'] });
    const c = spec({ name: 'c', type: 'icmp', host: '127.0.0.1' });
    const plan = planImport(site, [a2, c], true);
    expect(plan.items).toEqual([
      {
        action: 'change',
        name: 'a',
        id: site[0].id,
        diff: [
          { path: 'port', before: 5432, after: 5433 },
          { path: 'tags', after: ['x'] },
        ],
      },
      { action: 'delete', name: 'b', id: site[1].id, diff: expect.any(Array) },
      { action: 'create', name: 'c', id: null, diff: expect.arrayContaining([{ path: 'name', after: 'c' }]) },
    ]);
    expect(planImport(site, [a2, c], false).items.find((i) => i.name === 'b')?.action).toBe('unchanged');
  });

  it('a changed type is refused, naming each check (a check never changes type: its id would)', () => {
    let refused: unknown;
    try {
      planImport(
        site,
        [spec({ name: 'a', type: 'icmp', host: 'db' }), spec({ name: 'b', type: 'icmp', host: 'c' })],
        true,
      );
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(InvalidError);
    expect((refused as InvalidError).issues.map((i) => i.path)).toEqual(['checks.a.type', 'checks.b.type']);
    expect((refused as InvalidError).message).toContain(site[0].id);
  });
});
