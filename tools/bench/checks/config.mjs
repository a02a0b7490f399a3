#!/usr/bin/env node
// Configuration writes (issue 15): how long creating N checks takes through the REST API
// (one at a time, then --concurrency in flight), through bulk create (≤ 1000 per request)
// and through YAML import (dry run, apply, the same file again: no change), plus an export.
// Goals for 1,000 checks: REST < 30 s, YAML import < 5 s.
//
//   npm run build && node tools/bench/checks/config.mjs [--checks 1000 --concurrency 8
//       --phases yaml,rest,rest-concurrent,bulk --cpu-prof sync-orchestrator --json]
//
// By default it starts sync-orchestrator and api-gateway the way `npm start` does (same
// Node flags and malloc settings, tools/launcher/common.mjs) on a throwaway database,
// vhost and Redis prefix, from a private copy of dist/; --with-collector adds a collector
// (it fetches its assignment after every change, as on a real site). --gateway URL
// measures a site that is already running (`npm start`) instead, logging in as admin
// with --password (default $FLEETWATCH_ADMIN_PASSWORD); the checks it made are deleted
// afterwards unless --keep. Each phase makes checks of its own (`bench-<phase>-<run>-N`);
// YAML import runs with prune=false so it never deletes a site's other checks. On a site
// started here each phase starts from an empty configuration (--fresh, one import of
// `checks: {}`). Per phase it also prints the first and last tenth's median latency (a
// write that costs more as the site grows shows there) and, from the services' /metrics,
// the mean RPC time per method: the gateway's wait (client) and the owner's handling (server).
// --cpu-prof SERVICES (comma-separated) writes a V8 CPU profile per service to
// tmp/bench-checks-config-prof and prints where the time went.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, serviceEnv, serviceNodeArgs } from '../../launcher/common.mjs';
import { parseArgs } from '../lib/args.mjs';
import { busyCores, codeVersion } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const PHASES = ['yaml', 'rest', 'rest-concurrent', 'bulk'];
const PORT_VARIABLE = {
  'api-gateway': 'API_GATEWAY_PORT',
  collector: 'COLLECTOR_PORT',
  'sync-orchestrator': 'SYNC_ORCHESTRATOR_PORT',
};

const args = parseArgs(process.argv.slice(2), {
  checks: 1000,
  concurrency: 8,
  phases: PHASES.join(','),
  /** Base URL of a running gateway; empty: start the services here. */
  gateway: '',
  username: 'admin',
  password: process.env.FLEETWATCH_ADMIN_PASSWORD ?? '',
  'with-collector': false,
  /** Extra Node flags for the services started here (e.g. "--require tools/bench/aggregator/time-sql.cjs"). */
  'node-flags': '',
  /** Services to run with --cpu-prof (comma-separated). */
  'cpu-prof': '',
  keep: false,
  /** Empty the site before each phase (one import of `checks: {}`), so each starts from 0 checks. Own site only. */
  fresh: true,
  json: false,
  'keep-logs': false,
});
const phases = String(args.phases).split(',').filter(Boolean);
for (const p of phases) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p} (known: ${PHASES.join(', ')})`);
const profiled = String(args['cpu-prof']).split(',').filter(Boolean);
const profDir = join(root, 'tmp', 'bench-checks-config-prof');
const runTag = Date.now().toString(36);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ── the checks: http checks with two conditions, so each save validates URL and CEL ──
function checkSpec(phase, i) {
  return {
    name: `bench-${phase}-${runTag}-${String(i).padStart(5, '0')}`,
    type: 'http',
    url: `http://127.0.0.1:9/bench/${phase}/${i}`,
    intervalSeconds: 60,
    timeoutSeconds: 5,
    tags: ['bench', `bench-${phase}`],
    conditions: ['status == 200', 'latency < 500'],
  };
}

// ── services (own mode) ──
const children = [];
const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

