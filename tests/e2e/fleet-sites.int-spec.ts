import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { waitFor } from '@fleetwatch/testing';
import { startSites, type RunningSites, type SitesSite } from './sites-process';

// Three real sites on this machine, started by the code behind `npm run sites` (SPEC §8,
// issue 19): a leader whose sync-orchestrator polls two members, one by HTTP Basic of a
// viewer user, one by an API key with the `fleet` scope. Canary secrets (a unique Basic
// password; the member's API key) must appear in no service's output, no /metrics and no
// leader answer. A short poll interval (FLEET_POLL_INTERVAL_SECONDS) keeps a cycle short.

jest.setTimeout(900_000);

const INTERVAL_S = 10;
const TIMEOUT_S = 9;
const ADMIN_PASSWORD = `admin-${randomBytes(9).toString('hex')}`;
const BASIC_CANARY = `canary-basic-${randomBytes(12).toString('hex')}`;

let sites: RunningSites;
let basicMember: SitesSite;
let tokenMember: SitesSite;
const adminTokens = new Map<string, string>();
/** Every leader answer this spec read (searched for canaries at the end). */
const leaderBodies: string[] = [];

interface MemberView {
  name: string;
  url: string;
  tags: string[];
  state: 'OK' | 'STALE' | 'NEVER';
  stale: boolean;
  ageSeconds: number | null;
  error: string | null;
  report: { site: string; role: string } | null;
  snapshotHash: string | null;
}
type Areas = Record<string, number>;
interface DriftCounts {
  members: Array<{
    name: string;
    stale: boolean;
    snapshotHash: string | null;
    count: number | null;
    areas: Areas | null;
  }>;
}
interface DriftItem {
  key: string;
  state: 'missing' | 'extra' | 'changed';
  changes: Array<{ path: string; leader?: unknown; member?: unknown }>;
}
interface DriftOf {
  member: string;
  memberHash: string;
  overriddenProperties: string[];
  count: number;
  areas: Record<string, { count: number; missing: number; extra: number; changed: number; items: DriftItem[] }>;
}

