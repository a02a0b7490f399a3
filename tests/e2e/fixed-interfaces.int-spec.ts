import { spawnSync } from 'node:child_process';
import { waitFor } from '@fleetwatch/testing';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite, type RunningService, type ServiceKind } from './site-launcher';

// SPEC §11 ("interfaces that stay fixed"), called as SPEC writes them, on the five running services: the paths,
// methods, statuses, header and field names a user, a script or an acceptance check relies on. Each has its own deeper
// tests; this one keeps their exact shapes together in one place, where a rename breaks it.

jest.setTimeout(300_000);

const KINDS: ServiceKind[] = ['sync-orchestrator', 'aggregator', 'status-ingest', 'api-gateway', 'collector'];
/** Replaces the default list (SPEC §11): 169.254.0.0/16 is no longer denied, this one is. */
const DENIED = '10.255.0.0/16';

let site: E2eSite;
const svc = {} as Record<ServiceKind, RunningService>;
let token: string;

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const gw = (path: string) => `${svc['api-gateway'].url}${path}`;
const getJson = async <T>(path: string): Promise<{ status: number; body: T }> => {
  const res = await fetch(gw(path), { headers: bearer(token) });
  return { status: res.status, body: (await res.json()) as T };
};

interface Target {
  id: string;
  kind: string;
  status: string;
  consensus: string;
  lastSeen: string | null;
  locations: { location: string; status: string; lastSeen: string | null }[];
}

beforeAll(async () => {
  site = await createSite('fixed-interfaces', { FLEETWATCH_CHECK_DENY_NETWORKS: DENIED, SWEEP_INTERVAL_MS: '250' });
  for (const kind of KINDS) svc[kind] = await site.start(kind);
});

afterAll(async () => {
  await site?.stop();
});

