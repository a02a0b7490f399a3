#!/usr/bin/env node
// `npm run sites -- 3`: N real Fleetwatch sites on this machine, for people and for tests
// (SPEC §8). Each site has its own Postgres database, RabbitMQ vhost, Redis key prefix and
// ports for every service; site 1 is the leader: its sync-orchestrator gets
// FLEETWATCH_LEADER_CONFIG listing the others, with credentials it reads from environment
// variables (member 1, 3, … by HTTP Basic of a viewer user made for it; member 2, 4, … by an
// API key with the `fleet` scope). Ctrl-C stops everything cleanly and leaves the data
// (--fresh drops it first; --drop-on-exit drops it at the end).
//
//   npm run sites -- [N=3] [--fresh] [--drop-on-exit] [--name fwsites] [--base-port 4000|auto]
//                    [--services api-gateway,sync-orchestrator,…] [--state-dir DIR] [--no-build] [--quiet]
//
// Knobs from the environment: FLEETWATCH_SITES_ADMIN_PASSWORD (admin on every site),
// FLEETWATCH_SITES_BASIC_PASSWORD (the leader's Basic password on the Basic members); unset,
// both are generated once and kept in <state dir>/secrets.json (mode 0600) with the members'
// API keys. Every other variable (LOG_LEVEL, FLEET_POLL_INTERVAL_SECONDS, …) reaches every
// service. The state dir (default .fleetwatch/sites/<name>/) also holds state.json (ports,
// URLs, pids, log files; written once all sites are ready), logs/<site>/<service>.log and a
// private copy of dist/ (a rebuild while the sites run cannot pull their code away).
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { checkServers, DEFAULTS, ensureDependencies, fail, paint, root, run, say, spawnService } from './common.mjs';

const ALL_SERVICES = [
  { name: 'sync-orchestrator', portVar: 'SYNC_ORCHESTRATOR_PORT', offset: 4 },
  { name: 'aggregator', portVar: 'AGGREGATOR_PORT', offset: 3 },
  { name: 'status-ingest', portVar: 'STATUS_INGEST_PORT', offset: 1 },
  { name: 'collector', portVar: 'COLLECTOR_PORT', offset: 2 },
  { name: 'api-gateway', portVar: 'API_GATEWAY_PORT', offset: 0 },
];
const SITE_COLORS = ['35', '33', '32', '34', '36', '31'];
const BASIC_USER = 'fleet-leader';

function usage(message) {
  if (message) fail(message);
  process.stderr.write(
    'usage: npm run sites -- [N=3] [--fresh] [--drop-on-exit] [--name NAME] [--base-port PORT|auto]\n' +
      '                       [--services a,b,…] [--state-dir DIR] [--no-build] [--quiet]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    count: 3,
    fresh: false,
    dropOnExit: false,
    name: 'fwsites',
    basePort: 4000,
    services: ALL_SERVICES.map((s) => s.name),
    stateDir: undefined,
    build: true,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (/^\d+$/.test(a)) o.count = Number(a);
    else if (a === '--fresh') o.fresh = true;
    else if (a === '--drop-on-exit') o.dropOnExit = true;
    else if (a === '--name') o.name = value();
    else if (a === '--base-port') {
      const v = value();
      o.basePort = v === 'auto' ? 'auto' : Number(v);
    } else if (a === '--services') o.services = value().split(',').filter(Boolean);
    else if (a === '--state-dir') o.stateDir = resolve(value());
    else if (a === '--no-build') o.build = false;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!Number.isInteger(o.count) || o.count < 2 || o.count > 9)
    usage('N must be 2 to 9 (one leader, the rest members)');
  if (!/^[a-z][a-z0-9]{0,19}$/.test(o.name)) usage('--name must be lower-case letters and digits (at most 20)');
  if (
    o.basePort !== 'auto' &&
    (!Number.isInteger(o.basePort) || o.basePort < 1024 || o.basePort + o.count * 10 > 65535)
  )
    usage('--base-port must be a port from 1024 or "auto"');
  for (const s of o.services)
    if (!ALL_SERVICES.some((x) => x.name === s)) usage(`unknown service ${JSON.stringify(s)}`);
  for (const needed of ['api-gateway', 'sync-orchestrator'])
    if (!o.services.includes(needed)) usage(`--services must include ${needed}`);
  o.stateDir ??= join(root, '.fleetwatch', 'sites', o.name);
  return o;
}

