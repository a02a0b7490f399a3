import { waitFor } from '@fleetwatch/testing';
import type { CheckDefinition, HistoryResponse, TargetView } from '@fleetwatch/contracts';
import { GatewayClient, locationsOf } from './gateway-client';
import { LocationTarget, startLocationDns, type LocationDns } from './location-network';
import { createSite, type E2eSite } from './site-launcher';

// Issue 15 end to end, on the running services: a person creates checks at the gateway;
// sync-orchestrator stores them (versioned, audited) and announces config.changed; two
// collectors (locations eu and us) fetch their assignments and run them; results go
// through the aggregator to the targets API and /metrics. Nothing is stood in for: the
// two locations differ only by the DNS server each collector asks (location-network.ts),
// so a check's one host name reaches a different loopback address per location, and
// closing that address's listener fails the check from that location alone.

jest.setTimeout(300_000);

const LOCATIONS = { eu: '127.0.0.2', us: '127.0.0.3' } as const;
type Location = keyof typeof LOCATIONS;
/** Slack for a DNS query to arrive after the run that sent it started, on a busy box. */
const QUERY_SLACK_MS = 250;
const CHANGE_DEADLINE_MS = 2_000;

let site: E2eSite;
let gw: GatewayClient;
const dns = {} as Record<Location, LocationDns>;
const targets: LocationTarget[] = [];

async function target(label: string): Promise<LocationTarget> {
  const t = await LocationTarget.start(label, LOCATIONS);
  targets.push(t);
  return t;
}

/** A tcp check at `t`, run every second from every location unless `extra` says otherwise. */
function tcpCheck(name: string, t: LocationTarget, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    type: 'tcp',
    host: t.host,
    port: t.port,
    intervalSeconds: 1,
    timeoutSeconds: 1,
    tags: ['e2e'],
    ...extra,
  };
}

