import { memberSnapshotSchema, type SnapshotAreas, type SnapshotItem } from '@fleetwatch/contracts';
import { diffArea, diffItem, diffSnapshots, driftCounts, uniqueKeys, type DriftChange } from './drift';

const check = (name: string, extra: Record<string, unknown> = {}): SnapshotItem => ({
  key: name,
  type: 'http',
  url: `https://${name}.example`,
  intervalSeconds: 60,
  ...extra,
});

describe('diffItem: changed values only, side by side', () => {
  const cases: [string, SnapshotItem, SnapshotItem, DriftChange[]][] = [
    ['equal items', check('a'), check('a'), []],
    ['key order does not matter', { key: 'a', x: 1, y: 2 }, { y: 2, x: 1, key: 'a' }, []],
    [
      'one scalar changed',
      check('a'),
      check('a', { intervalSeconds: 30 }),
      [{ path: 'intervalSeconds', leader: 60, member: 30 }],
    ],
    ['a field only on the member', check('a'), check('a', { timeoutMs: 500 }), [{ path: 'timeoutMs', member: 500 }]],
    ['a field only on the leader', check('a', { timeoutMs: 500 }), check('a'), [{ path: 'timeoutMs', leader: 500 }]],
    ['null is not absent', check('a', { t: null }), check('a'), [{ path: 't', leader: null }]],
    [
      'nested object field',
      check('a', { headers: { Accept: 'json', X: '1' } }),
      check('a', { headers: { Accept: 'xml', X: '1' } }),
      [{ path: 'headers.Accept', leader: 'json', member: 'xml' }],
    ],
    [
      'primitive arrays compare whole',
      check('a', { locations: ['eu', 'us'] }),
      check('a', { locations: ['eu', 'ap'] }),
      [{ path: 'locations', leader: ['eu', 'us'], member: ['eu', 'ap'] }],
    ],
    [
      'keyed arrays: reordering is no drift',
      check('a', {
        conditions: [
          { id: 'c1', op: '<' },
          { id: 'c2', op: '>' },
        ],
      }),
      check('a', {
        conditions: [
          { id: 'c2', op: '>' },
          { id: 'c1', op: '<' },
        ],
      }),
      [],
    ],
    [
      'keyed arrays: an inserted element is one change, not a cascade by index',
      check('a', {
        conditions: [
          { id: 'c1', v: 1 },
          { id: 'c2', v: 2 },
        ],
      }),
      check('a', {
        conditions: [
          { id: 'c0', v: 0 },
          { id: 'c1', v: 1 },
          { id: 'c2', v: 2 },
        ],
      }),
      [{ path: 'conditions[id=c0]', member: { id: 'c0', v: 0 } }],
    ],
    [
      'keyed arrays: a changed element names its id',
      check('a', { rules: [{ name: 'r1', for: '5m' }] }),
      check('a', { rules: [{ name: 'r1', for: '10m' }] }),
      [{ path: 'rules[name=r1].for', leader: '5m', member: '10m' }],
    ],
    [
      'objects without a unique identity compare as whole arrays',
      check('a', { steps: [{ v: 1 }, { v: 2 }] }),
      check('a', { steps: [{ v: 2 }, { v: 1 }] }),
      [{ path: 'steps', leader: [{ v: 1 }, { v: 2 }], member: [{ v: 2 }, { v: 1 }] }],
    ],
    ['type change', check('a', { port: 80 }), check('a', { port: '80' }), [{ path: 'port', leader: 80, member: '80' }]],
  ];
  it.each(cases)('%s', (_name, a, b, expected) => expect(diffItem(a, b)).toEqual(expected));

  // Property values are any JSON (issue 19): member names the comparable form uses itself must not
  // make two different values look equal, and a `__proto__` member is a member like any other.
  const item = (json: string): SnapshotItem => ({ key: 'k', value: JSON.parse(json) as unknown });
  it.each<[string, string, string]>([
    ['a __proto__ member that differs', '{"__proto__":{"a":1}}', '{"__proto__":{"a":2}}'],
    ['a __proto__ member on one side only', '{"__proto__":{"a":1}}', '{}'],
    ['an array and an object holding what the array compares as', '[1,2]', '{"__whole":"[1,2]"}'],
    ['a keyed array and an object keyed like its elements', '[{"name":"x"}]', '{"[name=x]":{"name":"x"}}'],
  ])('%s: drift', (_name, a, b) => {
    expect(diffItem(item(a), item(b)).length).toBeGreaterThan(0);
    expect(diffItem(item(b), item(a)).length).toBeGreaterThan(0);
  });
  it('a __proto__ member that differs is named by its path', () =>
    expect(diffItem(item('{"__proto__":{"a":1}}'), item('{"__proto__":{"a":2}}'))).toEqual([
      { path: 'value.__proto__.a', leader: 1, member: 2 },
    ]));
  it("arrays compared whole are compared as JSON values: the order of an object's members is no drift", () =>
    expect(diffItem(item('[{"b":1,"a":2}]'), item('[{"a":2,"b":1}]'))).toEqual([]));

  // Side by side means each side's value as it is: never the comparable form's own names, never nothing.
  it.each<[string, string, string, DriftChange[]]>([
    [
      'an object member named __whole keeps its values',
      '{"__whole":"abc"}',
      '{"__whole":"abd"}',
      [{ path: 'value.__whole', leader: 'abc', member: 'abd' }],
    ],
    [
      'an object keyed like keyed elements against a keyed array: the whole value, each side as it is',
      '{"[id=1]":{"id":1,"x":1}}',
      '[{"id":1,"x":2}]',
      [{ path: 'value', leader: { '[id=1]': { id: 1, x: 1 } }, member: [{ id: 1, x: 2 }] }],
    ],
    [
      'a keyed array on one side only is shown as the array',
      '{"a":1}',
      '{"a":1,"rules":[{"name":"r1"}]}',
      [{ path: 'value.rules', member: [{ name: 'r1' }] }],
    ],
    [
      'a keyed array against an array compared whole',
      '[{"name":"r1"}]',
      '[1]',
      [{ path: 'value', leader: [{ name: 'r1' }], member: [1] }],
    ],
  ])('%s', (_name, a, b, expected) => expect(diffItem(item(a), item(b))).toEqual(expected));
});

