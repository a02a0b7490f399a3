import { Client } from 'pg';
import { stringify } from 'yaml';
import { DEFAULT_ALERT_RULES } from '@fleetwatch/contracts';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { ALICE, startOwner, type OwnerParts } from '../config/config.int-helpers';
import { DEFAULT_RULE_SEEDS, DEFAULT_RULES_SEED } from './default-rules.seeder';

// Default rules added in a later release (the sets of DEFAULT_RULE_SEEDS) on a real Postgres of their own per case:
// a fresh install gets every shipped rule in one version; an install the first release seeded (config_seeds holds
// its seed) gets only the new set, once — across restarts and two replicas starting together — and none of the
// first set's rules its users deleted; a user who deletes the new rule does not get it back; a rule config as code
// created first under the new id is left as it is; a site managed by config as code: its export applies back
// unchanged, and its file from before the upgrade, applied with prune, deletes the new rule for good (no fight).

jest.setTimeout(120_000);

const NEW_RULE = 'default.gpus-missing';
const FIRST_RELEASE = DEFAULT_RULE_SEEDS.filter((s) => s.name === DEFAULT_RULES_SEED);

const dbs: IsolatedDatabase[] = [];
const owners: OwnerParts[] = [];
const clients: Client[] = [];

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  for (const o of owners) await o.close();
  for (const d of dbs) await d.dispose();
});

/** A fresh migrated database and `replicas` owner processes on it. */
async function install(replicas = 1): Promise<{ owners: OwnerParts[]; sql: Client }> {
  const db = await createIsolatedDatabase();
  dbs.push(db);
  const started = Array.from({ length: replicas }, () => startOwner(db.databaseUrl, null));
  owners.push(...started);
  const sql = new Client({ connectionString: db.databaseUrl });
  clients.push(sql);
  await sql.connect();
  return { owners: started, sql };
}

async function ruleIds(sql: Client): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>('SELECT id FROM alert_rules ORDER BY id COLLATE "C"');
  return rows.map((r) => r.id);
}

async function seeds(sql: Client): Promise<string[]> {
  const { rows } = await sql.query<{ name: string }>('SELECT name FROM config_seeds ORDER BY name COLLATE "C"');
  return rows.map((r) => r.name);
}

const allIds = DEFAULT_ALERT_RULES.map((r) => r.id).sort();
const allSeeds = DEFAULT_RULE_SEEDS.map((s) => s.name).sort();

it('a fresh install gets every shipped rule, the new one too, in one version by system; every set remembered', async () => {
  const {
    owners: [owner],
    sql,
  } = await install();
  const first = await owner.seeder.seed();
  expect(first).toMatchObject({ seeded: DEFAULT_ALERT_RULES.length, seeds: DEFAULT_RULE_SEEDS.map((s) => s.name) });
  expect(await ruleIds(sql)).toEqual(allIds);
  expect(await seeds(sql)).toEqual(allSeeds);
  expect((await owner.config.version(first.version)).actor).toBe('system (system:defaults)');
  expect(await owner.alerts.get('rule', NEW_RULE)).toMatchObject({
    name: 'GPU fallen off the bus',
    severity: 'critical',
    for: '1m',
    condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
    version: first.version,
  });
  expect(await owner.seeder.seed()).toEqual({ seeded: 0, seeds: [], version: first.version });
});

it('an install seeded by the first release gets only the new rule, once, across two starts of two replicas', async () => {
  const {
    owners: [a, b],
    sql,
  } = await install(2);
  // The first release: its set only; a user then deletes one of its rules.
  const old = await a.seeder.seed(FIRST_RELEASE);
  expect(old.seeded).toBe(FIRST_RELEASE[0].ruleIds.length);
  await a.alerts.delete('rule', ALICE, 'default.target-stale');
  const before = (await a.versions.head()).version;

  // The upgrade: both replicas start together.
  const [ra, rb] = await Promise.all([a.seeder.seed(), b.seeder.seed()]);
  expect(ra.seeded + rb.seeded).toBe(1);
  const upgrade = ra.seeded === 1 ? ra : rb;
  expect(upgrade.version).toBe(before + 1);
  expect((ra.seeded === 1 ? rb : ra).seeds).toEqual([]);
  expect(await ruleIds(sql)).toEqual(allIds.filter((id) => id !== 'default.target-stale'));
  expect(await seeds(sql)).toEqual(allSeeds);
  const version = await a.config.version(upgrade.version);
  expect(version.actor).toBe('system (system:defaults)');
  const audit = (await a.config.audit({ limit: 10, subject: NEW_RULE })).items;
  expect(audit.map((x) => [x.action, x.actor])).toEqual([['alert-rule.create', 'system (system:defaults)']]);

  // A second start of both: nothing more.
  const again = await Promise.all([a.seeder.seed(), b.seeder.seed()]);
  expect(again.map((r) => r.seeded)).toEqual([0, 0]);
  expect((await a.versions.head()).version).toBe(upgrade.version);
  expect((await a.config.audit({ limit: 10, subject: NEW_RULE })).items).toHaveLength(1);
});

