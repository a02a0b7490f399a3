#!/usr/bin/env node
// Collector benchmark (issue 15): one collector running N HTTP checks per interval against a
// local HTTP target in another process, measured from outside:
//
//   node tools/build/build.mjs && node tools/bench/checks/collector.mjs [--checks 10000 --interval 60
//       --warmup 75 --window 120 --restart-checks 1000 --source owner|disk --cpu-prof --json]
//
// - The assignment reaches the collector through the real path by default (--source owner):
//   sync-orchestrator runs on a throwaway database and vhost, the checks are created through
//   its `checks.bulk-create` RPC (1,000 per call, as the gateway's bulk route does), and the
//   collector fetches `assignment.get` over the bus. --source disk seeds the collector's
//   assignment file instead (no sync-orchestrator at all).
// - Main phase: after --warmup s (one interval and a bit: every check has run, start-up is
//   over) the collector's CPU (user+sys from /proc, in cores), RSS (max over the window, 5 s
//   samples) and runs/s are taken over --window s. Schedule lag is computed from the results
//   themselves, consumed from the observation shard queues: a result's `startedAt` minus its
//   planned instant, which is the check's slot on its grid (the collector's own phase
//   function, from dist/). The collector's lag histogram on /metrics is printed beside it.
// - Restart phase (--restart-checks > 0): a second collector at another location with that
//   many checks; once each ran, it is stopped (SIGTERM, then separately SIGKILL) and started
//   again; printed: time to ready, and time until every check has run again (goal: within
//   one interval).
// - --cpu-prof writes a V8 CPU profile of the main collector (tmp/bench-checks-collector-prof)
//   and prints its top functions.
//
// Everything runs from a private copy of dist/ with `npm start`'s Node flags (a build elsewhere
// mid-run cannot pull files away).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, serviceEnv, serviceNodeArgs } from '../../launcher/common.mjs';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion, cpuSeconds, rssMb } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), {
  checks: 10_000,
  interval: 60,
  warmup: 75,
  window: 120,
  'restart-checks': 1000,
  /** owner: through sync-orchestrator (bulk create + assignment.get); disk: a seeded assignment file. */
  source: 'owner',
  /** COLLECTOR_CHECK_CONCURRENCY (empty: the default). */
  concurrency: '',
  'cpu-prof': false,
  /** Extra Node flags for the collectors (after npm start's: a later flag wins), e.g. "--max-semi-space-size=8". */
  'node-flags': '',
  /** Write a heap snapshot of the main collector at the end of the window and summarise it. */
  snapshot: false,
  /** Seconds of an idle phase first: a collector with no checks (empty assignment); its RSS, heap and (--snapshot) what holds it. 0: none. */
  idle: 0,
  json: false,
  'keep-logs': false,
});
if (!['owner', 'disk'].includes(args.source)) throw new Error('--source is owner or disk');
for (const f of ['apps/collector/src/main.js', 'apps/sync-orchestrator/src/main.js', 'libs/testing/src/index.js'])
  if (!existsSync(join(root, 'dist', f)))
    throw new Error(`dist/${f} is missing: run \`node tools/build/build.mjs\` first`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`[bench:checks] ${s}\n`);
const dir = join(root, 'tmp', `bench-checks-collector-${process.pid}`);
const profDir = join(root, 'tmp', 'bench-checks-collector-prof');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
const dist = (p) => require(join(dir, 'dist', p));
const contracts = dist('libs/contracts/src/index.js');
const { phaseOf } = dist('apps/collector/src/checks/scheduler/phase.js');
const testing = dist('libs/testing/src/index.js');
const amqp = require('amqplib');

const children = new Set();
const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