describe('diffArea: items matched by key', () => {
  const cases: [string, SnapshotItem[], SnapshotItem[], [number, number, number, number], string[]][] = [
    ['both empty', [], [], [0, 0, 0, 0], []],
    ['same items in another order', [check('a'), check('b')], [check('b'), check('a')], [0, 0, 0, 0], []],
    ['one missing on the member', [check('a'), check('b')], [check('a')], [1, 1, 0, 0], ['b:missing']],
    ['one extra on the member', [check('a')], [check('a'), check('z')], [1, 0, 1, 0], ['z:extra']],
    [
      'one changed, one missing, one extra',
      [check('a'), check('b')],
      [check('a', { intervalSeconds: 5 }), check('c')],
      [3, 1, 1, 1],
      ['a:changed', 'b:missing', 'c:extra'],
    ],
  ];
  it.each(cases)('%s', (_name, leader, member, [count, missing, extra, changed], items) => {
    const d = diffArea(leader, member);
    expect([d.count, d.missing, d.extra, d.changed]).toEqual([count, missing, extra, changed]);
    expect(d.items.map((i) => `${i.key}:${i.state}`)).toEqual(items);
  });

  it('two items of one name (alert rules may share one) are two items, paired by content on both sides', () => {
    const slow = check('down', { for: '10m' });
    const fast = check('down', { for: '1m' });
    // The same two in either order: no drift.
    expect(diffArea([slow, fast], [fast, slow]).count).toBe(0);
    // A member holding one of the two lacks the other.
    const lacking = diffArea([slow, fast], [slow]);
    expect([lacking.count, lacking.missing]).toEqual([1, 1]);
    expect(lacking.items.map((i) => `${i.key}:${i.state}`)).toEqual(['down (2):missing']);
    // Paired in content order, not matched for the fewest changes: lacking the first in that order, the member's
    // other one is compared with it.
    expect(diffArea([slow, fast], [fast]).items.map((i) => `${i.key}:${i.state}`)).toEqual([
      'down:changed',
      'down (2):missing',
    ]);
  });

  it('shows a missing item whole on the leader side and an extra one on the member side', () => {
    const d = diffArea([check('a')], [check('b')]);
    expect(d.items).toEqual([
      { key: 'a', state: 'missing', changes: [{ path: '', leader: check('a') }] },
      { key: 'b', state: 'extra', changes: [{ path: '', member: check('b') }] },
    ]);
  });
});

