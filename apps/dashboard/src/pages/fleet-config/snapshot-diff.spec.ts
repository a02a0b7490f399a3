import { describe, expect, it } from 'vitest';
import { commonVersions, compareItem, compareSnapshots, flatten } from './snapshot-diff';

describe('flatten', () => {
  it.each([
    ['a plain value', 5, [['', '5']]],
    [
      'nested fields',
      { a: { b: 1, c: 'x' } },
      [
        ['a.b', '1'],
        ['a.c', '"x"'],
      ],
    ],
    ['a list of plain values is one value', { tags: ['a', 'b'] }, [['tags', '["a","b"]']]],
    [
      'a list of objects by index',
      { l: [{ n: 1 }, { n: 2 }] },
      [
        ['l[0].n', '1'],
        ['l[1].n', '2'],
      ],
    ],
    [
      'a list of objects with a unique name, by name',
      {
        l: [
          { name: 'b', n: 1 },
          { name: 'a', n: 2 },
        ],
      },
      [
        ['l[name=b].name', '"b"'],
        ['l[name=b].n', '1'],
        ['l[name=a].name', '"a"'],
        ['l[name=a].n', '2'],
      ],
    ],
    ['an empty object is a value', { o: {} }, [['o', '{}']]],
    ['null is a value, undefined is absent', { a: null, b: undefined }, [['a', 'null']]],
  ] as const)('%s', (_, value, rows) => {
    expect(flatten(value)).toEqual(rows);
  });
});

describe('compareItem', () => {
  it('marks only the rows whose value differs', () => {
    const c = compareItem(
      { key: 'web', type: 'http', intervalSeconds: 45, tags: ['a'] },
      { key: 'web', type: 'http', intervalSeconds: 15, tags: ['a'] },
    );
    expect(c.state).toBe('changed');
    expect(c.rows).toEqual([
      { path: 'type', left: '"http"', right: '"http"', changed: false },
      { path: 'intervalSeconds', left: '45', right: '15', changed: true },
      { path: 'tags', left: '["a"]', right: '["a"]', changed: false },
    ]);
  });

  it.each([
    ['equal items', { key: 'k', a: 1 }, { key: 'k', a: 1 }, 'same', []],
    ['a field only on the right', { key: 'k' }, { key: 'k', a: 1 }, 'changed', ['a']],
    ['an item only on the left', { key: 'k', a: 1 }, undefined, 'left', ['a']],
    ['an item only on the right', undefined, { key: 'k', a: 1 }, 'right', ['a']],
    ['a changed list element', { key: 'k', l: ['x', 'y'] }, { key: 'k', l: ['x', 'z'] }, 'changed', ['l']],
  ] as const)('%s', (_, left, right, state, changedPaths) => {
    const c = compareItem(left, right);
    expect(c.state).toBe(state);
    expect(c.rows.filter((r) => r.changed).map((r) => r.path)).toEqual(changedPaths);
  });

  it('an element inserted into a named list is one element on one side, not a cascade of changed rows', () => {
    const h = (name: string, value: string) => ({ name, value });
    const c = compareItem(
      { key: 'web', headers: [h('accept', 'json'), h('x-team', 'a')] },
      { key: 'web', headers: [h('authorization', '***'), h('accept', 'json'), h('x-team', 'a')] },
    );
    expect(c.rows.filter((r) => r.changed).map((r) => [r.path, r.left, r.right])).toEqual([
      ['headers[name=authorization].name', undefined, '"authorization"'],
      ['headers[name=authorization].value', undefined, '"***"'],
    ]);
  });

  it('the side without a value has none (absent is not null)', () => {
    const [row] = compareItem({ key: 'k', a: null }, { key: 'k' }).rows;
    expect(row).toEqual({ path: 'a', left: 'null', right: undefined, changed: true });
  });
});