function spawnNode(name, file, env, extraFlags = []) {
  const child = spawn(process.execPath, [...serviceNodeArgs(name), ...extraFlags, file], {
    cwd: root,
    env: serviceEnv(env),
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
  const proc = { name, child, tail, exited: new Promise((r) => child.once('exit', r)) };
  children.add(proc);
  proc.exited.then(() => children.delete(proc));
  return proc;
}

async function waitReady(proc, port, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.tail.join('\n')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} not ready:\n${proc.tail.join('\n')}`);
    await sleep(100);
  }
}

async function stop(proc, signal = 'SIGTERM') {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const hard = setTimeout(() => proc.child.kill('SIGKILL'), 20_000);
  await proc.exited;
  clearTimeout(hard);
}

/** Collectors by their HTTP port: a failed /metrics read says why the process went away (its log tail). */
const collectorsByPort = new Map();

async function metricsText(port) {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch (e) {
    const proc = collectorsByPort.get(port);
    if (!proc || proc.child.exitCode === null) throw e;
    throw new Error(`collector exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.tail.join('\n')}`);
  }
}

async function metric(port, name, labels = {}) {
  const text = await metricsText(port);
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Quantile from a Prometheus histogram's cumulative buckets (upper bound of the bucket holding it). */
async function histogramQuantile(port, name, q) {
  const text = await metricsText(port);
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))].map((m) => [
    m[1] === '+Inf' ? Infinity : Number(m[1]),
    Number(m[2]),
  ]);
  const total = buckets.at(-1)?.[1] ?? 0;
  return buckets.find(([, n]) => n >= q * total)?.[0] ?? NaN;
}

// ── results: consumed from the observation shard queues, lag computed per result ──
const results = [];
async function consumeResults(amqpUrl) {
  const conn = await amqp.connect(amqpUrl);
  conn.on('error', () => undefined);
  const ch = await conn.createChannel();
  await ch.prefetch(2000);
  for (let s = 0; s < contracts.OBSERVATION_SHARDS; s++) {
    const queue = contracts.observationShardQueue(s);
    await ch.consume(
      queue,
      (m) => {
        if (!m) return;
        if (m.properties.type === 'check.result') {
          const e = JSON.parse(m.content.toString('utf8'));
          const p = e.payload;
          const started = Date.parse(p.startedAt);
          const interval = p.intervalSeconds * 1000;
          const phase = phaseOf(p.checkId, interval);
          const planned = Math.floor((started - phase) / interval) * interval + phase;
          results.push({
            at: Date.now(),
            id: p.checkId,
            location: p.location,
            started,
            lag: started - planned,
            ok: p.ok,
          });
        }
        ch.ack(m);
      },
      { noAck: false },
    );
  }
  return () => conn.close().catch(() => undefined);
}

const pct = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);

function checkInputs(n, location, targetPort, tag) {
  return Array.from({ length: n }, (_, i) => ({
    name: `bench-${tag}-${String(i).padStart(5, '0')}`,
    type: 'http',
    url: `http://127.0.0.1:${targetPort}/${tag}/${i}`,
    intervalSeconds: args.interval,
    timeoutSeconds: 5,
    locations: [location],
    tags: ['bench'],
  }));
}

async function createThroughOwner(rpc, inputs) {
  const started = Date.now();
  for (let i = 0; i < inputs.length; i += 1000) {
    await rpc.call(
      contracts.ConfigRpcMethod.ChecksBulkCreate,
      {
        actor: { id: 'system:bench', name: 'bench' },
        checks: inputs.slice(i, i + 1000),
      },
      { timeoutMs: 120_000 },
    );
  }
  return Date.now() - started;
}