/**
 * A port nothing listens on now, drawn at random below the kernel's ephemeral range (as libs/testing's freePortBlock
 * does). A port the kernel hands out for `listen(0)` lies in that range, where any outgoing connection the machine
 * opens (to Postgres, Redis, RabbitMQ: hundreds while tests run) may take it before the service binds it, minutes
 * later after migrations: the service then exits (1) with EADDRINUSE while starting.
 */
async function freePort(taken = new Set()) {
  let low = 32_768;
  try {
    const n = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(n) && n > 1024) low = n;
  } catch {
    // not Linux: the usual default
  }
  if (low <= 10_001) throw new Error(`the kernel's ephemeral ports start at ${low}: pass --base-port PORT`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (taken.has(port)) continue;
    const free = await new Promise((resolveP) => {
      const server = createServer();
      server.once('error', () => resolveP(false));
      server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolveP(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in 10000–${low - 1} after 100 draws`);
}

const secret = () => randomBytes(18).toString('base64url');

/** Generated secrets are kept in the state dir (mode 0600); ones given by the environment are used, not written. */
function loadSecrets(file) {
  const saved = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const kept = {
    adminPassword: saved.adminPassword || secret(),
    basicPassword: saved.basicPassword || secret(),
    encryptionKey: saved.encryptionKey || randomBytes(32).toString('base64url'),
    tokens: saved.tokens ?? {},
  };
  return {
    kept,
    adminPassword: process.env.FLEETWATCH_SITES_ADMIN_PASSWORD || kept.adminPassword,
    basicPassword: process.env.FLEETWATCH_SITES_BASIC_PASSWORD || kept.basicPassword,
    encryptionKey: kept.encryptionKey,
    tokens: kept.tokens,
  };
}

function saveSecrets(file, s) {
  writeFileSync(file, `${JSON.stringify(s.kept, null, 2)}\n`, { mode: 0o600 });
}

/** The sites' names, resources and ports (nothing created yet). */
async function planSites(o) {
  const sites = [];
  const taken = new Set();
  for (let i = 1; i <= o.count; i++) {
    const name = i === 1 ? `${o.name}-leader` : `${o.name}-member-${i - 1}`;
    const ports = {};
    for (const svc of ALL_SERVICES)
      ports[svc.name] = o.basePort === 'auto' ? await freePort(taken) : o.basePort + (i - 1) * 10 + svc.offset;
    const db = new URL(process.env.DATABASE_URL || DEFAULTS.DATABASE_URL);
    db.pathname = `/${o.name}_${i}`;
    const amqp = new URL(process.env.AMQP_URL || DEFAULTS.AMQP_URL);
    const vhost = `${o.name}-${i}`;
    amqp.pathname = `/${encodeURIComponent(vhost)}`;
    sites.push({
      index: i,
      name,
      role: i === 1 ? 'leader' : 'member',
      // Members alternate between the two credential kinds a leader can hold.
      auth: i === 1 ? null : i % 2 === 0 ? 'basic' : 'token',
      databaseUrl: db.toString(),
      vhost,
      amqpUrl: amqp.toString(),
      redisPrefix: `${o.name}:${i}:`,
      ports,
      color: SITE_COLORS[(i - 1) % SITE_COLORS.length],
    });
  }
  return sites;
}

/** RabbitMQ's management API for the broker of AMQP_URL (its credentials). */
function management() {
  const amqp = new URL(process.env.AMQP_URL || DEFAULTS.AMQP_URL);
  const user = decodeURIComponent(amqp.username || 'guest');
  const pass = decodeURIComponent(amqp.password || 'guest');
  const base = process.env.AMQP_MANAGEMENT_URL || `http://${amqp.hostname || '127.0.0.1'}:15672`;
  const auth = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const call = async (method, path, body) => {
    const res = await fetch(`${base}/api${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok && !(method === 'DELETE' && res.status === 404))
      throw new Error(
        `RabbitMQ management ${method} ${path} answered ${res.status}: ${(await res.text()).slice(0, 200)}`,
      );
  };
  return { user, call };
}

async function dropSite(site) {
  const { default: pg } = await import('pg');
  const { Redis } = await import('ioredis');
  const maintenance = new URL(site.databaseUrl);
  const dbName = maintenance.pathname.slice(1);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
  await management().call('DELETE', `/vhosts/${encodeURIComponent(site.vhost)}`);
  const redis = new Redis(process.env.REDIS_URL || DEFAULTS.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${site.redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function prepareSite(site) {
  const m = management();
  await m.call('PUT', `/vhosts/${encodeURIComponent(site.vhost)}`, {});
  await m.call('PUT', `/permissions/${encodeURIComponent(site.vhost)}/${encodeURIComponent(m.user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  // tools/db/migrate.mjs: creates the database when missing, then `prisma migrate deploy`.
  run(process.execPath, [join(root, 'tools/db/migrate.mjs')], {
    env: { ...process.env, DATABASE_URL: site.databaseUrl },
    quiet: true,
  });
}

function siteEnv(site, secrets, services) {
  const env = {
    ...DEFAULTS,
    ...process.env,
    DATABASE_URL: site.databaseUrl,
    AMQP_URL: site.amqpUrl,
    REDIS_URL: process.env.REDIS_URL || DEFAULTS.REDIS_URL,
    FLEETWATCH_REDIS_PREFIX: site.redisPrefix,
    FLEETWATCH_SITE: site.name,
    // Its own role, whatever the shell says: a member ignores a leader configuration, and says `member` in its report.
    FLEETWATCH_ROLE: site.role,
    FLEETWATCH_ADMIN_PASSWORD: secrets.adminPassword,
    FLEETWATCH_ENCRYPTION_KEY: secrets.encryptionKey,
    STATUS_INGEST_PUBLIC_URL: `http://127.0.0.1:${site.ports['status-ingest']}`,
    FLEETWATCH_EXTERNAL_URL: `http://127.0.0.1:${site.ports['api-gateway']}`,
  };
  for (const svc of ALL_SERVICES) env[svc.portVar] = String(site.ports[svc.name]);
  // The gateway asks for versions only the services this site runs: a port planned for one it does not run may be
  // taken by another process's service (another site, a test), whose version would count as this site's.
  const siblings = services.filter((n) => n !== 'api-gateway');
  env.FLEETWATCH_COMPONENT_URLS = siblings.length
    ? siblings.map((n) => `${n}=http://127.0.0.1:${site.ports[n]}`).join(',')
    : 'none';
  // The leader's member secrets go to its sync-orchestrator only (added there); the launcher's own knobs to none.
  delete env.FLEETWATCH_LEADER_CONFIG;
  for (const name of Object.keys(env)) if (name.startsWith('FLEETWATCH_SITES_')) delete env[name];
  return env;
}

async function api(site, method, path, { token, authorization, body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (authorization) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${site.ports['api-gateway']}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

async function adminLogin(site, secrets) {
  const login = await api(site, 'POST', '/api/v1/auth/login', {
    body: { username: 'admin', password: secrets.adminPassword },
  });
  if (login.status !== 200)
    throw new Error(
      `${site.name}: admin login answered ${login.status} — a site keeps the admin password of its first start; ` +
        'use --fresh or the same FLEETWATCH_SITES_ADMIN_PASSWORD',
    );
  return login.json.token;
}

/**
 * The viewer user the leader signs in as on its Basic members; made on the other sites too,
 * so the sites start with the same users and roles (no drift of the launcher's making).
 */
async function ensureBasicUser(site, token, password) {
  const created = await api(site, 'POST', '/api/v1/users', {
    token,
    body: { username: BASIC_USER, password, role: 'viewer' },
  });
  if (created.status === 201) return;
  if (created.status !== 409)
    throw new Error(
      `${site.name}: creating user ${BASIC_USER} answered ${created.status}: ${created.text.slice(0, 200)}`,
    );
  // Kept from an earlier run: make sure its password is this run's.
  const users = await api(site, 'GET', '/api/v1/users', { token });
  const list = Array.isArray(users.json) ? users.json : (users.json?.items ?? []);
  const user = list.find((u) => u.username === BASIC_USER);
  if (!user) throw new Error(`${site.name}: user ${BASIC_USER} exists but is not listed`);
  const set = await api(site, 'PUT', `/api/v1/users/${user.id}/password`, { token, body: { password } });
  if (set.status !== 204 && set.status !== 200)
    throw new Error(`${site.name}: setting ${BASIC_USER}'s password answered ${set.status}`);
}

/** The leader's credential for a member (a viewer user's password, or a `fleet` API key): its env variable and value. */
async function provisionLeaderCredentials(member, secrets) {
  const token = await adminLogin(member, secrets);
  const variable = `FLEETWATCH_SITES_${member.index}_${member.auth === 'basic' ? 'PASSWORD' : 'TOKEN'}`;
  if (member.auth === 'basic') {
    await ensureBasicUser(member, token, secrets.basicPassword);
    return { variable, value: secrets.basicPassword };
  }
  const kept = secrets.tokens[member.name];
  if (kept) {
    const probe = await api(member, 'GET', '/api/v1/status/report', { token: kept });
    if (probe.status === 200) return { variable, value: kept };
  }
  const key = await api(member, 'POST', '/api/v1/api-keys', {
    token,
    body: { name: `fleet-leader-${Date.now().toString(36)}`, scopes: ['fleet'] },
  });
  if (key.status !== 201) throw new Error(`${member.name}: creating a fleet API key answered ${key.status}`);
  secrets.tokens[member.name] = key.json.key;
  return { variable, value: key.json.key };
}

function leaderConfig(members) {
  return {
    members: members.map((m, i) => ({
      name: m.name,
      url: `http://127.0.0.1:${m.ports['api-gateway']}`,
      tags: ['sites', m.auth],
      credentials:
        m.auth === 'basic'
          ? { type: 'basic', username: BASIC_USER, passwordEnv: `FLEETWATCH_SITES_${m.index}_PASSWORD` }
          : { type: 'token', tokenEnv: `FLEETWATCH_SITES_${m.index}_TOKEN` },
      // Each member is meant to keep its own display name: excluded from drift.
      propertyOverrides: { 'site.displayName': m.name },
      failoverOrder: i + 1,
    })),
  };
}

/** How many of a service's last stderr lines the launcher tells when the service exits with an error. */
const STDERR_TAIL_LINES = 20;

async function waitReady(url, timeoutMs, alive) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${url}: the service exited while starting`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  ensureDependencies();
  const missing = await checkServers({ ...DEFAULTS, ...process.env });
  if (missing.length) {
    fail(`cannot start: ${missing.map((m) => m.name).join(', ')} not reachable (see above).`);
    process.exit(1);
  }
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const secretsFile = join(o.stateDir, 'secrets.json');
  const stateFile = join(o.stateDir, 'state.json');
  rmSync(stateFile, { force: true });
  const sites = await planSites(o);
  if (o.fresh) {
    say(`--fresh: dropping the data of ${sites.map((s) => s.name).join(', ')} …`);
    await Promise.all(sites.map(dropSite));
    rmSync(secretsFile, { force: true });
    rmSync(join(o.stateDir, 'logs'), { recursive: true, force: true });
    rmSync(join(o.stateDir, 'work'), { recursive: true, force: true });
  }
  const secrets = loadSecrets(secretsFile);
  saveSecrets(secretsFile, secrets);

  if (o.build) {
    say('building services …');
    run('npm', ['run', '--silent', 'build']);
  }
  const distDir = join(o.stateDir, 'dist');
  rmSync(distDir, { recursive: true, force: true });
  if (!existsSync(join(root, 'dist/apps/api-gateway/src/main.js')))
    throw new Error('dist/ is missing: run without --no-build');
  cpSync(join(root, 'dist'), distDir, { recursive: true });
  for (const s of o.services)
    if (!existsSync(join(distDir, 'apps', s, 'src/main.js')))
      throw new Error(`dist/ lacks ${s} (a build in progress?)`);

  say(`preparing ${sites.length} sites (database, vhost, migrations) …`);
  for (const site of sites) await prepareSite(site);

  const children = [];
  let stopping = false;
  const width = Math.max(...sites.map((s) => s.name.length)) + 1 + Math.max(...o.services.map((s) => s.length));
  const startSite = (site, extraFor = () => ({})) => {
    const env = siteEnv(site, secrets, o.services);
    for (const svc of ALL_SERVICES.filter((s) => o.services.includes(s.name))) {
      const cwd = join(o.stateDir, 'work', site.name, svc.name);
      const logDir = join(o.stateDir, 'logs', site.name);
      mkdirSync(cwd, { recursive: true });
      mkdirSync(logDir, { recursive: true });
      const logFile = join(logDir, `${svc.name}.log`);
      const log = createWriteStream(logFile, { flags: 'a' });
      const child = spawnService(svc.name, { ...env, ...extraFor(svc.name) }, { distDir, cwd });
      // The last lines the service wrote to stderr, told with its exit: a service that fails while starting says why
      // there (a port taken, a refused migration), and with --quiet nothing else shows it.
      const entry = { site, service: svc.name, child, logFile, log, stderrTail: [] };
      children.push(entry);
      const prefix = `${paint(site.color, `${site.name}/${svc.name}`.padEnd(width))} │ `;
      for (const stream of [child.stdout, child.stderr]) {
        let buf = '';
        let tailBuf = '';
        stream.on('data', (chunk) => {
          log.write(chunk);
          if (stream === child.stderr) {
            tailBuf += chunk;
            const lines = tailBuf.split('\n');
            tailBuf = lines.pop() ?? '';
            entry.stderrTail.push(...lines.filter((l) => l.trim() !== ''));
            if (tailBuf.length > 4096) tailBuf = tailBuf.slice(-4096);
            entry.stderrTail.splice(0, Math.max(0, entry.stderrTail.length - STDERR_TAIL_LINES));
          }
          if (o.quiet) return;
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            process.stdout.write(prefix + buf.slice(0, i) + '\n');
            buf = buf.slice(i + 1);
          }
        });
      }
      // 'close', not 'exit': its stdio is read to the end by then, so the tail holds its last words (the error).
      child.on('close', (code, signal) => {
        // One service stopping (a person or a test stopping a member) leaves the rest running.
        if (!stopping) say(`${site.name}/${svc.name} exited (${signal ?? code}); the other services keep running`);
        if (code !== null && code !== 0 && entry.stderrTail.length)
          fail(
            `${site.name}/${svc.name}'s last lines on stderr (all of its output: ${logFile}):\n` +
              entry.stderrTail.map((l) => `    ${l}`).join('\n'),
          );
      });
    }
  };
  const readyAll = (site) =>
    Promise.all(
      children
        .filter((c) => c.site === site)
        .map((c) =>
          waitReady(`http://127.0.0.1:${site.ports[c.service]}/readyz`, 180_000, () => c.child.exitCode === null),
        ),
    );

  const stopAll = async (signal) => {
    if (stopping) return;
    stopping = true;
    say(`stopping (${signal}) …`);
    const running = children.filter((c) => c.child.exitCode === null && c.child.signalCode === null);
    for (const c of running) c.child.kill('SIGINT');
    const hard = setTimeout(() => {
      for (const c of running) if (c.child.exitCode === null) c.child.kill('SIGKILL');
      fail('some services did not stop within 15 s and were killed');
    }, 15_000);
    await Promise.all(
      running.map((c) => new Promise((r) => (c.child.exitCode !== null ? r() : c.child.once('exit', r)))),
    );
    clearTimeout(hard);
    await Promise.all(children.map((c) => new Promise((r) => c.log.end(r))));
    const bad = children.filter((c) => c.child.exitCode !== 0 && c.child.exitCode !== null);
    if (bad.length)
      fail(`exited with errors: ${bad.map((c) => `${c.site.name}/${c.service} (${c.child.exitCode})`).join(', ')}`);
    rmSync(stateFile, { force: true });
    if (o.dropOnExit) {
      say('--drop-on-exit: dropping the sites’ data …');
      const dropped = await Promise.allSettled(sites.map(dropSite));
      for (const d of dropped) if (d.status === 'rejected') fail(`drop: ${d.reason?.message ?? d.reason}`);
      rmSync(o.stateDir, { recursive: true, force: true });
    } else
      say(`data kept (databases ${sites.map((s) => s.databaseUrl.split('/').pop()).join(', ')}); --fresh drops it`);
    say('all sites stopped');
    process.exit(bad.length ? 1 : 0);
  };
  process.on('SIGINT', () => void stopAll('SIGINT'));
  process.on('SIGTERM', () => void stopAll('SIGTERM'));

  try {
    const members = sites.filter((s) => s.role === 'member');
    say(`starting ${members.length} member sites …`);
    for (const m of members) startSite(m);
    await Promise.all(members.map(readyAll));
    const credentials = {};
    for (const m of members) {
      const c = await provisionLeaderCredentials(m, secrets);
      credentials[c.variable] = c.value;
    }
    saveSecrets(secretsFile, secrets);
    const leader = sites[0];
    const config = leaderConfig(members);
    say('starting the leader site …');
    startSite(leader, (service) =>
      service === 'sync-orchestrator' ? { FLEETWATCH_LEADER_CONFIG: JSON.stringify(config), ...credentials } : {},
    );
    await readyAll(leader);
    // The same service user on every site, so the sites start with the same users and roles.
    if (members.some((m) => m.auth === 'basic'))
      for (const site of sites.filter((s) => s.auth !== 'basic'))
        await ensureBasicUser(site, await adminLogin(site, secrets), secrets.basicPassword);
    const state = {
      name: o.name,
      pid: process.pid,
      stateDir: o.stateDir,
      secretsFile,
      adminUser: 'admin',
      leaderConfig: config,
      sites: sites.map((s) => ({
        name: s.name,
        role: s.role,
        auth: s.auth,
        url: `http://127.0.0.1:${s.ports['api-gateway']}`,
        databaseUrl: s.databaseUrl,
        vhost: s.vhost,
        redisPrefix: s.redisPrefix,
        services: children
          .filter((c) => c.site === s)
          .map((c) => ({ name: c.service, port: s.ports[c.service], pid: c.child.pid, log: c.logFile })),
      })),
    };
    // Written whole or not at all: a script polling for it never reads half a file.
    writeFileSync(`${stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${stateFile}.tmp`, stateFile);

    say(paint('1;32', `${sites.length} Fleetwatch sites are up.`));
    for (const s of sites) {
      const gw = `http://127.0.0.1:${s.ports['api-gateway']}`;
      say(`  ${paint(s.color, s.name)} (${s.role}${s.auth ? `, leader reads it by ${s.auth}` : ''})`);
      say(`    dashboard   ${gw}/    REST ${gw}/api/v1    OpenAPI ${gw}/api/docs`);
      say(
        `    services    ${[...o.services]
          .sort((a, b) => s.ports[a] - s.ports[b])
          .map((n) => `${n} :${s.ports[n]}`)
          .join('  ')}`,
      );
      say(
        `    data        database ${s.databaseUrl.split('/').pop()}, vhost ${s.vhost}, Redis prefix ${s.redisPrefix}`,
      );
    }
    say(
      `  login         admin / ${process.env.FLEETWATCH_SITES_ADMIN_PASSWORD ? '$FLEETWATCH_SITES_ADMIN_PASSWORD' : `see ${secretsFile}`}`,
    );
    const lgw = `http://127.0.0.1:${leader.ports['api-gateway']}/api/v1/leader`;
    say('  leader fleet endpoints:');
    for (const p of ['members', 'stats', 'flow-metrics?minutes=60', 'config/components', 'config/drift'])
      say(`    ${lgw}/${p}`);
    for (const m of members) say(`    ${lgw}/config/drift/${m.name}    ${lgw}/config/snapshot/${m.name}`);
    say(`  state         ${stateFile}    logs ${join(o.stateDir, 'logs')}`);
    say('Press Ctrl-C to stop (the data stays; --fresh drops it next time).');
  } catch (e) {
    fail(e.message);
    await stopAll('not ready');
  }
}

main().catch((e) => {
  fail(e.message);
  process.exit(1);
});
