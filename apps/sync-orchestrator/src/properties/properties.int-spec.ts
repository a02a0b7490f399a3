import fc from 'fast-check';
import { Client } from 'pg';
import { propertyValueSchema } from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { rebuild, type HistoryRow } from '../config/config-history';
import { configHashOfSnapshot, EMPTY_CONFIG_HASH } from '../config/config-hash';
import { VersionConflictError } from '../config/config.errors';
import { ALICE, BOB, ConfigTestServers, startOwner, type OwnerParts } from '../config/config.int-helpers';

// Site properties through the configuration owner's one writer, against a real Postgres of their own:
// each change a version whose hash covers the properties (the same by SQL and by the snapshot),
// audited with who and the diff, a config.changed naming `properties`; stale If-Match conflicts;
// what Postgres would refuse is refused first, naming the field; config as code exports them and an
// export re-imported changes nothing. Property: whatever is accepted is stored and read back equal.

jest.setTimeout(180_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let sql: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('properties');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

async function rejection(p: Promise<unknown>): Promise<Error & { issues?: { path: string; message: string }[] }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** The head's hash is what the version's rebuilt snapshot hashes to (SQL and TypeScript agree); the snapshot. */
async function headSnapshot() {
  const head = await owner.versions.head();
  const h = await owner.versions.history(head.version);
  if (!h) throw new Error('no history');
  const snapshot = rebuild(h.rows as HistoryRow[]);
  expect(configHashOfSnapshot(snapshot)).toBe(head.hash);
  return snapshot;
}

describe('properties', () => {
  it('put, replace, same value, delete: each change a version with its hash, audited, config.changed properties', async () => {
    const start = await owner.versions.head();
    const created = await owner.properties.put(ALICE, 'site.displayName', { value: 'Berlin lab' });
    expect(created).toMatchObject({ created: true, version: start.version + 1 });
    expect(created.property).toMatchObject({ key: 'site.displayName', value: 'Berlin lab', version: created.version });
    const afterCreate = await owner.versions.head();
    // Properties are in the config hash: the content changed, so did the hash.
    expect(afterCreate.hash).not.toBe(start.hash);
    expect((await headSnapshot()).properties).toEqual({ 'site.displayName': { value: 'Berlin lab' } });

    const replaced = await owner.properties.put(BOB, 'site.displayName', { value: { name: 'Berlin', floor: 2 } });
    expect(replaced).toMatchObject({ created: false, version: created.version + 1 });
    const same = await owner.properties.put(BOB, 'site.displayName', { value: { floor: 2, name: 'Berlin' } });
    expect(same.version).toBe(replaced.version);
    expect((await owner.properties.get('site.displayName')).property.value).toEqual({ name: 'Berlin', floor: 2 });

    const audit = (await owner.config.audit({ limit: 10, subject: 'site.displayName' })).items;
    expect(audit.map((a) => [a.action, a.actor])).toEqual([
      ['property.replace', `${BOB.name} (${BOB.id})`],
      ['property.create', `${ALICE.name} (${ALICE.id})`],
    ]);
    expect(audit[0].diff).toEqual([{ path: 'value', before: 'Berlin lab', after: { name: 'Berlin', floor: 2 } }]);
    expect(audit[1].diff).toEqual([{ path: 'value', after: 'Berlin lab' }]);
    const pending = await owner.versions.pendingChanged(1000);
    expect(pending.find((p) => p.version === replaced.version)?.payload).toMatchObject({
      areas: ['properties'],
      hash: (await owner.versions.head()).hash,
      actor: expect.stringContaining(BOB.name),
    });

    const deleted = await owner.properties.delete(ALICE, 'site.displayName');
    expect(deleted.version).toBe(replaced.version + 1);
    expect(await rejection(owner.properties.get('site.displayName'))).toBeInstanceOf(NotFoundError);
    expect(await rejection(owner.properties.delete(ALICE, 'site.displayName'))).toBeInstanceOf(NotFoundError);
    // Back to the configuration without it: the hash it had before.
    expect((await owner.versions.head()).hash).toBe(start.hash ?? EMPTY_CONFIG_HASH);
    expect((await headSnapshot()).properties).toBeUndefined();
  });

  it('keys named like Object.prototype members are properties like any other (history, hash, config as code)', async () => {
    const keys = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    for (const k of keys) await owner.properties.put(ALICE, k, { value: { k } });
    const snapshot = await headSnapshot();
    expect(Object.keys(snapshot.properties ?? {}).sort()).toEqual([...keys].sort());
    const exported = await owner.asCode.export();
    const again = await owner.asCode.import(BOB, exported.yaml, { dryRun: false, prune: true });
    expect(again.version).toBe(exported.version);
    await owner.properties.delete(ALICE, 'toString');
    expect(Object.keys((await headSnapshot()).properties ?? {}).sort()).toEqual([
      'constructor',
      'hasOwnProperty',
      'valueOf',
    ]);
    for (const k of ['constructor', 'hasOwnProperty', 'valueOf']) await owner.properties.delete(ALICE, k);
    expect((await headSnapshot()).properties).toBeUndefined();
  });

  it('writers take turns: of ten creating one key with If-Match "0" one wins; an import with prune racing a PUT', async () => {
    const before = await owner.versions.head();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => owner.properties.put(ALICE, 'race', { value: i }, 0)),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(VersionConflictError);
    expect((await owner.versions.head()).version).toBe(before.version + 1);
    for (let round = 0; round < 5; round++) {
      const [put, imported] = await Promise.all([
        owner.properties.put(ALICE, 'race', { value: `put ${round}` }),
        owner.asCode.import(BOB, `checks: {}\nproperties:\n  other: ${round}\n`, { dryRun: false, prune: true }),
      ]);
      const stored = (await owner.properties.list()).items.map((p) => [p.key, p.value]);
      // One order or the other, each a version of its own; never half of one.
      if (put.version > imported.version)
        expect(stored).toEqual([
          ['other', round],
          ['race', `put ${round}`],
        ]);
      else expect(stored).toEqual([['other', round]]);
      await headSnapshot();
    }
    await owner.asCode.import(BOB, 'checks: {}\nproperties: {}\n', { dryRun: false, prune: true });
  });

  it('If-Match: a stale version is a 409 carrying the current one; "0" creates only', async () => {
    const a = await owner.properties.put(ALICE, 'retention.days', { value: 7 }, 0);
    const stale = await rejection(owner.properties.put(ALICE, 'retention.days', { value: 8 }, a.version - 1));
    expect(stale).toBeInstanceOf(VersionConflictError);
    expect((stale as VersionConflictError).currentVersion).toBe(a.version);
    const again = await rejection(owner.properties.put(ALICE, 'retention.days', { value: 9 }, 0));
    expect((again as VersionConflictError).currentVersion).toBe(a.version);
    const absent = await rejection(owner.properties.delete(ALICE, 'no.such', 3));
    expect((absent as VersionConflictError).currentVersion).toBe(0);
    const b = await owner.properties.put(ALICE, 'retention.days', { value: 8 }, a.version);
    expect(b.property.value).toBe(8);
    const staleDelete = await rejection(owner.properties.delete(ALICE, 'retention.days', a.version));
    expect(staleDelete).toBeInstanceOf(VersionConflictError);
    await owner.properties.delete(ALICE, 'retention.days', b.version);
  });

  it.each<[string, string, unknown, unknown]>([
    ['NUL in a string', 'value', 'k', { value: 'a\u0000b' }],
    ['NUL deep in a value', 'value.list.1', 'k', { value: { list: [1, 'x\u0000'] } }],
    ['NUL in a key inside the value', 'value.a\u0000', 'k', { value: { 'a\u0000': 1 } }],
    ['a lone surrogate', 'value', 'k', { value: 'x\ud800' }],
    ['null', 'value', 'k', { value: null }],
    ['a missing value', 'value', 'k', {}],
    ['an oversized value', 'value', 'k', { value: 'x'.repeat(20_000) }],
    ['a bad key', 'key', 'a b', { value: 1 }],
    ['a NUL key', 'key', 'a\u0000', { value: 1 }],
    ['a body that is no object', '(body)', 'k', [1]],
  ])('refuses %s, naming %s, writing nothing', async (_, path, key, body) => {
    const before = await owner.versions.head();
    const e = await rejection(owner.properties.put(ALICE, key, body));
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues?.map((i) => i.path)).toContain(path);
    expect(await owner.versions.head()).toEqual(before);
  });

  it('whatever the schema accepts is stored and read back equal (and hashes alike by SQL and snapshot)', async () => {
    const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }));
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.double(),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(text, tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    const key = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/);
    let stored = 0;
    await fc.assert(
      fc.asyncProperty(key, json, async (k, value) => {
        const accepted = propertyValueSchema.safeParse(value);
        if (!accepted.success) {
          const before = await owner.versions.head();
          await expect(owner.properties.put(ALICE, k, { value })).rejects.toBeInstanceOf(InvalidError);
          expect(await owner.versions.head()).toEqual(before);
          return;
        }
        const { property } = await owner.properties.put(ALICE, k, { value });
        stored++;
        expect(property.value).toEqual(accepted.data);
        expect((await owner.properties.get(k)).property.value).toEqual(accepted.data);
        const { rows } = await sql.query<{ value: unknown }>('SELECT value FROM properties WHERE key = $1', [k]);
        expect(rows[0].value).toEqual(accepted.data);
      }),
      { numRuns: 60 },
    );
    expect(stored).toBeGreaterThan(20);
    await headSnapshot();
    for (const p of (await owner.properties.list()).items) await owner.properties.delete(ALICE, p.key);
  });
});

