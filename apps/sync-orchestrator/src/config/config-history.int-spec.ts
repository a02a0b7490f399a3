import { Client } from 'pg';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS, DomainError } from '@fleetwatch/domain';
import { BusConnection, BusPublisher, silentBusLogger } from '@fleetwatch/messaging';
import {
  AlertConfigRepository,
  ChecksRepository,
  closeSqlPool,
  ConfigVersionsRepository,
  createSqlPool,
  PushMonitorsRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import fc from 'fast-check';
import { canonicalJson, contentHash } from './canonical-json';
import { specOf } from './check-form';
import { arbitraryCheck } from './check.arbitrary';
import { ConfigAsCodeService } from './config-as-code.service';
import { ConfigChangedRelay } from './config-changed.relay';
import { configHashOfSnapshot } from './config-hash';
import { snapshotOf } from './config-plan';
import { ConfigService } from './config.service';
import { ConfigWriter } from './config-writer';
import type { ConfigSnapshot } from './config-yaml';
import { ALICE, quietLogger } from './config.int-helpers';
import { PushMonitors } from './push-monitors';

// Config versions store their changes and a full snapshot every K versions, through the
// real database: for random sequences of writes (create, bulk, patch with renames, pause,
// delete, imports with type changes, no-ops), every version's rebuilt snapshot is what the
// code before stored — the whole configuration read back after the write — and the hash
// Postgres computed from the stored check hashes is the config hash of that snapshot (names
// with any Unicode: Postgres's byte order must be the one config-hash.ts sorts by). Checks
// from before content hashes get theirs at start and on the next write.

jest.setTimeout(180_000);

const EVERY = 4;

let db: IsolatedDatabase;
let pool: SqlPool;
let sql: Client;
let connection: BusConnection;
let publisher: BusPublisher;
let relay: ConfigChangedRelay;
let checks: ChecksRepository;
let versions: ConfigVersionsRepository;
let writer: ConfigWriter;
let config: ConfigService;
let asCode: ConfigAsCodeService;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4, applicationName: 'config-history test' });
  sql = new Client({ connectionString: db.databaseUrl });
  await sql.connect();
  checks = new ChecksRepository(pool);
  versions = new ConfigVersionsRepository(pool);
  // No broker: the relay's publisher never connects, config.changed stays in the outbox.
  connection = new BusConnection({ url: 'amqp://127.0.0.1:1', logger: silentBusLogger });
  publisher = new BusPublisher(connection, {
    source: { site: 'test-site', service: 'sync-orchestrator', location: 'lab-1' },
  });
  relay = new ConfigChangedRelay(publisher, versions, quietLogger, 60_000);
  writer = new ConfigWriter(pool, checks, versions, relay, EVERY);
  const policy = createTargetPolicy(DEFAULT_DENY_NETWORKS);
  const monitors = new PushMonitors(new PushMonitorsRepository(pool));
  config = new ConfigService(writer, checks, versions, monitors, policy);
  asCode = new ConfigAsCodeService(writer, checks, monitors, policy, new AlertConfigRepository(pool), versions, null);
});
afterAll(async () => {
  await relay?.onApplicationShutdown();
  await publisher?.close().catch(() => undefined);
  await connection?.close().catch(() => undefined);
  await sql?.end();
  if (pool) await closeSqlPool(pool);
  await db?.dispose();
});

/** What the code before this stored with every version: every check read back, as a snapshot. */
async function wholeSnapshot(): Promise<ConfigSnapshot> {
  return snapshotOf((await checks.all()).map(specOf));
}

type Op =
  | { kind: 'create'; input: Record<string, unknown> }
  | { kind: 'bulk'; inputs: Record<string, unknown>[] }
  | { kind: 'patch'; pick: number; patch: Record<string, unknown> }
  | { kind: 'pause'; pick: number; paused: boolean }
  | { kind: 'delete'; pick: number }
  | { kind: 'import'; inputs: Record<string, unknown>[]; retype: number[] }
  | { kind: 'reimport' };

