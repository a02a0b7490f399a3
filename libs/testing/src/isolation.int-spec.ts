import { Client } from 'pg';
import { Redis } from 'ioredis';
import { createDatabase, listDatabases, sweepStaleDatabases } from './admin/postgres';
import { rabbitAdmin, rabbitmqctlAdmin, sweepStaleVhosts } from './admin/rabbitmq';
import { sweepStaleKeys } from './admin/redis';
import { newRunId, STALE_AFTER_MS } from './run-id';
import { createIsolatedDatabase, createIsolatedVhost } from './isolation';
import { testEnv } from './test-env';
import { TcpProxy } from './tcp-proxy';
import { waitFor } from './wait-for';

const env = testEnv();
const admin = rabbitAdmin(env.server.amqpManagementUrl);
const worker = Number(process.env['JEST_WORKER_ID'] ?? '1');

async function query<T extends Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('per-run isolation (global setup)', () => {
  it('gives the run a migrated database of its own', async () => {
    // Worker 1 uses the run's own set; a further jest worker its own `_w<n>` one (worker-env.ts).
    expect(env.databaseName).toBe(`fw_test_${env.runId}${worker > 1 ? `_w${worker}` : ''}`);
    const rows = await query<{ n: string }>(
      env.databaseUrl,
      `SELECT count(*)::text AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL`,
    );
    expect(Number(rows[0]?.n)).toBeGreaterThan(0);
    const [db] = await query<{ current_database: string }>(env.databaseUrl, 'SELECT current_database()');
    expect(db?.current_database).toBe(env.databaseName);
  });

  it('gives the run a vhost and a Redis key prefix', async () => {
    expect(await admin.listVhosts()).toContain(env.vhost);
    expect(decodeURIComponent(new URL(env.amqpUrl).pathname.slice(1))).toBe(env.vhost);
    expect(env.redisPrefix).toBe(`fwtest:${env.runId}:${worker > 1 ? `w${worker}:` : ''}`);
    const redis = new Redis(env.redisUrl, { keyPrefix: env.redisPrefix });
    try {
      await redis.set('probe', '1', 'EX', 600); // teardown must remove it
      expect(await redis.get('probe')).toBe('1');
    } finally {
      redis.disconnect();
    }
  });
});

describe('createIsolatedDatabase', () => {
  it('creates a migrated database and drops it on dispose', async () => {
    const db = await createIsolatedDatabase();
    expect(db.databaseName.startsWith(`fw_test_${env.runId}_`)).toBe(true);
    const rows = await query<{ t: string | null }>(db.databaseUrl, `SELECT to_regclass('public.users')::text AS t`);
    expect(rows[0]?.t).toBe('users');
    await db.dispose();
    expect(await listDatabases(env.server.databaseUrl, db.databaseName)).toEqual([]);
  });
});

describe('createIsolatedVhost', () => {
  it('creates a vhost the URL can use and deletes it on dispose', async () => {
    const v = await createIsolatedVhost('isolation-check');
    expect(v.vhost).toBe(`fw-test-${env.scope}-isolation-check`);
    expect(await admin.listVhosts()).toContain(v.vhost);
    const { connect } = await import('amqplib');
    const conn = await connect(v.amqpUrl);
    const ch = await conn.createChannel();
    await ch.assertQueue('q', { durable: false });
    await conn.close();
    await v.dispose();
    expect(await admin.listVhosts()).not.toContain(v.vhost);
  });
});

describe('TcpProxy in front of Postgres', () => {
  it('cut() breaks a live connection; the client reconnects through the proxy', async () => {
    const proxy = TcpProxy.forUrl(env.databaseUrl);
    await proxy.start();
    try {
      const url = proxy.rewriteUrl(env.databaseUrl);
      const c = new Client({ connectionString: url });
      const errors: Error[] = [];
      c.on('error', (e) => errors.push(e));
      await c.connect();
      expect((await c.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
      proxy.cut();
      await waitFor(() => errors.length > 0, { timeoutMs: 5000, description: 'pg client to see the cut' });
      await expect(c.query('SELECT 1')).rejects.toThrow();
      proxy.pause();
      await expect(new Client({ connectionString: url }).connect()).rejects.toThrow();
      proxy.resume();
      expect(await query<{ one: number }>(url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('sweeping leftovers of crashed runs', () => {
  it('removes databases, vhosts and keys older than the cut-off and keeps fresh ones', async () => {
    const old = newRunId(Date.now() - STALE_AFTER_MS - 60_000);
    await createDatabase(env.server.databaseUrl, `fw_test_${old}`);
    await admin.addVhost(`fw-test-${old}`, 'guest');
    const redis = new Redis(env.redisUrl);
    try {
      await redis.set(`fwtest:${old}:leftover`, '1');
      expect(await sweepStaleDatabases(env.server.databaseUrl)).toContain(`fw_test_${old}`);
      expect(await sweepStaleVhosts(admin)).toContain(`fw-test-${old}`);
      expect(await sweepStaleKeys(env.redisUrl)).toContain(`fwtest:${old}:`);
      expect(await redis.exists(`fwtest:${old}:leftover`)).toBe(0);
    } finally {
      redis.disconnect();
    }
    expect(await listDatabases(env.server.databaseUrl, `fw_test_${old}`)).toEqual([]);
    expect(await listDatabases(env.server.databaseUrl, env.databaseName)).toContain(env.databaseName);
    expect(await admin.listVhosts()).toContain(env.vhost);
  });
});

// The fallback when the management plugin is off; only where rabbitmqctl reaches the node.
const ctlTest = env.source === 'local' ? it : it.skip;
describe('rabbitmqctl fallback', () => {
  ctlTest(
    'adds, lists and deletes a vhost',
    async () => {
      const ctl = rabbitmqctlAdmin();
      const vhost = `fw-test-${env.runId}-ctl`;
      await ctl.addVhost(vhost, 'guest');
      expect(await ctl.listVhosts()).toContain(vhost);
      await ctl.deleteVhost(vhost);
      await ctl.deleteVhost(vhost); // idempotent
      expect(await ctl.listVhosts()).not.toContain(vhost);
    },
    60_000,
  );
});
