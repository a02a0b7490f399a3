#!/usr/bin/env node
// Push-path benchmark (issues 10 and 14): status-ingest → RabbitMQ → aggregator → Postgres/Redis, measured
// END TO END on the raw reference chain's workload (../shared/perf/raw-chain), so the two compare:
//
//   npm run build && npm run bench:ingest -- [--phases single,paced,batch] [--connections 50] [--duration 15]
//        [--warmup 3] [--rate 2000] [--targets 10000] [--batch-size 100] [--batch-connections 8]
//        [--batch-duration 30] [--aggregators 1] [--ingests 1] [--results file.jsonl] [--raw file.jsonl]
//        [--drain-timeout 120] [--queues a,b] [--client autocannon|http] [--profile dir] [--keep-logs]
//
// Phases (each starts with everything accepted so far persisted, the 10,000 targets already known):
//   single  closed loop: `--connections` keep-alive connections each POSTing one update after another;
//   paced   open loop: `--rate` single-update POSTs/s, evenly paced, up to `--connections` sockets;
//   batch   closed loop: `--batch-connections` connections POSTing `--batch-size` updates a request.
// The closed loops use autocannon, the raw chain's own closed-loop generator (`--client http`: node:http, as
// before 2026-12-04, about twice its CPU per request); the open loop node:http, as the raw chain's paced one.
// Each load runs `--duration` s (`--batch-duration` for batches); as in the raw chain the figures are
// taken over the window from `--warmup` s to 1 s before the load ends: updates accepted/s (202s),
// updates persisted/s (rows of status_updates counted in Postgres at both ends of the window), the
// backlog when the load stops (accepted − persisted, and the ready messages of the aggregator's
// observation queues, found by name prefix), how long the rest took to persist, POST → live state
// (from sending the POST to the live:status fan-out of the new status, on every update that changes
// its target's status, ~2 in 17), HTTP latency, and CPU/RSS per process. `--results` appends one
// JSON line per phase; `--raw` (the raw chain's RESULTS file) prints the ratio to its latest figures.
//
// The services run from a private copy of dist/ (a build by someone else mid-run cannot pull it
// away), with `npm start`'s Node flags, against a throwaway database, vhost and Redis prefix.
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { serviceNodeArgs } from '../../launcher/common.mjs';
import { codeVersion, cpuMeter, pidsOf } from '../lib/procs.mjs';
import { discoverObservationQueues, fullDepths, readyDepths } from '../lib/queues.mjs';
import { closedLoop, post } from './closed-loop.mjs';
import { LiveStateTracker, percentiles, updateOf } from './workload.mjs';
import { parseArgs } from '../lib/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UPDATES_PATH = '/api/v1/status/updates';
const require = createRequire(import.meta.url);

const args = parseArgs(process.argv.slice(2), {
  phases: 'single,paced,batch',
  connections: 50,
  /** Seconds of load per phase (single, paced), warm-up included; figures over [warmup, duration − 1]. */
  duration: 15,
  warmup: 3,
  /** Open-loop rate of the paced phase (single-update POSTs/s): about half the raw chain's maximum. */
  rate: 2000,
  /** Distinct targets the updates are spread over (the raw chain: 10,000). */
  targets: 10_000,
  /** Every n-th update reports DOWN, i.e. ~2 in n change their target's status (the raw chain's 17); 0: none do. */
  'down-every': 17,
  'batch-size': 100,
  'batch-connections': 8,
  /** Seconds of load of the batch phase: long enough to show a rate is sustained. */
  'batch-duration': 30,
  /** Aggregator processes (0: status-ingest alone; the queues are purged between phases). */
  aggregators: 1,
  /** status-ingest processes; connections are spread over them. */
  ingests: 1,
  /** Append one JSON line per phase to this file. */
  results: '',
  /** The raw chain's RESULTS file: print the ratio to its latest closed-loop (single) and paced figures. */
  raw: '',
  /** Longest wait for the backlog to be persisted after a phase. */
  'drain-timeout': 120,
  /** Observation queues to watch (default: every queue named fleetwatch.aggregator.observations*). */
  queues: '',
  /** Closed-loop client (single and batch phases): autocannon, as the raw chain's, or http (node:http, ~2x its CPU). */
  client: 'autocannon',
  /** Consume the observation queues in the bench itself (ack and count) instead of an aggregator. */
  drain: false,
  /** Directory for V8 CPU profiles of the services (written when they stop). */
  profile: '',
  'keep-logs': false,
  /** Extra Node flags for the services, after npm start's (e.g. "--trace-gc" with --keep-logs, "--max-semi-space-size=32"). */
  'node-flags': '',
  /** Another build's dist/ to run (e.g. a copy of a before build, to compare in one sitting). */
  dist: '',
});

