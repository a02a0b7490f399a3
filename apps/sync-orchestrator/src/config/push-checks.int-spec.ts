import { Client } from 'pg';
import { InvalidError } from '@fleetwatch/domain';
import {
  createPrismaClient,
  hashPingToken,
  HeartbeatMonitorsRepository,
  HistoryRepository,
  PING_TOKEN_PATTERN,
  runInSqlTransaction,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import { ALICE, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';
import { ADOPTION_ACTOR } from './push-monitors';

// Heartbeat monitors as checks of type `push` (issue 15): created, changed and deleted
// through the configuration owner's versioned, audited path, with heartbeat_monitors
// (what status-ingest resolves ping tokens against) written in the same transaction; the
// token is issued once and only its hash kept, never exported; the aggregator's run state
// lives in heartbeat_monitor_state; monitors made before this are adopted as push checks.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let sql: Client;
let prisma: DatabaseClient;
let monitors: HeartbeatMonitorsRepository;

beforeAll(async () => {
  servers = await ConfigTestServers.create('push-checks');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
  prisma = createPrismaClient(servers.db.databaseUrl);
  monitors = new HeartbeatMonitorsRepository(prisma);
});
afterAll(async () => {
  await prisma?.$disconnect();
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

const nightly = {
  name: 'nightly backup',
  type: 'push',
  periodSeconds: 86_400,
  graceSeconds: 600,
  maxRuntimeSeconds: 3600,
};

describe('push checks', () => {
  it('a created push check has a monitor status-ingest finds by its token; changes and deletes follow', async () => {
    const created = await owner.config.create(ALICE, nightly);
    expect(created.pingToken).toMatch(PING_TOKEN_PATTERN);
    const token = created.pingToken as string;
    const id = created.check.id;
    expect(await monitors.findByTokenHash(hashPingToken(token))).toEqual({
      id,
      targetId: `check:${id}`,
      name: 'nightly backup',
      periodSeconds: 86_400,
      graceSeconds: 600,
      maxRuntimeSeconds: 3600,
      lastPingAt: null,
      lastStartAt: null,
      createdAt: expect.any(Date),
      // The check's config version, read with the schedule (pings carry it: the aggregator counts a newer one's own).
      configVersion: created.version,
    });

    const patched = await owner.config.patch(
      ALICE,
      id,
      { graceSeconds: 900, maxRuntimeSeconds: null },
      created.version,
    );
    expect(patched.version).toBe(created.version + 1);
    // Same token, new schedule, read with the version that set it.
    expect(await monitors.findByTokenHash(hashPingToken(token))).toMatchObject({
      graceSeconds: 900,
      maxRuntimeSeconds: null,
      configVersion: patched.version,
    });
    const renamed = await owner.config.patch(ALICE, id, { name: 'nightly backup (db)' });
    expect((await monitors.findById(id))?.name).toBe('nightly backup (db)');

    // Collectors are never assigned one; the export has it without any credential.
    expect((await owner.config.assignment('lab-1')).checks.some((c) => c.id === id)).toBe(false);
    const exported = await owner.asCode.export();
    expect(exported.yaml).toContain(
      'nightly backup (db):\n    type: push\n    periodSeconds: 86400\n    graceSeconds: 900\n',
    );
    const { rows } = await sql.query<{ token_hash: string }>(
      'SELECT token_hash FROM heartbeat_monitors WHERE id = $1',
      [id],
    );
    expect(exported.yaml).not.toContain(rows[0].token_hash);
    expect(exported.yaml).not.toContain(token);
    const again = await owner.asCode.import(ALICE, exported.yaml, { dryRun: false, prune: true });
    expect(again.version).toBe(renamed.version);

    await owner.config.delete(ALICE, id);
    expect(await monitors.findByTokenHash(hashPingToken(token))).toBeNull();
  });

  it('refuses a push check with locations or conditions, or without a period', async () => {
    const e = (await owner.config
      .create(ALICE, { ...nightly, name: 'x', locations: ['lab-1'], conditions: ['latency < 1'] })
      .catch((err: unknown) => err)) as InvalidError;
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues.map((i) => i.path)).toEqual(['locations', 'conditions']);
    const missing = (await owner.config
      .create(ALICE, { name: 'y', type: 'push', graceSeconds: 1 })
      .catch((err: unknown) => err)) as InvalidError;
    expect(missing.issues.map((i) => i.path)).toEqual(['periodSeconds']);
  });

  it('bulk create and import issue a token per new push check', async () => {
    const bulk = await owner.config.bulkCreate(ALICE, [
      { ...nightly, name: 'cron-a' },
      { name: 'tcp-a', type: 'tcp', host: 'a', port: 1 },
      { ...nightly, name: 'cron-b' },
    ]);
    const pushIds = bulk.checks.filter((c) => c.type === 'push').map((c) => c.id);
    expect(Object.keys(bulk.pingTokens ?? {}).sort()).toEqual([...pushIds].sort());
    for (const [id, token] of Object.entries(bulk.pingTokens ?? {}))
      expect((await monitors.findByTokenHash(hashPingToken(token)))?.id).toBe(id);

    const imported = await owner.asCode.import(
      ALICE,
      'checks:\n  cron-c:\n    type: push\n    periodSeconds: 60\n    graceSeconds: 0\n',
      { dryRun: false, prune: false },
    );
    const created = imported.plan.find((i) => i.name === 'cron-c');
    expect(Object.keys(imported.pingTokens ?? {})).toEqual([created?.id]);
    // A type change is refused, as the API refuses it (it was a delete and a create under a new id): the monitor
    // stays with its check.
    const swap = (await owner.asCode
      .import(ALICE, 'checks:\n  cron-c:\n    type: tcp\n    host: a\n    port: 2\n', { dryRun: false, prune: false })
      .catch((err: unknown) => err)) as InvalidError;
    expect(swap).toBeInstanceOf(InvalidError);
    expect(swap.issues.map((i) => i.path)).toEqual(['checks.cron-c.type']);
    expect((await monitors.findById(created?.id as string))?.id).toBe(created?.id);
  });

  it('adopts monitors made before they were checks, once, keeping id and token', async () => {
    const legacyId = '0190f0e0-0000-7000-8000-0000000000aa';
    const token = 'fwp_legacytoken';
    await sql.query(
      `INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds)
       VALUES ($1, $2, 'cron-a', $3, 300, 30)`,
      [legacyId, `check:${legacyId}`, hashPingToken(token)],
    );
    const head = (await owner.versions.head()).version;
    expect(await owner.adoption.adopt()).toBe(1);
    expect(await owner.adoption.adopt()).toBe(0);
    expect((await owner.versions.head()).version).toBe(head + 1);
    const { check } = await owner.config.get(legacyId);
    // cron-a was taken by a check: the adopted one carries the id's first characters.
    expect(check).toMatchObject({ type: 'push', name: 'cron-a (0190f0e0)', periodSeconds: 300, graceSeconds: 30 });
    expect(await monitors.findByTokenHash(hashPingToken(token))).toMatchObject({
      id: legacyId,
      name: 'cron-a (0190f0e0)',
    });
    const [entry] = (await owner.config.audit({ limit: 1, subject: legacyId })).items;
    expect(entry).toMatchObject({
      action: 'check.adopt',
      version: head + 1,
      actor: `${ADOPTION_ACTOR.name} (${ADOPTION_ACTOR.id})`,
    });
  });

  it('adopts a monitor whose suffixed name is taken too, with its whole id; one that cannot be adopted blocks no other', async () => {
    const clashId = '0190f0e0-0000-7000-8000-0000000000bb';
    const otherId = '0190f0e0-0000-7000-8000-0000000000cc';
    await owner.config.create(ALICE, { ...nightly, name: 'cron-x' });
    await owner.config.create(ALICE, { ...nightly, name: 'cron-x (0190f0e0)' });
    for (const [id, name] of [
      [clashId, 'cron-x'],
      [otherId, 'cron-y'],
    ])
      await sql.query(
        `INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds)
         VALUES ($1, $2, $3, $4, 300, 30)`,
        [id, `check:${id}`, name, hashPingToken(`fwp_${name}`)],
      );
    expect(await owner.adoption.adopt()).toBe(2);
    expect((await owner.config.get(clashId)).check.name).toBe(`cron-x (${clashId})`);
    expect((await owner.config.get(otherId)).check.name).toBe('cron-y');
  });

  it("keeps the aggregator's run state in a table of its own, joined for readers", async () => {
    const { check } = await owner.config.create(ALICE, { ...nightly, name: 'ping-state' });
    const history = new HistoryRepository(owner.pool);
    const at = Date.parse('2026-12-01T10:00:00.000Z');
    await runInSqlTransaction(owner.pool, (tx) =>
      history.touchHeartbeatMonitors(tx, [
        { monitorId: check.id, lastPingAt: at, lastStartAt: at - 60_000 },
        // No such monitor: ignored, never a failed batch.
        { monitorId: '0190f0e0-0000-7000-8000-0000000000ff', lastPingAt: at, lastStartAt: null },
      ]),
    );
    // Only forward.
    await runInSqlTransaction(owner.pool, (tx) =>
      history.touchHeartbeatMonitors(tx, [{ monitorId: check.id, lastPingAt: at - 1000, lastStartAt: null }]),
    );
    expect(await monitors.findById(check.id)).toMatchObject({
      lastPingAt: new Date(at),
      lastStartAt: new Date(at - 60_000),
    });
    const { rows } = await sql.query('SELECT monitor_id::text FROM heartbeat_monitor_state ORDER BY monitor_id');
    expect(rows).toEqual([{ monitor_id: check.id }]);
  });
});
