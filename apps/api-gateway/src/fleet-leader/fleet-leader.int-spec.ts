import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type {
  ApiErrorBody,
  ComponentsMatrixView,
  DriftCountsView,
  LeaderFlowView,
  LeaderMemberView,
  LeaderStatsView,
  MemberSnapshotView,
} from '@fleetwatch/contracts';
import type { DriftReport } from '@fleetwatch/domain';
import { DRIFT_AREAS } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// A leader end to end: the real sync-orchestrator polls simulated members (tools/fleet-sim)
// named in FLEETWATCH_LEADER_CONFIG, one with a token whose value is a canary; the real
// gateway serves what it cached. Members copy the leader's own snapshot, then drift from it.

interface Sim {
  url: string;
  members: { name: string; url: string }[];
  setBehaviour(name: string, b: Record<string, unknown>): void;
  close(): Promise<void>;
}
// The simulator is a tool (plain CommonJS, also run from the command line), loaded by path.
const { startFleetSim } = require(join(__dirname, '../../../../tools/fleet-sim/fleet-sim.cjs')) as {
  startFleetSim(o: Record<string, unknown>): Promise<Sim>;
};

jest.setTimeout(180_000);
const CANARY = 'canary-91c2-LEADER-SECRET';
const ROUTES = [
  '/api/v1/leader/members',
  '/api/v1/leader/stats',
  '/api/v1/leader/flow-metrics?minutes=10',
  '/api/v1/leader/config/components',
  '/api/v1/leader/config/snapshot/alpha',
  '/api/v1/leader/config/drift',
  '/api/v1/leader/config/drift/beta',
];

let gw: GatewayHarness;
let owner: OwnerProcess;
let sim: Sim;
let dist: string;
let admin: string;
const answers: string[] = [];

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await gw.request<T>('GET', path, { token: admin });
  answers.push(res.text);
  return { status: res.status, body: res.body };
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${ms} ms; last ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Poll cycles of the leader that began at or after `t` and have ended (its 'fleet poll cycle' log lines). */
function cyclesSince(t: number): number {
  let n = 0;
  for (const line of owner.output().split('\n')) {
    if (!line.includes('"fleet poll cycle"')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; time?: string; durationMs?: number };
      if (entry.msg === 'fleet poll cycle' && Date.parse(String(entry.time)) - Number(entry.durationMs) >= t) n++;
    } catch {
      // Not a whole JSON line (a chunk boundary): not counted.
    }
  }
  return n;
}

const members = async () => (await get<{ items: LeaderMemberView[] }>('/api/v1/leader/members')).body.items;
const byName = (items: LeaderMemberView[], name: string) => items.find((m) => m.name === name);

