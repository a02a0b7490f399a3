#!/usr/bin/env node
// Memory at rest (issue 14): starts the five built services the way `npm start` does
// (same Node flags, from tools/launcher/common.mjs) on a throwaway database, vhost and
// Redis prefix, and prints per service RSS (VmRSS, anonymous vs file-backed), the V8
// heap (used / total, from each service's /metrics) and, with --smaps, where the rest
// of the RSS lies (node binary, native add-ons, malloc arena, anonymous mappings).
// Measured idle after start, then (--load > 0) right after a short load and idle again.
//
//   npm run build && npm run bench:memory [-- --settle 20 --load 5 --idle-after 20
//       --services collector,status-ingest,aggregator,sync-orchestrator,api-gateway
//       --node-flags "--max-semi-space-size=1" --smaps --snapshot tmp/heap --json]
//
// --snapshot DIR writes one V8 heap snapshot per service (SIGUSR2, `--heapsnapshot-signal`)
// after the last measurement, and prints what dominates it (tools/bench/memory/heap-summary.mjs).
// Services run from a private copy of dist/, so a concurrent build cannot pull it away.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, serviceEnv, serviceNodeArgs } from '../../launcher/common.mjs';
import { summarizeSnapshot, printSummary } from './heap-summary.mjs';
import { parseArgs } from '../lib/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const ALL = ['collector', 'status-ingest', 'aggregator', 'sync-orchestrator', 'api-gateway'];
const PORT_VARIABLE = {
  'api-gateway': 'API_GATEWAY_PORT',
  'status-ingest': 'STATUS_INGEST_PORT',
  collector: 'COLLECTOR_PORT',
  aggregator: 'AGGREGATOR_PORT',
  'sync-orchestrator': 'SYNC_ORCHESTRATOR_PORT',
};

const args = parseArgs(process.argv.slice(2), {
  /** Seconds between every service being ready and the idle measurement. */
  settle: 20,
  /** Seconds of single-update POSTs to status-ingest (50 connections) and gateway reads; 0: idle only. */
  load: 5,
  /** Seconds of idling after the load before the last measurement. */
  'idle-after': 20,
  services: ALL.join(','),
  /**
   * launcher: the flags and malloc tunables `npm start` uses now; plain: only what it used
   * before issue 14 (source maps, the two heap caps), to compare.
   */
  settings: 'launcher',
  /** Extra Node flags for every service, after the launcher's. */
  'node-flags': '',
  /** Break the RSS down by mapping (/proc/<pid>/smaps). */
  smaps: false,
  /** Directory for one heap snapshot per service, taken after the last measurement. */
  snapshot: '',
  /** Print the summary as JSON too. */
  json: false,
  'keep-logs': false,
  /** The build to run (default dist/), copied first so that a concurrent build cannot pull it away. */
  dist: 'dist',
});

const services = String(args.services)
  .split(',')
  .filter(Boolean)
  .map((s) => {
    if (!ALL.includes(s)) throw new Error(`unknown service ${s} (known: ${ALL.join(', ')})`);
    return s;
  });
for (const s of services) {
  if (!existsSync(join(resolve(root, args.dist), 'apps', s, 'src/main.js'))) {
    console.error(`${args.dist}/apps/${s}/src/main.js is missing: run \`npm run build\` first`);
    process.exit(1);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

// ── process memory (Linux /proc) ──
const kB = (text, field) => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) / 1024 : NaN;
};
function procStatus(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: kB(t, 'VmRSS'), anon: kB(t, 'RssAnon'), file: kB(t, 'RssFile'), hwm: kB(t, 'VmHWM') };
  } catch {
    return { rss: NaN, anon: NaN, file: NaN, hwm: NaN };
  }
}