async function startService(name, dir, env) {
  const port = await freePort();
  const flags = [
    ...serviceNodeArgs(name),
    ...String(args['node-flags']).split(/\s+/).filter(Boolean),
    ...(profiled.includes(name)
      ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
  ];
  const child = spawn(process.execPath, [...flags, join(dir, 'dist/apps', name, 'src/main.js')], {
    cwd: root,
    env: { ...serviceEnv(env), [PORT_VARIABLE[name]]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (args['keep-logs']) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  const svc = { name, child, port, tail };
  children.push(svc);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${tail.join('\n')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return svc;
    if (Date.now() > deadline) throw new Error(`${name} not ready within 90 s:\n${tail.join('\n')}`);
    await sleep(250);
  }
}

async function stopServices() {
  await Promise.all(
    children.map(
      (s) =>
        s.child.exitCode === null &&
        s.child.signalCode === null &&
        new Promise((r) => {
          s.child.once('exit', r);
          s.child.kill('SIGINT');
          setTimeout(() => s.child.kill('SIGKILL'), 15_000).unref();
        }),
    ),
  );
}

/** Starts the site here; returns its gateway URL, admin password and a cleanup. */
async function ownSite() {
  for (const name of ['sync-orchestrator', 'api-gateway', 'collector'])
    if (!existsSync(join(root, 'dist/apps', name, 'src/main.js')))
      throw new Error(`dist/apps/${name}/src/main.js is missing: run \`npm run build\` first`);
  const dir = join(root, 'tmp', `bench-checks-config-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  const { createIsolatedDatabase, createIsolatedVhost } = require(join(dir, 'dist/libs/testing/src/index.js'));
  const database = await createIsolatedDatabase();
  const vhost = await createIsolatedVhost('bench-checks-config');
  const redisUrl = process.env.REDIS_URL ?? DEFAULTS.REDIS_URL;
  const redisPrefix = `fwbenchcfg:${runTag}:`;
  const password = 'bench-checks-admin';
  const env = {
    ...DEFAULTS,
    ...process.env,
    DATABASE_URL: database.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_ADMIN_PASSWORD: password,
    FLEETWATCH_SITE: 'bench',
    COLLECTOR_SPOOL_DIR: join(dir, 'collector-spool'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  delete env.NODE_OPTIONS;
  const cleanup = async () => {
    await stopServices();
    const { Redis } = require('ioredis');
    const r = new Redis(redisUrl);
    for (let cursor = '0'; ;) {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      if (keys.length) await r.unlink(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    r.disconnect();
    await vhost.dispose().catch(() => undefined);
    await database.dispose().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One at a time, as in `npm start`'s order, so their start-up CPU does not compete.
    await startService('sync-orchestrator', dir, env);
    const gw = await startService('api-gateway', dir, env);
    if (args['with-collector']) await startService('collector', dir, { ...env, FLEETWATCH_LOCATION: 'bench' });
    const metricsUrls = children.map((c) => `http://127.0.0.1:${c.port}`);
    return { url: `http://127.0.0.1:${gw.port}`, password, cleanup, metricsUrls, fresh: args.fresh };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ── HTTP ──
async function call(base, token, method, path, body, contentType = 'application/json') {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': contentType }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started };
}

const pct = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
const r1 = (n) => Math.round(n * 10) / 10;
const r2 = (n) => Math.round(n * 100) / 100;

/** N requests made by `make(i)`, `concurrency` in flight: latencies (also of the first and last tenth) and failures. */
async function requests(n, concurrency, make) {
  const inOrder = new Array(n);
  const failures = new Map();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        const r = await make(i);
        inOrder[i] = r.ms;
        if (r.status >= 300) failures.set(r.status, failures.get(r.status) ?? r.text.slice(0, 300));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const p50Of = (a) =>
    r1(
      pct(
        [...a].sort((x, y) => x - y),
        50,
      ),
    );
  const sorted = [...inOrder].sort((a, b) => a - b);
  const tenth = Math.max(1, Math.floor(n / 10));
  return {
    seconds: r2(seconds),
    perSecond: Math.round(n / seconds),
    p50Ms: r1(pct(sorted, 50)),
    p99Ms: r1(pct(sorted, 99)),
    maxMs: r1(sorted.at(-1) ?? NaN),
    // A write that costs more as the site grows shows here: the first tenth against the last.
    p50FirstTenthMs: p50Of(inOrder.slice(0, tenth)),
    p50LastTenthMs: p50Of(inOrder.slice(-tenth)),
    failed: failures.size ? Object.fromEntries(failures) : undefined,
  };
}

/** Sum and count of fleetwatch_rpc_duration_seconds per side and method, from a service's /metrics. */
async function rpcTimes(url) {
  const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
    .then((r) => (r.ok ? r.text() : ''))
    .catch(() => '');
  const out = {};
  for (const m of text.matchAll(/^fleetwatch_rpc_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/gm)) {
    const side = /side="([^"]+)"/.exec(m[2])?.[1];
    const method = /method="([^"]+)"/.exec(m[2])?.[1];
    const k = `${side} ${method}`;
    out[k] ??= { sum: 0, count: 0 };
    out[k][m[1]] += Number(m[3]);
  }
  return out;
}

/** Mean ms per call during a phase, per side and method: the gateway's wait and the owner's handling. */
function rpcDelta(before, after) {
  const out = {};
  for (const [k, a] of Object.entries(after)) {
    const b = before[k] ?? { sum: 0, count: 0 };
    const n = a.count - b.count;
    if (n > 0) out[k] = `${n} × ${r1(((a.sum - b.sum) / n) * 1000)} ms`;
  }
  return out;
}

function yamlOf(phase, n) {
  const { stringify } = require('yaml');
  const checks = new Map();
  for (let i = 0; i < n; i++) {
    const { name, ...rest } = checkSpec(phase, i);
    checks.set(name, rest);
  }
  return stringify({ checks }, { lineWidth: 0 });
}

async function measure(site, token) {
  const base = site.url;
  const n = args.checks;
  const results = [];
  const created = [];
  const keep = (r) => {
    try {
      const body = JSON.parse(r.text);
      if (body.id) created.push(body.id);
      for (const c of body.checks ?? []) created.push(c.id);
    } catch {
      /* not JSON */
    }
    return r;
  };
  const post = (path, body, type) => call(base, token, 'POST', path, body, type);
  const yaml = (query, doc) => post(`/api/v1/config/import?${query}`, doc, 'application/yaml');
  const count = async () => {
    const r = await call(base, token, 'GET', '/api/v1/config/export');
    return r.status === 200 ? (r.text.match(/^ {2}\S.*:$/gm) ?? []).length : `export ${r.status}`;
  };
  const rpc = async () => Object.assign({}, ...(await Promise.all(site.metricsUrls.map((u) => rpcTimes(u)))));
  for (const phase of phases) {
    if (site.fresh) {
      const emptied = await yaml('prune=true', 'checks: {}\n');
      if (emptied.status !== 200) throw new Error(`emptying the site answered ${emptied.status}: ${emptied.text}`);
      await sleep(1000);
    }
    const before = { checks: await count(), load1: r1(loadavg()[0]), rpc: await rpc() };
    let row;
    if (phase === 'rest' || phase === 'rest-concurrent') {
      const c = phase === 'rest' ? 1 : args.concurrency;
      row = await requests(n, c, async (i) => keep(await post('/api/v1/checks', checkSpec(phase, i))));
      row.how = `POST /api/v1/checks ×${n}, ${c} in flight`;
    } else if (phase === 'bulk') {
      const batches = Math.ceil(n / 1000);
      row = await requests(batches, 1, async (b) => {
        const checks = [];
        for (let i = b * 1000; i < Math.min(n, (b + 1) * 1000); i++) checks.push(checkSpec(phase, i));
        return keep(await post('/api/v1/checks/bulk', { checks }));
      });
      row.how = `POST /api/v1/checks/bulk ×${batches} (≤ 1000 each)`;
    } else {
      const doc = yamlOf(phase, n);
      const dry = await yaml('dryRun=true&prune=false', doc);
      const apply = await yaml('prune=false', doc);
      if (apply.status === 200) created.push(...JSON.parse(apply.text).plan.flatMap((p) => (p.id ? [p.id] : [])));
      const again = await yaml('prune=false', doc);
      const exp = await call(base, token, 'GET', '/api/v1/config/export');
      const bad = [dry, apply, again, exp].find((r) => r.status !== 200);
      row = {
        seconds: r2(apply.ms / 1000),
        dryRunS: r2(dry.ms / 1000),
        unchangedReimportS: r2(again.ms / 1000),
        exportS: r2(exp.ms / 1000),
        yamlKb: Math.round(doc.length / 1024),
        failed: bad ? { [bad.status]: bad.text.slice(0, 300) } : undefined,
        how: `POST /api/v1/config/import (YAML, ${n} new checks, prune=false)`,
      };
    }
    const rpcMeans = rpcDelta(before.rpc, await rpc());
    results.push({ phase, checksBefore: before.checks, load1Before: before.load1, ...row, rpc: rpcMeans });
    console.log(`  ${phase.padEnd(16)} ${JSON.stringify(results.at(-1))}`);
    // A site's collectors fetch their assignment after each change; let that settle before the next phase.
    await sleep(2000);
  }
  return { results, created };
}

async function main() {
  const version = codeVersion(root, join(root, 'dist/apps/sync-orchestrator/src/main.js'));
  const settings = {
    checks: args.checks,
    concurrency: args.concurrency,
    phases,
    site:
      args.gateway || 'started here (sync-orchestrator, api-gateway' + (args['with-collector'] ? ', collector)' : ')'),
    cpuProf: profiled,
    node: process.version,
    cpus: cpus().length,
    load1: r1(loadavg()[0]),
    busyCoresBefore: r1(await busyCores(1000)),
    ...version,
    at: new Date().toISOString(),
  };
  console.log(`bench checks/config — ${JSON.stringify(settings)}`);
  if (profiled.length) {
    if (args.gateway) throw new Error('--cpu-prof needs the services started here (no --gateway)');
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
  }
  const site = args.gateway
    ? {
        url: String(args.gateway).replace(/\/+$/, ''),
        password: args.password,
        cleanup: async () => undefined,
        metricsUrls: [String(args.gateway).replace(/\/+$/, '')],
        fresh: false,
      }
    : await ownSite();
  process.once('SIGINT', () => void site.cleanup().then(() => process.exit(130)));
  let out;
  try {
    const login = await call(site.url, null, 'POST', '/api/v1/auth/login', {
      username: args.username,
      password: site.password,
    });
    if (login.status !== 200) throw new Error(`login answered ${login.status}: ${login.text}`);
    const token = JSON.parse(login.text).token;
    // The configuration owner must answer before anything is timed (a missing RPC handler is a 503 after 5 s each).
    const probe = await call(site.url, token, 'GET', '/api/v1/checks?limit=1');
    if (probe.status !== 200) throw new Error(`GET /api/v1/checks answered ${probe.status}: ${probe.text}`);
    out = await measure(site, token);
    if (args.gateway && !args.keep) {
      const del = await requests(out.created.length, 8, (i) =>
        call(site.url, token, 'DELETE', `/api/v1/checks/${out.created[i]}`),
      );
      console.log(`  deleted the ${out.created.length} checks made here in ${del.seconds} s`);
    }
  } finally {
    await site.cleanup();
  }
  const goals = { rest: 30, 'rest-concurrent': 30, yaml: 5 };
  const cell = (v, w) => String(v ?? '').padStart(w);
  console.log('\nphase            seconds  per s  p50 ms  p99 ms  p50 first/last tenth  goal');
  for (const r of out.results) {
    const goal = goals[r.phase];
    const verdict = goal === undefined ? '' : r.seconds < goal && !r.failed ? `< ${goal} s ✓` : `< ${goal} s ✗`;
    const tenths = r.p50FirstTenthMs === undefined ? '' : `${r.p50FirstTenthMs} / ${r.p50LastTenthMs}`;
    console.log(
      `${r.phase.padEnd(16)} ${cell(r.seconds, 7)} ${cell(r.perSecond, 6)} ${cell(r.p50Ms, 7)} ${cell(r.p99Ms, 7)}  ${tenths.padEnd(20)}  ${verdict}${r.failed ? `  FAILED ${JSON.stringify(r.failed)}` : ''}`,
    );
    console.log(`${''.padEnd(17)}rpc mean per call: ${JSON.stringify(r.rpc)}`);
  }
  console.log(`box after: load1 ${r1(loadavg()[0])}, busy cores ${r1(await busyCores(1000))} of ${cpus().length}`);
  if (args.json) console.log(JSON.stringify({ settings, results: out.results }));
  for (const name of profiled) {
    const file = readdirSync(profDir).find((f) => f.startsWith(name));
    if (!file) {
      console.log(`no CPU profile from ${name} (did it exit cleanly?)`);
      continue;
    }
    console.log(`\n── CPU profile of ${name}: ${join(profDir, file)} ──`);
    const top = join(root, 'tools/bench/aggregator/profile-top.mjs');
    spawnSync(process.execPath, [top, join(profDir, file), '--top', '25'], { stdio: 'inherit' });
  }
  if (out.results.some((r) => r.failed)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
