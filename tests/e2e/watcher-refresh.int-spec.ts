import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createSite, freePort, type E2eSite } from './site-launcher';
import { instanceStatusIs, instanceTarget, WatcherProcess } from './watcher-process';
import { DockerEngineStandin } from '../../apps/docker-watcher/src/standin/docker-engine.standin';
import { KubeApiStandin, podFixtures } from '../../apps/k8s-watcher/src/standin/kube-api.standin';

// A pushed instance goes STALE when nothing is heard from it for STALE_AFTER_SECONDS (SPEC §1). The watchers report
// a change when it happens; a container or pod that keeps running has no change to report, so each watcher reports
// the current state of what it follows again every WATCHER_REFRESH_SECONDS while it follows its source. Here the
// aggregator's STALE window is 5 s and the refresh 1 s: both instances stay UP over three windows. Without the
// refresh both went STALE 5 s after their first (and only) update.

jest.setTimeout(240_000);

const KUBE_TOKEN = 'standin-service-account-token';
let site: E2eSite;
let engine: DockerEngineStandin;
let kube: KubeApiStandin;
let dir: string;
let apiKey: string;
let token: string;
let db: Client;
const watchers: WatcherProcess[] = [];

beforeAll(async () => {
  site = await createSite('watcher-refresh', { STALE_AFTER_SECONDS: '5' });
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
    body: JSON.stringify({ name: 'watchers', scopes: ['ingest'] }),
  });
  apiKey = ((await created.json()) as { key: string }).key;
  dir = mkdtempSync(join(tmpdir(), 'fw-watcher-refresh-'));
  engine = new DockerEngineStandin(join(dir, 'docker.sock'));
  await engine.start();
  kube = new KubeApiStandin(KUBE_TOKEN);
  await kube.start();
  db = new Client({ connectionString: site.db.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  for (const w of watchers) await w.kill('SIGKILL');
  await db?.end();
  await engine?.stop();
  await kube?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await site?.stop();
});

const common = () => ({
  FLEETWATCH_INGEST_URL: site.service('status-ingest').url,
  FLEETWATCH_INGEST_API_KEY: apiKey,
  WATCHER_RETRY_BASE_MS: '100',
  WATCHER_REFRESH_SECONDS: '1',
  LOG_LEVEL: 'info',
});

async function startDockerWatcher(): Promise<WatcherProcess> {
  const port = await freePort();
  const w = WatcherProcess.start(
    site,
    'docker-watcher',
    port,
    {
      ...common(),
      DOCKER_SOCKET: engine.socketPath,
      FLEETWATCH_LOCATION: 'lab-docker',
      DOCKER_WATCHER_LABEL_FILTER: 'fleetwatch.watch=true',
      DOCKER_WATCHER_PORT: String(port),
      DOCKER_WATCHER_STATE_FILE: 'off',
    },
    ['DOCKER_HOST'],
  );
  watchers.push(w);
  return w;
}

async function startK8sWatcher(): Promise<WatcherProcess> {
  const port = await freePort();
  const kubeconfig = join(dir, 'kubeconfig.yaml');
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
      `- name: watcher\n  user:\n    token: ${KUBE_TOKEN}`,
      '',
    ].join('\n'),
  );
  const w = WatcherProcess.start(
    site,
    'k8s-watcher',
    port,
    {
      ...common(),
      KUBECONFIG: kubeconfig,
      FLEETWATCH_LOCATION: 'cluster-1',
      K8S_WATCHER_NAMESPACE: 'shop',
      K8S_WATCHER_PORT: String(port),
    },
    ['KUBERNETES_SERVICE_HOST'],
  );
  watchers.push(w);
  return w;
}

async function rowsOf(instanceId: string): Promise<string[]> {
  const r = await db.query<{ lifecycle_status: string }>(
    'SELECT lifecycle_status FROM status_updates WHERE instance_id = $1 ORDER BY id',
    [instanceId],
  );
  return r.rows.map((row) => row.lifecycle_status);
}

it('a running container and a running pod stay UP while their watchers run, over three STALE windows', async () => {
  engine.add({ name: 'steady-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
  kube.add(podFixtures.running('steady-pod', 'shop', { app: 'web' }));
  const docker = await startDockerWatcher();
  const k8s = await startK8sWatcher();
  await instanceStatusIs(site, token, docker, 'steady-1', 'UP', 'the container UP');
  await instanceStatusIs(site, token, k8s, 'shop/steady-pod', 'UP', 'the pod UP');

  // Sampled every 250 ms for 16 s: any STALE (5 s without an update) fails.
  const seen = new Set<string>();
  const until = Date.now() + 16_000;
  while (Date.now() < until) {
    for (const id of ['steady-1', 'shop/steady-pod'])
      seen.add(`${id}: ${(await instanceTarget(site, token, id))?.status}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  expect([...seen].sort()).toEqual(['shop/steady-pod: UP', 'steady-1: UP']);
  // Each refresh is an update of its own (the same state, a new updateId): several were stored.
  expect((await rowsOf('steady-1')).length).toBeGreaterThanOrEqual(5);
  expect(new Set(await rowsOf('steady-1'))).toEqual(new Set(['running']));
  expect((await rowsOf('shop/steady-pod')).length).toBeGreaterThanOrEqual(5);
  expect(new Set(await rowsOf('shop/steady-pod'))).toEqual(new Set(['running']));
});
