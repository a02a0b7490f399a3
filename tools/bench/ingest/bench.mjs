#!/usr/bin/env node
// Ingest benchmark (issue 10): sustained updates/s through status-ingest with
// single-update POSTs and with batches, p50/p99 latency, accepted counts, CPU and
// RSS per process, the settings printed.
//
//   npm run build && npm run bench:ingest [-- --duration 15 --concurrency 50 --batch-size 100 --batch-concurrency 8
//                                              --phases single,batch --aggregator false --drain --profile /tmp/prof --keep-logs]
//
// Runs the built services (dist/) against a throwaway database and vhost on the
// local servers (or DATABASE_URL / AMQP_URL / REDIS_URL), creates an API key through
// the repository, and starts the aggregator too when it has been built. Without the
// aggregator, the observations queue is purged between phases. The load generator
// runs on the same machine: its CPU is reported with the rest.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const dist = (p) => join(root, 'dist', p);

const args = parseArgs(process.argv.slice(2), {
  duration: 15,
  warmup: 3,
  concurrency: 50,
  'batch-size': 100,
  'batch-concurrency': 8,
  phases: 'single,batch,paced',
  /** Arrival rate (single-update POSTs/s) of the paced phase: latency at a steady load (goal p99 ≤ 20 ms at 3,000/s). */
  rate: 3000,
  /** POST→live-state probes per second during every phase (unique instances; timed to the aggregator's live:status fan-out). */
  'probe-rate': 20,
  'keep-logs': false,
  /** Directory for V8 CPU profiles of the services (written when they stop). */
  profile: '',
  /** Start the aggregator too (when built). `--aggregator false` measures status-ingest alone. */
  aggregator: true,
  /** Consume the observations queue in the bench itself (ack and count) instead of leaving it to the aggregator. */
  drain: false,
});

function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unknown argument ${argv[i]}`);
    const name = m[1];
    if (!(name in defaults)) throw new Error(`unknown option --${name} (known: ${Object.keys(defaults).join(', ')})`);
    const isBool = typeof defaults[name] === 'boolean';
    const value =
      m[2] ?? (isBool ? (argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i] : 'true') : argv[++i]);
    out[name] =
      typeof defaults[name] === 'number'
        ? Number(value)
        : typeof defaults[name] === 'boolean'
          ? value === 'true'
          : value;
  }
  return out;
}

for (const f of ['apps/status-ingest/src/main.js', 'libs/testing/src/index.js', 'libs/persistence/src/index.js']) {
  if (!existsSync(dist(f))) {
    console.error(`dist/${f} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
}

const { createIsolatedDatabase, createIsolatedVhost } = require(dist('libs/testing/src/index.js'));
const { ApiKeysRepository, createPrismaClient, generateApiKey } = require(dist('libs/persistence/src/index.js'));
const amqplib = require('amqplib');
const { Redis } = require('ioredis');
const pg = require('pg');

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ── process accounting (Linux /proc) ──
const TICKS = 100; // USER_HZ
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime + stime
  } catch {
    return NaN;
  }
}
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
function pidsOf(pattern) {
  const out = [];
  try {
    for (const entry of require('node:fs').readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (pattern.test(cmd)) out.push(Number(entry));
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no /proc */
  }
  return out;
}

// ── services ──
const children = new Set();
// Never leave services behind, however the bench ends.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startService(name, env) {
  const profile = args.profile
    ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args.profile)}`, `--cpu-prof-name=${name}.cpuprofile`]
    : [];
  const child = spawn(process.execPath, [...profile, '--enable-source-maps', dist(`apps/${name}/src/main.js`)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 50) tail.shift();
        if (args['keep-logs']) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  }
  children.add(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (${signal ?? code}); last lines:\n${tail.join('\n')}`);
      process.exitCode = 1;
    }
  });
  return { name, child, tail };
}

async function waitReady(url, service, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null)
      throw new Error(`${service.name} exited (${service.child.exitCode}) before it was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${last}`);
}

// ── load ──
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

