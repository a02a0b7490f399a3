import { createHash } from 'node:crypto';
import type { CheckSpec } from '@fleetwatch/contracts';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json';
import { arbitraryCheck } from './check.arbitrary';
import {
  checkHash,
  checkHashOfForm,
  compareUtf8,
  configHash,
  configHashOfSnapshot,
  EMPTY_CONFIG_HASH,
} from './config-hash';
import {
  applyChanges,
  changesOf,
  rebuild,
  storesFullSnapshot,
  type ConfigChanges,
  type HistoryRow,
  type TouchedCheck,
} from './config-history';
import { snapshotOf } from './config-plan';
import type { ConfigSnapshot } from './config-yaml';

// A version stores its changes (or, now and then, the whole snapshot) and its snapshot is
// rebuilt: for any sequence of writes, the rebuilt snapshot of every version must be what
// the code before this stored — snapshotOf(every check after the write) — and hash alike.

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A write against the model: create, replace (maybe renamed), delete, or an import's delete + create of one name. */
type Op =
  | { kind: 'create'; spec: CheckSpec }
  | { kind: 'replace'; pick: number; spec: CheckSpec }
  | { kind: 'delete'; pick: number }
  | { kind: 'retype'; pick: number; spec: CheckSpec }
  | { kind: 'batch'; creates: CheckSpec[]; deletes: number[] };

const spec = arbitraryCheck.map((c) => c.spec);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: spec.map((s) => ({ kind: 'create' as const, spec: s })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), spec }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retype' as const), pick: fc.nat(), spec }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      creates: fc.array(spec, { maxLength: 6 }),
      deletes: fc.array(fc.nat(), { maxLength: 3 }),
    }),
  },
);

/** Applies an op to the checks by id; answers what it touched (nothing when it would break unique names). */
function apply(state: Map<string, CheckSpec>, o: Op, nextId: () => string): TouchedCheck[] {
  const ids = [...state.keys()];
  const names = new Set([...state.values()].map((s) => s.name));
  const at = (n: number) => (ids.length ? ids[n % ids.length] : undefined);
  switch (o.kind) {
    case 'create': {
      if (names.has(o.spec.name)) return [];
      const id = nextId();
      state.set(id, o.spec);
      return [{ id, before: null, after: o.spec }];
    }
    case 'replace': {
      const id = at(o.pick);
      if (!id) return [];
      const before = state.get(id) as CheckSpec;
      if (o.spec.name !== before.name && names.has(o.spec.name)) return [];
      state.set(id, o.spec);
      return [{ id, before, after: o.spec }];
    }
    case 'delete': {
      const id = at(o.pick);
      if (!id) return [];
      const before = state.get(id) as CheckSpec;
      state.delete(id);
      return [{ id, before, after: null }];
    }
    case 'retype': {
      // Import of a check whose type changed: the old one deleted, a new one of the same name created.
      const id = at(o.pick);
      if (!id) return [];
      const before = state.get(id) as CheckSpec;
      const after = { ...o.spec, name: before.name } as CheckSpec;
      state.delete(id);
      const created = nextId();
      state.set(created, after);
      return [
        { id, before, after: null },
        { id: created, before: null, after },
      ];
    }
    case 'batch': {
      const touched: TouchedCheck[] = [];
      for (const id of new Set(o.deletes.map(at).filter((x): x is string => x !== undefined))) {
        touched.push({ id, before: state.get(id) as CheckSpec, after: null });
        names.delete((state.get(id) as CheckSpec).name);
        state.delete(id);
      }
      for (const s of o.creates) {
        if (names.has(s.name)) continue;
        names.add(s.name);
        const id = nextId();
        state.set(id, s);
        touched.push({ id, before: null, after: s });
      }
      return touched;
    }
  }
}

/** The rows `history(n)` reads: from the nearest full snapshot at or before n (or from version 1) to n. */
function historyOf(rows: readonly HistoryRow[], n: number): HistoryRow[] {
  const upTo = rows.filter((r) => r.version <= n);
  const base = [...upTo].reverse().find((r) => r.snapshot);
  return upTo.filter((r) => r.version >= (base?.version ?? 1));
}