const sourceDist = args.dist ? resolve(args.dist) : join(root, 'dist');
for (const f of ['apps/status-ingest/src/main.js', 'libs/testing/src/index.js', 'libs/persistence/src/index.js']) {
  if (!existsSync(join(sourceDist, f))) {
    console.error(`dist/${f} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
}
if (args.aggregators > 0 && !existsSync(join(sourceDist, 'apps/aggregator/src/main.js'))) {
  console.error('dist/apps/aggregator is missing: run `npm run build` first (or --aggregators 0)');
  process.exit(1);
}
const version = codeVersion(root, join(sourceDist, 'apps/aggregator/src/main.js'));
// A private copy of dist/ inside the repository (node_modules resolves from there).
const privateDir = join(root, 'tmp', `bench-ingest-${process.pid}`);
rmSync(privateDir, { recursive: true, force: true });
mkdirSync(privateDir, { recursive: true });
cpSync(sourceDist, join(privateDir, 'dist'), { recursive: true });
const dist = (p) => join(privateDir, 'dist', p);

const { createIsolatedDatabase, createIsolatedVhost } = require(dist('libs/testing/src/index.js'));
const { ApiKeysRepository, createPrismaClient, generateApiKey } = require(dist('libs/persistence/src/index.js'));
const amqplib = require('amqplib');
const { Redis } = require('ioredis');
const pg = require('pg');

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

// ── services ──
const children = new Set();
let stopping = false;
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(privateDir, { recursive: true, force: true });
});

function startService(app, label, env) {
  const profile = args.profile
    ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args.profile)}`, `--cpu-prof-name=${label}.cpuprofile`]
    : [];
  const extra = String(args['node-flags'] || '')
    .split(' ')
    .filter(Boolean);
  const child = spawn(
    process.execPath,
    [...profile, ...serviceNodeArgs(app), ...extra, dist(`apps/${app}/src/main.js`)],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 50) tail.shift();
        if (args['keep-logs']) process.stderr.write(`[${label}] ${line}\n`);
      }
    });
  }
  children.add(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${label} exited unexpectedly (${signal ?? code}); last lines:\n${tail.join('\n')}`);
      process.exitCode = 1;
    }
  });
  return { app, label, child, tail, port: Number(env.STATUS_INGEST_PORT ?? env.AGGREGATOR_PORT) };
}

async function waitReady(service, timeoutMs = 60_000) {
  const url = `http://127.0.0.1:${service.port}/readyz`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null)
      throw new Error(
        `${service.label} exited (${service.child.exitCode}) before it was ready:\n${service.tail.join('\n')}`,
      );
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

/**
 * What Postgres did, from its statistics views (this database's tables; WAL is the server's, so other work on the
 * box counts too): per table rows inserted, updated (and how many of those were HOT — no index touched), deleted;
 * the database's commits (the bench's own count queries included), and WAL records and bytes. Postgres 15 flushes a
 * backend's statistics at most once a second, and one that goes idle soon after a flush keeps them for up to 10 s:
 * work of a connection used every few seconds (the rollup job's) can land inside or outside a short window, and a
 * checkpoint's full-page images inflate WAL bytes in the window they fall in. Compare long windows, or many.
 */
async function pgWrites(client) {
  const tables = await client.query(
    `SELECT relname, n_tup_ins::float8 AS ins, n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot, n_tup_del::float8 AS del
       FROM pg_stat_user_tables`,
  );
  const db = await client.query(
    `SELECT xact_commit::float8 AS commits FROM pg_stat_database WHERE datname = current_database()`,
  );
  const wal = await client.query('SELECT wal_records::float8 AS records, wal_bytes::float8 AS bytes FROM pg_stat_wal');
  return {
    tables: Object.fromEntries(tables.rows.map((r) => [r.relname, r])),
    commits: db.rows[0]?.commits ?? 0,
    wal: wal.rows[0] ?? { records: 0, bytes: 0 },
  };
}

/** The difference of two pgWrites snapshots, per update persisted between them (tables with no writes left out). */
function pgPerUpdate(before, after, updates) {
  if (updates <= 0) return null;
  const per = (n) => Math.round((n / updates) * 1000) / 1000;
  const tables = {};
  for (const [name, a] of Object.entries(after.tables)) {
    const b = before.tables[name] ?? { ins: 0, upd: 0, hot: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del };
    if (d.ins || d.upd || d.del)
      tables[name] = { inserted: per(d.ins), updated: per(d.upd), hotUpdated: per(d.hot), deleted: per(d.del) };
  }
  return {
    commits: per(after.commits - before.commits),
    walRecords: per(after.wal.records - before.wal.records),
    walBytes: Math.round((after.wal.bytes - before.wal.bytes) / updates),
    tables,
  };
}

async function main() {
  console.log('bench:ingest — setting up a throwaway database, vhost and Redis prefix …');
  const database = await createIsolatedDatabase();
  const vhost = await createIsolatedVhost('bench-ingest');
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisPrefix = `fwbench:${Date.now()}:`;
  const serviceEnv = {
    DATABASE_URL: database.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_SITE: 'bench',
    INGEST_RATE_LIMIT_PER_SECOND: '1000000',
    INGEST_RATE_LIMIT_BURST: '1000000',
    LOG_LEVEL: 'warn',
  };
  const ingests = [];
  for (let i = 1; i <= Math.max(1, args.ingests); i++)
    ingests.push(
      startService('status-ingest', `status-ingest-${i}`, {
        ...serviceEnv,
        STATUS_INGEST_PORT: String(await freePort()),
      }),
    );
  const aggregators = [];
  for (let i = 1; i <= args.aggregators; i++)
    aggregators.push(
      startService('aggregator', `aggregator-${i}`, { ...serviceEnv, AGGREGATOR_PORT: String(await freePort()) }),
    );
  const services = [...ingests, ...aggregators];
  const ports = ingests.map((s) => s.port);

  const db = createPrismaClient(database.databaseUrl, { poolSize: 1 });
  const amqp = await amqplib.connect(vhost.amqpUrl);
  amqp.on('error', (e) => console.error(`bench AMQP connection: ${e.message}`));
  const pgClient = new pg.Client({ connectionString: database.databaseUrl });
  const tracker = args.aggregators > 0 ? new LiveStateTracker({ redisUrl, prefix: redisPrefix }) : null;
  const cleanup = async () => {
    stopping = true;
    for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGINT');
    await Promise.all(
      services.map((s) => (s.child.exitCode !== null ? null : new Promise((r) => s.child.once('exit', r)))),
    );
    await amqp.close().catch(() => undefined);
    await pgClient.end().catch(() => undefined);
    await db.$disconnect().catch(() => undefined);
    tracker?.close();
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
  };
  // Interrupted (Ctrl-C, or a runner's timeout): the services, database, vhost and keys go too.
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)));

  try {
    for (const s of services) await waitReady(s);
    await pgClient.connect();
    if (tracker) await tracker.start();
    const generated = generateApiKey();
    await new ApiKeysRepository(db).create({
      name: 'bench',
      prefix: generated.prefix,
      keyHash: generated.keyHash,
      scopes: ['ingest'],
    });
    const key = generated.key;
    const found = await discoverObservationQueues(amqp, vhost.vhost, {
      explicit: args.queues ? String(args.queues).split(',') : [],
    });
    if (found.queues.length === 0) throw new Error('no observation queue found (fleetwatch.aggregator.observations*)');
    const queueTypes = [...new Set(found.queues.map((q) => found.types[q] ?? 'quorum (declared by libs/messaging)'))];

    const settings = {
      connections: args.connections,
      durationS: args.duration,
      warmupS: args.warmup,
      rate: args.rate,
      targets: args.targets,
      downEvery: args['down-every'],
      batchSize: args['batch-size'],
      batchConnections: args['batch-connections'],
      batchDurationS: args['batch-duration'],
      client: args.client,
      queueType: queueTypes.join(','),
      queues: found.queues,
      queuesFoundVia: found.via,
      prefetch: process.env.AGGREGATOR_PREFETCH ?? 'default',
      aggregators: args.aggregators,
      ingests: ingests.length,
      commit: version.commit,
      distBuiltAt: version.builtAt,
      node: process.version,
      cpus: cpus().length,
      serviceNodeArgs: serviceNodeArgs('aggregator').join(' '),
      env: Object.fromEntries(Object.entries(serviceEnv).filter(([k]) => /^INGEST_|^LOG_LEVEL$|^AGGREGATOR_/.test(k))),
    };
    for (const k of Object.keys(process.env)) if (/^(AGGREGATOR|INGEST)_/.test(k)) settings.env[k] = process.env[k];
    console.log(`settings: ${JSON.stringify(settings)}`);
    console.log(
      `services: ${ingests.map((s) => `${s.label} :${s.port}`).join(', ')}${aggregators.map((s) => `, ${s.label} :${s.port}`).join('')}`,
    );

    const persistedCount = async () =>
      Number((await pgClient.query('SELECT count(*)::bigint AS n FROM status_updates')).rows[0].n);
    let acceptedAll = 0; // every update that got a 202, all phases
    let seq = 0;

    // Bench-side consumer instead of an aggregator (--drain): acks in bulk, like a batching consumer.
    if (args.drain) {
      const dch = await amqp.createChannel();
      dch.on('error', (e) => console.error(`bench drain channel: ${e.message}`));
      await dch.prefetch(1000);
      for (const q of found.queues) await dch.consume(q, (m) => dch.ack(m));
    }

    const persisting = args.aggregators > 0;
    /** Waits until everything accepted is persisted; returns seconds waited (null: gave up). */
    const caughtUp = async (timeoutS, started = performance.now()) => {
      if (!persisting) return 0;
      while ((await persistedCount()) < acceptedAll) {
        if (performance.now() - started > timeoutS * 1000) return null;
        await sleep(200);
      }
      return (performance.now() - started) / 1000;
    };

    // Prefill: every target known before measuring (the steady state of a fleet), as one pass of the workload.
    if (persisting) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const started = performance.now();
      const chunk = 500;
      const jobs = [];
      for (let from = 0; from < args.targets; from += chunk) jobs.push(from);
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let j = w; j < jobs.length; j += 4) {
            const updates = [];
            for (let s = jobs[j]; s < Math.min(jobs[j] + chunk, args.targets); s++) {
              const u = updateOf(s, args.targets, args['down-every']);
              tracker?.sent(u, performance.now(), false);
              updates.push(u);
            }
            const r = await post(agent, ports[j % ports.length], UPDATES_PATH, JSON.stringify({ updates }), key);
            if (r.status !== 202) throw new Error(`prefill POST answered ${r.status}`);
            acceptedAll += r.accepted;
          }
        }),
      );
      seq = args.targets;
      agent.destroy();
      const waited = await caughtUp(args['drain-timeout']);
      if (waited === null)
        throw new Error(`prefill of ${args.targets} targets not persisted within ${args['drain-timeout']} s`);
      console.log(
        `prefill: ${args.targets} targets persisted in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }

    const processes = [
      ...services.map((s) => ({ label: s.label, pids: [s.child.pid] })),
      { label: 'rabbitmq (shared)', pids: () => pidsOf(/beam\.smp/).slice(0, 1) },
      { label: 'postgres (all, shared)', pids: () => pidsOf(/^postgres[:\0 ]|^\/usr\/lib\/postgresql\//) },
      { label: 'redis (shared)', pids: () => pidsOf(/^\/?[^\0]*redis-server/) },
    ];

    /**
     * One phase. `closed`: `connections` workers each POSTing `perRequest` updates back to back.
     * `paced`: `rate` requests/s on schedule. Figures over [warmup, duration − 1].
     */
    const runPhase = async ({ name, mode, connections, perRequest, durationS, rate }) => {
      if (!persisting && !args.drain) {
        const ch = await amqp.createChannel();
        ch.on('error', () => undefined);
        for (const q of found.queues) await ch.purgeQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
      const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
      let recording = false;
      let accepted = 0;
      const statuses = new Map();
      const httpMs = [];
      const onAnswer = (r, msFrom) => {
        acceptedAll += r.accepted;
        if (!recording) return;
        accepted += r.accepted;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        httpMs.push(msFrom);
      };
      const nextBody = () => {
        const t = performance.now();
        if (perRequest === 1) {
          const u = updateOf(seq++, args.targets, args['down-every']);
          tracker?.sent(u, t, recording);
          return JSON.stringify(u);
        }
        const updates = new Array(perRequest);
        for (let i = 0; i < perRequest; i++) {
          updates[i] = updateOf(seq++, args.targets, args['down-every']);
          tracker?.sent(updates[i], t, recording);
        }
        return JSON.stringify({ updates });
      };
      let stop = false;
      const inflight = new Set();
      let loadDone;
      if (mode === 'closed') {
        loadDone = closedLoop({
          client: args.client,
          ports,
          connections,
          path: UPDATES_PATH,
          key,
          perRequest,
          nextBody,
          onAnswer,
          isStopped: () => stop,
        });
      } else {
        const t0 = performance.now();
        let sent = 0;
        const timer = setInterval(() => {
          if (stop) return;
          const due = Math.floor(((performance.now() - t0) * rate) / 1000);
          for (; sent < due; sent++) {
            const scheduled = t0 + (sent * 1000) / rate;
            const port = ports[sent % ports.length];
            const p = post(agent, port, UPDATES_PATH, nextBody(), key).then((r) => {
              inflight.delete(p);
              onAnswer(r, performance.now() - scheduled);
            });
            inflight.add(p);
          }
        }, 1);
        loadDone = (async () => {
          while (!stop) await sleep(20);
          clearInterval(timer);
          while (inflight.size) await Promise.all([...inflight]);
        })();
      }
      await sleep(args.warmup * 1000);
      tracker?.reset();
      recording = true;
      const p0 = persisting ? await persistedCount() : 0;
      const pgBefore = await pgWrites(pgClient);
      const meter = cpuMeter(processes);
      const w0 = performance.now();
      const series = [];
      const windowMs = (durationS - args.warmup - 1) * 1000;
      // Persisted count every 5 s inside the window: a sustained rate shows as steady steps.
      let lastCount = p0;
      let lastT = w0;
      while (performance.now() - w0 < windowMs - 50) {
        await sleep(Math.min(5000, windowMs - (performance.now() - w0)));
        if (!persisting || performance.now() - w0 >= windowMs - 50) break;
        const n = await persistedCount();
        const t = performance.now();
        series.push(Math.round(((n - lastCount) * 1000) / (t - lastT)));
        lastCount = n;
        lastT = t;
      }
      const p1 = persisting ? await persistedCount() : 0;
      const w1 = performance.now();
      const cpu = meter();
      const pgAfter = await pgWrites(pgClient);
      if (persisting && lastT < w1 - 500) series.push(Math.round(((p1 - lastCount) * 1000) / (w1 - lastT)));
      recording = false;
      await sleep(1000); // the last second of load, outside the window (as the raw chain does)
      stop = true;
      await loadDone;
      const loadEnded = performance.now();
      agent.destroy();
      const secs = (w1 - w0) / 1000;
      // Backlog the moment the load stopped: updates accepted and not yet persisted, messages ready.
      const persistedAtEnd = persisting ? await persistedCount() : null;
      // Ready and unacked (held by an aggregator) where rabbitmqctl runs (~1 s later), else ready only.
      const full = fullDepths(vhost.vhost, found.queues);
      const queues = full ?? (await readyDepths(amqp, found.queues));
      const backlog = {
        updates: persisting ? acceptedAll - persistedAtEnd : null,
        messages: Object.values(queues).reduce((a, q) => a + (full ? q.ready + q.unacked : (q ?? 0)), 0),
        queues,
      };
      const drainS = await caughtUp(args['drain-timeout'], loadEnded);
      const live = tracker ? await tracker.figures() : null;
      const result = {
        tool: 'bench:ingest',
        ts: new Date().toISOString(),
        phase: name,
        load: mode === 'closed' ? 'max' : rate,
        conns: connections,
        updatesPerRequest: perRequest,
        durS: durationS,
        windowS: Math.round(secs * 10) / 10,
        acceptedPerS: Math.round(accepted / secs),
        persistedPerS: persisting ? Math.round((p1 - p0) / secs) : null,
        persistedPerSEvery5s: persisting ? series : null,
        backlogAtLoadEnd: backlog,
        drainS: drainS === null ? `not drained in ${args['drain-timeout']} s` : Math.round(drainS * 10) / 10,
        liveState: live,
        http: {
          answers: Object.fromEntries(statuses),
          ...percentiles(httpMs),
          from: mode === 'paced' ? 'scheduled send' : 'send',
        },
        cpu,
        postgresPerUpdate: persisting ? pgPerUpdate(pgBefore, pgAfter, p1 - p0) : null,
        settings,
      };
      return result;
    };

    const results = [];
    for (const phase of String(args.phases).split(',')) {
      const r =
        phase === 'single'
          ? await runPhase({
              name: 'single',
              mode: 'closed',
              connections: args.connections,
              perRequest: 1,
              durationS: args.duration,
            })
          : phase === 'paced'
            ? await runPhase({
                name: 'paced',
                mode: 'paced',
                connections: args.connections,
                perRequest: 1,
                durationS: args.duration,
                rate: args.rate,
              })
            : phase === 'batch'
              ? await runPhase({
                  name: 'batch',
                  mode: 'closed',
                  connections: args['batch-connections'],
                  perRequest: args['batch-size'],
                  durationS: args['batch-duration'],
                })
              : null;
      if (!r) throw new Error(`unknown phase ${phase} (single, paced, batch)`);
      results.push(r);
      print(r);
      if (args.results) appendFileSync(args.results, `${JSON.stringify(r)}\n`);
      if (args.raw) printRatio(r, args.raw);
    }

    if (persisting) {
      const dlq = fullDepths(vhost.vhost, found.deadLetter) ?? (await readyDepths(amqp, found.deadLetter));
      const persisted = await persistedCount();
      const duplicates = Number(
        (await pgClient.query('SELECT count(*) - count(DISTINCT message_id) AS d FROM status_updates')).rows[0].d,
      );
      console.log(
        `\n── accepted vs persisted (whole run, prefill included) ──\n  accepted ${acceptedAll}   persisted ${persisted}   duplicates ${duplicates}   ${acceptedAll === persisted ? 'EQUAL' : 'DIFFERENT'}   ${Object.keys(dlq).length} dead-letter queues${nonEmpty(dlq) || ' (empty)'}`,
      );
      if (acceptedAll !== persisted) process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
}

/** The queues holding messages, as `name ready+unacked` (empty ones left out). */
const nonEmpty = (queues) => {
  const held = Object.entries(queues)
    .map(([name, q]) => [name, q === null || typeof q === 'number' ? (q ?? 0) : q.ready + q.unacked, q])
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b));
  return held.length
    ? ` (${held.map(([name, , q]) => `${name} ${typeof q === 'number' ? q : `${q.ready}+${q.unacked}`}`).join(', ')})`
    : '';
};

const f = (n, d = 0) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '—');

function print(r) {
  const s = r.settings;
  console.log(
    `\n── ${r.phase}: ${r.load === 'max' ? `closed loop, ${r.conns} connections` : `open loop ${r.load}/s, ≤ ${r.conns} sockets`}, ${r.updatesPerRequest} update(s)/POST, ${s.targets} targets, ${r.durS} s (window ${r.windowS} s); ${s.aggregators} aggregator(s), ${s.ingests} ingest(s), queue ${s.queueType}, prefetch ${s.prefetch}, commit ${s.commit} ──`,
  );
  console.log(
    `  accepted ${f(r.acceptedPerS)}/s   persisted ${f(r.persistedPerS)}/s${r.persistedPerSEvery5s ? ` (every 5 s: ${r.persistedPerSEvery5s.join(', ')})` : ''}`,
  );
  console.log(
    `  backlog at load end: ${r.backlogAtLoadEnd.updates ?? '—'} updates accepted, not persisted; ${r.backlogAtLoadEnd.messages} messages in ${Object.keys(r.backlogAtLoadEnd.queues).length} queues${nonEmpty(r.backlogAtLoadEnd.queues)}; persisted all ${typeof r.drainS === 'number' ? `${r.drainS} s later` : r.drainS}`,
  );
  if (r.liveState)
    console.log(
      `  POST → live state (status changes, n=${r.liveState.n}): p50 ${f(r.liveState.p50, 1)} ms   p90 ${f(r.liveState.p90, 1)}   p99 ${f(r.liveState.p99, 1)}   max ${f(r.liveState.max, 1)}   (not seen ${r.liveState.notSeen}, read back from Redis ${r.liveState.verifiedInRedis} ok / ${r.liveState.notVisibleInRedis} not visible)`,
    );
  console.log(
    `  HTTP (from ${r.http.from}): p50 ${f(r.http.p50, 1)} ms   p99 ${f(r.http.p99, 1)} ms   max ${f(r.http.max, 1)}   answers ${JSON.stringify(r.http.answers)}`,
  );
  console.log(`  CPU % of a core / RSS MB: ${r.cpu.map((c) => `${c.label} ${c.cpuPct}%/${c.rssMb}`).join('  ')}`);
  const pg = r.postgresPerUpdate;
  if (pg)
    console.log(
      `  Postgres per update persisted: ${pg.commits} commits, ${pg.walRecords} WAL records, ${pg.walBytes} WAL bytes; rows (inserted/updated/HOT/deleted): ${Object.entries(
        pg.tables,
      )
        .map(([t, v]) => `${t} ${v.inserted}/${v.updated}/${v.hotUpdated}/${v.deleted}`)
        .join('  ')}`,
    );
}

/** Ratio to the raw chain's latest result of the same kind of load (closed loop, or the same rate). */
function printRatio(r, file) {
  if (!existsSync(file)) return;
  const raws = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter(
      (x) =>
        (x.tool === undefined || x.tool === 'raw-chain') &&
        (r.phase === 'paced' ? Number(x.load) === r.load : x.load === 'max' && r.phase === 'single'),
    );
  const raw = raws.at(-1);
  if (!raw) return;
  console.log(
    `  vs raw chain (${raw.ts}, load ${raw.load}, conns ${raw.conns}): persisted ${f(r.persistedPerS)} / ${raw.pgPerSec} = ${f(r.persistedPerS / raw.pgPerSec, 2)}×; accepted ${f(r.acceptedPerS)} / ${raw.ingestPerSec} = ${f(r.acceptedPerS / raw.ingestPerSec, 2)}×; live-state p99 ${f(r.liveState?.p99, 1)} vs POST→Redis p99 ${raw.e2eLatMs?.p99} ms`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
