import fc from 'fast-check';
import { DRIFT_AREAS, type SnapshotAreas, type SnapshotItem } from '@fleetwatch/contracts';
import { diffArea, diffItem, diffSnapshots, type DriftReport } from './drift';

// Properties of the pure drift diff (SPEC §8).

const scalar = fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -3, max: 3 }), fc.boolean(), fc.constant(null));
const rawJson: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    scalar,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'id', 'name', 'key'), tie('v'), { maxKeys: 3 }),
    // Keyed lists (labels, headers): elements carrying an identity.
    fc.uniqueArray(fc.record({ id: fc.constantFrom('x', 'y', 'z', 1, 2), v: tie('v') }), {
      selector: (e) => String(e.id),
      maxLength: 3,
    }),
  ),
})).v;
const json = rawJson.map((v) => JSON.parse(JSON.stringify(v)) as unknown);

const item: fc.Arbitrary<SnapshotItem> = fc
  .tuple(
    fc.constantFrom('k1', 'k2', 'k3', 'k4'),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'tags'), json, { maxKeys: 3 }),
  )
  // Through JSON: what a snapshot is (plain objects, no undefined).
  .map(([key, body]) => JSON.parse(JSON.stringify({ ...body, key })) as SnapshotItem);

const items = fc.uniqueArray(item, { selector: (i) => i.key, maxLength: 4 });
const areas: fc.Arbitrary<Partial<SnapshotAreas>> = fc.record({
  checks: items,
  alertRules: items,
  channels: items,
  properties: items,
  componentVersions: items,
});

/** The same JSON with every object's members in reverse order and keyed lists reversed. */
function reshuffle(v: unknown): unknown {
  if (Array.isArray(v)) {
    const keyed =
      v.length > 0 &&
      v.every((e) => e !== null && typeof e === 'object' && !Array.isArray(e)) &&
      v.every((e) => ['string', 'number'].includes(typeof (e as { id: unknown }).id)) &&
      new Set(v.map((e) => String((e as { id: unknown }).id))).size === v.length;
    const mapped = v.map(reshuffle);
    return keyed ? mapped.reverse() : mapped;
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).reverse()) out[k] = reshuffle((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

const allItems = (r: DriftReport) => DRIFT_AREAS.flatMap((a) => r.areas[a].items);

describe('drift properties', () => {
  it('diff(a, a) is empty, also with members and keyed lists reordered', () =>
    fc.assert(
      fc.property(areas, (a) => {
        const b = reshuffle(a) as Partial<SnapshotAreas>;
        const r = diffSnapshots(a, b);
        expect(r.count).toBe(0);
        expect(allItems(r)).toEqual([]);
      }),
      { numRuns: 500 },
    ));

  it('counts equal the entries of the side-by-side diff', () =>
    fc.assert(
      fc.property(areas, areas, (a, b) => {
        const r = diffSnapshots(a, b);
        let total = 0;
        for (const area of DRIFT_AREAS) {
          const d = r.areas[area];
          expect(d.count).toBe(d.items.length);
          expect(d.missing + d.extra + d.changed).toBe(d.count);
          for (const i of d.items) expect(i.changes.length).toBeGreaterThan(0);
          total += d.count;
        }
        expect(r.count).toBe(total);
      }),
      { numRuns: 500 },
    ));

  it('is symmetric: b→a is a→b with the sides swapped', () =>
    fc.assert(
      fc.property(areas, areas, (a, b) => {
        const ab = diffSnapshots(a, b);
        const ba = diffSnapshots(b, a);
        const swap = { missing: 'extra', extra: 'missing', changed: 'changed' } as const;
        for (const area of DRIFT_AREAS) {
          const mirrored = ba.areas[area].items.map((i) => ({
            key: i.key,
            state: swap[i.state],
            changes: i.changes.map((c) => ({
              path: c.path,
              ...('member' in c ? { leader: c.member } : {}),
              ...('leader' in c ? { member: c.leader } : {}),
            })),
          }));
          expect(mirrored).toEqual(ab.areas[area].items);
        }
      }),
      { numRuns: 500 },
    ));

  it('an item differs exactly when its canonical JSON differs (no drift hidden, none invented)', () =>
    fc.assert(
      fc.property(item, json, (a, v) => {
        const b = { ...a, c: v } as SnapshotItem;
        const same = JSON.stringify(reshuffle(a)) === JSON.stringify(reshuffle(b));
        if (same) expect(diffItem(a, b)).toEqual([]);
      }),
      { numRuns: 500 },
    ));

  it('property overrides are excluded exactly: on the leader only, the member only, or both', () =>
    fc.assert(
      fc.property(items, items, fc.subarray(['k1', 'k2', 'k3', 'k4']), (l, m, overridden) => {
        const r = diffSnapshots({ properties: l }, { properties: m }, { overriddenProperties: overridden });
        const full = diffArea(l, m);
        expect(r.areas.properties.items).toEqual(full.items.filter((i) => !overridden.includes(i.key)));
        // Overrides apply to properties only.
        const c = diffSnapshots({ checks: l }, { checks: m }, { overriddenProperties: overridden });
        expect(c.areas.checks.items).toEqual(full.items);
      }),
      { numRuns: 300 },
    ));

  it('10,000 checks diff with work linear in the items (no quadratic path)', () => {
    // Counted, not timed (a wall-clock bound failed on a loaded CI box): every read of an item's field or of an
    // array's element goes through a proxy that counts it. A linear diff reads each item a bounded number of times;
    // a lookup by scanning (find, filter, indexOf over the other side) reads ~n² (10⁸ here).
    let reads = 0;
    const counted = <T extends object>(o: T): T =>
      new Proxy(o, {
        get(target, prop, receiver) {
          reads++;
          return Reflect.get(target, prop, receiver) as unknown;
        },
      });
    const mk = (n: number, salt: string): SnapshotItem[] =>
      Array.from({ length: n }, (_, i) =>
        counted({
          key: `check-${String(i).padStart(5, '0')}`,
          type: 'http',
          url: `https://h${i}.example/${salt}`,
          tags: ['a', 'b'],
          headers: [
            { name: 'x', value: '1' },
            { name: 'y', value: salt },
          ],
        }),
      );
    const leader = mk(10_000, 'l');
    const member = mk(10_000, 'm').reverse();
    // Duplicated keys (older sites) take the uniqueKeys path.
    const dupes = [...leader, ...leader.slice(0, 5000)];
    // And scans of derived arrays (keys, strings): every element an array search or filter passes over is counted.
    const scanning = ['includes', 'indexOf', 'lastIndexOf', 'find', 'findIndex', 'filter', 'some', 'every'] as const;
    const originals = scanning.map((m) => [m, Array.prototype[m]] as const);
    let scanned = 0;
    for (const [m, original] of originals)
      Object.defineProperty(Array.prototype, m, {
        configurable: true,
        writable: true,
        value: function (this: unknown[], ...args: unknown[]) {
          scanned += this.length;
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        },
      });
    let r: ReturnType<typeof diffSnapshots>;
    try {
      r = diffSnapshots({ checks: counted(dupes) }, { checks: counted(member) });
    } finally {
      for (const [m, original] of originals)
        Object.defineProperty(Array.prototype, m, { configurable: true, writable: true, value: original });
    }
    expect(r.areas.checks.changed).toBe(10_000);
    expect(scanned).toBeLessThan(100 * 25_000);
    expect(reads).toBeGreaterThan(25_000); // every item was read through the proxies
    expect(reads).toBeLessThan(100 * 25_000);
  });
});
