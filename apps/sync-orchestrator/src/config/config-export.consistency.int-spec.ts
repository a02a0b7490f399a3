import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { ALICE, BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';
import { renderConfigYaml, type ConfigSnapshot } from './config-yaml';

// An export is one version of the configuration: under writes committing all the time, every
// export's checks, alert areas and properties are exactly those of the version it names (the
// version's stored snapshot, config_versions), never checks of one version and properties of a
// later one labelled as the first.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-export-consistency');
  owner = startOwner(servers.db.databaseUrl, null);
});
afterAll(async () => {
  await owner?.close();
  await servers?.dispose();
});

const CHECKS = 150;
const PROPERTIES = 40;

const FILE =
  'checks:\n' +
  Array.from(
    { length: CHECKS },
    (_, i) => `  c${String(i).padStart(3, '0')}:\n    type: tcp\n    host: db${i}.internal\n    port: 5432\n`,
  ).join('') +
  'properties:\n' +
  Array.from({ length: PROPERTIES }, (_, i) => `  p${i}: 0\n`).join('');

/** The sections of a rendered configuration, as data (the header's comments left out). */
const sectionsOf = (yaml: string): unknown => parse(yaml) as unknown;

/** The export equals the stored snapshot of the version it names (the header, which names it, left out). */
async function expectItsVersion(e: { yaml: string; version: number; hash: string }): Promise<boolean> {
  const stored = await owner.config.version(e.version);
  expect(e.hash).toBe(stored.hash);
  return isDeepStrictEqual(
    sectionsOf(e.yaml),
    sectionsOf(renderConfigYaml(stored.snapshot as unknown as ConfigSnapshot)),
  );
}

it('every export under concurrent writes equals the stored snapshot of the version it names', async () => {
  await owner.asCode.import(BOB, FILE, { dryRun: false, prune: true });
  const ids = (await owner.config.list({ limit: 10 })).items.map((c) => c.id);

  let writing = true;
  let round = 0;
  // Writers take turns on the head lock: each commit is a version changing a property or a check.
  const writer = async (kind: 'property' | 'check'): Promise<void> => {
    while (writing) {
      const n = ++round;
      if (kind === 'property') await owner.properties.put(ALICE, `p${n % PROPERTIES}`, { value: n });
      else await owner.config.patch(ALICE, ids[n % ids.length], { port: 1000 + (n % 60_000) });
    }
  };
  const writers = (
    ['property', 'check', 'property', 'property', 'check', 'property', 'property', 'property'] as const
  ).map(writer);

  const exports: { yaml: string; version: number; hash: string }[] = [];
  try {
    const until = Date.now() + 8_000;
    while (Date.now() < until && exports.length < 100) exports.push(await owner.asCode.export());
  } finally {
    writing = false;
    await Promise.all(writers);
  }
  // The writes did run alongside: the exports name many versions.
  expect(new Set(exports.map((e) => e.version)).size).toBeGreaterThan(10);

  const mismatched: number[] = [];
  for (const e of exports) if (!(await expectItsVersion(e))) mismatched.push(e.version);
  expect({ exports: exports.length, mismatched }).toEqual({ exports: exports.length, mismatched: [] });
});

it('a write committing between the reads of one export (every time) is in none of it', async () => {
  // Deterministic: before each alert area the export reads, another write commits a property change.
  let n = 0;
  const all = owner.alertRepo.all.bind(owner.alertRepo);
  const spy = jest.spyOn(owner.alertRepo, 'all').mockImplementation(async (...args: Parameters<typeof all>) => {
    await owner.properties.put(ALICE, `p${++n % PROPERTIES}`, { value: -n });
    return all(...args);
  });
  try {
    const before = (await owner.versions.head()).version;
    const e = await owner.asCode.export();
    expect(n).toBeGreaterThan(0);
    expect((await owner.versions.head()).version).toBe(before + n);
    expect(await expectItsVersion(e)).toBe(true);
  } finally {
    spy.mockRestore();
  }
});

it('a dry run plans against one version too', async () => {
  const e = await owner.asCode.export();
  let n = 0;
  const all = owner.alertRepo.all.bind(owner.alertRepo);
  const spy = jest.spyOn(owner.alertRepo, 'all').mockImplementation(async (...args: Parameters<typeof all>) => {
    await owner.properties.put(ALICE, `p${++n % PROPERTIES}`, { value: 1_000_000 + n });
    return all(...args);
  });
  try {
    // The file is the configuration of the version the dry run reads (If-Match: that version): nothing to do.
    const dry = await owner.asCode.import(BOB, e.yaml, { dryRun: true, prune: true, expectedVersion: e.version });
    expect(n).toBeGreaterThan(0);
    expect(dry.version).toBe(e.version);
    expect(dry.plan.filter((i) => i.action !== 'unchanged')).toEqual([]);
  } finally {
    spy.mockRestore();
  }
});
