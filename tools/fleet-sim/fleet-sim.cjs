#!/usr/bin/env node
'use strict';
// fleet-sim (issue 19): N simulated member sites served by one process, for the leader's
// tests and benchmark. Member i answers under http://HOST:PORT/m/{name} the three member
// endpoints (status report, flow, current snapshot) in the shapes of libs/contracts/src/fleet.
//
//   node tools/fleet-sim/fleet-sim.cjs --members 1000 --latency 50 [--port 4100] [--hang 0.1]
//       [--fail 0.05] [--old 0.05] [--drift 0.2] [--versions 1.0.0,1.1.0] [--token SECRET]
//
// Per member, configurable at start or later (setBehaviour): latencyMs, fail (answers 500),
// hang (never answers), old (a site without the newer endpoints: flow and snapshot 404),
// version (component versions), drift (its snapshot differs from the base: one interval
// changed, one extra check, a property changed), token (the bearer it requires), redirectTo
// (answers 302 to that base URL + the same path), noEtag (its snapshot carries no ETag and
// If-None-Match is ignored), failPaths (these endpoints alone answer 500, e.g. the snapshot), withoutAreas (snapshot
// areas it leaves out, as a version from before them). Every request's path, whether it carried an Authorization header
// and its If-None-Match are recorded (`requests`), never the Authorization header's value.
const http = require('node:http');
const crypto = require('node:crypto');

const STATUSES = ['UP', 'DOWN', 'PARTIAL', 'STALE', 'PAUSED', 'UNKNOWN'];
const COMPONENTS = ['aggregator', 'api-gateway', 'collector', 'status-ingest', 'sync-orchestrator'];