describe('diffSnapshots', () => {
  const leader: Partial<SnapshotAreas> = {
    checks: [check('web'), check('api')],
    properties: [
      { key: 'region', value: 'eu' },
      { key: 'retentionDays', value: 7 },
    ],
    usersAndRoles: [{ key: 'admin', role: 'admin' }],
    componentVersions: [{ key: 'api-gateway', version: '1.2.0' }],
  };

  const cases: [string, Partial<SnapshotAreas>, string[], Record<string, number>, number][] = [
    ['identical', leader, [], {}, 0],
    [
      'an overridden property is not counted',
      {
        ...leader,
        properties: [
          { key: 'region', value: 'us' },
          { key: 'retentionDays', value: 7 },
        ],
      },
      ['region'],
      {},
      0,
    ],
    [
      'the same change without an override counts',
      {
        ...leader,
        properties: [
          { key: 'region', value: 'us' },
          { key: 'retentionDays', value: 7 },
        ],
      },
      [],
      { properties: 1 },
      1,
    ],
    [
      'an override only excludes properties, not a check of the same name',
      { ...leader, checks: [check('web'), check('api', { intervalSeconds: 1 })] },
      ['api'],
      { checks: 1 },
      1,
    ],
    [
      'a property missing on the member is excluded when overridden',
      { ...leader, properties: [{ key: 'retentionDays', value: 7 }] },
      ['region'],
      {},
      0,
    ],
    [
      'changes over several areas',
      {
        ...leader,
        checks: [check('web', { url: 'https://other' })],
        usersAndRoles: [{ key: 'admin', role: 'viewer' }],
        componentVersions: [{ key: 'api-gateway', version: '1.1.0' }],
        channels: [{ key: 'ops-mail', type: 'email' }],
      },
      [],
      { checks: 2, componentVersions: 1, channels: 1 },
      4,
    ],
    [
      "each site's own users and status pages are no drift (SPEC §8 names checks, rules, channels, properties, versions)",
      {
        ...leader,
        usersAndRoles: [
          { key: 'admin', role: 'viewer' },
          { key: 'oncall', role: 'operator' },
        ],
        statusPages: [{ key: 'public', title: 'EU status' }],
      },
      [],
      {},
      0,
    ],
    [
      'a member without areas (an older site) drifts by everything the leader has',
      {},
      [],
      {
        checks: 2,
        properties: 2,
        componentVersions: 1,
      },
      5,
    ],
  ];
  it.each(cases)('%s', (_name, member, overrides, areaCounts, total) => {
    const report = diffSnapshots(leader, member, { overriddenProperties: overrides });
    const counts = driftCounts(report);
    expect(counts.count).toBe(total);
    expect(Object.fromEntries(Object.entries(counts.areas).filter(([, n]) => n > 0))).toEqual(areaCounts);
  });

  it('counts every drift area, empty ones as 0', () => {
    expect(Object.keys(driftCounts(diffSnapshots({}, {})).areas)).toEqual([
      'checks',
      'alertRules',
      'channels',
      'properties',
      'componentVersions',
    ]);
    expect(Object.keys(diffSnapshots({}, {}).areas)).toEqual(Object.keys(driftCounts(diffSnapshots({}, {})).areas));
  });
});

