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
// YAML import runs with prune=false so it never deletes a site's other checks.
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
  /** Services to run with --cpu-prof (comma-separated). */
  'cpu-prof': '',
  keep: false,
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
    return { url: `http://127.0.0.1:${gw.port}`, password, cleanup };
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

/** N requests made by `make(i)`, `concurrency` in flight; latencies and failures. */
async function requests(n, concurrency, make) {
  const latencies = [];
  const failures = new Map();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        const r = await make(i);
        latencies.push(r.ms);
        if (r.status >= 300) failures.set(r.status, failures.get(r.status) ?? r.text.slice(0, 300));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    seconds: r2(seconds),
    perSecond: Math.round(n / seconds),
    p50Ms: r1(pct(latencies, 50)),
    p99Ms: r1(pct(latencies, 99)),
    maxMs: r1(latencies.at(-1) ?? NaN),
    failed: [...failures.keys()].length ? Object.fromEntries(failures) : undefined,
  };
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

async function measure(base, token) {
  const n = args.checks;
  const results = [];
  const created = [];
  const keep = (r) => {
    try {
      const body = JSON.parse(r.text);
      if (body.id) created.push(body.id);
      if (Array.isArray(body.checks)) for (const c of body.checks) created.push(c.id);
    } catch {
      /* not JSON */
    }
    return r;
  };
  const count = async () => {
    const r = await call(base, token, 'GET', '/api/v1/config/export');
    return r.status === 200 ? (r.text.match(/^ {2}\S.*:$/gm) ?? []).length : `export ${r.status}`;
  };
  for (const phase of phases) {
    const before = await count();
    const load = loadavg()[0];
    let row;
    if (phase === 'rest' || phase === 'rest-concurrent') {
      const c = phase === 'rest' ? 1 : args.concurrency;
      row = await requests(n, c, async (i) =>
        keep(await call(base, token, 'POST', '/api/v1/checks', checkSpec(phase, i))),
      );
      row.how = `POST /api/v1/checks ×${n}, ${c} in flight`;
    } else if (phase === 'bulk') {
      const batches = Math.ceil(n / 1000);
      row = await requests(batches, 1, async (b) => {
        const checks = [];
        for (let i = b * 1000; i < Math.min(n, (b + 1) * 1000); i++) checks.push(checkSpec(phase, i));
        return keep(await call(base, token, 'POST', '/api/v1/checks/bulk', { checks }));
      });
      row.how = `POST /api/v1/checks/bulk ×${batches} (≤ 1000 each)`;
    } else {
      const doc = yamlOf(phase, n);
      const dry = await call(
        base,
        token,
        'POST',
        '/api/v1/config/import?dryRun=true&prune=false',
        doc,
        'application/yaml',
      );
      const apply = await call(base, token, 'POST', '/api/v1/config/import?prune=false', doc, 'application/yaml');
      if (apply.status === 200)
        created.push(
          ...JSON.parse(apply.text)
            .plan.map((p) => p.id)
            .filter(Boolean),
        );
      const again = await call(base, token, 'POST', '/api/v1/config/import?prune=false', doc, 'application/yaml');
      const exp = await call(base, token, 'GET', '/api/v1/config/export');
      const statuses = [dry, apply, again, exp].map((r) => r.status);
      row = {
        seconds: r2(apply.ms / 1000),
        dryRunS: r2(dry.ms / 1000),
        unchangedReimportS: r2(again.ms / 1000),
        exportS: r2(exp.ms / 1000),
        yamlKb: Math.round(doc.length / 1024),
        failed: statuses.some((s) => s !== 200)
          ? { statuses, first: [dry, apply, again, exp].find((r) => r.status !== 200).text.slice(0, 300) }
          : undefined,
        how: `POST /api/v1/config/import (YAML, ${n} new checks, prune=false)`,
      };
      // The site's collectors fetch their assignment after the change; let that settle before the next phase.
      await sleep(2000);
    }
    results.push({ phase, checksBefore: before, load1Before: r1(load), ...row });
    console.log(`  ${phase.padEnd(16)} ${JSON.stringify(results.at(-1))}`);
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
    ? { url: String(args.gateway).replace(/\/+$/, ''), password: args.password, cleanup: async () => undefined }
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
    out = await measure(site.url, token);
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
  console.log('\nphase             seconds  per s   p50 ms   p99 ms   goal');
  for (const r of out.results) {
    const goal = goals[r.phase];
    const verdict = goal === undefined ? '' : r.seconds < goal && !r.failed ? `< ${goal} s ✓` : `< ${goal} s ✗`;
    console.log(
      `${r.phase.padEnd(17)} ${String(r.seconds).padStart(7)}  ${String(r.perSecond ?? '').padStart(5)}   ${String(r.p50Ms ?? '').padStart(6)}   ${String(r.p99Ms ?? '').padStart(6)}   ${verdict}${r.failed ? `  FAILED ${JSON.stringify(r.failed)}` : ''}`,
    );
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
    spawnSync(
      process.execPath,
      [join(root, 'tools/bench/aggregator/profile-top.mjs'), join(profDir, file), '--top', '25'],
      {
        stdio: 'inherit',
      },
    );
  }
  if (out.results.some((r) => r.failed)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