async function call<T>(
  site: SitesSite,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string }> {
  let token = adminTokens.get(site.name);
  if (!token) {
    const login = await fetch(`${site.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    if (login.status !== 200) throw new Error(`${site.name}: login answered ${login.status}`);
    token = ((await login.json()) as { token: string }).token;
    adminTokens.set(site.name, token);
  }
  const res = await fetch(`${site.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (site === sites.leader) leaderBodies.push(text);
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, text };
}

async function members(): Promise<Map<string, MemberView>> {
  const res = await call<{ items: MemberView[] }>(sites.leader, 'GET', '/api/v1/leader/members');
  expect(res.status).toBe(200);
  return new Map(res.body.items.map((m) => [m.name, m]));
}

beforeAll(async () => {
  sites = await startSites({
    count: 3,
    // The two services a fleet needs: the gateway (member and leader endpoints) and the
    // configuration owner (writes, snapshots, the poller). Five per site are 15 processes.
    services: ['api-gateway', 'sync-orchestrator'],
    env: {
      FLEETWATCH_SITES_ADMIN_PASSWORD: ADMIN_PASSWORD,
      FLEETWATCH_SITES_BASIC_PASSWORD: BASIC_CANARY,
      FLEET_POLL_INTERVAL_SECONDS: String(INTERVAL_S),
      FLEET_POLL_TIMEOUT_SECONDS: String(TIMEOUT_S),
      // Chatty on purpose: more output for a secret to slip into.
      LOG_LEVEL: 'debug',
    },
  });
  basicMember = sites.members.find((m) => m.auth === 'basic') as SitesSite;
  tokenMember = sites.members.find((m) => m.auth === 'token') as SitesSite;
});

afterAll(async () => {
  if (!sites) return;
  const code = await sites.stop();
  // Ctrl-C stops every service cleanly (a stopped member's gateway exited 0 earlier).
  expect(code).toBe(0);
});

describe('three real sites', () => {
  it('start as one leader and two members with both kinds of credentials', () => {
    expect(sites.state.sites.map((s) => s.role)).toEqual(['leader', 'member', 'member']);
    expect(new Set(sites.state.sites.map((s) => s.databaseUrl)).size).toBe(3);
    expect(new Set(sites.state.sites.map((s) => s.vhost)).size).toBe(3);
    expect(new Set(sites.state.sites.map((s) => s.redisPrefix)).size).toBe(3);
    expect(new Set(sites.state.sites.flatMap((s) => s.services.map((x) => x.port))).size).toBe(6);
    expect([basicMember?.auth, tokenMember?.auth]).toEqual(['basic', 'token']);
    const out = sites.launcherOutput();
    expect(out).toContain('3 Fleetwatch sites are up.');
    expect(out).toContain(`${sites.leader.url}/api/v1/leader/members`);
  });

  it('the leader sees both members, read with their own credentials', async () => {
    const started = Date.now();
    const seen = await waitFor(
      async () => {
        const m = await members();
        return [basicMember, tokenMember].every((x) => m.get(x.name)?.state === 'OK' && m.get(x.name)?.snapshotHash)
          ? m
          : null;
      },
      { timeoutMs: 180_000, intervalMs: 1000, description: 'both members OK' },
    );
    for (const member of [basicMember, tokenMember]) {
      const view = seen.get(member.name) as MemberView;
      expect(view).toMatchObject({ url: member.url, stale: false, error: null });
      expect(view.tags).toEqual(['sites', member.auth]);
      expect(view.report?.site).toBe(member.name);
      expect(view.report?.role).toBe('member');
    }
    process.stdout.write(`fleet-sites: both members OK after ${Date.now() - started} ms\n`);
    // The credentials the leader holds work on the member endpoints, and for nothing else.
    const basic = `Basic ${Buffer.from(`fleet-leader:${BASIC_CANARY}`).toString('base64')}`;
    const read = await fetch(`${basicMember.url}/api/v1/system/snapshot/current`, {
      headers: { authorization: basic },
    });
    expect(read.status).toBe(200);
    const write = await fetch(`${basicMember.url}/api/v1/checks`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'by-basic', type: 'tcp', host: '127.0.0.1', port: 1, intervalSeconds: 30 }),
    });
    expect(write.status).toBe(401);
    const key = sites.tokens()[tokenMember.name];
    expect(key).toEqual(expect.stringMatching(/^fwk_/));
    const keyRead = await fetch(`${tokenMember.url}/api/v1/status/report`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(keyRead.status).toBe(200);
    const keyWrite = await fetch(`${tokenMember.url}/api/v1/users`, { headers: { authorization: `Bearer ${key}` } });
    expect(keyWrite.status).toBe(403);
  });

  it("shows a member's configuration change as drift with the right counts and diff", async () => {
    const driftOf = async (name: string) => {
      const res = await call<DriftOf>(sites.leader, 'GET', `/api/v1/leader/config/drift/${name}`);
      expect(res.status).toBe(200);
      return res.body;
    };
    // Before: what the sites start with (the same users, checks, rules and versions).
    const before = await waitFor(
      async () => {
        const d = await driftOf(basicMember.name);
        return d.count === 0 ? d : null;
      },
      { timeoutMs: 60_000, intervalMs: 1000, description: 'no drift at start' },
    );
    expect(before.overriddenProperties).toEqual(['site.displayName']);
    const hashBefore = before.memberHash;

    const name = `drift-${randomBytes(4).toString('hex')}`;
    const created = await call(basicMember, 'POST', '/api/v1/checks', {
      name,
      type: 'tcp',
      host: '127.0.0.1',
      port: 9,
      intervalSeconds: 30,
    });
    expect(created.status).toBe(201);

    const started = Date.now();
    const after = await waitFor(
      async () => {
        const d = await driftOf(basicMember.name);
        return d.memberHash !== hashBefore && d.count > 0 ? d : null;
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: 'drift after the change' },
    );
    process.stdout.write(`fleet-sites: drift seen ${Date.now() - started} ms after the change\n`);
    expect(after.count).toBe(1);
    expect(after.areas.checks).toMatchObject({ count: 1, extra: 1, missing: 0, changed: 0 });
    expect(after.areas.checks.items).toEqual([
      expect.objectContaining({ key: name, state: 'extra', changes: [expect.objectContaining({ path: '' })] }),
    ]);
    const change = after.areas.checks.items[0].changes[0];
    expect(change.member).toMatchObject({ key: name, type: 'tcp', port: 9 });
    expect(change.leader).toBeUndefined();
    for (const area of Object.keys(after.areas).filter((a) => a !== 'checks')) expect(after.areas[area].count).toBe(0);
    expect(after.overriddenProperties).toEqual(['site.displayName']);

    const counts = await call<DriftCounts>(sites.leader, 'GET', '/api/v1/leader/config/drift');
    expect(counts.status).toBe(200);
    const byName = new Map(counts.body.members.map((m) => [m.name, m]));
    expect(byName.get(basicMember.name)).toMatchObject({
      count: 1,
      areas: expect.objectContaining({ checks: 1, properties: 0 }),
    });
    // The other member did not change: no check drift there (its other areas are its own: logged for the record).
    const other = byName.get(tokenMember.name);
    process.stdout.write(`fleet-sites: the other member's drift ${JSON.stringify(other)}\n`);
    expect(other?.areas).toMatchObject({ checks: 0, properties: 0 });
  });

  it('counts a property that differs in the properties area, never one the member overrides', async () => {
    // The launcher gives every member `propertyOverrides: {"site.displayName": <its name>}`.
    const OVERRIDDEN = 'site.displayName';
    const SHARED = 'retention.days';
    /** PUT a property, tried again while the owner answers 503 (a loaded box: the gateway's RPC timeout). */
    const setProperty = async (site: SitesSite, key: string, value: unknown) => {
      const res = await waitFor(
        async () => {
          const r = await call<{ key: string; value: unknown }>(site, 'PUT', `/api/v1/properties/${key}`, { value });
          return r.status === 503 ? null : r;
        },
        { timeoutMs: 60_000, intervalMs: 1000, description: `PUT ${key} on ${site.name}` },
      );
      expect({ site: site.name, key, created: res.status === 201 || res.status === 200 }).toEqual({
        site: site.name,
        key,
        created: true,
      });
      expect(res.body).toMatchObject({ key, value });
    };
    const snapshotOf = async (site: SitesSite) => {
      const res = await call<{ hash: string; areas: { properties: Array<{ key: string; value: unknown }> } }>(
        site,
        'GET',
        '/api/v1/system/snapshot/current',
      );
      expect(res.status).toBe(200);
      return res.body;
    };
    const driftOf = async (name: string) => {
      const res = await call<DriftOf>(sites.leader, 'GET', `/api/v1/leader/config/drift/${name}`);
      return res.status === 200 ? res.body : null;
    };

    // The leader and the basic member differ in both properties; the token member has the leader's
    // value of the shared one and lacks the overridden one (missing on a member is drift too, unless overridden).
    await setProperty(sites.leader, OVERRIDDEN, 'Fleet leader');
    await setProperty(sites.leader, SHARED, 7);
    await setProperty(basicMember, OVERRIDDEN, 'Basic member site');
    await setProperty(basicMember, SHARED, 30);
    await setProperty(tokenMember, SHARED, 7);

    // Both sides of the comparison really hold the property, with different values: leaving it out is the override's doing.
    const leaderSnap = await waitFor(
      async () => {
        const snap = await snapshotOf(sites.leader);
        return snap.areas.properties.length === 2 ? snap : null;
      },
      { timeoutMs: 30_000, intervalMs: 1000, description: "the leader's snapshot with its properties" },
    );
    expect(leaderSnap.areas.properties).toEqual([
      { key: SHARED, value: 7 },
      { key: OVERRIDDEN, value: 'Fleet leader' },
    ]);

    const started = Date.now();
    const basic = await waitFor(
      async () => {
        // The drift must be of the very snapshot checked here: a poll between two reads could otherwise pair a
        // drift of the member's earlier snapshot (the shared property not written yet: "missing") with this one.
        const polled = await call<{ hash: string; areas: { properties: Array<{ key: string }> } }>(
          sites.leader,
          'GET',
          `/api/v1/leader/config/snapshot/${basicMember.name}`,
        );
        if (polled.status !== 200 || polled.body.areas.properties.length !== 2) return null;
        const d = await driftOf(basicMember.name);
        return d && d.memberHash === polled.body.hash ? { drift: d, polled: polled.body } : null;
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: 'property drift of the basic member' },
    );
    process.stdout.write(`fleet-sites: property drift seen ${Date.now() - started} ms after the writes\n`);
    // The member's polled snapshot holds its own value of the overridden property.
    expect(basic.polled.areas.properties).toEqual([
      { key: SHARED, value: 30 },
      { key: OVERRIDDEN, value: 'Basic member site' },
    ]);
    expect(basic.drift.overriddenProperties).toEqual([OVERRIDDEN]);
    expect(basic.drift.areas.properties).toEqual({
      count: 1,
      missing: 0,
      extra: 0,
      changed: 1,
      items: [{ key: SHARED, state: 'changed', changes: [{ path: 'value', leader: 7, member: 30 }] }],
    });
    expect(basic.drift.count).toBe(basic.drift.areas.checks.count + 1);

    // The token member: equal where it is not overridden, absent where it is: no property drift.
    const token = await waitFor(
      async () => {
        // Paired with the very snapshot read, as for the basic member: a drift of an earlier snapshot (before the
        // shared property was polled) must not stand for this one.
        const polled = await call<{ hash: string; areas: { properties: Array<{ key: string }> } }>(
          sites.leader,
          'GET',
          `/api/v1/leader/config/snapshot/${tokenMember.name}`,
        );
        if (polled.status !== 200 || polled.body.areas.properties.length !== 1) return null;
        const d = await driftOf(tokenMember.name);
        return d && d.memberHash === polled.body.hash ? { drift: d, polled: polled.body } : null;
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: "the token member's properties polled, and their drift" },
    );
    expect(token.drift.memberHash).toBe(token.polled.hash);
    expect(token.drift.areas.properties).toMatchObject({ count: 0, items: [] });

    const counts = await call<DriftCounts>(sites.leader, 'GET', '/api/v1/leader/config/drift');
    const byName = new Map(counts.body.members.map((m) => [m.name, m]));
    expect(byName.get(basicMember.name)?.areas).toMatchObject({ properties: 1 });
    expect(byName.get(tokenMember.name)?.areas).toMatchObject({ properties: 0 });
  });

  it("reports the versions of the services a site runs, never of another process's on a port it does not use", async () => {
    // A site runs two services here; the others' port variables still name ports (planned by the launcher) where
    // another site's or test's service may listen. Its version counted as this member's: version drift on the
    // leader for 10 minutes (a CI run: "no drift at start" timed out). Listen there and look.
    const gateway = tokenMember.services.find((s) => s.name === 'api-gateway') as { pid: number };
    const environ = new Map(
      readFileSync(`/proc/${gateway.pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv): [string, string] => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const syncPort = tokenMember.services.find((s) => s.name === 'sync-orchestrator')?.port;
    expect(environ.get('FLEETWATCH_COMPONENT_URLS')).toBe(`sync-orchestrator=http://127.0.0.1:${syncPort}`);
    const decoys: Server[] = [];
    try {
      for (const variable of ['COLLECTOR_PORT', 'AGGREGATOR_PORT', 'STATUS_INGEST_PORT']) {
        const decoy = createServer((_req, res) => res.end('fleetwatch_service_info{version="0.0.0-decoy"} 1\n'));
        // A port taken meanwhile by someone else is left to them (the other two still show the point).
        const listening = await new Promise<boolean>((resolve) => {
          decoy.once('error', () => resolve(false));
          decoy.listen(Number(environ.get(variable)), '127.0.0.1', () => resolve(true));
        });
        if (listening) decoys.push(decoy);
      }
      expect(decoys.length).toBeGreaterThan(0);
      // A snapshot built after the decoys listen (past the 5 s cache: polled, not a fixed 5.5 s sleep).
      const decoysUp = Date.now();
      const snap = await waitFor(
        async () => {
          const res = await call<{
            generatedAt: string;
            areas: { componentVersions: Array<{ key: string; version: string | null }> };
          }>(tokenMember, 'GET', '/api/v1/system/snapshot/current');
          return res.status === 200 && Date.parse(res.body.generatedAt) >= decoysUp ? res : null;
        },
        { timeoutMs: 30_000, intervalMs: 250, description: 'a snapshot built after the decoys listen' },
      );
      const versions = Object.fromEntries(snap.body.areas.componentVersions.map((c) => [c.key, c.version]));
      expect(versions).toEqual({
        aggregator: null,
        'api-gateway': expect.stringMatching(/^\d+\.\d+\.\d+/),
        collector: null,
        'status-ingest': null,
        'sync-orchestrator': versions['api-gateway'],
      });
    } finally {
      for (const decoy of decoys) {
        decoy.closeAllConnections();
        await new Promise((r) => decoy.close(r));
      }
    }
  });

  it('turns a member STALE with its age and the error within one cycle when its gateway stops', async () => {
    await waitFor(async () => (await members()).get(tokenMember.name)?.state === 'OK', {
      timeoutMs: 60_000,
      intervalMs: 500,
      description: 'token member OK before the stop',
    });
    await sites.stopService(tokenMember.name, 'api-gateway');
    const stoppedAt = Date.now();
    const stale = await waitFor(
      async () => {
        const view = (await members()).get(tokenMember.name);
        return view?.state === 'STALE' && /ECONNREFUSED|fetch failed|connect/i.test(view.error ?? '') ? view : null;
      },
      { timeoutMs: 90_000, intervalMs: 250, description: 'member STALE' },
    );
    const took = Date.now() - stoppedAt;
    process.stdout.write(
      `fleet-sites: STALE ${took} ms after the stop (interval ${INTERVAL_S} s, timeout ${TIMEOUT_S} s)\n`,
    );
    // One cycle: the next cycle starts within the interval (fixed delay after the one running) and ends within its timeout.
    expect(took).toBeLessThan((INTERVAL_S + 2 * TIMEOUT_S) * 1000 + 5000);
    expect(stale.stale).toBe(true);
    expect(stale.error).toMatch(/^GET \/api\/v1\/(status\/report|metrics\/flow|system\/snapshot)/);
    expect(stale.ageSeconds).toEqual(expect.any(Number));
    expect(stale.ageSeconds as number).toBeGreaterThanOrEqual(0);
    // Its last good report is still served.
    expect(stale.report?.site).toBe(tokenMember.name);
    const later = await waitFor(
      async () => {
        const view = (await members()).get(tokenMember.name);
        return view && (view.ageSeconds ?? 0) > (stale.ageSeconds ?? 0) ? view : null;
      },
      { timeoutMs: 30_000, intervalMs: 1000, description: 'age growing' },
    );
    expect(later.state).toBe('STALE');
    const counts = await call<DriftCounts>(sites.leader, 'GET', '/api/v1/leader/config/drift');
    // Drift of a STALE member is its last good snapshot's, flagged stale.
    expect(counts.body.members.find((m) => m.name === tokenMember.name)).toMatchObject({
      stale: true,
      areas: expect.objectContaining({ checks: 0 }),
    });
    const stats = await call<{ members: { total: number; stale: number } }>(
      sites.leader,
      'GET',
      '/api/v1/leader/stats',
    );
    expect(stats.body.members).toMatchObject({ total: 2, stale: expect.any(Number) });
    expect(stats.body.members.stale).toBeGreaterThanOrEqual(1);
  });

  it('never shows the canary secrets: not in any log, /metrics or leader answer', async () => {
    const key = sites.tokens()[tokenMember.name];
    const canaries = [
      BASIC_CANARY,
      Buffer.from(`fleet-leader:${BASIC_CANARY}`).toString('base64'),
      key,
      key.slice(-16),
    ];
    // Every leader endpoint, once more.
    for (const path of [
      '/api/v1/leader/members',
      '/api/v1/leader/stats',
      '/api/v1/leader/flow-metrics?minutes=60',
      '/api/v1/leader/config/components',
      '/api/v1/leader/config/drift',
      ...[basicMember, tokenMember].flatMap((m) => [
        `/api/v1/leader/config/snapshot/${m.name}`,
        `/api/v1/leader/config/drift/${m.name}`,
      ]),
    ]) {
      const res = await call(sites.leader, 'GET', path);
      expect([path, res.status]).toEqual([path, 200]);
    }
    const metrics: string[] = [];
    for (const site of sites.state.sites)
      for (const svc of site.services) {
        if (site === tokenMember && svc.name === 'api-gateway') continue; // stopped above
        const res = await fetch(`http://127.0.0.1:${svc.port}/metrics`);
        expect([site.name, svc.name, res.status]).toEqual([site.name, svc.name, 200]);
        metrics.push(await res.text());
      }
    const logs = sites.serviceLogs();
    expect(logs.size).toBe(6);
    // The logs say something (a search through empty files would prove nothing): the poller logged its cycles.
    expect(logs.get(`${sites.leader.name}/sync-orchestrator`)).toContain('fleet poll cycle');
    const haystacks: Array<[string, string]> = [
      ['launcher output', sites.launcherOutput()],
      ...[...logs.entries()].map(([n, text]): [string, string] => [`log ${n}`, text]),
      ...metrics.map((text, i): [string, string] => [`metrics #${i}`, text]),
      ...leaderBodies.map((text, i): [string, string] => [`leader answer #${i}`, text]),
    ];
    expect(leaderBodies.length).toBeGreaterThan(10);
    const found: string[] = [];
    for (const [where, text] of haystacks)
      for (const canary of canaries) if (text.includes(canary)) found.push(`${where} holds ${canary.slice(0, 12)}…`);
    expect(found).toEqual([]);
  });
});
