import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { waitFor } from '@fleetwatch/testing';
import { createSite, freePort, type E2eSite } from './site-launcher';
import { instanceGone, instanceStatusIs, instanceTarget, WatcherProcess } from './watcher-process';
import { DockerEngineStandin } from '../../apps/docker-watcher/src/standin/docker-engine.standin';

// The real Docker watcher (built, dockerode over a unix socket) against a Docker Engine API
// stand-in, pushing through a real status-ingest (behind a proxy that answers 503 first)
// into a real aggregator; read back through the gateway and the status_updates table.

jest.setTimeout(240_000);

let site: E2eSite;
let engine: DockerEngineStandin;
let proxy: Server;
let proxyUrl: string;
let refusals = 0;
let refuseNext = 0;
let apiKey: string;
let token: string;
let watcher: WatcherProcess | null = null;
let db: Client;

/** Answers 503 + Retry-After to the next `refuseNext` pushes, forwards everything else to the ingest. */
function startProxy(target: string): Promise<void> {
  const to = new URL(target);
  proxy = createServer((req, res) => {
    if (req.method === 'POST' && refuseNext > 0) {
      refuseNext--;
      refusals++;
      req.resume();
      req.on('end', () =>
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"error":"unavailable"}'),
      );
      return;
    }
    const fwd = request(
      { host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.writeHead(502).end());
    req.pipe(fwd);
  });
  return new Promise((resolve) =>
    proxy.listen(0, '127.0.0.1', () => {
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

/** The watcher's ledger of accepted states: kept across its restarts, like a volume would keep it. */
const stateFile = join(tmpdir(), `fw-docker-watcher-${process.pid}`, 'state.json');

async function startWatcher(extraEnv: Record<string, string> = {}): Promise<void> {
  const port = await freePort();
  watcher = WatcherProcess.start(
    site,
    'docker-watcher',
    port,
    {
      DOCKER_SOCKET: engine.socketPath,
      FLEETWATCH_INGEST_URL: proxyUrl,
      FLEETWATCH_INGEST_API_KEY: apiKey,
      FLEETWATCH_LOCATION: 'lab-docker',
      DOCKER_WATCHER_LABEL_FILTER: 'fleetwatch.watch=true',
      DOCKER_WATCHER_PORT: String(port),
      DOCKER_WATCHER_RECONNECT_MAX_SECONDS: '1',
      DOCKER_WATCHER_STATE_FILE: stateFile,
      WATCHER_RETRY_BASE_MS: '100',
      WATCHER_RETRY_MAX_MS: '2000',
      // The stored rows are counted exactly here: no refreshes (watcher-refresh.int-spec.ts has them).
      WATCHER_REFRESH_SECONDS: '0',
      LOG_LEVEL: 'info',
      ...extraEnv,
    },
    ['DOCKER_HOST'],
  );
}

const watcherMetrics = async (): Promise<Record<string, number>> => (watcher ? watcher.metrics() : {});
const killWatcher = (signal: NodeJS.Signals) => watcher?.kill(signal);
const target = (id: string) => instanceTarget(site, token, id);
const statusIs = (id: string, status: string, what: string) => instanceStatusIs(site, token, watcher, id, status, what);
const gone = (id: string, what: string) => instanceGone(site, token, watcher, id, what);

async function storedPerInstance(): Promise<Record<string, string[]>> {
  const r = await db.query<{ instance_id: string; lifecycle_status: string }>(
    'SELECT instance_id, lifecycle_status FROM status_updates ORDER BY id',
  );
  const out: Record<string, string[]> = {};
  for (const row of r.rows) (out[row.instance_id] ??= []).push(row.lifecycle_status);
  return out;
}

async function aggregatorDuplicates(): Promise<number> {
  const text = await (await fetch(`${site.service('aggregator').url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('fleetwatch_aggregator_duplicates_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

beforeAll(async () => {
  site = await createSite('docker-watcher');
  await site.start('aggregator');
  const ingest = await site.start('status-ingest');
  await site.start('api-gateway');
  const login = await fetch(`${site.service('api-gateway').url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: site.env['FLEETWATCH_ADMIN_PASSWORD'] }),
  });
  token = ((await login.json()) as { token: string }).token;
  const created = await fetch(`${site.service('api-gateway').url}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'docker-watcher', scopes: ['ingest'] }),
  });
  apiKey = ((await created.json()) as { key: string }).key;
  await startProxy(ingest.url);
  engine = new DockerEngineStandin(join(tmpdir(), `fw-docker-${process.pid}.sock`));
  await engine.start();
  db = new Client({ connectionString: site.db.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await killWatcher('SIGKILL');
  await db?.end();
  await engine?.stop();
  await rm(dirname(stateFile), { recursive: true, force: true });
  await new Promise((r) => (proxy ? proxy.close(r) : r(null)));
  await site?.stop();
});

describe('docker watcher', () => {
  it('resyncs on start through 503s: labelled containers become statuses in live state, others are left out', async () => {
    engine.add({
      name: 'web-1',
      labels: { 'fleetwatch.watch': 'true', 'com.docker.compose.service': 'web' },
      running: true,
    });
    engine.add({ name: 'db-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    engine.act('db-1', 'die', { exitCode: 1 });
    engine.add({ name: 'other-1', labels: {}, running: true });
    refuseNext = 2;
    await startWatcher();

    await statusIs('web-1', 'UP', 'web-1 UP after the resync');
    await statusIs('db-1', 'DOWN', 'db-1 DOWN (exited with code 1)');
    expect(await target('web-1')).toMatchObject({ locations: [{ location: 'lab-docker', status: 'UP' }] });
    expect(await target('other-1')).toBeNull();
    expect(refusals).toBe(2);
    const m = await watcherMetrics();
    expect(m['fleetwatch_pusher_retries_total']).toBeGreaterThanOrEqual(2);
    expect(m['fleetwatch_watcher_resyncs_total']).toBe(1);
    expect(engine.requests).toEqual(expect.arrayContaining(['/_ping', '/containers/json', '/events']));
  });

  it('follows the events stream: die, start and health checks change the status', async () => {
    await waitFor(() => engine.openStreams === 1, { timeoutMs: 30_000, description: 'the watcher follows /events' });
    engine.act('web-1', 'die', { exitCode: 137 });
    await statusIs('web-1', 'DOWN', 'web-1 DOWN after die');
    engine.act('web-1', 'start');
    await statusIs('web-1', 'UP', 'web-1 UP after start');
    const hc = engine.add({ name: 'api-1', labels: { 'fleetwatch.watch': 'true' }, running: true, healthcheck: true });
    await statusIs('api-1', 'UP', 'api-1 starting counts as UP');
    engine.act(hc, 'health_status', { health: 'unhealthy' });
    await statusIs('api-1', 'DOWN', 'api-1 DOWN when unhealthy');
    engine.act(hc, 'health_status', { health: 'healthy' });
    await statusIs('api-1', 'UP', 'api-1 UP when healthy again');
    engine.act('api-1', 'pause');
    await statusIs('api-1', 'PAUSED', 'api-1 PAUSED');
    engine.act('api-1', 'unpause');
    await statusIs('api-1', 'UP', 'api-1 UP after unpause');
  });

  it('a reconnect and a restart mid-stream resync without storing anything twice; a change made meanwhile arrives', async () => {
    const settled = async () =>
      waitFor(async () => (await watcherMetrics())['fleetwatch_pusher_pending'] === 0, {
        timeoutMs: 30_000,
        description: 'the watcher has nothing left to send',
      });
    await settled();
    const before = await storedPerInstance();
    expect(before['web-1']).toEqual(['running', 'failed', 'running']);
    expect(before['db-1']).toEqual(['failed']);
    expect(before['other-1']).toBeUndefined();

    // The engine drops the stream: the watcher reconnects and resyncs (same states → same updateIds).
    engine.dropStreams();
    await waitFor(async () => (await watcherMetrics())['fleetwatch_watcher_resyncs_total'] === 2, {
      timeoutMs: 30_000,
      description: 'a second resync after the reconnect',
    });
    await waitFor(() => engine.openStreams === 1, { timeoutMs: 30_000, description: 'the stream is followed again' });

    // Killed mid-stream; db-1 starts while no watcher runs; a new watcher resyncs.
    const duplicatesBefore = await aggregatorDuplicates();
    // The ledger is written within 0.5 s of an acceptance: a kill before that only costs a resend the ingest drops
    // as a repeat, but this case is about what the ledger knew.
    await new Promise((r) => setTimeout(r, 1_000));
    await killWatcher('SIGKILL');
    engine.act('db-1', 'start');
    await startWatcher();
    await statusIs('db-1', 'UP', 'db-1 UP after the restarted watcher resynced');
    await settled();
    // The restarted watcher knew from its ledger what the ingest had accepted: web-1 and api-1 were not sent again.
    expect(await aggregatorDuplicates()).toBe(duplicatesBefore);
    expect((await watcherMetrics())['fleetwatch_pusher_accepted_total']).toBe(1);
    const after = await storedPerInstance();
    expect(after['web-1']).toEqual(before['web-1']);
    expect(after['api-1']).toEqual(before['api-1']);
    expect(after['db-1']).toEqual(['failed', 'running']);

    // Paused, then unpaused while no watcher runs: back in a state whose update was stored long ago (Docker keeps
    // no time for a pause). The restarted watcher reports it as a new observation — not a repeat the ingest drops.
    engine.act('api-1', 'pause');
    await statusIs('api-1', 'PAUSED', 'api-1 PAUSED');
    await settled();
    await new Promise((r) => setTimeout(r, 1_000)); // the ledger is written within 0.5 s of an acceptance
    await killWatcher('SIGKILL');
    engine.act('api-1', 'unpause');
    // …and a container removed while no watcher runs is reported removed by the next resync.
    engine.add({ name: 'gone-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    await startWatcher();
    await statusIs('api-1', 'UP', 'api-1 UP: the unpause made while no watcher ran arrived');
    await statusIs('gone-1', 'UP', 'gone-1 UP');
    await settled();
    await new Promise((r) => setTimeout(r, 1_000));
    await killWatcher('SIGKILL');
    engine.act('gone-1', 'destroy');
    await startWatcher();
    await gone('gone-1', 'gone-1 out of live state: destroyed while no watcher ran');

    // A container removed while watched is reported removed once (it leaves live state: no DOWN, no STALE).
    engine.act('web-1', 'destroy');
    await gone('web-1', 'web-1 out of live state after destroy');
    await settled();
    expect((await storedPerInstance())['web-1']).toEqual(['running', 'failed', 'running', 'removed']);
  });

  it('updates pushed out of a full queue during an outage are sent again once the ingest is back (a resync)', async () => {
    await killWatcher('SIGTERM');
    engine.add({ name: 'quiet-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    await startWatcher({ WATCHER_QUEUE_MAX: '100' });
    await statusIs('quiet-1', 'UP', 'quiet-1 UP');
    await waitFor(() => engine.openStreams === 1, { timeoutMs: 30_000, description: 'the watcher follows /events' });

    // The ingest refuses everything; quiet-1 dies once, then 120 new containers start: quiet-1's update is pushed out.
    refuseNext = 1_000_000;
    engine.act('quiet-1', 'die', { exitCode: 3 });
    for (let i = 0; i < 120; i++)
      engine.add({ name: `flood-${i}`, labels: { 'fleetwatch.watch': 'true' }, running: true });
    await waitFor(async () => (await watcherMetrics())['fleetwatch_pusher_dropped_overflow_total'] > 0, {
      timeoutMs: 30_000,
      description: 'the full queue dropped its oldest updates',
    });
    refuseNext = 0;
    await statusIs('quiet-1', 'DOWN', 'quiet-1 DOWN: its dropped update was sent again by a resync');
    await statusIs('flood-0', 'UP', 'flood-0 UP (pushed out too)');
    await statusIs('flood-119', 'UP', 'flood-119 UP');
  });

  it('a container recreated under the same name while no watcher ran stays UP (its old id is not reported removed)', async () => {
    const settled = () =>
      waitFor(async () => (await watcherMetrics())['fleetwatch_pusher_pending'] === 0, {
        timeoutMs: 30_000,
        description: 'the watcher has nothing left to send',
      });
    await killWatcher('SIGTERM');
    engine.add({ name: 'recreated-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    await startWatcher();
    await statusIs('recreated-1', 'UP', 'recreated-1 UP');
    await settled();
    await new Promise((r) => setTimeout(r, 1_000)); // the ledger is written within 0.5 s of an acceptance
    await killWatcher('SIGKILL');
    // `docker compose up` with a new image: the container is replaced by one with the same name and a new id.
    engine.act('recreated-1', 'destroy');
    engine.add({ name: 'recreated-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    await startWatcher();
    await waitFor(async () => (await watcherMetrics())['fleetwatch_watcher_resyncs_total'] >= 1, {
      timeoutMs: 30_000,
      description: 'the restarted watcher resynced',
    });
    await settled();
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await target('recreated-1')) as unknown).toMatchObject({ status: 'UP' });
    // The old container's destroy may be replayed from the events stream (it happened within the `since` window):
    // that is history, dated at the destroy. What must not be there is a removal dated after the new container's
    // start — the resync reporting the old id gone, which would turn the running instance DOWN.
    const late = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM status_updates s WHERE s.instance_id = 'recreated-1' AND s.lifecycle_status = 'removed'
         AND s.occurred_at > (SELECT max(occurred_at) FROM status_updates WHERE instance_id = 'recreated-1' AND lifecycle_status = 'running')`,
    );
    expect(late.rows[0]?.n).toBe(0);
  });
});
