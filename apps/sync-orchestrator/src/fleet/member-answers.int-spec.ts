import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRedis, FleetCache } from '@fleetwatch/live-state';
import { closeSqlPool, createSqlPool, FleetSitesRepository, type SqlPool } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { FleetPoller } from './fleet-poller';
import { loadLeaderConfig, type LeaderMember } from './leader-config';
import { MAX_SNAPSHOT_DEPTH } from './member-client';
import { FleetRecordStore } from './member-record-store';
import { memberReport, memberSnapshot, startMemberServer, type MemberServer } from './member-server.spec-helpers';

// Members that answer badly, on a real HTTP server, polled by the leader's real poll cycle into real Redis and
// Postgres: each such member fails (or loses only its snapshot) with an error that says what happened, never the
// credentials, and the good member polled in the same cycle is written as OK.

const CANARY = 'canary-answers-SECRET-do-not-leak';
jest.setTimeout(30_000);

/** An item whose `rules` is `depth` arrays nested (what a buggy or hostile member may send: JSON.parse takes it). */
const nested = (depth: number) => `{"key":"deep","rules":${'['.repeat(depth)}${']'.repeat(depth)}}`;

const json = (res: ServerResponse, status: number, body: string): void =>
  void res.writeHead(status, { 'content-type': 'application/json' }).end(body);

/** Whether the `restarts` member answers 500 to everything. */
let restartsFails = false;
/** Bytes the `huge` member got out before the leader cut it. */
let hugeSent = 0;

/** `/<behaviour>/api/v1/...`: the behaviour is the member's name. */
function answer(name: string, path: string, req: IncomingMessage, res: ServerResponse): void {
  const authorized = req.headers.authorization === `Bearer ${CANARY}`;
  if (!authorized && name !== 'unauthorized') return json(res, 401, '{"error":{"code":"unauthorized"}}');
  const isReport = path === '/api/v1/status/report';
  const isSnapshot = path === '/api/v1/system/snapshot/current';
  switch (name) {
    case 'good':
      if (isReport) return json(res, 200, JSON.stringify(memberReport(name)));
      if (isSnapshot) return json(res, 200, JSON.stringify(memberSnapshot(name, [{ key: 'web', type: 'http' }])));
      return json(res, 404, '{}');
    case 'deep':
      if (isReport) return json(res, 200, JSON.stringify(memberReport(name)));
      if (isSnapshot) {
        const body = JSON.stringify(memberSnapshot(name, [])).replace('"checks":[]', `"checks":[${nested(10_000)}]`);
        return json(res, 200, body);
      }
      return json(res, 404, '{}');
    case 'midbody':
      // Headers and the start of the body, then nothing.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
      res.write('{"site":"midbody",');
      return;
    case 'huge': {
      // A body without a length that never ends (chunked): only the leader's limit stops it.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"site":"huge","pad":"');
      const chunk = 'x'.repeat(64 * 1024);
      const more = () => {
        while (!res.destroyed && hugeSent < 200 * 1024 * 1024) {
          hugeSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
      return;
    }
    case 'restarts':
      if (restartsFails) return json(res, 500, '{"error":{"code":"internal"}}');
      if (isReport) return json(res, 200, JSON.stringify(memberReport(name)));
      if (isSnapshot) return json(res, 200, JSON.stringify(memberSnapshot(name, [{ key: 'web', type: 'http' }])));
      return json(res, 404, '{}');
    case 'garbage':
      return json(res, 200, '{"site": "garbage", oops');
    case 'html502':
      return void res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
    case 'html200':
      return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Sign in</body></html>');
    case 'unauthorized':
      return json(res, 401, '{"error":{"code":"unauthorized","message":"wrong credentials"}}');
    case 'forbidden':
      return json(res, 403, '{"error":{"code":"forbidden","message":"this API key acts as ingest"}}');
    default:
      return json(res, 404, '{}');
  }
}

let server: MemberServer | undefined;
let base: string;
let db: testing.IsolatedDatabase;
let pool: SqlPool;
let redis: Redis;
let cache: FleetCache;
let sites: FleetSitesRepository;
const pollers: FleetPoller[] = [];

function membersOf(names: string[]): LeaderMember[] {
  return loadLeaderConfig(
    JSON.stringify(
      names.map((name) => ({
        name,
        url: `${base}/${name}`,
        credentials: { type: 'token', tokenEnv: 'ANSWERS_TOKEN' },
      })),
    ),
    { ANSWERS_TOKEN: CANARY },
  );
}

// No test here waits for a member timeout to pass: they are generous, so a good member's answer on a loaded CI box
// (read beside the deep or huge members', first cycle of the file) is not cut by it (2 s cut one on CI).
async function cycleOver(names: string[], memberTimeoutMs = 5_000, timeoutMs = 10_000) {
  const members = membersOf(names);
  await sites.syncConfigured(
    members.map((m) => ({ name: m.name, url: m.url, tags: [], failoverOrder: null, propertyOverrides: {} })),
  );
  const poller = new FleetPoller(new FleetRecordStore(redis), sites, {
    concurrency: names.length,
    timeoutMs,
    memberTimeoutMs,
  });
  pollers.push(poller);
  return poller.cycle(members);
}

beforeAll(async () => {
  const env = testing.testEnv();
  db = await testing.createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 2 });
  redis = createRedis({ url: env.redisUrl, keyPrefix: `${env.redisPrefix}member-answers:`, connectionName: 'test' });
  cache = new FleetCache(redis);
  sites = new FleetSitesRepository(pool);
  server = await startMemberServer(answer);
  base = server.base;
});