describe('compareSnapshots', () => {
  const left = {
    checks: [
      { key: 'web', intervalSeconds: 45 },
      { key: 'api', intervalSeconds: 60 },
    ],
    properties: [{ key: 'region', value: 'eu' }],
  };
  const right = {
    checks: [
      { key: 'web', intervalSeconds: 15 },
      { key: 'api', intervalSeconds: 60 },
      { key: 'extra', port: 5432 },
    ],
    properties: [{ key: 'region', value: 'eu' }],
  };

  it('matches items by key, counts the differing ones per area, in key order', () => {
    const areas = compareSnapshots(left, right);
    expect(areas.map((a) => [a.area, a.differing, a.drift])).toEqual([
      ['checks', 2, true],
      ['alertRules', 0, true],
      ['channels', 0, true],
      ['properties', 0, true],
      ['statusPages', 0, false],
      ['usersAndRoles', 0, false],
      ['componentVersions', 0, true],
    ]);
    expect(areas[0].items.map((i) => [i.key, i.state])).toEqual([
      ['api', 'same'],
      ['extra', 'right'],
      ['web', 'changed'],
    ]);
  });

  it('an overridden property is shown, flagged, and not counted; other properties still are', () => {
    const props = (region: string, tier: string) => ({
      properties: [
        { key: 'region', value: region },
        { key: 'tier', value: tier },
      ],
    });
    const [props1] = compareSnapshots(props('eu', 'a'), props('us', 'b'), new Set(['region'])).filter(
      (a) => a.area === 'properties',
    );
    expect(props1.differing).toBe(1);
    expect(props1.items.map((i) => [i.key, i.state, i.overridden ?? false])).toEqual([
      ['region', 'changed', true],
      ['tier', 'changed', false],
    ]);
    // Only in the properties area: a check of the same name is drift.
    const checks = compareSnapshots(
      { checks: [{ key: 'region', a: 1 }] },
      { checks: [{ key: 'region', a: 2 }] },
      new Set(['region']),
    );
    expect(checks[0].differing).toBe(1);
  });

  it("an area a side's site did not send (an older version) is not compared: listed, nothing counted", () => {
    const leader = { properties: [{ key: 'region', value: 'eu' }], componentVersions: [{ key: 'aggregator', v: '2' }] };
    const older = { properties: [], componentVersions: [] };
    const byArea = (r: ReturnType<typeof compareSnapshots>) =>
      Object.fromEntries(r.map((a) => [a.area, [a.differing, a.notSent ?? null, a.items.length]]));
    expect(byArea(compareSnapshots(leader, older, new Set(), { right: ['properties'] }))).toMatchObject({
      properties: [0, 'right', 1],
      componentVersions: [1, null, 1],
    });
    expect(
      byArea(compareSnapshots(older, leader, new Set(), { left: ['properties', 'componentVersions'] })),
    ).toMatchObject({ properties: [0, 'left', 1], componentVersions: [0, 'left', 1] });
    expect(compareSnapshots(older, older, new Set(), { left: ['properties'], right: ['properties'] })[3].notSent).toBe(
      'both',
    );
    // Sent but empty is compared: the leader's property is missing there.
    expect(byArea(compareSnapshots(leader, older)).properties).toEqual([1, null, 1]);
  });

  it('identical snapshots differ nowhere', () => {
    expect(compareSnapshots(left, left).every((a) => a.differing === 0)).toBe(true);
  });
});

describe('commonVersions', () => {
  it('is the version most members run; members without the component do not vote', () => {
    const members: { versions: Record<string, string | null> }[] = [
      { versions: { gw: '1.0.0', agg: '2.0.0' } },
      { versions: { gw: '1.1.0', agg: null } },
      { versions: { gw: '1.0.0' } },
    ];
    expect(commonVersions(['gw', 'agg', 'none'], members)).toEqual({ gw: '1.0.0', agg: '2.0.0', none: null });
  });
  it('a tie goes to the lower version as text', () => {
    expect(commonVersions(['gw'], [{ versions: { gw: '1.1.0' } }, { versions: { gw: '1.0.0' } }])).toEqual({
      gw: '1.0.0',
    });
  });
});
