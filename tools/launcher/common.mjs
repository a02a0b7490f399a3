// Shared by `npm start` and `npm test`. Plain Node only: this runs before
// node_modules exists, so it may import nothing but node: built-ins.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const color = process.stdout.isTTY && !process.env.NO_COLOR;
export const paint = (code, s) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
export const say = (s) => process.stdout.write(`${paint('1;36', 'fleetwatch')} ${s}\n`);
export const fail = (s) => process.stderr.write(`${paint('1;31', 'fleetwatch')} ${s}\n`);

export const DEFAULTS = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fleetwatch',
  REDIS_URL: 'redis://127.0.0.1:6379',
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
};

/** Runs a command in the repo, streaming its output; throws on non-zero exit. */
export function run(cmd, args, { env = process.env, quiet = false } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
  if (r.status !== 0) {
    const out = quiet ? `\n${r.stdout ?? ''}${r.stderr ?? ''}` : '';
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})${out}`);
  }
  return r;
}

/** `npm ci` when node_modules is missing or older than the lockfile. */
export function ensureDependencies() {
  const lock = join(root, 'package-lock.json');
  const marker = join(root, 'node_modules', '.package-lock.json');
  const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs;
  if (!stale) return;
  say('installing dependencies (npm ci) — first run only …');
  const started = Date.now();
  run('npm', ['ci', '--no-audit', '--no-fund']);
  say(`dependencies installed in ${Math.round((Date.now() - started) / 1000)} s`);
}

function hostPort(url, fallbackPort) {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || fallbackPort) };
}

export function tcpReachable(host, port, timeoutMs = 1500) {
  return new Promise((resolveP) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolveP(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export const SERVERS = [
  {
    name: 'PostgreSQL',
    variable: 'DATABASE_URL',
    defaultPort: 5432,
    localStart: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    compose: 'postgres',
  },
  {
    name: 'Redis',
    variable: 'REDIS_URL',
    defaultPort: 6379,
    localStart: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    compose: 'redis',
  },
  {
    name: 'RabbitMQ',
    variable: 'AMQP_URL',
    defaultPort: 5672,
    localStart: 'rabbitmq-server -detached',
    compose: 'rabbitmq',
  },
];

/** Checks the three servers; prints one clear message per missing one. Returns the missing ones. */
export async function checkServers(env = process.env) {
  const missing = [];
  await Promise.all(
    SERVERS.map(async (s) => {
      const url = env[s.variable] || DEFAULTS[s.variable];
      let hp;
      try {
        hp = hostPort(url, s.defaultPort);
      } catch {
        fail(`${s.variable}="${url.replace(/:[^:@/]+@/, ':***@')}" is not a valid URL`);
        missing.push(s);
        return;
      }
      if (!(await tcpReachable(hp.host, hp.port))) missing.push({ ...s, ...hp });
    }),
  );
  for (const s of missing) {
    if (!s.host) continue;
    fail(
      `${s.name} is not reachable at ${s.host}:${s.port} (${s.variable}).\n` +
        `    start it locally:        ${s.localStart}\n` +
        `    or with Docker Compose:  docker compose up -d ${s.compose}\n` +
        `    or point ${s.variable} at a running ${s.name}.`,
    );
  }
  return missing;
}

/** Idempotently enables RabbitMQ plugins when the broker is local and rabbitmq-plugins exists. */
export function enableRabbitPlugins(plugins) {
  const which = spawnSync('sh', ['-c', 'command -v rabbitmq-plugins'], { encoding: 'utf8' });
  if (which.status !== 0) return false;
  const r = spawnSync('rabbitmq-plugins', ['enable', '--online', ...plugins], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * V8 flags, as deploy/docker/Dockerfile sets them. Heap caps for the two hot-path
 * services: without one V8 sizes its heap from the host's memory and leaves garbage
 * uncollected well past the services' bounded working set (see docs/benchmarks.md,
 * memory flood). A 2 MB young generation for the three that see little traffic: V8's
 * default lets each semi-space grow to 16 MB, 32 MB of RSS held by a service at rest
 * (docs/benchmarks.md, memory at rest); the hot path keeps the default. The collector's
 * old space is capped at 256 MB like the hot-path services, not lower: 96 MB held RSS at
 * 146–150 MB at 10,000 checks a minute, but an assignment is parsed and saved whole and a
 * check may carry a 64 KB body, so 10,000 checks with 4 KB bodies already ran a 96 MB heap
 * out of memory — a crash loop, since the saved assignment is reloaded at start (review of
 * issue 15/16). It warns in its log when an assignment brings the heap near the cap.
 */
const NODE_FLAGS = {
  'status-ingest': ['--max-old-space-size=256'],
  aggregator: ['--max-old-space-size=256'],
  collector: ['--max-semi-space-size=2', '--max-old-space-size=256'],
  'sync-orchestrator': ['--max-semi-space-size=2'],
  'api-gateway': ['--max-semi-space-size=2'],
};

/**
 * glibc malloc with fixed thresholds: by default a freed large block raises the mmap
 * threshold, so later large blocks (V8's compiler zones on its worker threads, Prisma's
 * Wasm compile) land in per-thread arenas that are never handed back — 15–50 MB of RSS
 * after start-up. An operator's own GLIBC_TUNABLES wins.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072';

/** The Node flags `npm start` runs a service with (tools/bench/memory measures with the same). */
export function serviceNodeArgs(name) {
  return ['--enable-source-maps', ...(NODE_FLAGS[name] ?? [])];
}

/** The environment `npm start` gives a service: the caller's, with the malloc tunables unless it sets its own. */
export function serviceEnv(env) {
  return { GLIBC_TUNABLES: MALLOC_TUNABLES, ...env };
}

/** `distDir` (default the repo's dist/) and `cwd` (default the repo) let `npm run sites` run several sites from a private copy. */
export function spawnService(name, env, { distDir = join(root, 'dist'), cwd = root } = {}) {
  return spawn(process.execPath, [...serviceNodeArgs(name), join(distDir, 'apps', name, 'src/main.js')], {
    cwd,
    env: serviceEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function waitHttp(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}