afterAll(async () => {
  for (const p of pollers) await p.close();
  await server?.close();
  redis?.disconnect();
  if (pool) await closeSqlPool(pool);
  await db?.dispose();
});

it('a snapshot nested too deep to store costs that member its snapshot only: the cycle and the others are written', async () => {
  const r = await cycleOver(['deep', 'good']);
  expect(r).toMatchObject({ ok: 2, failed: 0 });
  expect((await cache.get('good'))?.attempt).toMatchObject({ ok: true, error: null });
  const deep = await cache.get('deep');
  expect(deep?.attempt).toMatchObject({
    ok: true,
    error: expect.stringContaining(
      `snapshot not read (the last one kept): snapshot nested deeper than ${MAX_SNAPSHOT_DEPTH} levels`,
    ),
  });
  expect(deep?.good?.report?.site).toBe('deep');
  expect(deep?.good?.snapshot).toBeNull();
  expect(await sites.find('deep')).toMatchObject({ consecutiveFailures: 0 });
});

it('members that hang mid-body, answer without end, garbage, HTML or 401: each fails on its own, saying why', async () => {
  const names = ['midbody', 'huge', 'garbage', 'html502', 'html200', 'unauthorized', 'forbidden', 'good'];
  const t0 = Date.now();
  // A member timeout of 3 s (not 2 s): the good member's report and snapshot are read beside 8 MB of the huge one's,
  // on a box that CI may load with other files; the overall timeout (10 s) is what nobody may wait for.
  const r = await cycleOver(names, 3_000, 10_000);
  // The member timeout bounds the one that hangs mid-body; nobody waits for the overall timeout.
  expect(Date.now() - t0).toBeLessThan(8_000);
  const errors = new Map<string, string | null>();
  for (const n of names) errors.set(n, (await cache.get(n))?.attempt.error ?? null);
  // The errors first: where a count is off, they say which member and why.
  expect(Object.fromEntries(errors)).toEqual({
    midbody: expect.stringMatching(/^GET \/api\/v1\/status\/report: no answer within 3000 ms \(member timeout\)$/),
    // A report is cut at one report's limit (1 MiB with the default budget), well before the 8 MiB per answer.
    huge: expect.stringMatching(/^GET \/api\/v1\/status\/report: the status report exceeded 1048576 bytes /),
    garbage: 'GET /api/v1/status/report: the answer is not JSON',
    html502: 'GET /api/v1/status/report: answered 502',
    html200: 'GET /api/v1/status/report: the answer is not JSON',
    // Wrong credentials read as such, not as an outage.
    unauthorized:
      'GET /api/v1/status/report: answered 401 (the member refused the leader’s credentials: check the secret in the variable its credentials name)',
    forbidden:
      'GET /api/v1/status/report: answered 403 (the member refused the leader’s credentials this read: a disabled user, or an API key without the fleet scope)',
    good: null,
  });
  expect(r).toMatchObject({ ok: 1, failed: 7, notStarted: 0 });
  // The leader cut the connection: what the member got out (1 MiB read, plus what the loopback's socket buffers took,
  // up to some 40 MB here) is far from the 200 MB it offers.
  expect(hugeSent).toBeLessThan(100 * 1024 * 1024);
  for (const e of errors.values()) expect(e ?? '').not.toContain(CANARY);
  expect(JSON.stringify(await sites.list())).not.toContain(CANARY);
});

it('a restarted leader whose first poll of a member fails keeps its last good report from the cache, with the error', async () => {
  await cycleOver(['restarts']);
  const before = await cache.get('restarts');
  expect(before?.attempt.ok).toBe(true);
  restartsFails = true;
  try {
    // A new poller and store: what a restarted sync-orchestrator starts with (nothing in memory, the cache in Redis).
    await new Promise((r) => setTimeout(r, 10));
    expect(await cycleOver(['restarts'])).toMatchObject({ ok: 0, failed: 1 });
  } finally {
    restartsFails = false;
  }
  const after = await cache.get('restarts');
  expect(after?.attempt).toMatchObject({ ok: false, error: 'GET /api/v1/status/report: answered 500' });
  expect(Date.parse(after?.attempt.at ?? '')).toBeGreaterThan(Date.parse(before?.good?.at ?? ''));
  expect(after?.good).toEqual(before?.good);
});