async function seedOnDisk(file, location, inputs) {
  const { AssignmentFile } = dist('apps/collector/src/checks/assignment/assignment-file.js');
  const now = new Date().toISOString();
  const checks = inputs.map((input) => {
    const id = contracts.uuidv7();
    return {
      ...contracts.checkInputSchema.parse(input),
      id,
      targetId: contracts.TargetIds.check(id),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
  });
  await new AssignmentFile(file).save({ location, version: 1, hash: 'b'.repeat(64), receivedAt: now, checks });
}

async function startCollector(env, location, extraFlags = []) {
  const port = await freePort();
  const spawnedAt = Date.now();
  const proc = spawnNode(
    'collector',
    join(dir, 'dist/apps/collector/src/main.js'),
    {
      ...env,
      FLEETWATCH_LOCATION: location,
      COLLECTOR_PORT: String(port),
      COLLECTOR_SPOOL_DIR: join(dir, `spool-${location}`),
      ...(args.concurrency ? { COLLECTOR_CHECK_CONCURRENCY: String(args.concurrency) } : {}),
    },
    [...String(args['node-flags']).split(/\s+/).filter(Boolean), ...extraFlags],
  );
  collectorsByPort.set(port, proc);
  await waitReady(proc, port);
  return { proc, port, spawnedAt, readyAt: Date.now() };
}

/** Writes a heap snapshot of collector `c` (SIGUSR2) and prints what holds its heap. */
async function summariseSnapshot(c) {
  for (const f of readdirSync(profDir)) if (f.endsWith('.heapsnapshot')) rmSync(join(profDir, f));
  c.proc.child.kill('SIGUSR2');
  // Written when its size stops changing.
  let snap;
  let lastSize = -1;
  for (let i = 0; i < 180; i++) {
    await sleep(1000);
    const f = readdirSync(profDir).find((x) => x.endsWith('.heapsnapshot'));
    if (!f) continue;
    const size = statSync(join(profDir, f)).size;
    if (size > 0 && size === lastSize) {
      snap = join(profDir, f);
      break;
    }
    lastSize = size;
  }
  if (snap) {
    const summary = spawn(
      process.execPath,
      ['--max-old-space-size=4096', join(root, 'tools/bench/memory/heap-summary.mjs'), snap, '--top', '15'],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    await new Promise((r) => summary.once('exit', r));
  }
}

/** Anonymous and file-backed resident memory (MB) from /proc/PID/smaps_rollup. */
function smapsRollup(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { anon: Math.round(kb('Anonymous') / 1024), file: Math.round((kb('Rss') - kb('Anonymous')) / 1024) };
  } catch {
    return { anon: NaN, file: NaN };
  }
}

async function main() {
  const report = {
    settings: { ...args, cpus: cpus().length, node: process.version },
    code: codeVersion(root, join(root, 'dist/apps/collector/src/main.js')),
  };
  const target = spawnNode('http-target', join(root, 'tools/bench/checks/http-target.mjs'), {});
  const targetPort = await new Promise((ok) => target.child.stdout.once('data', (d) => ok(Number(String(d).trim()))));
  const vhost = await testing.createIsolatedVhost('bench-checks-collector');
  let database;
  const cleanups = [async () => vhost.dispose().catch(() => undefined)];
  const env = {
    ...DEFAULTS,
    ...process.env,
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_SITE: 'bench',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  delete env.NODE_OPTIONS;
  try {
    const stopResults = await (async () => {
      // The shard queues must exist before the consumer attaches: declare them as the services do.
      const { createBus, observationShardQueueSpecs, RpcClient, silentBusLogger } = dist('libs/messaging/src/index.js');
      const bus = createBus({
        url: vhost.amqpUrl,
        source: { site: 'bench', service: 'tool' },
        queues: observationShardQueueSpecs(),
        logger: silentBusLogger,
      });
      await bus.connection.waitForSession(10_000);
      await sleep(500);
      cleanups.push(() => bus.close());
      let rpc;
      if (args.source === 'owner') {
        database = await testing.createIsolatedDatabase();
        cleanups.push(() => database.dispose().catch(() => undefined));
        const ownerPort = await freePort();
        const owner = spawnNode('sync-orchestrator', join(dir, 'dist/apps/sync-orchestrator/src/main.js'), {
          ...env,
          DATABASE_URL: database.databaseUrl,
          REDIS_URL: process.env.REDIS_URL ?? DEFAULTS.REDIS_URL,
          FLEETWATCH_REDIS_PREFIX: `fwbenchcol:${process.pid}:`,
          SYNC_ORCHESTRATOR_PORT: String(ownerPort),
        });
        await waitReady(owner, ownerPort);
        rpc = new RpcClient(bus.connections.publishing, bus.connections.consuming, {
          source: { site: 'bench', service: 'tool' },
          timeoutMs: 120_000,
          logger: silentBusLogger,
        });
        cleanups.push(() => rpc.close());
      }
      report.rpc = Boolean(rpc);
      const stopConsumer = await consumeResults(vhost.amqpUrl);
      // Checks of both phases, each at its own location.
      const mainInputs = checkInputs(args.checks, 'bench-main', targetPort, 'main');
      const restartInputs = checkInputs(args['restart-checks'], 'bench-restart', targetPort, 'restart');
      if (rpc) {
        report.createMs = await createThroughOwner(rpc, [...mainInputs, ...restartInputs]);
        log(
          `created ${mainInputs.length + restartInputs.length} checks through sync-orchestrator in ${report.createMs} ms`,
        );
      } else {
        await seedOnDisk(join(dir, 'spool-bench-main', 'assignment.json'), 'bench-main', mainInputs);
        await seedOnDisk(join(dir, 'spool-bench-restart', 'assignment.json'), 'bench-restart', restartInputs);
      }
      return stopConsumer;
    })();
    cleanups.push(stopResults);

    // ── idle phase: no checks (issue 16's "collector at rest" figure) ──
    if (args.idle > 0) {
      const flags = args.snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profDir}`] : [];
      if (args.snapshot) rmSync(profDir, { recursive: true, force: true });
      mkdirSync(profDir, { recursive: true });
      await seedOnDisk(join(dir, 'spool-bench-idle', 'assignment.json'), 'bench-idle', []);
      const c = await startCollector(env, 'bench-idle', flags);
      log(`idle collector ready in ${c.readyAt - c.spawnedAt} ms; ${args.idle} s at rest`);
      const pid = c.proc.child.pid;
      const cpu0 = cpuSeconds(pid);
      const t0 = Date.now();
      let rssMax = 0;
      while (Date.now() - t0 < args.idle * 1000) {
        rssMax = Math.max(rssMax, rssMb(pid));
        await sleep(2_000);
      }
      const rollup = smapsRollup(pid);
      report.idle = {
        seconds: args.idle,
        cpuCores: Number(((cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000)).toFixed(4)),
        rssMbMax: Math.round(rssMax),
        rssMbEnd: Math.round(rssMb(pid)),
        anonMb: rollup.anon,
        fileMb: rollup.file,
        heapUsedMb: Math.round((await metric(c.port, 'nodejs_heap_size_used_bytes')) / 1048576),
        heapTotalMb: Math.round((await metric(c.port, 'nodejs_heap_size_total_bytes')) / 1048576),
        externalMb: Math.round((await metric(c.port, 'nodejs_external_memory_bytes')) / 1048576),
        loadavg: loadavg().map((x) => Number(x.toFixed(2))),
      };
      log(`idle: ${JSON.stringify(report.idle)}`);
      if (args.snapshot) await summariseSnapshot(c);
      await stop(c.proc, 'SIGINT');
    }

    // ── main phase ──
    if (args.checks > 0) {
      const flags = [
        ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
        ...(args.snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profDir}`] : []),
      ];
      if (args['cpu-prof'] || args.snapshot) rmSync(profDir, { recursive: true, force: true });
      mkdirSync(profDir, { recursive: true });
      const c = await startCollector(env, 'bench-main', flags);
      log(`collector ready in ${c.readyAt - c.spawnedAt} ms; waiting for ${args.checks} checks assigned`);
      const deadline = Date.now() + 120_000;
      while ((await metric(c.port, 'fleetwatch_collector_checks_assigned', { type: 'http' })) < args.checks) {
        if (Date.now() > deadline) throw new Error('assignment did not arrive');
        await sleep(200);
      }
      report.assignedAfterMs = Date.now() - c.spawnedAt;
      log(`assigned after ${report.assignedAfterMs} ms; warm-up ${args.warmup} s, then ${args.window} s measured`);
      await sleep(args.warmup * 1000);
      const pid = c.proc.child.pid;
      const cpu0 = cpuSeconds(pid);
      const runs0 = await metric(c.port, 'fleetwatch_collector_check_runs_total');
      const skipped0 = await metric(c.port, 'fleetwatch_collector_check_slots_skipped_total');
      const t0 = Date.now();
      const rssSeries = [];
      while (Date.now() - t0 < args.window * 1000) {
        rssSeries.push(rssMb(pid));
        await sleep(5_000);
      }
      const rssMax = Math.max(...rssSeries);
      const rssSorted = [...rssSeries].sort((a, b) => a - b);
      const t1 = Date.now();
      const seconds = (t1 - t0) / 1000;
      const cores = (cpuSeconds(pid) - cpu0) / seconds;
      const runs = (await metric(c.port, 'fleetwatch_collector_check_runs_total')) - runs0;
      const inWindow = results.filter((r) => r.location === 'bench-main' && r.started >= t0 && r.started < t1);
      const lags = inWindow.map((r) => r.lag).sort((a, b) => a - b);
      report.main = {
        checks: args.checks,
        intervalSeconds: args.interval,
        windowSeconds: Math.round(seconds),
        cpuCores: Number(cores.toFixed(3)),
        rssMbMax: Math.round(rssMax),
        rssMbEnd: Math.round(rssMb(pid)),
        /** The 5 s readings' minimum and median: RSS between V8's major collections and typically. */
        rssMbMin: Math.round(rssSorted[0]),
        rssMbMedian: Math.round(pct(rssSorted, 0.5)),
        /** Every 5 s reading, in order: where a maximum falls (one spike or a level). */
        rssSeriesMb: rssSeries.map((v) => Math.round(v)),
        runsPerSecond: Number((runs / seconds).toFixed(1)),
        resultsPerSecond: Number((inWindow.length / seconds).toFixed(1)),
        okShare: Number((inWindow.filter((r) => r.ok).length / Math.max(1, inWindow.length)).toFixed(4)),
        lagMs: { p50: pct(lags, 0.5), p90: pct(lags, 0.9), p99: pct(lags, 0.99), max: lags.at(-1) },
        lagHistogramP99UpperBoundS: await histogramQuantile(c.port, 'fleetwatch_collector_schedule_lag_seconds', 0.99),
        skippedSlots: (await metric(c.port, 'fleetwatch_collector_check_slots_skipped_total')) - skipped0,
        spooled: await metric(c.port, 'fleetwatch_collector_spool_records'),
        heapUsedMb: Math.round((await metric(c.port, 'nodejs_heap_size_used_bytes')) / 1048576),
        heapTotalMb: Math.round((await metric(c.port, 'nodejs_heap_size_total_bytes')) / 1048576),
        externalMb: Math.round((await metric(c.port, 'nodejs_external_memory_bytes')) / 1048576),
        loadavg: loadavg().map((x) => Number(x.toFixed(2))),
      };
      log(`main: ${JSON.stringify(report.main)}`);
      if (args.snapshot) await summariseSnapshot(c);
      await stop(c.proc, 'SIGINT');
      if (args['cpu-prof']) {
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (file) {
          report.profile = join(profDir, file);
          const top = spawn(
            process.execPath,
            [join(root, 'tools/bench/aggregator/profile-top.mjs'), report.profile, '--top', '25'],
            {
              stdio: ['ignore', 'inherit', 'inherit'],
            },
          );
          await new Promise((r) => top.once('exit', r));
        }
      }
    }

    // ── restart phase ──
    if (args['restart-checks'] > 0) {
      const n = args['restart-checks'];
      const mine = (since) =>
        new Set(results.filter((r) => r.location === 'bench-restart' && r.started >= since).map((r) => r.id));
      let c = await startCollector(env, 'bench-restart');
      const firstDeadline = Date.now() + (args.interval + 60) * 1000;
      while (mine(0).size < n) {
        if (Date.now() > firstDeadline) throw new Error(`only ${mine(0).size} of ${n} restart checks ran`);
        await sleep(500);
      }
      report.restart = {};
      for (const signal of ['SIGTERM', 'SIGKILL']) {
        await stop(c.proc, signal);
        c = await startCollector(env, 'bench-restart');
        const since = c.spawnedAt;
        const deadline = since + (args.interval * 2 + 30) * 1000;
        while (mine(since).size < n && Date.now() < deadline) await sleep(200);
        const first = new Map();
        for (const r of results)
          if (r.location === 'bench-restart' && r.started >= since && !first.has(r.id)) first.set(r.id, r.started);
        report.restart[signal] = {
          checks: n,
          intervalSeconds: args.interval,
          readyMs: c.readyAt - c.spawnedAt,
          allRanAgainMs: first.size === n ? Math.max(...first.values()) - since : null,
          ranAgain: first.size,
        };
        log(`restart after ${signal}: ${JSON.stringify(report.restart[signal])}`);
      }
      await stop(c.proc, 'SIGTERM');
    }
  } finally {
    for (const p of [...children]) await stop(p);
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  }
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    const i = report.idle;
    if (i)
      console.log(
        `collector at rest (no checks), ${i.seconds} s: RSS ${i.rssMbEnd} MB (max ${i.rssMbMax}; anonymous ${i.anonMb}, file-backed ${i.fileMb}), heap used ${i.heapUsedMb} / total ${i.heapTotalMb} MB, external ${i.externalMb} MB, CPU ${i.cpuCores} cores; load ${i.loadavg.join(' ')}`,
      );
    const m = report.main;
    if (m)
      console.log(
        `collector, ${m.checks} http checks every ${m.intervalSeconds} s (${args.source === 'owner' ? 'assignment from sync-orchestrator' : 'assignment seeded on disk'}), ${m.windowSeconds} s window:\n` +
          `  CPU ${m.cpuCores} cores, RSS max ${m.rssMbMax} MB (end ${m.rssMbEnd}, median ${m.rssMbMedian}, min ${m.rssMbMin} MB), ${m.runsPerSecond} runs/s, ${m.resultsPerSecond} results/s received, ok ${(m.okShare * 100).toFixed(2)} %\n` +
          `  schedule lag p50 ${m.lagMs.p50} ms, p90 ${m.lagMs.p90} ms, p99 ${m.lagMs.p99} ms, max ${m.lagMs.max} ms (histogram p99 ≤ ${m.lagHistogramP99UpperBoundS} s); skipped slots ${m.skippedSlots}; spooled at end ${m.spooled}; load ${m.loadavg.join(' ')}`,
      );
    for (const [signal, r] of Object.entries(report.restart ?? {}))
      console.log(
        `restart (${signal}) with ${r.checks} checks every ${r.intervalSeconds} s: ready in ${r.readyMs} ms, every check ran again after ${r.allRanAgainMs ?? `— (${r.ranAgain} of ${r.checks})`} ms`,
      );
    console.log(`code ${report.code.commit}, ${report.settings.cpus} CPUs, Node ${report.settings.node}`);
  }
}

process.once('SIGINT', async () => {
  log('interrupted: stopping');
  for (const p of [...children]) p.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(130);
});
main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