function canonicalJson(v) {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const DEFAULT_BASE = {
  checks: [
    { key: 'api', type: 'http', url: 'https://api.example/health', intervalSeconds: 60 },
    { key: 'web', type: 'http', url: 'https://web.example/', tags: ['web'] },
  ],
  alertRules: [],
  channels: [{ key: 'ops', type: 'email', to: 'ops@example.com', password: '[redacted]' }],
  properties: [
    { key: 'region', value: 'eu' },
    { key: 'retentionDays', value: 7 },
  ],
  statusPages: [],
  usersAndRoles: [{ key: 'admin', role: 'admin' }],
  componentVersions: [],
};

/**
 * The snapshot areas of a member: its `base` (default DEFAULT_BASE; a test passes the leader's
 * own areas), with `properties` replaced when given, component versions set to `version` when
 * given, and when it drifts: the first check's interval changed to 15 s and one extra check.
 */
function areasOf(m) {
  const areas = JSON.parse(JSON.stringify(m.base ?? DEFAULT_BASE));
  if (m.properties) areas.properties = m.properties;
  if (m.version || areas.componentVersions.length === 0)
    areas.componentVersions = COMPONENTS.map((c) => ({ key: c, version: m.version ?? '1.0.0' }));
  if (m.drift) {
    if (areas.checks.length > 0) areas.checks[0] = { ...areas.checks[0], intervalSeconds: 15 };
    areas.checks.push({ key: 'extra', type: 'tcp', host: 'db.example', port: 5432, intervalSeconds: 60 });
  }
  // An older member's snapshot, from before these areas (e.g. ['properties']): left out, not sent empty.
  for (const area of m.withoutAreas ?? []) delete areas[area];
  return areas;
}

function report(m, now) {
  const status = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  status.UP = 10 + (m.index % 5);
  status.DOWN = m.index % 3;
  return {
    site: m.name,
    role: 'member',
    generatedAt: new Date(now).toISOString(),
    status,
    errors: { down: status.DOWN, failedResults15m: m.index % 7, deadLettered: 0 },
    broker: { source: 'management', inFlight: m.index % 4, queued: m.index % 11, deadLettered: 0, queues: [] },
    brokerError: null,
    hosts: { count: 1, up: 1, cpuPct: 12.5, memoryUsedPct: 40, diskUsedPct: 55, gpuCount: 0, gpuUtilPct: null },
    flow: {
      ingress: { count: 600, bytes: 60_000 },
      egress: { count: 600, bytes: 48_000 },
      stored: { count: 590, bytes: 120_000 },
      deleted: { count: null, bytes: null },
    },
    components: COMPONENTS.map((c) => ({ component: c, version: m.version ?? '1.0.0' })),
  };
}

function flow(m, minutes, now) {
  const end = Math.floor(now / 60_000) * 60_000 + 60_000;
  const points = [];
  for (let at = end - minutes * 60_000; at < end; at += 60_000)
    points.push({
      at: new Date(at).toISOString(),
      ingress: { count: 120, bytes: 12_000 },
      egress: { count: 120, bytes: 9_600 },
      stored: { count: 118, bytes: 24_000 },
      deleted: { count: null, bytes: null },
    });
  return { site: m.name, minutes, stepSeconds: 60, points, sources: { ingress: 'fleet-sim' } };
}

function snapshot(m, now) {
  const areas = areasOf(m);
  return {
    schemaVersion: 1,
    site: m.name,
    generatedAt: new Date(now).toISOString(),
    hash: crypto.createHash('sha256').update(canonicalJson(areas)).digest('hex'),
    configVersion: m.drift ? 4 : 3,
    areas,
  };
}

/**
 * Starts the simulator. `members`: a count or a list of partial behaviours; `defaults` apply
 * to every member. Resolves with { url, members: [{name, url}], setBehaviour, requests, close }.
 */
async function startFleetSim({ members = 3, defaults = {}, port = 0, host = '127.0.0.1' } = {}) {
  const list = typeof members === 'number' ? Array.from({ length: members }, () => ({})) : members;
  const state = new Map();
  list.forEach((b, i) => {
    const name = b.name ?? `sim-${String(i).padStart(4, '0')}`;
    state.set(name, { latencyMs: 0, ...defaults, ...b, name, index: i });
  });
  const requests = [];
  const hanging = new Set();
  const load = { inFlight: 0, maxInFlight: 0 };
  const server = http.createServer((req, res) => {
    const m = /^\/m\/([^/]+)(\/[^?]*)(?:\?(.*))?$/.exec(req.url ?? '');
    const member = m && state.get(decodeURIComponent(m[1]));
    if (!member) return void res.writeHead(404).end();
    const path = m[2];
    requests.push({
      member: member.name,
      path,
      query: m[3] ?? '',
      authorized: req.headers.authorization !== undefined,
      ifNoneMatch: req.headers['if-none-match'] ?? null,
    });
    if (member.hang) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    // Answered requests in flight (a hanging one is not counted: its client may have given up).
    load.inFlight++;
    load.maxInFlight = Math.max(load.maxInFlight, load.inFlight);
    res.on('close', () => load.inFlight--);
    setTimeout(() => {
      if (member.redirectTo) {
        res.writeHead(302, { location: `${member.redirectTo}${path}${m[3] ? `?${m[3]}` : ''}` }).end();
        return;
      }
      if (member.token && req.headers.authorization !== `Bearer ${member.token}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"unauthorized"}}');
        return;
      }
      if (member.fail || (member.failPaths ?? []).includes(path)) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"internal"}}');
        return;
      }
      const now = Date.now();
      let body;
      if (path === '/api/v1/status/report') body = report(member, now);
      else if (path === '/api/v1/metrics/flow' && !member.old) {
        const minutes = Math.min(1440, Math.max(1, Number(new URLSearchParams(m[3] ?? '').get('minutes') ?? 60) || 60));
        body = flow(member, minutes, now);
      } else if (path === '/api/v1/system/snapshot/current' && !member.old) body = snapshot(member, now);
      if (body === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      // The snapshot's ETag is its quoted hash; a leader holding it gets a 304 (unless `noEtag`, an older member).
      if (body.hash && !member.noEtag) {
        const etag = `"${body.hash}"`;
        if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
        res.setHeader('etag', etag);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }, member.latencyMs);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(port, host, resolve));
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    members: [...state.values()].map((s) => ({ name: s.name, url: `${url}/m/${encodeURIComponent(s.name)}` })),
    requests,
    load,
    setBehaviour(name, behaviour) {
      const s = state.get(name);
      if (!s) throw new Error(`no simulated member ${name}`);
      Object.assign(s, behaviour);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startFleetSim, canonicalJson, areasOf };

if (require.main === module) {
  const args = Object.fromEntries(
    process.argv
      .slice(2)
      .reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
  );
  const n = Number(args.members ?? 3);
  const pick = (ratio, i) => i < Math.round(n * Number(ratio ?? 0));
  const versions = String(args.versions ?? '1.0.0').split(',');
  // Behaviours go to distinct members: hanging first, then failing, old, drifting.
  const hang = Math.round(n * Number(args.hang ?? 0));
  const fail = Math.round(n * Number(args.fail ?? 0));
  const old = Math.round(n * Number(args.old ?? 0));
  const members = Array.from({ length: n }, (_, i) => ({
    hang: i < hang,
    fail: i >= hang && i < hang + fail,
    old: i >= hang + fail && i < hang + fail + old,
    drift: pick(args.drift, n - 1 - i),
    version: versions[i % versions.length],
  }));
  startFleetSim({
    members,
    defaults: { latencyMs: Number(args.latency ?? 0), token: args.token },
    port: Number(args.port ?? 4100),
    host: args.host ?? '127.0.0.1',
  }).then((sim) => {
    process.stdout.write(`${JSON.stringify({ url: sim.url, members: sim.members.length })}\n`);
    if (args['config-out']) {
      const cfg = sim.members.map((m) => ({
        name: m.name,
        url: m.url,
        ...(args.token ? { credentials: { type: 'token', tokenEnv: 'FLEET_SIM_TOKEN' } } : {}),
      }));
      require('node:fs').writeFileSync(args['config-out'], JSON.stringify({ members: cfg }));
    }
    process.on('SIGINT', () => sim.close().then(() => process.exit(0)));
    process.on('SIGTERM', () => sim.close().then(() => process.exit(0)));
  });
}