/** Waits until the check's target shows `status` with exactly these per-location statuses. */
async function expectStatus(check: CheckDefinition, status: string, locations: string, timeoutMs = 30_000) {
  let last: TargetView | null = null;
  await waitFor(
    async () => {
      last = await gw.target(check.targetId);
      return last?.status === status && locationsOf(last) === locations;
    },
    { timeoutMs, intervalMs: 200, description: `${check.targetId} ${status} with ${locations}` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last seen: ${last?.status ?? '-'} ${locationsOf(last)}`);
  });
  return last as unknown as TargetView;
}

/** Waits until `location` has run the check (a lookup of `host` at its DNS server) after `since`. */
function ranAt(location: Location, host: string, since: number, timeoutMs: number): Promise<number> {
  return waitFor(() => dns[location].runsOf(host, since)[0], {
    timeoutMs,
    intervalMs: 20,
    description: `a run of ${host} at ${location}`,
  });
}

/** Checks in a collector's assignment, from its /metrics (fleetwatch_collector_checks_assigned, all types). */
async function assignedAt(location: Location): Promise<number> {
  const text = await (await fetch(`${site.service(`collector-${location}`).url}/metrics`)).text();
  const values = [...text.matchAll(/^fleetwatch_collector_checks_assigned\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
  if (values.length === 0)
    throw new Error(`collector-${location} /metrics has no fleetwatch_collector_checks_assigned`);
  return values.reduce((a, b) => a + b, 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dns.eu = await startLocationDns(LOCATIONS.eu);
  dns.us = await startLocationDns(LOCATIONS.us);
  site = await createSite('checks');
  // The collectors ask sync-orchestrator for their assignment as they start: it goes first.
  await Promise.all([
    site.start('sync-orchestrator'),
    site.start('aggregator'),
    site.start('api-gateway'),
    site.start('status-ingest'),
  ]);
  await Promise.all(
    (Object.keys(LOCATIONS) as Location[]).map((location) =>
      site.start('collector', {
        name: `collector-${location}`,
        env: {
          FLEETWATCH_LOCATION: location,
          COLLECTOR_HOST_ID: `e2e-${location}`,
          COLLECTOR_DNS_SERVERS: dns[location].server,
          COLLECTOR_SPOOL_DIR: 'spool',
        },
      }),
    ),
  );
  gw = await GatewayClient.login(site.service('api-gateway').url);
});

afterAll(async () => {
  await site?.stop();
  await Promise.all(targets.map((t) => t.closeAll()));
  await Promise.all(Object.values(dns).map((d) => d.close()));
});

describe('checks end to end, two locations', () => {
  it('one check from eu and us: both up → UP, one failing → PARTIAL, both → DOWN, back → UP', async () => {
    const t = await target('consensus');
    const check = await gw.createCheck(tcpCheck('e2e consensus', t));
    expect(check).toMatchObject({ targetId: `check:${check.id}`, type: 'tcp', host: t.host });

    const up = await expectStatus(check, 'UP', 'eu=UP us=UP');
    expect(up).toMatchObject({ kind: 'check', consensus: 'UP' });
    // Each location ran it through its own resolver, against its own address.
    expect(dns.eu.runsOf(t.host).length).toBeGreaterThan(0);
    expect(dns.us.runsOf(t.host).length).toBeGreaterThan(0);
    expect(t.at('eu').accepted.length).toBeGreaterThan(0);
    expect(t.at('us').accepted.length).toBeGreaterThan(0);

    await t.at('us').close();
    const partial = await expectStatus(check, 'PARTIAL', 'eu=UP us=DOWN');
    const us = partial.locations.find((l) => l.location === 'us');
    expect(us?.detail).toMatch(new RegExp(`ECONNREFUSED ${LOCATIONS.us.replace(/\./g, '\\.')}:${t.port}`));

    await t.at('eu').close();
    await expectStatus(check, 'DOWN', 'eu=DOWN us=DOWN');

    await Promise.all([t.at('eu').open(), t.at('us').open()]);
    await expectStatus(check, 'UP', 'eu=UP us=UP');

    const history = await gw.request<HistoryResponse>('GET', `/api/v1/targets/${check.targetId}/history?minutes=10`);
    expect(history.status).toBe(200);
    const transitions = history.body.events.filter((e) => e.location === null).map((e) => `${e.from}>${e.to}`);
    // The consensus went UP → PARTIAL → DOWN, in that order; the way back may pass PARTIAL (the
    // two locations see their listener again one run apart) but ends UP.
    const down = transitions.indexOf('PARTIAL>DOWN');
    expect(transitions.lastIndexOf('UP>PARTIAL', down)).toBeGreaterThanOrEqual(0);
    expect(down).toBeGreaterThan(0);
    expect(transitions.at(-1)).toMatch(/>UP$/);
  });

  it('downQuorumPct 50: one of two locations failing is DOWN, not PARTIAL', async () => {
    const t = await target('quorum');
    await t.at('us').close();
    const check = await gw.createCheck(tcpCheck('e2e quorum', t, { downQuorumPct: 50 }));
    await expectStatus(check, 'DOWN', 'eu=UP us=DOWN');
    // The same failure without the check's own quorum stays PARTIAL (the site's default is 100 %).
    const plain = await gw.createCheck(tcpCheck('e2e quorum default', t));
    await expectStatus(plain, 'PARTIAL', 'eu=UP us=DOWN');
  });

  it('a check assigned to one location runs only there, and follows a change of its locations', async () => {
    const t = await target('only-eu');
    const started = Date.now();
    const check = await gw.createCheck(tcpCheck('e2e only eu', t, { locations: ['eu'] }));
    await expectStatus(check, 'UP', 'eu=UP');
    await sleep(3_000);
    expect(dns.us.runsOf(t.host, started)).toEqual([]);

    const moved = await gw.patchCheck(check.id, { locations: ['us'] });
    expect(moved.status).toBe(200);
    const t0 = Date.now();
    await ranAt('us', t.host, t0, CHANGE_DEADLINE_MS + 1_000 + QUERY_SLACK_MS);
    await sleep(CHANGE_DEADLINE_MS + 1_000);
    expect(dns.eu.runsOf(t.host, t0 + CHANGE_DEADLINE_MS + QUERY_SLACK_MS)).toEqual([]);
  });

  it('a change reaches both running collectors within 2 s: new host, pause, resume', async () => {
    const t = await target('change-a');
    const check = await gw.createCheck(tcpCheck('e2e change', t));
    await expectStatus(check, 'UP', 'eu=UP us=UP');

    // Same listeners, another name: the first lookup of the new name is the change arriving.
    const newHost = `change-b.${t.host.split('.').slice(1).join('.')}`;
    const patched = await gw.patchCheck(check.id, { host: newHost }, `"${check.version}"`);
    expect(patched.status).toBe(200);
    const t0 = Date.now();
    for (const location of ['eu', 'us'] as const) {
      const first = await ranAt(location, newHost, t0, CHANGE_DEADLINE_MS + 1_000 + QUERY_SLACK_MS);
      expect(first - t0).toBeLessThan(CHANGE_DEADLINE_MS + 1_000 + QUERY_SLACK_MS);
    }
    await sleep(CHANGE_DEADLINE_MS + QUERY_SLACK_MS);
    for (const location of ['eu', 'us'] as const)
      expect(dns[location].runsOf(t.host, t0 + CHANGE_DEADLINE_MS + QUERY_SLACK_MS)).toEqual([]);

    // A stale If-Match is refused: the version above is the one before the change.
    const stale = await gw.patchCheck(check.id, { intervalSeconds: 2 }, `"${check.version}"`);
    expect(stale.status).toBe(409);

    const assignedBefore = { eu: await assignedAt('eu'), us: await assignedAt('us') };
    const paused = await gw.request<CheckDefinition>('POST', `/api/v1/checks/${check.id}/pause`);
    expect(paused.status).toBe(200);
    const t1 = Date.now();
    // Each collector's own count of assigned checks drops by one within 2 s (paused checks are not assigned).
    for (const location of ['eu', 'us'] as const)
      await waitFor(async () => (await assignedAt(location)) === assignedBefore[location] - 1, {
        timeoutMs: CHANGE_DEADLINE_MS - (Date.now() - t1),
        intervalMs: 50,
        description: `collector-${location} to drop the paused check from its assignment`,
      });
    await sleep(CHANGE_DEADLINE_MS + 2_000);
    for (const location of ['eu', 'us'] as const)
      expect(dns[location].runsOf(newHost, t1 + CHANGE_DEADLINE_MS + QUERY_SLACK_MS)).toEqual([]);

    expect((await gw.request('POST', `/api/v1/checks/${check.id}/resume`)).status).toBe(200);
    const t2 = Date.now();
    await Promise.all(
      (['eu', 'us'] as const).map((l) => ranAt(l, newHost, t2, CHANGE_DEADLINE_MS + 1_000 + QUERY_SLACK_MS)),
    );
    await expectStatus(check, 'UP', 'eu=UP us=UP');
  });

  it('a paused check is PAUSED in the targets API (not STALE), and UP again once resumed', async () => {
    const t = await target('paused');
    const check = await gw.createCheck(tcpCheck('e2e paused', t));
    await expectStatus(check, 'UP', 'eu=UP us=UP');
    expect((await gw.request('POST', `/api/v1/checks/${check.id}/pause`)).status).toBe(200);
    await expectStatus(check, 'PAUSED', 'eu=PAUSED us=PAUSED', 5_000);
    // Past the aggregator's deadline for a 1 s check (2 intervals + slack): a pause must not read as silence.
    await sleep(8_000);
    await expectStatus(check, 'PAUSED', 'eu=PAUSED us=PAUSED', 1_000);
    const metrics = await (await fetch(`${site.service('api-gateway').url}/metrics`)).text();
    expect(metrics).toContain(`fleetwatch_target_status{target="${check.targetId}",status="PAUSED"} 1`);
    // No up/down series while paused.
    expect(metrics).not.toContain(`fleetwatch_target_up{target="${check.targetId}"`);

    expect((await gw.request('POST', `/api/v1/checks/${check.id}/resume`)).status).toBe(200);
    await expectStatus(check, 'UP', 'eu=UP us=UP');
    const history = await gw.request<HistoryResponse>('GET', `/api/v1/targets/${check.targetId}/history?minutes=10`);
    const transitions = history.body.events.filter((e) => e.location === null).map((e) => `${e.from}>${e.to}`);
    // Resumed: UNKNOWN until the first result after the resume, then UP (never STALE in between).
    expect(transitions).toEqual(['UNKNOWN>UP', 'UP>PAUSED', 'PAUSED>UNKNOWN', 'UNKNOWN>UP']);
  });

  it('a deleted check leaves GET /api/v1/targets and /metrics for good; its history stays', async () => {
    const t = await target('deleted');
    const check = await gw.createCheck(tcpCheck('e2e deleted', t));
    const other = await gw.createCheck(tcpCheck('e2e kept', t));
    await expectStatus(check, 'UP', 'eu=UP us=UP');
    await expectStatus(other, 'UP', 'eu=UP us=UP');
    const ids = async (query: string) => (await gw.targets(query)).items.map((i) => i.id);
    expect(await ids('kind=check&limit=1000')).toContain(check.targetId);

    expect((await gw.request('DELETE', `/api/v1/checks/${check.id}`)).status).toBe(204);
    await waitFor(async () => (await gw.target(check.targetId)) === null, {
      timeoutMs: CHANGE_DEADLINE_MS + 3_000,
      intervalMs: 100,
      description: `${check.targetId} to leave the targets API`,
    });
    // Results still in flight, or run by a collector before it heard of the delete, do not bring it back.
    await sleep(CHANGE_DEADLINE_MS + 3_000);
    expect(await gw.target(check.targetId)).toBeNull();
    for (const query of ['limit=1000', 'kind=check&limit=1000', 'tag=e2e&limit=1000', 'location=eu&limit=1000'])
      expect(await ids(query)).not.toContain(check.targetId);
    expect(await ids('kind=check&limit=1000')).toContain(other.targetId);
    const metrics = await (await fetch(`${site.service('api-gateway').url}/metrics`)).text();
    expect(metrics).not.toContain(`target="${check.targetId}"`);
    expect(metrics).toContain(`fleetwatch_target_up{target="${other.targetId}",kind="check",location="eu"} 1`);

    const history = await gw.request<HistoryResponse>('GET', `/api/v1/targets/${check.targetId}/history?minutes=10`);
    expect(history.status).toBe(200);
    expect(history.body.points.length).toBeGreaterThan(0);
  });

  it('checks are targets beside pushed instances, in the targets API and /metrics', async () => {
    const t = await target('listed');
    const check = await gw.createCheck(tcpCheck('e2e listed', t));
    const key = await gw.request<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'e2e ingest',
      scopes: ['ingest'],
    });
    expect(key.status).toBe(201);
    const pushed = await fetch(`${site.service('status-ingest').url}/api/v1/status/updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key.body.key}` },
      body: JSON.stringify({ instanceId: 'e2e-web-1', kind: 'container', status: 'running', location: 'eu' }),
    });
    expect(pushed.status).toBe(202);
    await expectStatus(check, 'UP', 'eu=UP us=UP');

    const all = await waitFor(
      async () => {
        const list = await gw.targets('limit=1000');
        const ids = list.items.map((i) => i.id);
        return ids.includes(check.targetId) && ids.includes('instance:e2e-web-1') ? list : null;
      },
      { timeoutMs: 15_000, intervalMs: 200, description: 'the check and the pushed instance listed together' },
    );
    expect(all.items.find((i) => i.id === check.targetId)).toMatchObject({ kind: 'check', name: 'e2e listed' });
    const onlyChecks = await gw.targets('kind=check&limit=1000');
    expect(onlyChecks.items.every((i) => i.kind === 'check')).toBe(true);
    expect(onlyChecks.items.map((i) => i.id)).toContain(check.targetId);

    const wanted = ['eu', 'us'].map(
      (location) => `fleetwatch_target_up{target="${check.targetId}",kind="check",location="${location}"} 1`,
    );
    // Scrapes within a second share one read of live state (target-metrics.service.ts): poll past it.
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${site.service('api-gateway').url}/metrics`)).text();
        return wanted.every((line) => text.includes(line)) ? text : null;
      },
      { timeoutMs: 10_000, intervalMs: 300, description: 'the check in /metrics at both locations' },
    ).catch(async () => (await fetch(`${site.service('api-gateway').url}/metrics`)).text());
    for (const line of wanted) expect(metrics).toContain(line);
    expect(metrics).toContain('fleetwatch_target_up{target="instance:e2e-web-1",kind="instance",location="eu"} 1');
  });
});
