import type { Pool } from 'pg';
import { createIsolatedDatabase, TcpProxy, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { AdvisoryLease } from '../leases/advisory-lease';
import { closeSqlPool, createSqlPool, type SqlPool } from '../sql/sql-pool';
import { FleetPollFencedError, FleetSitesRepository, type FleetSiteWrite } from './fleet-sites.repository';

// fleet_sites' writes under the fleet-poll lease's epoch (fleet_poll_epochs), and the removal of configured members
// while no replica with a leader configuration holds the presence lock, on real Postgres.

const LEASE = 'test.fleet-poll';
const PRESENCE = 'test.leader-config';
const site = (name: string): FleetSiteWrite => ({
  name,
  url: `http://127.0.0.1:1/${name}`,
  tags: [],
  failoverOrder: null,
  propertyOverrides: {},
});

let db: IsolatedDatabase;
let pool: SqlPool;
let sites: FleetSitesRepository;
const leases: AdvisoryLease[] = [];
const lease = (o: { sharedLocks?: string[] } = {}) => {
  const l = new AdvisoryLease({ databaseUrl: db.databaseUrl, name: LEASE, ...o });
  leases.push(l);
  return l;
};
const rows = async () =>
  (
    await (pool as unknown as Pool).query<{ name: string; source: string; last_attempt_at: Date | null }>(
      'SELECT name, source, last_attempt_at FROM fleet_sites ORDER BY name',
    )
  ).rows;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  sites = new FleetSitesRepository(pool);
});
afterAll(async () => {
  for (const l of leases) await l.release();
  if (pool) await closeSqlPool(pool);
  await db?.dispose();
});

it('advances the epoch only for the session holding the lease; writes under an older epoch are refused', async () => {
  const a = lease();
  const b = lease();
  expect(await a.tryAcquire()).toBe(true);
  expect(await b.tryAcquire()).toBe(false);
  // B's session exists but does not hold the lock: no epoch for it.
  await expect(sites.advancePollEpoch(LEASE, 'b', { pid: b.sessionPid ?? -1 })).rejects.toBeInstanceOf(
    FleetPollFencedError,
  );
  const first = await sites.advancePollEpoch(LEASE, 'a', { pid: a.sessionPid ?? -1 });
  const fenceA = { lease: LEASE, epoch: first };
  await sites.syncConfigured([site('eu'), site('us')], fenceA);
  const at = new Date('2026-12-05T12:00:00Z');
  await sites.recordPolls([{ name: 'eu', at, ok: true, error: null }], fenceA);
  expect((await rows()).map((r) => [r.name, r.last_attempt_at?.toISOString() ?? null])).toEqual([
    ['eu', at.toISOString()],
    ['us', null],
  ]);

  // A's session ends (the lock with it); B takes the lease and the next epoch. A's pid can no longer advance.
  const aPid = a.sessionPid ?? -1;
  await (pool as unknown as Pool).query('SELECT pg_terminate_backend($1)', [aPid]);
  let taken = false;
  for (let i = 0; i < 50 && !taken; i++) {
    taken = await b.tryAcquire();
    if (!taken) await new Promise((r) => setTimeout(r, 50));
  }
  expect(taken).toBe(true);
  await expect(sites.advancePollEpoch(LEASE, 'a', { pid: aPid })).rejects.toBeInstanceOf(FleetPollFencedError);
  const second = await sites.advancePollEpoch(LEASE, 'b', { pid: b.sessionPid ?? -1 });
  expect(second).toBe(first + 1);

  // A's late writes of its cycle: refused, nothing written.
  const late = new Date('2026-12-05T12:00:30Z');
  await expect(sites.recordPolls([{ name: 'eu', at: late, ok: true, error: null }], fenceA)).rejects.toThrow(
    /taken by another replica/,
  );
  await expect(sites.syncConfigured([site('eu')], fenceA)).rejects.toBeInstanceOf(FleetPollFencedError);
  expect((await rows()).map((r) => [r.name, r.last_attempt_at?.toISOString() ?? null])).toEqual([
    ['eu', at.toISOString()],
    ['us', null],
  ]);
  // B's, under the current epoch, pass.
  await sites.recordPolls([{ name: 'us', at: late, ok: false, error: 'down' }], { lease: LEASE, epoch: second });
  expect((await rows()).find((r) => r.name === 'us')?.last_attempt_at?.toISOString()).toBe(late.toISOString());
});