/** RSS (MB) by mapping kind: what lies outside the V8 heap. */
function smapsBreakdown(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const groups = new Map();
  let name = null;
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const path = header[1];
      if (!path) name = 'anonymous (V8 heap, V8 code, Wasm, mmap)';
      else if (path === '[heap]') name = 'malloc heap ([heap])';
      else if (path.startsWith('[stack')) name = 'stacks';
      else if (path.startsWith('[')) name = path;
      else if (path === process.execPath || /\/node$/.test(path)) name = 'node binary';
      else if (/\.node$/.test(path)) name = `add-on ${path.replace(/^.*node_modules\//, '')}`;
      else if (/\.so/.test(path)) name = 'shared libraries';
      else name = `file ${path.replace(root + '/', '')}`;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m && name) groups.set(name, (groups.get(name) ?? 0) + Number(m[1]) / 1024);
  }
  return Object.fromEntries([...groups].sort((a, b) => b[1] - a[1]).filter(([, mb]) => mb >= 0.5));
}

/** The V8 heap and Node's own figures from the service's Prometheus metrics (prom-client defaults). */
async function heapFromMetrics(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    const value = (name, label = '') => {
      const m = new RegExp(`^${name}${label ? `\\{[^}]*${label}[^}]*\\}` : ''}\\s+([0-9.e+]+)`, 'm').exec(text);
      return m ? Number(m[1]) / 1024 / 1024 : NaN;
    };
    return {
      heapUsed: value('nodejs_heap_size_used_bytes'),
      heapTotal: value('nodejs_heap_size_total_bytes'),
      external: value('nodejs_external_memory_bytes'),
      oldUsed: value('nodejs_heap_space_size_used_bytes', 'space="old"'),
      codeUsed: value('nodejs_heap_space_size_used_bytes', 'space="code"'),
      newTotal: value('nodejs_heap_space_size_total_bytes', 'space="new"'),
    };
  } catch (e) {
    return { error: e.message };
  }
}

// ── services ──
const children = new Map();
let stopping = false;
process.on('exit', () => {
  for (const c of children.values())
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
});

const PLAIN_FLAGS = { 'status-ingest': ['--max-old-space-size=256'], aggregator: ['--max-old-space-size=256'] };
const nodeArgsOf = (name) =>
  args.settings === 'plain' ? ['--enable-source-maps', ...(PLAIN_FLAGS[name] ?? [])] : serviceNodeArgs(name);
const envOf = (env) => (args.settings === 'plain' ? env : serviceEnv(env));
if (!['launcher', 'plain'].includes(args.settings)) throw new Error('--settings is launcher or plain');

function startService(name, dir, env, port) {
  const flags = [
    ...nodeArgsOf(name),
    ...String(args['node-flags']).split(/\s+/).filter(Boolean),
    ...(args.snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${resolve(args.snapshot)}`] : []),
  ];
  const child = spawn(process.execPath, [...flags, join(dir, 'dist/apps', name, 'src/main.js')], {
    cwd: root,
    env: { ...envOf(env), [PORT_VARIABLE[name]]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (args['keep-logs']) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (${signal ?? code}); last lines:\n${tail.join('\n')}`);
      process.exitCode = 1;
    }
  });
  const svc = { name, child, port, flags, tail };
  children.set(name, svc);
  return svc;
}

async function waitReady(svc, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (svc.child.exitCode !== null) throw new Error(`${svc.name} exited (${svc.child.exitCode}) before it was ready`);
    try {
      const res = await fetch(`http://127.0.0.1:${svc.port}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(250);
  }
  throw new Error(`${svc.name} not ready within ${timeoutMs} ms: ${last}\n${svc.tail.join('\n')}`);
}

async function measure(label) {
  const rows = [];
  for (const svc of children.values()) {
    const heap = await heapFromMetrics(svc.port);
    rows.push({
      service: svc.name,
      ...procStatus(svc.child.pid),
      ...heap,
      smaps: args.smaps ? smapsBreakdown(svc.child.pid) : undefined,
    });
  }
  const f = (n) => (Number.isFinite(n) ? n.toFixed(1) : '—');
  console.log(`\n── ${label} ──`);
  console.log(
    `  ${'service'.padEnd(18)} ${'RSS'.padStart(7)} ${'anon'.padStart(7)} ${'file'.padStart(7)} ${'heapUsed'.padStart(9)} ${'heapTotal'.padStart(9)} ${'new'.padStart(6)} ${'code'.padStart(6)} ${'external'.padStart(9)}   (MB)`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.service.padEnd(18)} ${f(r.rss).padStart(7)} ${f(r.anon).padStart(7)} ${f(r.file).padStart(7)} ${f(r.heapUsed).padStart(9)} ${f(r.heapTotal).padStart(9)} ${f(r.newTotal).padStart(6)} ${f(r.codeUsed).padStart(6)} ${f(r.external).padStart(9)}`,
    );
    if (r.smaps)
      console.log(
        `      ${Object.entries(r.smaps)
          .map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(' · ')}`,
      );
  }
  return { label, rows };
}