describe('properties in config as code', () => {
  it('exported by key; the export re-imported changes nothing; an edited one changes, prunes and is audited', async () => {
    await owner.properties.put(ALICE, 'site.displayName', { value: 'Lab' });
    await owner.properties.put(ALICE, 'retention', { value: { days: 30, rollups: true } });
    await owner.properties.put(ALICE, 'zz.gone', { value: [1, 2] });
    const exported = await owner.asCode.export();
    expect(exported.yaml).toContain('properties:\n  retention:\n    days: 30\n    rollups: true\n');
    expect(exported.yaml).toContain('  site.displayName: Lab\n');

    const noop = await owner.asCode.import(BOB, exported.yaml, { dryRun: false, prune: true });
    expect(noop.version).toBe(exported.version);
    expect(noop.plan.filter((i) => i.name.startsWith('properties/')).map((i) => [i.action, i.name])).toEqual([
      ['unchanged', 'properties/retention'],
      ['unchanged', 'properties/site.displayName'],
      ['unchanged', 'properties/zz.gone'],
    ]);

    const edited = exported.yaml
      .replace('  site.displayName: Lab\n', '  site.displayName: Lab 2\n  new.one: 5\n')
      .replace('  zz.gone:\n    - 1\n    - 2\n', '');
    expect(edited).not.toContain('zz.gone');
    const dry = await owner.asCode.import(BOB, edited, { dryRun: true, prune: true });
    expect(dry.version).toBe(exported.version);
    const planned = dry.plan.filter((i) => i.name.startsWith('properties/')).map((i) => [i.action, i.name]);
    expect(planned).toEqual([
      ['create', 'properties/new.one'],
      ['unchanged', 'properties/retention'],
      ['change', 'properties/site.displayName'],
      ['delete', 'properties/zz.gone'],
    ]);
    const applied = await owner.asCode.import(BOB, edited, { dryRun: false, prune: true });
    expect(applied.version).toBe(exported.version + 1);
    expect((await owner.properties.list()).items.map((p) => [p.key, p.value])).toEqual([
      ['new.one', 5],
      ['retention', { days: 30, rollups: true }],
      ['site.displayName', 'Lab 2'],
    ]);
    const audit = (await owner.config.audit({ limit: 10, subject: 'site.displayName' })).items[0];
    expect(audit).toMatchObject({ action: 'property.replace', actor: expect.stringContaining(BOB.name) });
    expect(audit.diff).toEqual([{ path: 'value', before: 'Lab', after: 'Lab 2' }]);
    const pending = await owner.versions.pendingChanged(1000);
    expect(pending.find((p) => p.version === applied.version)?.payload.areas).toEqual(['properties']);
    expect((await headSnapshot()).properties).toEqual({
      'new.one': { value: 5 },
      retention: { value: { days: 30, rollups: true } },
      'site.displayName': { value: 'Lab 2' },
    });

    // A document without the section leaves the properties as they are.
    const without = await owner.asCode.import(BOB, 'checks: {}\n', { dryRun: true, prune: true });
    expect(without.plan.filter((i) => i.name.startsWith('properties/'))).toEqual([]);
  });

  it('an import that would leave more than 10,000 properties is refused (without prune it adds to those stored)', async () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `p${String(i).padStart(5, '0')}`);
    const full = `checks: {}\nproperties:\n${keys.map((k) => `  ${k}: 1\n`).join('')}`;
    await owner.asCode.import(BOB, full, { dryRun: false, prune: true });
    expect(await sql.query('SELECT count(*)::int AS n FROM properties')).toMatchObject({ rows: [{ n: 10_000 }] });
    const before = await owner.versions.head();
    const oneMore = 'checks: {}\nproperties:\n  one.more: 1\n';
    for (const dryRun of [true, false]) {
      const e = await rejection(owner.asCode.import(BOB, oneMore, { dryRun, prune: false }));
      expect(e).toBeInstanceOf(InvalidError);
      expect(e.issues?.map((i) => i.path)).toContain('properties');
    }
    expect(await owner.versions.head()).toEqual(before);
    expect(await sql.query('SELECT count(*)::int AS n FROM properties')).toMatchObject({ rows: [{ n: 10_000 }] });
    // Replacing one of them, or pruning to the document, stays within the limit.
    await owner.asCode.import(BOB, 'checks: {}\nproperties:\n  p00000: 2\n', { dryRun: false, prune: false });
    await owner.asCode.import(BOB, oneMore, { dryRun: false, prune: true });
    expect((await owner.properties.list()).items.map((p) => p.key)).toEqual(['one.more']);
    await owner.asCode.import(BOB, 'checks: {}\nproperties: {}\n', { dryRun: false, prune: true });
  });

  it.each([
    ['properties:\n  "a b": 1\n', 'properties.a b'],
    ['properties:\n  k: "x\\0y"\n', 'properties.k'],
    ['properties:\n  k: {a: ["\\0"]}\n', 'properties.k.a.0'],
    ['properties:\n  k:\n', 'properties.k'],
    ['properties: [1, 2]\n', 'properties'],
  ])('refuses %j naming %s, writing nothing', async (section, path) => {
    const before = await owner.versions.head();
    const e = await rejection(owner.asCode.import(BOB, `checks: {}\n${section}`, { dryRun: false, prune: false }));
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues?.map((i) => i.path)).toContain(path);
    expect(await owner.versions.head()).toEqual(before);
  });
});