beforeAll(async () => {
  gw = await startGateway(testing, 'fleet-leader');
  admin = await gw.login('admin', ADMIN_PASSWORD);
  sim = await startFleetSim({
    members: [{ name: 'alpha', token: CANARY }, { name: 'beta' }, { name: 'gamma', old: true }],
  });
  const url = (n: string) => sim.members.find((m) => m.name === n)?.url;
  const config = {
    members: [
      { name: 'alpha', url: url('alpha'), tags: ['eu'], credentials: { type: 'token', tokenEnv: 'ALPHA_TOKEN' } },
      { name: 'beta', url: url('beta'), tags: ['us'], propertyOverrides: { region: 'us' }, failoverOrder: 1 },
      { name: 'gamma', url: url('gamma'), tags: ['eu'] },
    ],
  };
  dist = await privateOwnerDist(`owner-fleet-leader-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(
    dist,
    {
      databaseUrl: gw.database.databaseUrl,
      amqpUrl: gw.config.amqpUrl,
      redisUrl: gw.config.redisUrl,
      // The gateway reads the member reports cache the poller writes: one site, one keyspace.
      redisPrefix: gw.config.redisPrefix,
    },
    {
      FLEETWATCH_ROLE: 'leader',
      FLEETWATCH_LEADER_CONFIG: JSON.stringify(config),
      ALPHA_TOKEN: CANARY,
      FLEET_POLL_INTERVAL_SECONDS: '5',
      FLEET_POLL_TIMEOUT_SECONDS: '4',
      LOG_LEVEL: 'debug',
    },
  );
  // The leader's configuration: one check. Members start as exact copies of its snapshot.
  const created = await gw.request('POST', '/api/v1/checks', {
    token: admin,
    body: { name: 'web', type: 'http', url: 'http://127.0.0.1:9/health', intervalSeconds: 45 },
  });
  if (created.status !== 201) throw new Error(`check: ${created.status} ${created.text}`);
  // The gateway serves a snapshot up to 5 s old (SNAPSHOT_CACHE_MS): within 5.1 s it has the check.
  const own = await until(
    "the leader's own snapshot with the check",
    async () => (await get<MemberSnapshotView>('/api/v1/system/snapshot/current')).body,
    (s) => s.areas.checks.some((c) => c.key === 'web'),
    5_100,
  );
  const region = [{ key: 'region', value: 'us' }];
  const changed = Date.now();
  sim.setBehaviour('alpha', { base: own.areas, properties: region });
  sim.setBehaviour('beta', { base: own.areas, properties: region, drift: true, version: '1.1.0' });
  sim.setBehaviour('gamma', { base: own.areas });
  // Every member reflects it once a poll cycle begun after the change has ended (within 11 s: two intervals).
  await until(
    'a poll cycle begun after the change, ended',
    async () => cyclesSince(changed),
    (n) => n > 0,
    11_000,
  );
});

afterAll(async () => {
  await owner?.stop();
  await sim?.close();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('leader endpoints', () => {
  it.each(ROUTES)('%s: 401 without a token', async (route) => {
    expect((await gw.request('GET', route)).status).toBe(401);
  });

  it('lists every member with its report; an older member reports without snapshot', async () => {
    const items = await until('three OK members', members, (l) => l.filter((m) => m.state === 'OK').length === 3);
    expect(items.map((m) => [m.name, m.tags, m.failoverOrder])).toEqual([
      ['alpha', ['eu'], null],
      ['beta', ['us'], 1],
      ['gamma', ['eu'], null],
    ]);
    expect(byName(items, 'alpha')?.report?.site).toBe('alpha');
    expect(byName(items, 'gamma')).toMatchObject({ state: 'OK', snapshotHash: null, error: null });
    expect(
      (await get<{ items: LeaderMemberView[] }>('/api/v1/leader/members?tag=eu')).body.items.map((m) => m.name),
    ).toEqual(['alpha', 'gamma']);
  });

  it('counts drift per member and area; an overridden property is not counted', async () => {
    const drift = (await get<DriftCountsView>('/api/v1/leader/config/drift')).body;
    const of = (n: string) => drift.members.find((m) => m.name === n);
    // alpha: its own `region` property (the leader has none) is drift: no override for alpha.
    expect(of('alpha')).toMatchObject({ count: 1, areas: expect.objectContaining({ properties: 1, checks: 0 }) });
    // beta: the same property, overridden → 0; its check changed and one extra check → 2; versions 1.1.0 → 5.
    expect(of('beta')?.areas).toMatchObject({ properties: 0, checks: 2, componentVersions: 5 });
    // Only SPEC §8's areas: each site's own users and status pages are not drift.
    expect(Object.keys(of('beta')?.areas ?? {})).toEqual([...DRIFT_AREAS]);
    expect(of('gamma')).toMatchObject({ count: null, snapshotHash: null });

    const side = (await get<DriftReport & { overriddenProperties: string[] }>('/api/v1/leader/config/drift/beta')).body;
    expect(side.overriddenProperties).toEqual(['region']);
    expect(side.areas.checks.items).toEqual([
      { key: 'extra', state: 'extra', changes: [{ path: '', member: expect.objectContaining({ type: 'tcp' }) }] },
      { key: 'web', state: 'changed', changes: [{ path: 'intervalSeconds', leader: 45, member: 15 }] },
    ]);
    expect((await get<ApiErrorBody>('/api/v1/leader/config/drift/nobody')).status).toBe(404);
  });

  it('serves snapshots, the versions matrix, stats and flow', async () => {
    const snap = await get<MemberSnapshotView & { stale: boolean }>('/api/v1/leader/config/snapshot/alpha');
    expect(snap.status).toBe(200);
    expect(snap.body).toMatchObject({ site: 'alpha', stale: false, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await get('/api/v1/leader/config/snapshot/gamma')).status).toBe(404);
    // Names no member can have (a NUL Postgres would refuse in the lookup: a 500 before) are no member either.
    for (const path of ['/api/v1/leader/config/snapshot/a%00b', '/api/v1/leader/config/drift/a%00b'])
      expect({ path, status: (await get(path)).status }).toEqual({ path, status: 404 });

    const matrix = (await get<ComponentsMatrixView>('/api/v1/leader/config/components')).body;
    expect(matrix.members.find((m) => m.name === 'beta')?.versions['api-gateway']).toBe('1.1.0');
    expect(matrix.members.find((m) => m.name === 'alpha')?.versions['api-gateway']).toBe('1.0.0');
    expect(matrix.differing).toContain('api-gateway');

    const stats = (await get<LeaderStatsView>('/api/v1/leader/stats')).body;
    expect(stats.members).toEqual({ total: 3, ok: 3, stale: 0, never: 0 });
    expect(stats.hosts).toBe(3);

    const flow = (await get<LeaderFlowView>('/api/v1/leader/flow-metrics?minutes=10')).body;
    expect(flow.members.find((m) => m.name === 'alpha')?.points).toHaveLength(10);
    expect(flow.members.find((m) => m.name === 'gamma')?.points).toBeNull();
    expect(flow.total).toHaveLength(10);
    expect(flow.total[0].ingress.count).toBe(240);
  });

  it.each(['0', '-5', '61', '99999999999999999999', 'abc', '', '1.5', 'Infinity', '10&minutes=20', '%00'])(
    'flow-metrics?minutes=%s: 400 naming `minutes`, never a 500',
    async (value) => {
      const res = await get<ApiErrorBody>(`/api/v1/leader/flow-metrics?minutes=${value}`);
      expect({ value, status: res.status }).toEqual({ value, status: 400 });
      expect(JSON.stringify(res.body)).toContain('minutes');
    },
  );

  it('a member that stops answering turns STALE with its age and error within one cycle', async () => {
    sim.setBehaviour('alpha', { fail: true });
    const t0 = Date.now();
    const items = await until('alpha STALE', members, (l) => byName(l, 'alpha')?.state === 'STALE', 12_000);
    expect(Date.now() - t0).toBeLessThan(11_000);
    expect(byName(items, 'alpha')).toMatchObject({
      stale: true,
      error: expect.stringContaining('answered 500'),
      ageSeconds: expect.any(Number),
      report: expect.objectContaining({ site: 'alpha' }),
    });
    sim.setBehaviour('alpha', { fail: false });
  });

  it('the canary token appears in no answer, log line or /metrics', async () => {
    const metrics = await (await fetch(`${owner.url}/metrics`)).text();
    const gwMetrics = (await gw.request('GET', '/metrics')).text;
    expect(answers.length).toBeGreaterThan(5);
    for (const text of [...answers, metrics, gwMetrics, owner.output()]) expect(text).not.toContain(CANARY);
    expect(owner.output()).toContain('fleet poll cycle');
  });
});