it('removes the configured members only while no session holds the presence lock; registered ones stay', async () => {
  await (pool as unknown as Pool).query(
    `INSERT INTO fleet_sites (name, url, source) VALUES ('registered', 'http://127.0.0.1:1/r', 'registration')`,
  );
  // A replica with a leader configuration: its lease session holds the presence lock (shared), lease or not.
  const withConfig = lease({ sharedLocks: [PRESENCE] });
  const another = lease({ sharedLocks: [PRESENCE] });
  await withConfig.tryAcquire();
  await another.tryAcquire();
  expect(await sites.configuredClaimed(PRESENCE)).toBe(true);
  expect(await sites.removeConfiguredIfUnclaimed(PRESENCE)).toBeNull();
  expect((await rows()).map((r) => r.name)).toEqual(['eu', 'registered', 'us']);
  await withConfig.release();
  // Still one running.
  expect(await sites.removeConfiguredIfUnclaimed(PRESENCE)).toBeNull();
  await another.release();
  expect(await sites.configuredClaimed(PRESENCE)).toBe(false);
  expect((await sites.removeConfiguredIfUnclaimed(PRESENCE))?.sort()).toEqual(['eu', 'us']);
  expect(await rows()).toEqual([expect.objectContaining({ name: 'registered', source: 'registration' })]);
});

it("a fenced write whose replica vanished mid-transaction holds the next holder's advance for seconds, not hours", async () => {
  // A lease of its own (the earlier tests' holders still hold theirs).
  const name = `${LEASE}.vanished`;
  const own = () => {
    const l = new AdvisoryLease({ databaseUrl: db.databaseUrl, name });
    leases.push(l);
    return l;
  };
  const proxy = TcpProxy.forUrl(db.databaseUrl);
  await proxy.start();
  const farPool = createSqlPool(proxy.rewriteUrl(db.databaseUrl), { max: 1 });
  try {
    const a = own();
    const b = own();
    expect(await a.tryAcquire()).toBe(true);
    const fenceA = { lease: name, epoch: await sites.advancePollEpoch(name, 'a', { pid: a.sessionPid ?? -1 }) };
    // A's replica writes its members (one transaction, many upserts) over a connection through the proxy…
    const many = Array.from({ length: 2_000 }, (_, i) => site(`m${i}`));
    const writing = new FleetSitesRepository(farPool).syncConfigured(many, fenceA).catch(() => undefined);
    await waitFor(
      async () =>
        (
          await (pool as unknown as Pool).query(
            // This database's only: databases cloned from one template share table oids, and other files' fleet
            // polls run beside this one.
            `SELECT 1 FROM pg_locks WHERE relation = 'fleet_poll_epochs'::regclass AND mode = 'RowShareLock'
               AND granted AND pid <> pg_backend_pid()
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          )
        ).rows.length > 0,
      { intervalMs: 1, timeoutMs: 5_000, description: "A's write holding the epoch FOR SHARE" },
    );
    // …and its machine goes in the middle of it: nothing more reaches the server, and no close (a black hole). Its
    // lock session goes (the server's keep-alives end it; here, released) and B takes the lease.
    proxy.blackhole();
    await a.release();
    expect(await b.tryAcquire()).toBe(true);
    // B's advance waits for A's transaction, which the server kept open (idle in transaction, holding its FOR SHARE)
    // until the OS keep-alive gave up on the client (two hours by default): not past the fenced writes' idle limit.
    const started = Date.now();
    let epoch: number | undefined;
    while (epoch === undefined && Date.now() - started < 25_000)
      epoch = await sites
        .advancePollEpoch(name, 'b', { pid: b.sessionPid ?? -1 }, { lockTimeoutMs: 1_000 })
        .catch(() => undefined);
    expect(epoch).toBe(fenceA.epoch + 1);
    proxy.cut();
    await writing;
  } finally {
    proxy.cut();
    await closeSqlPool(farPool);
    await proxy.stop();
  }
}, 60_000);