describe('SPEC §11 on a running site', () => {
  it('every service answers /healthz, /readyz and /metrics on its port', async () => {
    for (const kind of KINDS) {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const res = await fetch(`${svc[kind].url}${path}`);
        expect({ kind, path, status: res.status }).toEqual({ kind, path, status: 200 });
        if (path === '/metrics')
          expect(await res.text()).toMatch(new RegExp(`^fleetwatch_service_info\\{service="${kind}",`, 'm'));
      }
    }
  });

  it('login → {token}; api-keys {name, scopes} → {id, key}; pushes one update or {updates} → 202 with the ids', async () => {
    const login = await post(gw('/api/v1/auth/login'), { username: 'admin', password: E2E_ADMIN_PASSWORD });
    expect(login.status).toBe(200);
    token = ((await login.json()) as { token: string }).token;
    expect(typeof token).toBe('string');

    const created = await post(gw('/api/v1/api-keys'), { name: 'acceptance', scopes: ['ingest'] }, bearer(token));
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string };
    expect(key).toEqual(expect.objectContaining({ id: expect.any(String), key: expect.any(String) }));

    const ingest = `${svc['status-ingest'].url}/api/v1/status/updates`;
    const one = await post(ingest, { instanceId: 'acc-1', kind: 'container', status: 'running' }, bearer(key.key));
    expect(one.status).toBe(202);
    expect(((await one.json()) as { ids: string[] }).ids).toHaveLength(1);
    const batch = await post(
      ingest,
      {
        updates: [
          { instanceId: 'acc-2', kind: 'pod', status: 'failed', location: 'lab-2', labels: { team: 'acc' } },
          { instanceId: 'acc-3', kind: 'job', status: 'succeeded', location: 'lab-2' },
        ],
      },
      bearer(key.key),
    );
    expect(batch.status).toBe(202);
    expect(((await batch.json()) as { ids: string[] }).ids).toHaveLength(2);
    expect((await post(ingest, { instanceId: 'x', kind: 'container', status: 'running' }, bearer('nope'))).status).toBe(
      401,
    );
  });

  it('GET /api/v1/targets (kind, status, tag, location) and /api/v1/targets/instance:{instanceId}', async () => {
    const target = await waitFor(
      async () => {
        const res = await getJson<Target>('/api/v1/targets/instance:acc-2');
        return res.status === 200 ? res.body : null;
      },
      { timeoutMs: 20_000, intervalMs: 100, description: 'instance:acc-2 readable' },
    );
    expect(target).toMatchObject({
      id: 'instance:acc-2',
      instanceKind: 'pod',
      status: 'DOWN',
      consensus: 'DOWN',
      lastSeen: expect.any(String),
      locations: [{ location: 'lab-2', status: 'DOWN', lastSeen: expect.any(String) }],
    });
    for (const id of ['instance:acc-1', 'instance:acc-3'])
      await waitFor(async () => (await getJson<Target>(`/api/v1/targets/${id}`)).status === 200, {
        timeoutMs: 20_000,
        description: `${id} readable`,
      });
    const ids = async (query: string) => {
      const res = await getJson<{ items: Target[] }>(`/api/v1/targets?${query}`);
      expect(res.status).toBe(200);
      return res.body.items.map((t) => t.id).filter((id) => id.startsWith('instance:acc-'));
    };
    expect(await ids('kind=instance')).toEqual(['instance:acc-1', 'instance:acc-2', 'instance:acc-3']);
    // The kind each update pushed (SPEC §6), as a filter of its own (one OR with the target kinds).
    expect(await ids('kind=container')).toEqual(['instance:acc-1']);
    expect(await ids('kind=pod,check')).toEqual(['instance:acc-2']);
    expect(await ids('kind=Job,container')).toEqual(['instance:acc-1', 'instance:acc-3']);
    expect(await ids('status=DOWN')).toEqual(['instance:acc-2']);
    expect(await ids(`tag=${encodeURIComponent('team=acc')}`)).toEqual(['instance:acc-2']);
    expect(await ids('location=lab-2')).toEqual(['instance:acc-2', 'instance:acc-3']);
  });

  it('POST /api/v1/checks → {id, targetId}; refusals name why; /api/v1/targets/{id}/history?minutes=60', async () => {
    const create = (body: Record<string, unknown>) => post(gw('/api/v1/checks'), body, bearer(token));
    const http = await create({
      name: 'gateway health',
      type: 'http',
      intervalSeconds: 1,
      url: `${svc['api-gateway'].url}/healthz`,
    });
    const check = (await http.json()) as { id: string; targetId: string };
    expect({ status: http.status, check }).toEqual({
      status: 201,
      check: expect.objectContaining({ id: expect.any(String), targetId: expect.any(String) }),
    });
    const tcp = await create({ name: 'db', type: 'tcp', intervalSeconds: 30, host: '127.0.0.1', port: 5432 });
    expect(tcp.status).toBe(201);

    const badCondition = await create({
      name: 'bad',
      type: 'http',
      intervalSeconds: 30,
      url: 'http://127.0.0.1:1/',
      conditions: ['status =='],
    });
    expect(badCondition.status).toBeGreaterThanOrEqual(400);
    expect(badCondition.status).toBeLessThan(500);
    expect(JSON.stringify(await badCondition.json())).toContain('conditions');
    // FLEETWATCH_CHECK_DENY_NETWORKS replaced the default list: its network is refused, the default's is not.
    const denied = await create({ name: 'denied', type: 'tcp', intervalSeconds: 30, host: '10.255.0.1', port: 80 });
    expect(denied.status).toBeGreaterThanOrEqual(400);
    expect(denied.status).toBeLessThan(500);
    expect(JSON.stringify(await denied.json())).toContain(DENIED);
    const notDenied = await create({ name: 'lnk', type: 'tcp', intervalSeconds: 3600, host: '169.254.0.9', port: 1 });
    expect(notDenied.status).toBe(201);
    const notDeniedId = ((await notDenied.json()) as { id: string }).id;
    expect((await fetch(gw(`/api/v1/checks/${notDeniedId}`), { method: 'DELETE', headers: bearer(token) })).ok).toBe(
      true,
    );

    await waitFor(
      async () => (await getJson<Target>(`/api/v1/targets/${encodeURIComponent(check.targetId)}`)).body.status === 'UP',
      { timeoutMs: 60_000, intervalMs: 250, description: `${check.targetId} UP` },
    );
    const history = await getJson<{ points: unknown[]; events: unknown[] }>(
      `/api/v1/targets/${encodeURIComponent(check.targetId)}/history?minutes=60`,
    );
    expect(history.status).toBe(200);
    expect(history.body.points.length).toBeGreaterThan(0);
    expect(Array.isArray(history.body.events)).toBe(true);
  });

  it('GET :3000/metrics: fleetwatch_target_up{target,kind,location} and fleetwatch_target_status{target,status}', async () => {
    // Scrapes read live state (cached for a second): wait until one shows the pushed instances.
    const up1 = /^fleetwatch_target_up\{target="instance:acc-1",kind="instance",location="[^"]+"\} 1$/m;
    const text = await waitFor(
      async () => {
        const t = await (await fetch(gw('/metrics'))).text();
        return up1.test(t) ? t : null;
      },
      { timeoutMs: 15_000, intervalMs: 500, description: 'a scrape with instance:acc-1' },
    );
    expect(text).toMatch(up1);
    expect(text).toMatch(/^fleetwatch_target_up\{target="instance:acc-2",kind="instance",location="lab-2"\} 0$/m);
    expect(text).toMatch(/^fleetwatch_target_status\{target="instance:acc-2",status="DOWN"\} 1$/m);
    expect(text).toMatch(/^fleetwatch_target_status\{target="instance:acc-2",status="UP"\} 0$/m);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    if (promtool.error)
      throw new Error('promtool is not installed (apt-get install -y --no-install-recommends prometheus)');
    expect({ status: promtool.status, output: `${promtool.stdout}${promtool.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });
});
