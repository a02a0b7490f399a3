import { postgresStatsCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { testEnv, waitFor } from '@fleetwatch/testing';
import { Client } from 'pg';
import { MAX_READ_BYTES, postgresStatsProbe } from './postgres-stats.probe';
import {
  asCheckResult,
  closedPort,
  floodingServer,
  probeContext,
  startPrivatePostgres,
  type PrivatePostgres,
} from './probes.int-helpers';
import { startStandby } from './testing/pg-standby';

jest.setTimeout(60_000);

// Against the shared local Postgres (a primary without replicas): sessions this test holds
// open in known states, and this run's database, are found in the figures.

const env = testEnv();
const server = new URL(env.server.databaseUrl);
const host = server.hostname;
const port = Number(server.port || 5432);
const dbName = new URL(env.databaseUrl).pathname.slice(1);

type Input = Partial<Extract<CheckInput, { type: 'postgres-stats' }>>;
const check = (fields: Input = {}) =>
  postgresStatsCheckFields.parse({
    name: 'pgs',
    type: 'postgres-stats',
    host,
    port,
    user: decodeURIComponent(server.username || 'postgres'),
    maxDatabases: 200,
    ...fields,
  });
type Out = Awaited<ReturnType<typeof postgresStatsProbe>>;
const value = (out: Out, name: string, labels: Record<string, string> = {}) =>
  out.metrics?.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;

describe('postgres-stats against the local server', () => {
  const held: Client[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const c = new Client({ connectionString: env.databaseUrl });
      await c.connect();
      held.push(c);
    }
    await held[1].query('BEGIN'); // idle in transaction
    await held[1].query('SELECT 1');
  });
  afterAll(async () => {
    for (const c of held) await c.end().catch(() => undefined);
  });

  it('connections by state, max connections, database sizes; a primary with no replicas', async () => {
    const out = await postgresStatsProbe(check(), probeContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(value(out, 'pg_up')).toBe(1);
    expect(value(out, 'pg_in_recovery')).toBe(0);
    expect(value(out, 'pg_max_connections')).toBeGreaterThan(0);
    expect(value(out, 'pg_connections', { state: 'idle in transaction' })).toBeGreaterThanOrEqual(1);
    expect(value(out, 'pg_connections', { state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(value(out, 'pg_connections', { state: 'active' })).toBeGreaterThanOrEqual(1); // the probe's own
    expect(value(out, 'pg_connections_total')).toBeGreaterThanOrEqual(3);
    const { rows } = await held[0].query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b');
    const size = value(out, 'pg_database_size_bytes', { database: dbName });
    expect(size).toBeGreaterThan(0);
    // Sizes move with other writers; within 10 % of what another session reads.
    expect(Math.abs((size as number) - Number(rows[0].b)) / Number(rows[0].b)).toBeLessThan(0.1);
    expect(value(out, 'pg_replicas')).toBe(0);
    expect(value(out, 'pg_standby_lag_seconds')).toBeUndefined();
    expect(out.facts.result).toMatchObject({ inRecovery: false, replicas: 0 });
    expect(asCheckResult({ ...out, ok: true }).success).toBe(true);
    const facts = { ok: true, latencyMs: out.latencyMs, ...out.facts };
    expect(
      evaluateConditions(
        ['metric("pg_connections_total") < metric("pg_max_connections")', 'metric("pg_replicas") == 0.0'],
        facts,
      ),
    ).toEqual({ ok: true });
  });

  it('leaves no session or transaction behind', async () => {
    await postgresStatsProbe(check(), probeContext());
    const { rows } = await held[0].query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'fleetwatch-check' AND pid <> pg_backend_pid()",
    );
    // Other files' probes may run at the same time: none of ours lingers for long.
    expect(rows[0].n).toBeLessThanOrEqual(4);
  });

  it('down: closed port, denied address', async () => {
    const closed = await postgresStatsProbe(check({ port: await closedPort() }), probeContext());
    expect(closed).toMatchObject({ ok: false, metrics: [] });
    expect(closed.failureReason).toMatch(/ECONNREFUSED/);
    const denied = await postgresStatsProbe(
      check({ host: '127.0.0.2' }),
      probeContext({ policy: createTargetPolicy(['127.0.0.2/32']) }),
    );
    expect(denied.failureReason).toMatch(/denied network 127\.0\.0\.2\/32/);
  });
});

/** A backend message: its type byte, then its length (itself included) and body. */
function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstring = (text: string) => Buffer.from(`${text}\0`, 'latin1');
const readyForQuery = () => message('Z', Buffer.from('I'));

describe('postgres-stats against a server whose answer never ends', () => {
  // pg holds a message until its last byte, whatever length its header claims: without a bound, all the server streamed
  // piled up in the collector until the timeout.
  const streamed = 64 * 1024 * 1024;

  /** Asserts the flooded run's outcome, and that a normal run of the real server alongside it was not harmed. */
  async function expectCutOff(flood: Awaited<ReturnType<typeof floodingServer>>): Promise<void> {
    const started = performance.now();
    const [out, other] = await Promise.all([
      postgresStatsProbe(check({ host: '127.0.0.1', port: flood.port }), probeContext({ timeoutMs: 20_000 })),
      postgresStatsProbe(check(), probeContext()),
    ]);
    expect(out).toMatchObject({
      ok: false,
      failureReason: `the server's answers exceeded ${MAX_READ_BYTES} bytes`,
      metrics: [],
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    await flood.expectCut();
    // What the server got out before the cut: the limit, and what the sockets' buffers hold on the way.
    expect(flood.sent.bytes).toBeLessThan(MAX_READ_BYTES + 16 * 1024 * 1024);
    expect(asCheckResult({ ...out, metrics: undefined }).success).toBe(true);
    expect(other).toMatchObject({ ok: true });
    expect(value(other, 'pg_up')).toBe(1);
  }

  it('a notice announcing 1 GiB in answer to the startup: cut past MAX_READ_BYTES, DOWN saying so', async () => {
    const flood = await floodingServer(() => {
      const head = Buffer.alloc(5);
      head.write('N', 0);
      head.writeInt32BE(1024 ** 3, 1);
      return head;
    }, streamed);
    try {
      await expectCutOff(flood);
    } finally {
      await flood.close();
    }
  });

  it('a row of 1 GiB in answer to the first catalogue query: cut past MAX_READ_BYTES, DOWN saying so', async () => {
    // A minimal server: trust, BEGIN answered, then the first SELECT's row announces a 1 GiB column.
    const flood = await floodingServer((data, s) => {
      const type = String.fromCharCode(data[0]);
      if (type !== 'Q') {
        // The startup message (no type byte): authentication OK, ready.
        s.write(Buffer.concat([message('R', Buffer.alloc(4)), readyForQuery()]));
        return null;
      }
      const sql = data.toString('latin1', 5);
      if (sql.startsWith('BEGIN')) {
        s.write(Buffer.concat([message('C', cstring('BEGIN')), readyForQuery()]));
        return null;
      }
      const field = Buffer.alloc(18);
      field.writeInt32BE(0, 0); // table
      field.writeInt16BE(0, 4); // column
      field.writeInt32BE(25, 6); // text
      field.writeInt16BE(-1, 10);
      field.writeInt32BE(-1, 12);
      field.writeInt16BE(0, 16);
      const count = Buffer.alloc(2);
      count.writeInt16BE(1);
      const description = message('T', Buffer.concat([count, cstring('version'), field]));
      const row = Buffer.alloc(11);
      row.write('D', 0);
      row.writeInt32BE(4 + 2 + 4 + 1024 ** 3, 1);
      row.writeInt16BE(1, 5);
      row.writeInt32BE(1024 ** 3, 7);
      return Buffer.concat([description, row]);
    }, streamed);
    try {
      await expectCutOff(flood);
    } finally {
      await flood.close();
    }
  });
});

describe('postgres-stats replication figures: a private primary and its streaming standby', () => {
  const password = 'replica-horse-battery';
  let primary: PrivatePostgres;
  let standby: PrivatePostgres;
  let onPrimary: Client;
  let onStandby: Client;
  beforeAll(async () => {
    primary = await startPrivatePostgres('fwrepl', password);
    standby = await startStandby(primary, password);
    const connect = async (port: number) => {
      const c = new Client({ host: '127.0.0.1', port, user: 'fwrepl', password, database: 'postgres' });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    onPrimary = await connect(primary.port);
    onStandby = await connect(standby.port);
  }, 120_000);
  afterAll(async () => {
    await onStandby?.end().catch(() => undefined);
    await onPrimary?.end().catch(() => undefined);
    await standby?.stop();
    await primary?.stop();
  });

  const at = (p: PrivatePostgres) =>
    postgresStatsProbe(
      check({ host: '127.0.0.1', port: p.port, user: 'fwrepl', passwordEnv: 'FLEETWATCH_SECRET_PG' }),
      { ...probeContext(), env: { FLEETWATCH_SECRET_PG: password } },
    );

  it('the primary lists its replica with its lag; the standby says it is in recovery and how far replay is behind', async () => {
    // Until the standby's first feedback, pg_stat_replication has its row but no replay_lsn: the lag in bytes is
    // unknown then and left out (seen in CI), so the primary is read until the replica's figures are all there.
    const p = await waitFor(async () => {
      const o = await at(primary);
      const lagBytes = o.metrics?.some((m) => m.name === 'pg_replica_lag_bytes');
      return value(o, 'pg_replicas') === 1 && lagBytes ? o : undefined;
    });
    expect(value(p, 'pg_in_recovery')).toBe(0);
    const replica = p.metrics?.find((m) => m.name === 'pg_replica_lag_seconds')?.labels?.['replica'];
    expect(replica).toMatch(/:\d+$/);
    expect(value(p, 'pg_replica_lag_bytes', { replica: replica as string })).toBeGreaterThanOrEqual(0);

    // Caught up: no lag.
    const s = await waitFor(async () => {
      const o = await at(standby);
      return o.ok && value(o, 'pg_standby_lag_bytes') === 0 ? o : undefined;
    });
    expect(value(s, 'pg_in_recovery')).toBe(1);
    expect(value(s, 'pg_standby_lag_seconds')).toBe(0);
    expect(value(s, 'pg_replicas')).toBeUndefined();

    // Replay paused while the primary writes: WAL arrives but is not replayed — lag in bytes and seconds
    // (seconds since the last replayed transaction: one is replayed first, so there is one).
    await onPrimary.query('CREATE TABLE IF NOT EXISTS lag_probe (n int)');
    await waitFor(async () => (await onStandby.query("SELECT to_regclass('lag_probe') AS t")).rows[0].t !== null);
    await onStandby.query('SELECT pg_wal_replay_pause()');
    try {
      await new Promise((r) => setTimeout(r, 1100));
      await onPrimary.query('INSERT INTO lag_probe SELECT generate_series(1, 1000)');
      const behind = await waitFor(async () => {
        const o = await at(standby);
        return (value(o, 'pg_standby_lag_bytes') ?? 0) > 0 ? o : undefined;
      });
      expect(value(behind, 'pg_standby_lag_seconds')).toBeGreaterThan(0);
      const facts = { ok: true, latencyMs: behind.latencyMs, ...behind.facts };
      expect(evaluateConditions(['metric("pg_standby_lag_bytes") == 0.0'], facts).ok).toBe(false);
    } finally {
      await onStandby.query('SELECT pg_wal_replay_resume()');
    }
    await waitFor(async () => value(await at(standby), 'pg_standby_lag_bytes') === 0);
  });
});