describe('uniqueKeys', () => {
  it('keeps unique keys as they are, sorted', () => {
    const items = [check('b'), check('a')];
    expect(uniqueKeys(items)).toEqual([check('a'), check('b')]);
  });

  it('numbers the second and later items of a key by their content, skipping numbers another key holds', () => {
    const one = check('x', { n: 1 });
    const two = check('x', { n: 2 });
    const three = check('x', { n: 3 });
    const taken = check('x (2)');
    const keys = (items: SnapshotItem[]) => uniqueKeys(items).map((i) => `${i.key}=${String(i['n'] ?? '-')}`);
    expect(keys([three, taken, one, two])).toEqual(['x=1', 'x (2)=-', 'x (3)=2', 'x (4)=3']);
    expect(keys([two, one, taken, three])).toEqual(keys([three, taken, one, two]));
  });
});

describe('an older member whose snapshot predates an area', () => {
  const leader: Partial<SnapshotAreas> = {
    checks: [check('a')],
    properties: [
      { key: 'p1', value: 1 },
      { key: 'p2', value: 2 },
      { key: 'region', value: 'us' },
    ],
    componentVersions: [{ key: 'api-gateway', version: '1.2.0' }],
  };
  // It sends no `properties` nor `componentVersions` (its checks differ by one).
  const sent = {
    schemaVersion: 1,
    site: 'old',
    generatedAt: '2026-01-01T00:00:00.000Z',
    hash: 'a'.repeat(64),
    configVersion: 3,
    areas: { checks: [check('a'), check('b')], alertRules: [], channels: [], statusPages: [], usersAndRoles: [] },
  };
  const old = memberSnapshotSchema.parse(sent);

  it('the parse records which areas it did not send, apart from those it sent empty', () => {
    expect(old.absentAreas).toEqual(['properties', 'componentVersions']);
    expect(old.areas.properties).toEqual([]);
    // Whatever a member sends under that name is replaced by what it left out.
    const claimed = memberSnapshotSchema.parse({ ...sent, absentAreas: ['checks'] });
    expect(claimed.absentAreas).toEqual(['properties', 'componentVersions']);
  });

  it('those areas are not compared: not every leader item there counted missing', () => {
    const report = diffSnapshots(leader, old.areas, {
      overriddenProperties: ['region'],
      memberAbsentAreas: old.absentAreas,
    });
    expect(report.notCompared).toEqual(['properties', 'componentVersions']);
    expect(report.areas.properties).toEqual({ count: 0, missing: 0, extra: 0, changed: 0, items: [] });
    expect(report.areas.componentVersions.count).toBe(0);
    expect(report.count).toBe(1);
    expect(driftCounts(report)).toMatchObject({ count: 1, notCompared: ['properties', 'componentVersions'] });
  });

  it('only the areas added after the first snapshot may be absent: a member leaving out checks hides no drift', () => {
    const { checks: _checks, ...withoutChecks } = sent.areas;
    const hiding = memberSnapshotSchema.parse({ ...sent, areas: withoutChecks });
    expect(hiding.absentAreas).toEqual(['properties', 'componentVersions']);
    const report = diffSnapshots(leader, hiding.areas, { memberAbsentAreas: hiding.absentAreas });
    expect(report.areas.checks.missing).toBeGreaterThan(0);
  });

  it('an area sent empty is compared: every leader item there is missing', () => {
    const empty = memberSnapshotSchema.parse({ ...sent, areas: { ...sent.areas, properties: [] } });
    const report = diffSnapshots(leader, empty.areas, { memberAbsentAreas: empty.absentAreas });
    expect(report.notCompared).toEqual(['componentVersions']);
    expect(report.areas.properties.missing).toBe(3);
  });
});
