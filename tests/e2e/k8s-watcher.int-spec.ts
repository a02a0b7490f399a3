import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { waitFor } from '@fleetwatch/testing';
import { createSite, freePort, type E2eSite } from './site-launcher';
import { instanceGone, instanceStatusIs, instanceTarget, WatcherProcess } from './watcher-process';
import { KubeApiStandin, podFixtures } from '../../apps/k8s-watcher/src/standin/kube-api.standin';
import type { PodK8s } from '../../apps/k8s-watcher/src/pod-status';

// The real pod watcher (built) against a Kubernetes API stand-in (list + JSON-lines watch,
// resourceVersion, 410 Gone), through a kubeconfig with a bearer token, pushing through a
// real status-ingest into a real aggregator; read back through the gateway and the
// status_updates table.

jest.setTimeout(240_000);

const TOKEN = 'standin-service-account-token';
let site: E2eSite;
let kube: KubeApiStandin;
let apiKey: string;
let token: string;
let watcher: WatcherProcess | null = null;
let kubeconfig: string;
let db: Client;
/** The pods the watcher reported, across its restarts here (not in ~/.fleetwatch: removed afterwards). */
const stateFile = join(tmpdir(), `fw-k8s-watcher-${process.pid}`, 'state.json');

async function startWatcher(): Promise<void> {
  const port = await freePort();
  watcher = WatcherProcess.start(
    site,
    'k8s-watcher',
    port,
    {
      KUBECONFIG: kubeconfig,
      FLEETWATCH_INGEST_URL: site.service('status-ingest').url,
      FLEETWATCH_INGEST_API_KEY: apiKey,
      FLEETWATCH_LOCATION: 'cluster-1',
      K8S_WATCHER_NAMESPACE: 'shop',
      K8S_WATCHER_LABEL_SELECTOR: 'fleetwatch=on',
      K8S_WATCHER_PORT: String(port),
      K8S_WATCHER_LIST_PAGE_SIZE: '2',
      K8S_WATCHER_RECONNECT_MAX_SECONDS: '1',
      K8S_WATCHER_STATE_FILE: stateFile,
      WATCHER_RETRY_BASE_MS: '100',
      // The stored rows are counted exactly here: no refreshes (watcher-refresh.int-spec.ts has them).
      WATCHER_REFRESH_SECONDS: '0',
      LOG_LEVEL: 'info',
    },
    ['KUBERNETES_SERVICE_HOST'],
  );
}

const watcherMetrics = async (): Promise<Record<string, number>> => (watcher ? watcher.metrics() : {});
const killWatcher = () => watcher?.kill('SIGKILL');
const target = (id: string) => instanceTarget(site, token, id);
const statusIs = (id: string, status: string, what: string) => instanceStatusIs(site, token, watcher, id, status, what);
const gone = (id: string, what: string) => instanceGone(site, token, watcher, id, what);

const settled = () =>
  waitFor(async () => (await watcherMetrics())['fleetwatch_pusher_pending'] === 0, {
    timeoutMs: 30_000,
    description: 'the watcher has nothing left to send',
  });

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
  site = await createSite('k8s-watcher');
  await site.start('aggregator');
  await site.start('status-ingest');
  await site.start('api-gateway');
  const gw = site.service('api-gateway').url;
  const login = await fetch(`${gw}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: site.env['FLEETWATCH_ADMIN_PASSWORD'] }),
  });
  token = ((await login.json()) as { token: string }).token;
  const created = await fetch(`${gw}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'k8s-watcher', scopes: ['ingest'] }),
  });
  apiKey = ((await created.json()) as { key: string }).key;
  kube = new KubeApiStandin(TOKEN);
  await kube.start();
  kubeconfig = join(site.dir, 'kubeconfig.yaml');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: standin',
      'clusters:',
      `- name: standin\n  cluster:\n    server: ${kube.url}`,
      'contexts:',
      '- name: standin\n  context:\n    cluster: standin\n    user: watcher',
      'users:',
      `- name: watcher\n  user:\n    token: ${TOKEN}`,
      '',
    ].join('\n'),
  );
  db = new Client({ connectionString: site.db.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await killWatcher();
  await db?.end();
  await kube?.stop();
  await site?.stop();
  await rm(dirname(stateFile), { recursive: true, force: true });
});

const on = { fleetwatch: 'on', app: 'web' };

