import { Client } from 'pg';
import { canonicalJson, sha256Hex } from './canonical-json';
import { configHashOfSnapshot } from './config-hash';
import { ALICE, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// Checks stored before an http check's credential headers were write-only (check-secrets.ts): the database holds
// their values in the version rows, the audit log and the content hash, as the writer of then stored them. No
// migration rewrites those: every read redacts them from now on, and the owner's start stores today's hash.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let sql: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('check-secrets');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

const CANARY = 'zz-stored-before-canary';

it('reads of a check stored with its credential headers in the clear show none of them; the start rehashes it', async () => {
  const { check, version } = await owner.config.create(ALICE, {
    name: 'old page',
    type: 'http',
    url: 'https://old.example/health',
    headers: { Authorization: `Bearer ${CANARY}`, Accept: 'text/plain' },
  });
  // As the writer before stored it: the version's changes, the audit entry and the content hash with the value.
  const oldForm = {
    type: 'http',
    url: 'https://old.example/health',
    headers: { Accept: 'text/plain', Authorization: `Bearer ${CANARY}` },
  };
  // (The first version holds a full snapshot, of the same shape: `{checks}`.)
  await sql.query(
    `UPDATE config_versions SET snapshot = CASE WHEN snapshot IS NULL THEN NULL ELSE $1::jsonb END,
       changes = CASE WHEN changes IS NULL THEN NULL ELSE $1::jsonb END WHERE version = $2`,
    [JSON.stringify({ checks: { 'old page': oldForm } }), version],
  );
  await sql.query('UPDATE audit_log SET diff = $1::jsonb WHERE subject = $2', [
    JSON.stringify([
      { path: 'headers', after: oldForm.headers },
      { path: 'type', after: 'http' },
    ]),
    check.id,
  ]);
  const oldHash = sha256Hex(canonicalJson({ name: 'old page', ...oldForm }));
  await sql.query('UPDATE checks SET content_hash = $1 WHERE id = $2', [oldHash, check.id]);
  await sql.query('UPDATE config_head SET hash = $1 WHERE id = 1', [sha256Hex(`${oldHash}\n`)]);

  const reads = [
    await owner.config.get(check.id),
    await owner.config.list({ limit: 10 }),
    await owner.config.version(version),
    await owner.config.audit({ limit: 10, subject: check.id }),
    await owner.asCode.export(),
  ];
  expect(JSON.stringify(reads)).not.toContain(CANARY);
  const v = await owner.config.version(version);
  expect(v.snapshot).toEqual({
    checks: { 'old page': { ...oldForm, headers: { Accept: 'text/plain', Authorization: { set: true } } } },
  });
  expect((await owner.config.audit({ limit: 10, subject: check.id })).items[0].diff).toEqual([
    { path: 'headers', after: { Accept: 'text/plain', Authorization: '(set)' } },
    { path: 'type', after: 'http' },
  ]);
  // The collector still probes with it.
  const assigned = (await owner.config.assignment('lab')).checks.find((c) => c.id === check.id);
  expect(assigned?.type === 'http' && assigned.headers.Authorization).toBe(`Bearer ${CANARY}`);

  // The start stores today's hash (the value out of it) and the head's hash follows.
  expect(await owner.writer.fillContentHashes()).toBe(1);
  const stored = await sql.query<{ content_hash: string }>('SELECT content_hash FROM checks WHERE id = $1', [check.id]);
  expect(stored.rows[0].content_hash).not.toBe(oldHash);
  expect((await owner.versions.head()).hash).toBe(configHashOfSnapshot(v.snapshot as never));
  expect(await owner.writer.fillContentHashes()).toBe(0);
});
