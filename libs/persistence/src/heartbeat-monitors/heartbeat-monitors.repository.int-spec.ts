import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

import { testEnv } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient } from '../database';
import { HeartbeatMonitorsRepository } from './heartbeat-monitors.repository';
import { generatePingToken, hashPingToken, PING_TOKEN_PATTERN } from './ping-token';

let db: DatabaseClient;
let pg: Client;
let monitors: HeartbeatMonitorsRepository;

beforeAll(async () => {
  db = createPrismaClient(testEnv().databaseUrl);
  monitors = new HeartbeatMonitorsRepository(db);
  pg = new Client({ connectionString: testEnv().databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  await pg?.end();
  await db?.$disconnect();
});

describe('HeartbeatMonitorsRepository', () => {
  it('finds a monitor by the hash of its token, with its schedule', async () => {
    const token = generatePingToken();
    expect(token).toMatch(PING_TOKEN_PATTERN);
    const targetId = `monitor:${randomUUID()}`;
    const { rows } = await pg.query<{ id: string }>(
      `INSERT INTO heartbeat_monitors (target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds)
       VALUES ($1, 'nightly backup', $2, 86400, 600, 3600) RETURNING id`,
      [targetId, hashPingToken(token)],
    );
    const found = await monitors.findByTokenHash(hashPingToken(token));
    expect(found).toEqual({
      id: rows[0].id,
      targetId,
      name: 'nightly backup',
      periodSeconds: 86400,
      graceSeconds: 600,
      maxRuntimeSeconds: 3600,
      // No check row of its id (a monitor made before monitors were checks): no version to send.
      configVersion: null,
      lastPingAt: null,
      lastStartAt: null,
      createdAt: expect.any(Date),
    });
    expect(await monitors.findById(rows[0].id)).toEqual({ ...found, configVersion: undefined });
    expect(await monitors.findByTokenHash(hashPingToken(generatePingToken()))).toBeNull();
    expect(await monitors.findById('not-a-uuid')).toBeNull();
    // The resolver's in-memory set for tokens issued before checksums.
    expect(await monitors.listTokenHashes()).toContain(hashPingToken(token));
    // Deleted by its writer (sync-orchestrator, with the push check): the token is gone from the set.
    await pg.query('DELETE FROM heartbeat_monitors WHERE id = $1', [rows[0].id]);
    expect(await monitors.listTokenHashes()).not.toContain(hashPingToken(token));
  });

  it("reads a push check's monitor with the check's config version, of the same moment as its schedule", async () => {
    const token = generatePingToken();
    const id = randomUUID();
    await pg.query(`INSERT INTO checks (id, name, type, spec, version) VALUES ($1, $2, 'push', '{}'::jsonb, 7)`, [
      id,
      `job ${id}`,
    ]);
    try {
      await pg.query(
        `INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds)
         VALUES ($1, $2, 'job', $3, 3600, 60)`,
        [id, `check:${id}`, hashPingToken(token)],
      );
      expect(await monitors.findByTokenHash(hashPingToken(token))).toMatchObject({
        id,
        periodSeconds: 3600,
        graceSeconds: 60,
        configVersion: 7,
      });
      // A write changes both in one transaction: read together again, never the old schedule with the new version.
      await pg.query('BEGIN');
      await pg.query('UPDATE checks SET version = 8 WHERE id = $1', [id]);
      await pg.query('UPDATE heartbeat_monitors SET period_seconds = 86400 WHERE id = $1', [id]);
      await pg.query('COMMIT');
      expect(await monitors.findByTokenHash(hashPingToken(token))).toMatchObject({
        periodSeconds: 86400,
        configVersion: 8,
      });
    } finally {
      await pg.query('DELETE FROM heartbeat_monitors WHERE id = $1', [id]);
      await pg.query('DELETE FROM checks WHERE id = $1', [id]);
    }
  });
});
