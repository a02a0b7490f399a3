import { parseDocument, LineCounter } from 'yaml';
import type { ErrorIssue } from '@fleetwatch/domain';
import type { PropertyRecord } from '@fleetwatch/persistence';
import { configHashOfSnapshot, EMPTY_CONFIG_HASH } from '../config/config-hash';
import { applyChanges } from '../config/config-history';
import { parseConfigDocument, renderConfigYaml } from '../config/config-yaml';
import { propertyHash } from './property-forms';
import { parsePropertiesSection, planProperties, type PropertySection } from './property-yaml';

const stored = (key: string, value: unknown): PropertyRecord => ({
  key,
  value,
  hash: propertyHash(key, value),
  version: 1,
  createdAt: '',
  updatedAt: '',
});

function section(text: string): { out: PropertySection | undefined; issues: ErrorIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const issues: ErrorIssue[] = [];
  const out = parsePropertiesSection(doc, () => '', issues);
  return { out, issues };
}

describe('properties section', () => {
  it('absent: undefined (leave the properties as they are); empty: the empty map', () => {
    expect(section('checks: {}\n').out).toBeUndefined();
    expect(section('properties:\n').out).toEqual(new Map());
    expect(section('properties: {}\n').out).toEqual(new Map());
  });

  it('reads any JSON value but null, names each problem', () => {
    const { out, issues } = section(
      'properties:\n  a: 1\n  b: [x, {c: true}]\n  "bad key": 1\n  n: null\n  z: "\\0"\n  __proto__: 2\n',
    );
    expect(out).toEqual(
      new Map<string, unknown>([
        ['a', 1],
        ['b', ['x', { c: true }]],
      ]),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'properties.bad key',
      'properties.n',
      'properties.z',
      'properties.__proto__',
    ]);
  });

  it.each<[string, PropertyRecord[], [string, unknown][] | undefined, boolean, string[]]>([
    ['no section: nothing', [stored('a', 1)], undefined, true, []],
    ['same value: unchanged', [stored('a', { x: 1, y: 2 })], [['a', { y: 2, x: 1 }]], true, ['unchanged a']],
    [
      'new and changed',
      [stored('a', 1)],
      [
        ['a', 2],
        ['b', 'x'],
      ],
      true,
      ['change a', 'create b'],
    ],
    [
      'prune deletes what the file leaves out',
      [stored('a', 1), stored('b', 2)],
      [['a', 1]],
      true,
      ['unchanged a', 'delete b'],
    ],
    ['without prune it stays', [stored('a', 1), stored('b', 2)], [['a', 1]], false, ['unchanged a', 'unchanged b']],
  ])('plans %s', (_, existing, file, prune, expected) => {
    const plan = planProperties(existing, file ? (new Map(file) as PropertySection) : undefined, prune);
    expect(plan.items.map((i) => `${i.action} ${i.id}`)).toEqual(expected);
    expect(plan.upserts.length + plan.deletes.length).toBe(expected.filter((e) => !e.startsWith('unchanged')).length);
  });
});

describe('properties in snapshots', () => {
  const snapshot = {
    checks: {},
    properties: { 'site.displayName': { value: 'Lab' }, retention: { value: { days: 30 } } },
  };

  it('render → parse gives the same properties back', () => {
    const yaml = renderConfigYaml(snapshot);
    expect(yaml).toContain('properties:\n');
    const doc = parseConfigDocument(yaml);
    expect(doc.properties).toEqual(
      new Map<string, unknown>([
        ['retention', { days: 30 }],
        ['site.displayName', 'Lab'],
      ]),
    );
  });

  it('take part in the config hash: a value change changes it, none leaves the checks-only hash', () => {
    const h = configHashOfSnapshot(snapshot);
    expect(h).not.toBe(EMPTY_CONFIG_HASH);
    expect(configHashOfSnapshot({ checks: {} })).toBe(EMPTY_CONFIG_HASH);
    const changed = applyChanges(snapshot, { checks: {}, properties: { retention: { value: { days: 31 } } } });
    expect(configHashOfSnapshot(changed)).not.toBe(h);
    const removed = applyChanges(changed, { checks: {}, properties: { retention: null, 'site.displayName': null } });
    expect(removed).toEqual({ checks: {} });
    expect(configHashOfSnapshot(removed)).toBe(EMPTY_CONFIG_HASH);
  });
});