const input = arbitraryCheck.map((c) => c.input);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: input.map((i) => ({ kind: 'create' as const, input: i })) },
  { weight: 1, arbitrary: fc.array(input, { maxLength: 5 }).map((inputs) => ({ kind: 'bulk' as const, inputs })) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('patch' as const),
      pick: fc.nat(),
      patch: fc.oneof(
        arbitraryCheck.map((c) => ({ name: c.spec.name })),
        fc.record({ tags: fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 2 }) }),
        fc.record({ description: fc.oneof(fc.constant(null), fc.string({ maxLength: 10 })) }),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause' as const), pick: fc.nat(), paused: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('import' as const),
      inputs: fc.array(input, { maxLength: 4 }),
      retype: fc.array(fc.nat(), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reimport' as const }) },
);

const yamlOf = (inputs: Record<string, unknown>[]) =>
  // JSON is YAML: a flow mapping of checks by name.
  JSON.stringify({
    checks: Object.fromEntries(inputs.map(({ name, ...rest }) => [String(name), rest])),
  });

async function run(o: Op): Promise<void> {
  const all = await checks.all();
  const at = (n: number) => (all.length ? all[n % all.length] : undefined);
  switch (o.kind) {
    case 'create':
      return void (await config.create(ALICE, o.input));
    case 'bulk':
      return void (await config.bulkCreate(ALICE, o.inputs));
    case 'patch': {
      const c = at(o.pick);
      return void (c && (await config.patch(ALICE, c.id, o.patch)));
    }
    case 'pause': {
      const c = at(o.pick);
      return void (c && (await config.setPaused(ALICE, c.id, o.paused)));
    }
    case 'delete': {
      const c = at(o.pick);
      return void (c && (await config.delete(ALICE, c.id)));
    }
    case 'import': {
      // Checks of the site under new types: refused (a check never changes type), the import writes nothing.
      const retyped = o.retype
        .map(at)
        .filter((c): c is NonNullable<typeof c> => c !== undefined)
        .map((c) => ({ name: c.name, type: c.type === 'tcp' ? 'redis' : 'tcp', host: 'db.internal', port: 6379 }));
      const names = new Set(retyped.map((r) => r.name));
      const inputs = [...retyped, ...o.inputs.filter((i) => !names.has(String(i.name).trim()))];
      return void (await asCode.import(ALICE, yamlOf(inputs), { dryRun: false, prune: false }));
    }
    case 'reimport': {
      const before = (await versions.head()).version;
      const { yaml } = await asCode.export();
      const r = await asCode.import(ALICE, yaml, { dryRun: false, prune: true });
      expect(r.version).toBe(before);
      return;
    }
  }
}