// ── load: single-update POSTs to status-ingest and reads on the gateway ──
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function request(port, method, path, body, headers = {}) {
  return new Promise((ok) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        agent,
        headers: body
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }
          : headers,
      },
      (res) => {
        res.resume();
        res.on('end', () => ok(res.statusCode));
      },
    );
    req.on('error', () => ok(0));
    req.end(body);
  });
}

async function load(seconds, { ingestKey, adminToken }) {
  const until = Date.now() + seconds * 1000;
  const counts = new Map();
  const count = (what, status) => counts.set(`${what} ${status}`, (counts.get(`${what} ${status}`) ?? 0) + 1);
  let i = 0;
  const workers = [];
  const ingest = children.get('status-ingest');
  if (ingest && ingestKey) {
    for (let w = 0; w < 50; w++) {
      workers.push(
        (async () => {
          while (Date.now() < until) {
            const n = i++;
            const body = JSON.stringify({
              instanceId: `mem-${n % 10_000}`,
              kind: 'container',
              status: ['running', 'healthy', 'exited'][n % 3],
              labels: { app: 'bench-memory' },
            });
            count(
              'ingest POST',
              await request(ingest.port, 'POST', '/api/v1/status/updates', body, {
                authorization: `Bearer ${ingestKey}`,
              }),
            );
          }
        })(),
      );
    }
  }
  const gw = children.get('api-gateway');
  if (gw && adminToken) {
    const paths = [
      '/api/v1/targets?limit=100',
      '/api/v1/heartbeats',
      '/api/v1/users',
      '/metrics',
      '/api/docs/openapi.json',
    ];
    for (let w = 0; w < 4; w++) {
      workers.push(
        (async () => {
          let k = w;
          while (Date.now() < until) {
            const path = paths[k++ % paths.length];
            count(
              `gateway GET ${path.split('?')[0]}`,
              await request(gw.port, 'GET', path, null, {
                authorization: `Bearer ${adminToken}`,
              }),
            );
          }
        })(),
      );
    }
  }
  await Promise.all(workers);
  console.log(`\n  load answers: ${JSON.stringify(Object.fromEntries(counts))}`);
}

async function snapshot(svc, dir) {
  const before = new Set(readdirSync(dir));
  const started = Date.now();
  svc.child.kill('SIGUSR2');
  // The file appears when writing starts; it is complete when its size stops changing.
  let file = null;
  let lastSize = -1;
  while (Date.now() - started < 120_000) {
    await sleep(500);
    file ??= readdirSync(dir).find((f) => !before.has(f) && f.includes(`.${svc.child.pid}.`));
    if (!file) continue;
    const size = statSync(join(dir, file)).size;
    if (size > 0 && size === lastSize) return join(dir, file);
    lastSize = size;
  }
  throw new Error(`${svc.name}: no heap snapshot within 120 s`);
}