/** Stored rows keep only JSON: what comes back from Postgres's jsonb. */
const throughJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('config history: changes and full snapshots', () => {
  it('rebuilds every version as the whole snapshot the earlier code stored, with its hash (property)', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 7 }), (ops, every) => {
        const state = new Map<string, CheckSpec>();
        let ids = 0;
        const rows: HistoryRow[] = [];
        const expected = new Map<number, ConfigSnapshot>();
        const hashes = new Map<number, string>();
        for (const o of ops) {
          const touched = apply(state, o, () => `id-${ids++}`);
          if (touched.length === 0) continue;
          const version = rows.length + 1;
          const snapshot = snapshotOf(state.values());
          expected.set(version, snapshot);
          // What Postgres computes: the config hash from the stored per-check hashes of the specs.
          hashes.set(version, configHash([...state.values()].map((s) => ({ name: s.name, hash: checkHash(s) }))));
          const changes = changesOf(touched);
          rows.push(
            throughJson(
              storesFullSnapshot(version, changes, state.size, every) ? { version, snapshot } : { version, changes },
            ),
          );
        }
        for (const [version, snapshot] of expected) {
          const rebuilt = rebuild(historyOf(rows, version));
          expect(canonicalJson(rebuilt)).toBe(canonicalJson(snapshot));
          expect(rebuilt).toEqual(throughJson(snapshot));
          expect(configHashOfSnapshot(rebuilt)).toBe(hashes.get(version));
          // A rebuild never replays more than `every` rows.
          expect(historyOf(rows, version).length).toBeLessThanOrEqual(every);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a name deleted and created again in one write ends as the new check; a rename leaves a null', () => {
    const a = { name: 'a', type: 'tcp', host: 'db', port: 1 } as unknown as CheckSpec;
    const a2 = { name: 'a', type: 'http', url: 'http://x/' } as unknown as CheckSpec;
    const b = { name: 'b', type: 'tcp', host: 'db', port: 1 } as unknown as CheckSpec;
    expect(
      changesOf([
        { id: '1', before: a, after: null },
        { id: '2', before: null, after: a2 },
      ]),
    ).toEqual({ checks: { a: { type: 'http', url: 'http://x/' } } });
    expect(changesOf([{ id: '1', before: a, after: b }])).toEqual({
      checks: { a: null, b: { type: 'tcp', host: 'db', port: 1 } },
    });
  });

  it('a check named __proto__ is an entry like any other', () => {
    const changes: ConfigChanges = throughJson(
      changesOf([
        { id: '1', before: null, after: { name: '__proto__', type: 'tcp', host: 'h', port: 2 } as CheckSpec },
      ]),
    );
    const s = applyChanges({ checks: {} }, changes);
    expect(Object.keys(s.checks)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(s.checks)).toBe(Object.prototype);
    expect(applyChanges(s, { checks: JSON.parse('{"__proto__":null}') as ConfigChanges['checks'] })).toEqual({
      checks: {},
    });
  });

  it('full snapshots: every K-th version, and when the changes write as many checks as there are', () => {
    const one = { checks: { a: {} } };
    expect(storesFullSnapshot(50, one, 1000, 50)).toBe(true);
    expect(storesFullSnapshot(51, one, 1000, 50)).toBe(false);
    expect(storesFullSnapshot(7, one, 1, 50)).toBe(true);
    expect(storesFullSnapshot(7, { checks: { a: null, b: {} } }, 2, 50)).toBe(false);
  });

  it('refuses a history with a gap or without a base', () => {
    const c = { checks: {} };
    expect(() => rebuild([])).toThrow(/no rows/);
    expect(() =>
      rebuild([
        { version: 1, changes: c },
        { version: 3, changes: c },
      ]),
    ).toThrow(/version 2 is missing/);
    expect(() => rebuild([{ version: 4, changes: c }])).toThrow(/no full snapshot/);
    expect(rebuild([{ version: 1, changes: c }])).toEqual({ checks: {} });
  });
});

describe('config hash', () => {
  it('is sha256 of the check hashes in UTF-8 name order, each with a newline; the empty one is sha256("")', () => {
    expect(EMPTY_CONFIG_HASH).toBe(sha256(''));
    const web = { name: 'web', type: 'http', url: 'http://a/' } as unknown as CheckSpec;
    const webHash = sha256('{"name":"web","type":"http","url":"http://a/"}');
    expect(checkHash(web)).toBe(webHash);
    expect(configHash([{ name: 'web', hash: webHash }])).toBe(sha256(`${webHash}\n`));
  });

  it('orders names by UTF-8 bytes (as Postgres COLLATE "C"), not UTF-16 code units', () => {
    // U+FF61 sorts after U+1F600 in UTF-16 code units (0xFF61 > 0xD83D) but before it in UTF-8.
    expect(compareUtf8('\uFF61', '\u{1F600}')).toBeLessThan(0);
    expect('\uFF61' < '\u{1F600}').toBe(false);
    const entries = [
      { name: '\u{1F600}', hash: 'b' },
      { name: '\uFF61', hash: 'a' },
    ];
    expect(configHash(entries)).toBe(sha256('a\nb\n'));
  });

  it("a check's hash from its spec equals the one from its snapshot entry; ids, order and defaults do not count (property)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(spec, { maxLength: 8, selector: (s) => s.name }), (specs) => {
        const snapshot = throughJson(snapshotOf(specs));
        for (const s of specs) expect(checkHashOfForm(s.name, snapshot.checks[s.name])).toBe(checkHash(s));
        const fromSpecs = configHash(specs.map((s) => ({ name: s.name, hash: checkHash(s) })));
        expect(configHashOfSnapshot(snapshot)).toBe(fromSpecs);
        expect(configHash([...specs].reverse().map((s) => ({ name: s.name, hash: checkHash(s) })))).toBe(fromSpecs);
      }),
      { numRuns: 200 },
    );
  });
});