describe('config versions: changes, full snapshots and the hash', () => {
  it('every version rebuilds to the whole snapshot of its time, and hashes as it (property)', async () => {
    const expected = new Map<number, ConfigSnapshot>();
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        for (const o of ops) {
          const before = (await versions.head()).version;
          try {
            await run(o);
          } catch (e) {
            // Refusals (a taken name, a denied target, an invalid patch) write nothing.
            if (!(e instanceof DomainError)) throw e;
          }
          const head = await versions.head();
          if (head.version === before) continue;
          expect(head.version).toBe(before + 1);
          const whole = await wholeSnapshot();
          expected.set(head.version, whole);
          expect(head.hash).toBe(configHashOfSnapshot(whole));
        }
        for (const [version, whole] of expected) {
          const v = await config.version(version);
          expect(canonicalJson(v.snapshot)).toBe(canonicalJson(whole));
          expect(v.hash).toBe(configHashOfSnapshot(whole));
        }
      }),
      { numRuns: 25 },
    );
    expect(expected.size).toBeGreaterThan(EVERY * 3);
    // Most versions stored their changes only; a full snapshot at least every EVERY versions.
    const { rows } = await sql.query<{ version: number; full: boolean }>(
      'SELECT version, snapshot IS NOT NULL AS full FROM config_versions ORDER BY version',
    );
    let sinceFull = 0;
    for (const r of rows) {
      sinceFull = r.full ? 0 : sinceFull + 1;
      expect(sinceFull).toBeLessThan(EVERY);
    }
    expect(rows.filter((r) => !r.full).length).toBeGreaterThan(rows.length / 3);
  });

  it('one at a time, a version stores one check, not the configuration', async () => {
    await asCode.import(ALICE, 'checks: {}', { dryRun: false, prune: true });
    const first = (await versions.head()).version + 1;
    for (let i = 0; i < 3 * EVERY; i++)
      await config.create(ALICE, { name: `one-${i}`, type: 'tcp', host: 'db.internal', port: 5432 + i });
    const { rows } = await sql.query<{ version: number; full: boolean; changes: unknown; bytes: number }>(
      `SELECT version, snapshot IS NOT NULL AS full, changes, pg_column_size(COALESCE(snapshot, changes))::int AS bytes
       FROM config_versions WHERE version >= $1 ORDER BY version`,
      [first],
    );
    expect(rows).toHaveLength(3 * EVERY);
    for (const r of rows) {
      expect(r.full).toBe(r.version % EVERY === 0 || r.version === first);
      if (!r.full) {
        const i = r.version - first;
        expect(r.changes).toEqual({ checks: { [`one-${i}`]: { type: 'tcp', host: 'db.internal', port: 5432 + i } } });
      }
    }
  });

  it('checks from before content hashes get theirs at start (head hash too), and a write fills what is left', async () => {
    await config.create(ALICE, { name: '\u{1F600} smile', type: 'tcp', host: 'db.internal', port: 1 });
    await config.create(ALICE, { name: '\uFF61 half-width', type: 'tcp', host: 'db.internal', port: 2 });
    const head = await versions.head();
    const whole = await wholeSnapshot();
    expect(head.hash).toBe(configHashOfSnapshot(whole));
    // A site as the migration leaves it: no content hashes, the head hash of the earlier definition.
    const stored = await sql.query<{ id: string; content_hash: string }>('SELECT id, content_hash FROM checks');
    await sql.query('UPDATE checks SET content_hash = NULL');
    await sql.query('UPDATE config_head SET hash = $1', [contentHash(whole)]);
    expect(await writer.fillContentHashes()).toBe(stored.rows.length);
    expect(await versions.head()).toEqual(head);
    const again = await sql.query<{ id: string; content_hash: string }>('SELECT id, content_hash FROM checks');
    expect(new Map(again.rows.map((r) => [r.id, r.content_hash]))).toEqual(
      new Map(stored.rows.map((r) => [r.id, r.content_hash])),
    );
    expect(await writer.fillContentHashes()).toBe(0);

    // Missed at start (the database was away): the next write fills them before it hashes.
    await sql.query('UPDATE checks SET content_hash = NULL');
    const created = await config.create(ALICE, { name: 'after-start', type: 'tcp', host: 'db.internal', port: 3 });
    expect((await versions.head()).hash).toBe(configHashOfSnapshot(await wholeSnapshot()));
    expect((await config.version(created.version)).snapshot).toEqual(await wholeSnapshot());
  });

  it('a version from before this scheme (a full snapshot row) reads as it was stored', async () => {
    const head = (await versions.head()).version;
    const old = await wholeSnapshot();
    // As a row of the earlier code: the whole snapshot, its hash over the canonical JSON.
    await sql.query(
      `INSERT INTO config_versions (version, hash, snapshot, actor, summary) VALUES ($1, $2, $3::jsonb, 'x', 'legacy')`,
      [head + 1, contentHash(old), JSON.stringify(old)],
    );
    await sql.query('UPDATE config_head SET version = $1', [head + 1]);
    const v = await config.version(head + 1);
    expect(v.snapshot).toEqual(old);
    expect(Object.keys(old.checks).length).toBeGreaterThan(0);
    expect(v.hash).toBe(contentHash(old));
    // The next write's changes apply on top of that snapshot.
    const created = await config.create(ALICE, { name: 'next', type: 'tcp', host: 'db.internal', port: 10 });
    const next = await config.version(created.version);
    expect(next.snapshot).toEqual({
      checks: { ...old.checks, next: { type: 'tcp', host: 'db.internal', port: 10 } },
    });
  });
});
