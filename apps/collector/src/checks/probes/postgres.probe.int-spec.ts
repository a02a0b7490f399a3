import { postgresCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { testEnv } from '@fleetwatch/testing';
import { Client } from 'pg';
import { MAX_READ_BYTES, postgresProbe } from './postgres.probe';
import {
  closedPort,
  floodingServer,
  openSockets,
  probeContext,
  silentListener,
  socketsSettle,
  startPrivatePostgres,
  type PrivatePostgres,
} from './probes.int-helpers';

jest.setTimeout(60_000);

// Against the shared local Postgres (the run's own database, read only) and, for
// passwords, a private cluster that asks for one.

const env = testEnv();
const server = new URL(env.server.databaseUrl);
const host = server.hostname;
const port = Number(server.port || 5432);
const user = decodeURIComponent(server.username || 'postgres');

type PgInput = Partial<Extract<CheckInput, { type: 'postgres' }>>;
const check = (fields: PgInput) =>
  postgresCheckFields.parse({ name: 'pg', type: 'postgres', host, port, user, database: env.databaseName, ...fields });

describe('postgres probe against the local server', () => {
  it('is up: SELECT 1, the server version, not a standby', async () => {
    const out = await postgresProbe(check({}), probeContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.latencyMs).toBeGreaterThan(0);
    expect(out.facts.result).toEqual({
      row: { '?column?': 1 },
      serverVersion: expect.stringMatching(/^\d+(\.\d+)?/),
      inRecovery: false,
    });
  });

  it("exposes the first row's numeric columns as metrics, values exact in the row", async () => {
    const query = `select 0.25::float8 as pg_lag_seconds, 42::bigint as big, 9007199254740993::bigint as too_big,
      12345678901234567890.5::numeric as huge, 1.5::numeric as small, 'x'::text as t, null::int as n,
      true as b, '{"a":[1]}'::jsonb as j, 'NaN'::float8 as nan, '2024-05-01 10:00:00+00'::timestamptz at time zone 'UTC' as ts`;
    const out = await postgresProbe(check({ query }), probeContext());
    expect(out.ok).toBe(true);
    expect((out.facts.result as { row: unknown }).row).toEqual({
      pg_lag_seconds: 0.25,
      big: 42,
      too_big: '9007199254740993',
      huge: '12345678901234567890.5',
      small: 1.5,
      t: 'x',
      n: null,
      b: true,
      j: { a: [1] },
      nan: 'NaN',
      ts: '2024-05-01 10:00:00',
    });
    expect(out.facts.metrics).toEqual([
      { name: 'pg_lag_seconds', labels: {}, value: 0.25 },
      { name: 'big', labels: {}, value: 42 },
      { name: 'too_big', labels: {}, value: 9007199254740992 },
      { name: 'huge', labels: {}, value: 12345678901234567000 },
      { name: 'small', labels: {}, value: 1.5 },
    ]);
  });

  it('metric("pg_lag_seconds") < 30 judges a query aliasing that column (the real condition evaluator)', async () => {
    const conditions = ['metric("pg_lag_seconds") < 30', 'result.inRecovery == false', 'result.row.lag_source == "q"'];
    for (const [lag, ok] of [
      [2.5, true],
      [45, false],
    ] as const) {
      const query = `select ${lag}::float8 as pg_lag_seconds, 'q' as lag_source`;
      const out = await postgresProbe(check({ query }), probeContext());
      expect(out.ok).toBe(true);
      const verdict = evaluateConditions(conditions, { ok: out.ok, latencyMs: out.latencyMs, ...out.facts });
      expect(verdict.ok).toBe(ok);
      if (!ok) expect(verdict.failed?.index).toBe(0);
    }
  });

  it('the replication-lag query of a primary: lag is null, so no metric', async () => {
    const query = 'select extract(epoch from now() - pg_last_xact_replay_timestamp()) as lag';
    const out = await postgresProbe(check({ query }), probeContext());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({ row: { lag: null }, inRecovery: false });
    expect(out.facts.metrics).toEqual([]);
  });

  it('fetches only the first row of a large result', async () => {
    const started = performance.now();
    const out = await postgresProbe(
      check({ query: 'select g, repeat($$x$$, 1000) as pad from generate_series(1, 5000000) g' }),
      probeContext({ timeoutMs: 10_000 }),
    );
    expect(out.ok).toBe(true);
    expect((out.facts.result as { row: { g: number } }).row.g).toBe(1);
    // 5 million 1 kB rows would take far longer than this to cross the socket.
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('a first row larger than MAX_READ_BYTES is DOWN at once, not held until the timeout', async () => {
    const started = performance.now();
    const out = await postgresProbe(
      check({ query: `select repeat('x', ${MAX_READ_BYTES + 1024}) as big` }),
      probeContext({ timeoutMs: 20_000 }),
    );
    expect(out).toMatchObject({ ok: false, failureReason: `the server's answers exceeded ${MAX_READ_BYTES} bytes` });
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('a server announcing a 1 GiB message: the socket is dropped past MAX_READ_BYTES', async () => {
    // Answers the startup message with a NoticeResponse whose header claims 1 GiB, streams 64 MiB of it, then waits:
    // pg holds a message until its last byte, so without a bound all of it piled up in the collector until the timeout.
    const streamed = 64 * 1024 * 1024;
    const flood = await floodingServer(() => {
      const header = Buffer.alloc(5);
      header.write('N', 0);
      header.writeInt32BE(1024 ** 3, 1);
      return header;
    }, streamed);
    try {
      const out = await postgresProbe(
        check({ host: '127.0.0.1', port: flood.port }),
        probeContext({ timeoutMs: 5000 }),
      );
      expect(out).toMatchObject({ ok: false, failureReason: `the server's answers exceeded ${MAX_READ_BYTES} bytes` });
      await flood.expectCut();
    } finally {
      await flood.close();
    }
  });

  it('a query that returns no row: ok, row null', async () => {
    const out = await postgresProbe(check({ query: 'select 1 where false' }), probeContext());
    expect(out).toMatchObject({ ok: true, facts: { result: { row: null }, metrics: [] } });
  });

  it.each([
    ['create table fw_probe_must_not_exist (x int)', /read-only transaction \(SQLSTATE 25006\)/],
    ['commit; create table fw_probe_must_not_exist (x int)', /cannot insert multiple commands/],
    ['set transaction read write', /read-write mode must be set before any query/],
    ['select 1/0', /division by zero \(SQLSTATE 22012\)/],
  ])('the query cannot write or escape its read-only transaction: %s', async (query, reason) => {
    const out = await postgresProbe(check({ query }), probeContext());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/^query failed: /);
    expect(out.failureReason).toMatch(reason);
    const c = new Client({ connectionString: env.databaseUrl });
    await c.connect();
    try {
      const { rows } = await c.query("select to_regclass('public.fw_probe_must_not_exist') as t");
      expect(rows[0].t).toBeNull();
    } finally {
      await c.end();
    }
  });

  it('a wrong database is named', async () => {
    const out = await postgresProbe(check({ database: 'fw_no_such_database' }), probeContext());
    expect(out).toMatchObject({ ok: false, failureReason: 'database "fw_no_such_database" does not exist' });
  });

  it('a closed port is connection refused', async () => {
    const p = await closedPort();
    const out = await postgresProbe(check({ port: p }), probeContext());
    expect(out).toMatchObject({ ok: false, failureReason: `connect ECONNREFUSED 127.0.0.1:${p}` });
  });

  it('a query past the timeout: the attempt ends at the deadline and the server stops the query', async () => {
    const marker = `fw_sleep_${Date.now()}`;
    const started = performance.now();
    const out = await postgresProbe(
      check({ query: `select pg_sleep(30) as ${marker}` }),
      probeContext({ timeoutMs: 600 }),
    );
    expect(out).toMatchObject({ ok: false, failureReason: 'timed out after 600 ms' });
    expect(performance.now() - started).toBeLessThan(1500);
    // statement_timeout (the same 600 ms) ends it server-side although our socket is gone.
    const c = new Client({ connectionString: env.databaseUrl });
    await c.connect();
    try {
      const deadline = Date.now() + 5000;
      let running = 1;
      while (running > 0 && Date.now() < deadline) {
        const { rows } = await c.query(
          `select count(*)::int as n from pg_stat_activity where query like $1 and state = 'active' and pid <> pg_backend_pid()`,
          [`%${marker}%`],
        );
        running = rows[0].n;
        if (running > 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(running).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('an abort from the runner while the server says nothing: released at once, socket closed', async () => {
    const silent = await silentListener();
    try {
      const ac = new AbortController();
      const pending = postgresProbe(
        check({ host: '127.0.0.1', port: silent.port }),
        probeContext({ signal: ac.signal }),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(silent.accepted).toBe(1);
      ac.abort(new Error('collector shutting down'));
      const out = await pending;
      expect(out).toMatchObject({ ok: false, failureReason: 'aborted: collector shutting down' });
      await new Promise((r) => setTimeout(r, 100));
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('a denied address is refused without connecting', async () => {
    const listener = await silentListener();
    try {
      const policy = createTargetPolicy(['127.0.0.1/32']);
      for (const h of ['127.0.0.1', '2130706433', '0x7f000001', 'localhost']) {
        const out = await postgresProbe(check({ host: h, port: listener.port }), probeContext({ policy }));
        expect(out.ok).toBe(false);
        expect(out.failureReason).toMatch(/address 127\.0\.0\.1 (of \S+ )?is in denied network 127\.0\.0\.1\/32/);
      }
      expect(listener.accepted).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('leaves no socket behind over 50 runs of success, failure and timeout', async () => {
    const silent = await silentListener();
    const refused = await closedPort();
    try {
      const before = openSockets();
      for (let i = 0; i < 50; i++) {
        const kind = i % 5;
        const c =
          kind === 0
            ? check({})
            : kind === 1
              ? check({ query: 'select 1/0' })
              : kind === 2
                ? check({ database: 'fw_no_such_database' })
                : kind === 3
                  ? check({ port: refused })
                  : check({ port: silent.port });
        const out = await postgresProbe(c, probeContext({ timeoutMs: kind === 4 ? 50 : 5000 }));
        expect(out.ok).toBe(kind === 0);
      }
      expect(await socketsSettle(before)).toBeLessThanOrEqual(before);
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });
});

describe('postgres probe: passwords from the collector environment', () => {
  let pg: PrivatePostgres;
  const password = 'correct-horse-battery-staple';
  beforeAll(async () => {
    pg = await startPrivatePostgres('fwcheck', password);
  });
  afterAll(() => pg?.stop());

  const privateCheck = (fields: PgInput = {}) =>
    check({ host: '127.0.0.1', port: pg.port, user: pg.user, database: 'postgres', ...fields });

  it('connects with the password the named variable holds', async () => {
    const out = await postgresProbe(
      privateCheck({ passwordEnv: 'FLEETWATCH_SECRET_PG_PASSWORD' }),
      probeContext({ env: { FLEETWATCH_SECRET_PG_PASSWORD: password } }),
    );
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
  });

  it('a wrong password fails authentication, and the password appears nowhere', async () => {
    const wrong = 'wrong-password-4711';
    const out = await postgresProbe(
      privateCheck({ passwordEnv: 'FLEETWATCH_SECRET_PG_PASSWORD' }),
      probeContext({ env: { FLEETWATCH_SECRET_PG_PASSWORD: wrong } }),
    );
    expect(out).toMatchObject({ ok: false, failureReason: `password authentication failed for user "${pg.user}"` });
    expect(JSON.stringify(out)).not.toContain(wrong);
  });

  it('a variable that is not set is named, never guessed', async () => {
    const out = await postgresProbe(
      privateCheck({ passwordEnv: 'FLEETWATCH_SECRET_PG_UNSET' }),
      probeContext({ env: {} }),
    );
    expect(out).toMatchObject({
      ok: false,
      latencyMs: null,
      failureReason: 'environment variable FLEETWATCH_SECRET_PG_UNSET (passwordEnv) is not set on this collector',
    });
  });

  it("without passwordEnv it never falls back to the collector's own PGPASSWORD", async () => {
    const saved = process.env['PGPASSWORD'];
    process.env['PGPASSWORD'] = password;
    try {
      const out = await postgresProbe(privateCheck(), probeContext());
      expect(out).toMatchObject({
        ok: false,
        failureReason: 'the server asks for a password: give the check a passwordEnv',
      });
    } finally {
      if (saved === undefined) delete process.env['PGPASSWORD'];
      else process.env['PGPASSWORD'] = saved;
    }
  });
});