it('a user who deletes the new rule does not get it back', async () => {
  const {
    owners: [owner],
    sql,
  } = await install();
  await owner.seeder.seed(FIRST_RELEASE);
  await owner.seeder.seed();
  await owner.alerts.delete('rule', ALICE, NEW_RULE);
  const head = (await owner.versions.head()).version;
  expect((await owner.seeder.seed()).seeded).toBe(0);
  expect(await ruleIds(sql)).not.toContain(NEW_RULE);
  expect((await owner.versions.head()).version).toBe(head);
});

it('a rule config as code created first under the new id is left as it is (no version), and not re-created once deleted', async () => {
  const {
    owners: [owner],
    sql,
  } = await install();
  await owner.seeder.seed(FIRST_RELEASE);
  const ours = {
    name: 'GPUs gone (ours)',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 1 },
    for: '10m',
  };
  await owner.asCode.import(ALICE, stringify({ checks: {}, alertRules: { [NEW_RULE]: ours } }), {
    dryRun: false,
    prune: false,
  });
  const mine = await owner.alerts.get('rule', NEW_RULE);
  expect(mine).toMatchObject({ name: 'GPUs gone (ours)', for: '10m' });
  const head = (await owner.versions.head()).version;

  expect(await owner.seeder.seed()).toEqual({ seeded: 0, seeds: [DEFAULT_RULE_SEEDS[1].name], version: head });
  expect(await owner.alerts.get('rule', NEW_RULE)).toEqual(mine);
  expect((await owner.versions.head()).version).toBe(head);
  expect(await seeds(sql)).toEqual(allSeeds);
  // The set is remembered: the rule taken out of the code later stays out.
  await owner.alerts.delete('rule', ALICE, NEW_RULE);
  expect((await owner.seeder.seed()).seeded).toBe(0);
  expect(await ruleIds(sql)).not.toContain(NEW_RULE);
});

it('a site managed by config as code: its export round-trips unchanged; its older file applied with prune deletes the new rule, for good', async () => {
  const {
    owners: [owner],
    sql,
  } = await install();
  await owner.seeder.seed(FIRST_RELEASE);
  // The site's file, exported before the upgrade: it has no such rule.
  const older = (await owner.asCode.export()).yaml;
  await owner.seeder.seed();

  // Exported after the upgrade and applied back: every item unchanged (the seeded form is the form a file gives).
  const now = await owner.asCode.export();
  const back = await owner.asCode.import(ALICE, now.yaml, { dryRun: false, prune: true });
  expect(back.plan.filter((i) => i.action !== 'unchanged')).toEqual([]);
  expect(back.version).toBe(now.version);

  // The file from before: the plan shows the new rule as the one difference, and applying it deletes the rule.
  const plan = await owner.asCode.import(ALICE, older, { dryRun: true, prune: true });
  expect(plan.plan.filter((i) => i.action !== 'unchanged').map((i) => [i.action, i.name])).toEqual([
    ['delete', `alertRules/${NEW_RULE}`],
  ]);
  await owner.asCode.import(ALICE, older, { dryRun: false, prune: true });
  expect(await ruleIds(sql)).not.toContain(NEW_RULE);
  // The next start does not bring it back: the file and the seeder do not fight.
  const head = (await owner.versions.head()).version;
  expect((await owner.seeder.seed()).seeded).toBe(0);
  expect((await owner.versions.head()).version).toBe(head);
  expect(await ruleIds(sql)).not.toContain(NEW_RULE);
});