describe('kubernetes pod watcher', () => {
  it('lists (paged) on start: selected pods in the namespace become statuses, the rest are left out', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    kube.add(podFixtures.succeeded('migrate-1', 'shop', on));
    kube.add(podFixtures.running('other', 'shop', { app: 'other' }));
    kube.add(podFixtures.running('web-a', 'elsewhere', on));
    await startWatcher();
    await statusIs('shop/web-a', 'UP', 'shop/web-a UP');
    await statusIs('shop/web-b', 'UP', 'shop/web-b UP');
    await statusIs('shop/migrate-1', 'UP', 'a succeeded job pod is UP');
    expect(await target('shop/web-a')).toMatchObject({ locations: [{ location: 'cluster-1', status: 'UP' }] });
    expect(await target('shop/other')).toBeNull();
    expect(await target('elsewhere/web-a')).toBeNull();
    expect(kube.calls.list).toBe(2); // three pods in pages of two
    expect(kube.calls.unauthorized).toBe(0);
  });

  it('follows the watch: CrashLoopBackOff is DOWN, recovery UP, a deleted pod leaves live state', async () => {
    await waitFor(() => kube.openWatches === 1, { timeoutMs: 30_000, description: 'the watcher watches' });
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await statusIs('shop/web-a', 'DOWN', 'shop/web-a DOWN in CrashLoopBackOff');
    kube.update('shop', 'web-a', (p) => podFixtures.recovered(p));
    await statusIs('shop/web-a', 'UP', 'shop/web-a UP again');
    // A metadata-only change is no new status.
    kube.update('shop', 'web-a', (p) => (p.metadata.labels = { ...p.metadata.labels, touched: 'yes' }));
    kube.remove('shop', 'migrate-1');
    await gone('shop/migrate-1', 'a deleted pod out of live state (no DOWN, no STALE, no alert)');
    await settled();
    const stored = await storedPerInstance();
    expect(stored['shop/web-a']).toEqual(['running', 'crashloopbackoff', 'running']);
    expect(stored['shop/migrate-1']).toEqual(['succeeded', 'removed']);

    // The API server ends the watch (its timeout): the watcher resumes from its resourceVersion, no relist.
    const lists = kube.calls.list;
    const watches = kube.calls.watch;
    kube.dropWatches();
    await waitFor(() => kube.openWatches === 1 && kube.calls.watch > watches, {
      timeoutMs: 30_000,
      description: 'the watch resumed',
    });
    kube.update('shop', 'web-b', (p) => podFixtures.crashLoop(p));
    await statusIs('shop/web-b', 'DOWN', 'a change after the resumed watch arrives');
    kube.update('shop', 'web-b', (p) => podFixtures.recovered(p));
    await statusIs('shop/web-b', 'UP', 'shop/web-b UP again');
    expect(kube.calls.list).toBe(lists);
  });

  it('a 410 Gone forces a relist that catches what the watch missed; a restart resyncs without storing twice', async () => {
    const listsBefore = kube.calls.list;
    // Changes the watch never delivers, then the history is compacted (410 on the open watch).
    kube.update('shop', 'web-b', (p) => podFixtures.notReady(p), true);
    kube.add(podFixtures.running('web-c', 'shop', on), true);
    kube.compact();
    await statusIs('shop/web-b', 'DOWN', 'shop/web-b unhealthy, seen by the relist after 410');
    await statusIs('shop/web-c', 'UP', 'shop/web-c, seen by the relist after 410');
    expect(kube.calls.list).toBeGreaterThan(listsBefore);
    expect((await watcherMetrics())['fleetwatch_watcher_gone_total']).toBe(1);

    await settled();
    const before = await storedPerInstance();
    const duplicatesBefore = await aggregatorDuplicates();
    // Killed mid-stream; web-a crashes while no watcher runs; a new watcher relists.
    await killWatcher();
    kube.update('shop', 'web-a', (p: PodK8s) => podFixtures.crashLoop(p), true);
    await startWatcher();
    await statusIs('shop/web-a', 'DOWN', 'shop/web-a DOWN after the restarted watcher relisted');
    await settled();
    await waitFor(async () => (await aggregatorDuplicates()) >= duplicatesBefore + 2, {
      timeoutMs: 30_000,
      description: 'the aggregator saw the re-sent web-b and web-c as duplicates',
    });
    const after = await storedPerInstance();
    expect(after['shop/web-b']).toEqual(before['shop/web-b']);
    expect(after['shop/web-c']).toEqual(before['shop/web-c']);
    expect(after['shop/web-a']).toEqual([...(before['shop/web-a'] ?? []), 'crashloopbackoff']);
    expect(after['shop/migrate-1']).toEqual(before['shop/migrate-1']);
  });
});