function post(port, path, body, key) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${key}`,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            body: Buffer.concat(chunks),
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
      },
    );
    req.on('error', (e) =>
      resolve({ status: 0, body: Buffer.from(e.message), ms: Number(process.hrtime.bigint() - started) / 1e6 }),
    );
    req.end(body);
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

let seq = 0;
const statuses = ['running', 'healthy', 'exited', 'restarting'];
function makeUpdate() {
  const i = seq++;
  return {
    instanceId: `bench-${i % 5000}`,
    kind: 'container',
    status: statuses[i % statuses.length],
    labels: { app: 'bench', shard: String(i % 16) },
    message: 'benchmark',
  };
}

// ── POST → live state probes ──
// Each probe posts a fresh instance and waits for the aggregator's status-changed
// fan-out of that target on Redis (what every gateway replica receives).
class Probes {
  constructor(redisUrl, channel) {
    this.sub = new Redis(redisUrl, { lazyConnect: true });
    this.channel = channel;
    this.sent = new Map();
    this.latencies = [];
    this.posted = 0;
    this.sub.on('message', (_ch, msg) => {
      const targetId = JSON.parse(msg).targetId;
      const t0 = this.sent.get(targetId);
      if (t0 === undefined) return;
      this.sent.delete(targetId);
      if (this.recording) this.latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  async start() {
    await this.sub.connect();
    await this.sub.subscribe(this.channel);
  }
  run(port, key, perSecond) {
    this.latencies = [];
    this.recording = true;
    let n = 0;
    const pending = new Set();
    const timer = setInterval(() => {
      const id = `probe-${Date.now()}-${n++}`;
      this.sent.set(`instance:${id}`, process.hrtime.bigint());
      const p = post(
        port,
        '/api/v1/status/updates',
        JSON.stringify({ instanceId: id, kind: 'job', status: 'running' }),
        key,
      ).then((r) => {
        if (r.status === 202) this.posted++;
        pending.delete(p);
      });
      pending.add(p);
    }, 1000 / perSecond);
    return async () => {
      clearInterval(timer);
      await Promise.all(pending);
      this.recording = false;
      const sorted = [...this.latencies].sort((a, b) => a - b);
      return { probes: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
    };
  }
  close() {
    this.sub.disconnect();
  }
}

/** Open-loop load: `rate` single-update POSTs per second whatever the answers' latency. */
async function runPaced({ port, key, rate, durationS, warmupS }) {
  const latencies = [];
  let accepted = 0;
  let acceptedTotal = 0;
  let measuring = false;
  const byStatus = new Map();
  const inflight = new Set();
  const tickMs = 5;
  // Scheduled from elapsed time, not per tick, so a late timer catches up instead of losing load.
  const t0 = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) * rate) / 1000) - sent;
    for (let i = 0; i < due; i++, sent++) {
      const p = post(port, '/api/v1/status/updates', JSON.stringify(makeUpdate()), key).then((r) => {
        inflight.delete(p);
        if (r.status === 202) acceptedTotal++;
        if (!measuring) return;
        byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
        latencies.push(r.ms);
        if (r.status === 202) accepted++;
      });
      inflight.add(p);
    }
  }, tickMs);
  await sleep(warmupS * 1000);
  measuring = true;
  const started = performance.now();
  await sleep(durationS * 1000);
  measuring = false;
  const elapsedS = (performance.now() - started) / 1000;
  clearInterval(timer);
  await Promise.all(inflight);
  return phaseResult({
    name: `paced ${rate} updates/s (single POSTs)`,
    latencies,
    elapsedS,
    accepted,
    acceptedTotal,
    byStatus,
    cpu: [],
  });
}

/** One phase's figures from its raw samples. */
function phaseResult({ name, latencies, elapsedS, accepted, acceptedTotal, byStatus, cpu }) {
  latencies.sort((a, b) => a - b);
  return {
    name,
    requestsPerS: latencies.length / elapsedS,
    updatesPerS: accepted / elapsedS,
    accepted,
    acceptedTotal,
    statuses: Object.fromEntries(byStatus),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
    cpu,
  };
}

async function runPhase({ name, port, key, concurrency, updatesPerRequest, durationS, warmupS, processes }) {
  const latencies = [];
  let accepted = 0;
  let acceptedTotal = 0;
  const byStatus = new Map();
  let measuring = false;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const body =
        updatesPerRequest === 1
          ? JSON.stringify(makeUpdate())
          : JSON.stringify({ updates: Array.from({ length: updatesPerRequest }, makeUpdate) });
      const r = await post(port, '/api/v1/status/updates', body, key);
      const n = r.status === 202 ? JSON.parse(r.body.toString()).accepted : 0;
      acceptedTotal += n;
      if (!measuring) continue;
      byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
      latencies.push(r.ms);
      accepted += n;
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(warmupS * 1000);
  // A group's CPU is summed over its processes as they are at the start (Postgres: one per connection).
  const groups = processes.map((p) => ({ label: p.label, pids: p.pids ? p.pids() : [p.pid] }));
  const sum = (pids, f) => pids.reduce((a, pid) => a + (Number.isFinite(f(pid)) ? f(pid) : 0), 0);
  const cpuBefore = new Map(groups.flatMap((g) => g.pids.map((pid) => [pid, cpuSeconds(pid)])));
  // CPU used during the phase by the processes alive at both ends.
  const cpuDelta = (pids) =>
    pids.reduce((a, pid) => {
      const d = cpuSeconds(pid) - cpuBefore.get(pid);
      return a + (Number.isFinite(d) ? d : 0);
    }, 0);
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  measuring = true;
  await sleep(durationS * 1000);
  measuring = false;
  const elapsedS = (performance.now() - started) / 1000;
  const selfAfter = process.cpuUsage(selfBefore);
  const cpu = groups.map((g) => ({
    label: g.label,
    cpuPct: (cpuDelta(g.pids) / elapsedS) * 100,
    rssMb: sum(g.pids, rssMb),
  }));
  cpu.push({
    label: 'load generator',
    cpuPct: ((selfAfter.user + selfAfter.system) / 1e6 / elapsedS) * 100,
    rssMb: process.memoryUsage().rss / 1024 / 1024,
  });
  stop = true;
  await Promise.all(workers);
  return phaseResult({ name, latencies, elapsedS, accepted, acceptedTotal, byStatus, cpu });
}

let stopping = false;

async function main() {
  const servers = {
    database: process.env.DATABASE_URL ? 'DATABASE_URL' : 'local',
    amqp: process.env.AMQP_URL ? 'AMQP_URL' : 'local',
  };
  console.log('bench:ingest — setting up a throwaway database and vhost …');
  const database = await createIsolatedDatabase();
  const vhost = await createIsolatedVhost('bench-ingest');
  const ingestPort = await freePort();
  const rate = 1_000_000;
  const settings = {
    durationS: args.duration,
    warmupS: args.warmup,
    singleConcurrency: args.concurrency,
    batchSize: args['batch-size'],
    batchConcurrency: args['batch-concurrency'],
    pacedRate: args.rate,
    probeRate: args['probe-rate'],
    phases: args.phases,
    cpus: cpus().length,
    node: process.version,
    servers,
    env: { INGEST_RATE_LIMIT_PER_SECOND: String(rate), INGEST_RATE_LIMIT_BURST: String(rate), LOG_LEVEL: 'warn' },
  };
  const ingestEnv = {
    DATABASE_URL: database.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    STATUS_INGEST_PORT: String(ingestPort),
    FLEETWATCH_SITE: 'bench',
    ...settings.env,
  };
  const services = [startService('status-ingest', ingestEnv)];
  const withAggregator = args.aggregator && existsSync(dist('apps/aggregator/src/main.js'));
  let aggregatorPort;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisPrefix = `fwbench:${Date.now()}:`;
  if (withAggregator) {
    aggregatorPort = await freePort();
    services.push(
      startService('aggregator', {
        ...ingestEnv,
        AGGREGATOR_PORT: String(aggregatorPort),
        REDIS_URL: redisUrl,
        FLEETWATCH_REDIS_PREFIX: redisPrefix,
      }),
    );
  }
  const probes = withAggregator ? new Probes(redisUrl, `${redisPrefix}live:status`) : null;
  const db = createPrismaClient(database.databaseUrl, { poolSize: 1 });
  const amqp = await amqplib.connect(vhost.amqpUrl);
  amqp.on('error', (e) => console.error(`bench AMQP connection: ${e.message}`));
  const cleanup = async () => {
    stopping = true;
    for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGINT');
    await Promise.all(
      services.map((s) => (s.child.exitCode !== null ? null : new Promise((r) => s.child.once('exit', r)))),
    );
    await amqp.close().catch(() => undefined);
    await db.$disconnect().catch(() => undefined);
    probes?.close();
    // The aggregator's live state of this run.
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
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    await waitReady(`http://127.0.0.1:${ingestPort}/readyz`, services[0]);
    if (withAggregator) await waitReady(`http://127.0.0.1:${aggregatorPort}/readyz`, services[1]);
    const generated = generateApiKey();
    await new ApiKeysRepository(db).create({
      name: 'bench',
      prefix: generated.prefix,
      keyHash: generated.keyHash,
      scopes: ['ingest'],
    });

    const processes = services.map((s) => ({ label: s.name, pid: s.child.pid }));
    const beam = pidsOf(/beam\.smp/);
    if (beam.length) processes.push({ label: 'rabbitmq (shared)', pid: beam[0] });
    // Every Postgres process (postmaster, background workers, one backend per connection): shared with whatever else runs.
    processes.push({
      label: 'postgres (all, shared)',
      pids: () => pidsOf(/^postgres[:\0 ]|^\/usr\/lib\/postgresql\//),
    });

    let drained = 0;
    if (args.drain) {
      const dch = await amqp.createChannel();
      dch.on('error', (e) => console.error(`bench drain channel: ${e.message}`));
      await dch.prefetch(1000);
      let last = null;
      await dch.consume('fleetwatch.aggregator.observations', (m) => {
        drained++;
        last = m;
      });
      // Ack in bulk (up to the newest delivery seen), like a batching consumer.
      setInterval(() => {
        if (last) {
          dch.ack(last, true);
          last = null;
        }
      }, 50).unref();
    }
    settings.drain = args.drain;
    console.log(`settings: ${JSON.stringify(settings)}`);
    console.log(
      `services: status-ingest :${ingestPort}${withAggregator ? `, aggregator :${aggregatorPort}` : ' (aggregator not started: the queue is purged between phases)'}`,
    );
    const results = [];
    const queue = 'fleetwatch.aggregator.observations';
    const phases = String(args.phases).split(',');
    if (probes) await probes.start();
    const pgClient = new pg.Client({ connectionString: database.databaseUrl });
    await pgClient.connect();
    for (const phase of phases) {
      const batch = phase === 'batch';
      if (withAggregator) {
        // Each phase starts with the aggregator caught up (every accepted update persisted),
        // so its POST → live-state figure is its own and not the previous phase's backlog.
        const acceptedSoFar = results.reduce((a, r) => a + r.acceptedTotal, 0) + (probes?.posted ?? 0);
        const waitStarted = Date.now();
        while (Date.now() - waitStarted < 300_000) {
          const n = Number((await pgClient.query('SELECT count(*)::bigint AS n FROM status_updates')).rows[0].n);
          if (n >= acceptedSoFar) break;
          await sleep(500);
        }
        if (acceptedSoFar)
          console.log(
            `  (aggregator caught up with ${acceptedSoFar} updates in ${((Date.now() - waitStarted) / 1000).toFixed(1)} s)`,
          );
      }
      const stopProbes = probes?.run(ingestPort, generated.key, args['probe-rate']);
      if (phase === 'paced') {
        const r = await runPaced({
          port: ingestPort,
          key: generated.key,
          rate: args.rate,
          durationS: args.duration,
          warmupS: args.warmup,
        });
        r.liveState = (await stopProbes?.()) ?? null;
        r.queued = null;
        results.push(r);
        print(r);
        continue;
      }
      const ch = await amqp.createChannel();
      if (!withAggregator) await ch.purgeQueue(queue);
      const before = (await ch.checkQueue(queue)).messageCount;
      const drainedBefore = drained;
      const r = await runPhase({
        name: batch ? `batches of ${args['batch-size']}` : 'single updates',
        port: ingestPort,
        key: generated.key,
        concurrency: batch ? args['batch-concurrency'] : args.concurrency,
        updatesPerRequest: batch ? args['batch-size'] : 1,
        durationS: args.duration,
        warmupS: args.warmup,
        processes,
      });
      r.liveState = (await stopProbes?.()) ?? null;
      await sleep(500); // let the last confirms' messages settle
      const after = (await ch.checkQueue(queue)).messageCount;
      r.queued = withAggregator && !args.drain ? null : after - before + (drained - drainedBefore);
      await ch.close();
      results.push(r);
      print(r);
    }
    await pgClient.end();
    // Accepted vs persisted: wait for the aggregator to drain the queue, then count history rows.
    let persistence = null;
    if (withAggregator) {
      const acceptedAll = results.reduce((a, r) => a + r.acceptedTotal, 0) + (probes?.posted ?? 0);
      const client = new pg.Client({ connectionString: database.databaseUrl });
      await client.connect();
      const ch = await amqp.createChannel();
      const deadline = Date.now() + 300_000;
      let persisted = 0;
      const drainStarted = Date.now();
      for (;;) {
        persisted = Number((await client.query('SELECT count(*)::bigint AS n FROM status_updates')).rows[0].n);
        const { messageCount } = await ch.checkQueue(queue);
        if ((persisted >= acceptedAll && messageCount === 0) || Date.now() > deadline) break;
        await sleep(500);
      }
      const duplicates = Number(
        (await client.query('SELECT count(*) - count(DISTINCT message_id) AS d FROM status_updates')).rows[0].d,
      );
      await ch.close();
      await client.end();
      persistence = {
        accepted: acceptedAll,
        persisted,
        duplicates,
        equal: acceptedAll === persisted,
        drainSeconds: (Date.now() - drainStarted) / 1000,
      };
      console.log(
        `\n── accepted vs persisted ──\n  accepted ${acceptedAll}   persisted ${persisted}   duplicates ${duplicates}   ${persistence.equal ? 'EQUAL' : 'DIFFERENT'}   (queue drained ${persistence.drainSeconds.toFixed(1)} s after the last phase)`,
      );
    }
    console.log('\nsummary (JSON):');
    console.log(JSON.stringify({ settings, results, persistence }, null, 2));
  } finally {
    await cleanup();
  }
}

function print(r) {
  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  console.log(`\n── ${r.name} ──`);
  console.log(
    `  requests/s ${f(r.requestsPerS, 0)}   updates/s ${f(r.updatesPerS, 0)}   p50 ${f(r.p50, 2)} ms   p99 ${f(r.p99, 2)} ms   max ${f(r.max, 1)} ms`,
  );
  if (r.liveState)
    console.log(
      `  POST → live state (${r.liveState.probes} probes): p50 ${f(r.liveState.p50, 2)} ms   p99 ${f(r.liveState.p99, 2)} ms`,
    );
  console.log(
    `  answers ${JSON.stringify(r.statuses)}   accepted while measuring ${r.accepted}; in the whole phase ${r.acceptedTotal}${r.queued !== null ? `; queued ${r.queued}` : ''}`,
  );
  for (const c of r.cpu)
    console.log(`  ${c.label.padEnd(20)} CPU ${f(c.cpuPct, 0).padStart(4)} %   RSS ${f(c.rssMb, 0)} MB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