async function main() {
  const settings = {
    settleS: args.settle,
    loadS: args.load,
    idleAfterS: args['idle-after'],
    extraNodeFlags: args['node-flags'] || null,
    settings: args.settings,
    flags: Object.fromEntries(services.map((s) => [s, nodeArgsOf(s).join(' ')])),
    GLIBC_TUNABLES: envOf(process.env).GLIBC_TUNABLES ?? null,
    node: process.version,
    cpus: cpus().length,
    totalMemMb: Math.round(totalmem() / 1024 / 1024),
  };
  console.log(`bench:memory — settings: ${JSON.stringify(settings)}`);
  if (args.snapshot) mkdirSync(resolve(args.snapshot), { recursive: true });

  const dir = join(root, 'tmp', `bench-memory-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(resolve(root, args.dist), join(dir, 'dist'), { recursive: true });

  const { createIsolatedDatabase, createIsolatedVhost } = require(join(dir, 'dist/libs/testing/src/index.js'));
  const { ApiKeysRepository, createPrismaClient, generateApiKey } = require(
    join(dir, 'dist/libs/persistence/src/index.js'),
  );
  const { Redis } = require('ioredis');
  const database = await createIsolatedDatabase();
  const vhost = await createIsolatedVhost('bench-memory');
  const redisUrl = process.env.REDIS_URL ?? DEFAULTS.REDIS_URL;
  const redisPrefix = `fwbenchmem:${Date.now()}:`;
  const adminPassword = 'bench-memory-admin';
  const env = {
    ...DEFAULTS,
    ...process.env,
    DATABASE_URL: database.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_ADMIN_PASSWORD: adminPassword,
    FLEETWATCH_SITE: 'bench',
    COLLECTOR_SPOOL_DIR: join(dir, 'collector-spool'),
    INGEST_RATE_LIMIT_PER_SECOND: '1000000',
    INGEST_RATE_LIMIT_BURST: '1000000',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  delete env.NODE_OPTIONS;

  const cleanup = async () => {
    stopping = true;
    await Promise.all(
      [...children.values()].map((s) =>
        s.child.exitCode !== null || s.child.signalCode !== null
          ? null
          : new Promise((r) => {
              s.child.once('exit', r);
              s.child.kill('SIGINT');
              setTimeout(() => s.child.kill('SIGKILL'), 10_000).unref();
            }),
      ),
    );
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
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  const phases = [];
  try {
    // One at a time, in `npm start`'s order, so their start-up CPU does not compete.
    for (const name of ['sync-orchestrator', 'aggregator', 'status-ingest', 'collector', 'api-gateway']) {
      if (!services.includes(name)) continue;
      await waitReady(startService(name, dir, env, await freePort()));
    }
    console.log(
      `services: ${[...children.values()].map((s) => `${s.name} :${s.port} pid ${s.child.pid} [${s.flags.join(' ')}]`).join('; ')}`,
    );
    await sleep(args.settle * 1000);
    phases.push(await measure(`idle ${args.settle} s after start`));

    if (args.load > 0) {
      const db = createPrismaClient(database.databaseUrl, { poolSize: 1 });
      const generated = generateApiKey();
      await new ApiKeysRepository(db).create({
        name: 'bench-memory',
        prefix: generated.prefix,
        keyHash: generated.keyHash,
        scopes: ['ingest'],
      });
      await db.$disconnect();
      let adminToken = null;
      const gw = children.get('api-gateway');
      if (gw) {
        const res = await fetch(`http://127.0.0.1:${gw.port}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password: adminPassword }),
        });
        if (res.ok) adminToken = (await res.json()).token;
        else console.error(`gateway login answered ${res.status}: the gateway load is skipped`);
      }
      await load(args.load, { ingestKey: generated.key, adminToken });
      phases.push(await measure(`right after ${args.load} s of load`));
      await sleep(args['idle-after'] * 1000);
      phases.push(await measure(`idle ${args['idle-after']} s after the load`));
    }

    const snapshots = {};
    if (args.snapshot) {
      for (const svc of children.values()) {
        const file = await snapshot(svc, resolve(args.snapshot));
        snapshots[svc.name] = file;
        console.log(`\n── heap snapshot of ${svc.name}: ${file}`);
        printSummary(summarizeSnapshot(readFileSync(file, 'utf8')), { top: 12 });
      }
    }
    if (args.json) console.log(`\nsummary (JSON):\n${JSON.stringify({ settings, phases, snapshots }, null, 2)}`);
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
