#!/usr/bin/env node
// Alert evaluation in the aggregator, end to end (issue 18): the built aggregator module in this process on a
// throwaway database, vhost and Redis prefix, with --targets targets and --rules rules stored as the
// configuration owner stores them.
//
//   node tools/build/build.mjs && node tools/bench/alerts/service.mjs [--targets 10000 --rules 50
//       --hosts 0.2 --ticks 20 --changes 30 --tree <folder holding a built dist/> --json]
//
// The fleet: (1 - --hosts) pushed instances (one status.update.batch per 1,000) and --hosts hosts (a live
// sample each: CPU, memory, 3 disks, 2 GPUs), all folded by the aggregator itself. The rules cycle through
// status conditions (DOWN, PARTIAL, STALE) and metric conditions (CPU, memory, disk, GPU temperature and
// utilisation) with selectors by kind, tag or none, `for` from 0 s to 5 min, thresholds that hold for a few
// percent of the hosts. One of them — DOWN, `for` 0 s, one channel, no group wait — makes every status
// change a message to queue.
// Measured:
//  - tick: wall time of the evaluator's tick (take-over excluded), median / p95 / max of --ticks ticks.
//    Incremental: read live figures, evaluate the targets whose figures changed and the alerts due, commit
//    what changed. Full (after each resync, asked for every 4th tick here; every 60 s in service): reload
//    target_states, then every rule against every target;
//  - status change → queued: --changes times, one instance is sent `exited` (publish with confirm), and the
//    time until the evaluator's transaction that queued its message committed; this is the whole path:
//    bus → fold and commit (the aggregator's batch wait) → status.changed → the evaluator → commit;
//  - status change → webhook request: the same, until the generic webhook channel's request reaches a
//    receiver in this process (the delivery worker's claim and send added).
// Goal (issue 18): under 1 s for both.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), {
  targets: 10_000,
  rules: 50,
  hosts: 0.2,
  ticks: 20,
  changes: 30,
  json: false,
  /** A folder holding a built dist/ (a private copy, so another build cannot empty it mid-run). */
  tree: root,
});
const dist = (p) => join(resolve(args.tree), 'dist', p);
if (!existsSync(dist('apps/aggregator/src/aggregator.module.js')))
  throw new Error('dist/ is missing: run `node tools/build/build.mjs` first');

const { Global, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const pg = require('pg');
const { Redis } = require('ioredis');
const C = require(dist('libs/contracts/src/index.js'));
const M = require(dist('libs/messaging/src/index.js'));
const { createBus, observationShardQueueSpecs } = M;
const { createLogger, FLEETWATCH_LOGGER, ReadinessRegistry } = require(dist('libs/observability/src/index.js'));
const { createIsolatedDatabase, createIsolatedVhost } = require(dist('libs/testing/src/index.js'));
const { AggregatorModule } = require(dist('apps/aggregator/src/aggregator.module.js'));
const { loadAggregatorConfig } = require(dist('apps/aggregator/src/config.js'));
const { ALERT_EVALUATOR } = require(dist('apps/aggregator/src/alerts/evaluation/alert-evaluation.providers.js'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const stats = (xs) => ({ n: xs.length, median: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: Math.max(...xs) });
const fmt = (s) =>
  `median ${s.median.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms, max ${s.max.toFixed(1)} ms (n=${s.n})`;

const HOSTS = Math.round(args.targets * args.hosts);
const INSTANCES = args.targets - HOSTS;
const CHANNEL = 'bench-channel';

function rules(n) {
  const out = [];
  const metric = [
    ['host_cpu_pct', 'above', 95],
    ['host_memory_pct', 'above', 90],
    ['host_disk_pct', 'above', 97],
    ['gpu_temperature_c', 'above', 88],
    ['gpu_utilization_pct', 'below', 2],
  ];
  const fors = ['0s', '30s', '1m', '5m'];
  for (let i = 0; i < n; i++) {
    const selector =
      i % 3 === 0 ? {} : i % 3 === 1 ? { kinds: [i % 2 ? 'instance' : 'host'] } : { tags: [`tag-${i % 7}`] };
    const condition =
      i % 2 === 0
        ? { type: 'status', statuses: [['DOWN', 'PARTIAL', 'STALE'][i % 3]] }
        : { type: 'metric', metric: { kind: metric[i % 5][0] }, op: metric[i % 5][1], threshold: metric[i % 5][2] };
    out.push({ id: `bench-${i}`, spec: { name: `bench rule ${i}`, selector, condition, for: fors[i % 4] } });
  }
  // The rule every measured change trips: DOWN at once, to one channel, each alert its own group, no wait.
  out[0] = {
    id: 'bench-0',
    spec: {
      name: 'bench down',
      condition: { type: 'status', statuses: ['DOWN'] },
      for: '0s',
      channels: [CHANNEL],
      grouping: { groupBy: ['...'], groupWait: '0s', groupInterval: '1s' },
    },
  };
  return out.map((r) => ({ id: r.id, spec: C.alertRuleSpecSchema.parse(r.spec) }));
}

function hostSample(i) {
  const v = (k) => ((i * 7919 + k * 104729) % 1000) / 10; // 0–99.9, fixed per host
  return {
    hostId: `h-${i}`,
    location: 'bench',
    sampledAt: new Date().toISOString(),
    intervalSeconds: 15,
    cpu: { usagePct: v(1), cores: 8, load1: 1, load5: 1, load15: 1 },
    memory: { totalBytes: 1.6e10, usedBytes: 1.6e8 * v(2), swapTotalBytes: 0, swapUsedBytes: 0 },
    disks: ['/', '/data', '/var'].map((mount, k) => ({ mount, totalBytes: 1e12, usedBytes: 1e10 * v(3 + k) })),
    network: [],
    gpus: [0, 1].map((index) => ({
      index,
      name: 'GPU',
      utilizationPct: v(7 + index),
      memoryUsedBytes: 1e9,
      memoryTotalBytes: 8e10,
      temperatureC: 30 + v(9 + index) * 0.6,
      powerW: null,
    })),
    uptimeSeconds: 3600,
    system: { hostname: `h-${i}`, platform: 'linux', arch: 'x64', collectorVersion: 'bench' },
  };
}

const update = (i, status) => ({
  updateId: `b-${i}-${Date.now()}-${Math.random()}`,
  instanceId: `i-${i}`,
  kind: 'container',
  status,
  occurredAt: new Date().toISOString(),
  receivedAt: new Date().toISOString(),
});

async function main() {
  const [database, vhost] = await Promise.all([createIsolatedDatabase(), createIsolatedVhost('bench-alerts')]);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisPrefix = `fwbench:alerts:${Date.now()}:`;
  const client = new pg.Client({ connectionString: database.databaseUrl });
  await client.connect();
  const bus = createBus({
    url: vhost.amqpUrl,
    source: { site: 'bench', service: 'status-ingest', location: 'bench' },
    name: 'bench-alerts',
    queues: [...observationShardQueueSpecs(), C.QueueName.AggregatorObservations],
  });
  let app;
  const closers = [];
  try {
    for (const r of rules(args.rules))
      await client.query(
        `INSERT INTO alert_rules (id, name, spec, content_hash, version) VALUES ($1, $2, $3::jsonb, $4, 1)`,
        [r.id, r.spec.name, JSON.stringify(r.spec), r.id.padEnd(64, '0')],
      );
    // The channel: a generic webhook to a receiver in this process, which notes when each alert first arrives.
    const received = new Map();
    const receiver = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const t = performance.now();
        try {
          for (const a of JSON.parse(Buffer.concat(chunks).toString()).alerts ?? [])
            if (a.status === 'firing' && !received.has(a.labels.target)) received.set(a.labels.target, t);
        } catch {
          // not a notification: ignored
        }
        res.writeHead(204).end();
      });
    });
    await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => receiver.close(r)));
    const channel = C.channelConfigSchema.parse({
      type: 'webhook',
      name: 'bench',
      url: `http://127.0.0.1:${receiver.address().port}/hook`,
    });
    await client.query(
      `INSERT INTO notification_channels (id, name, type, spec, content_hash, version) VALUES ($1, $2, 'webhook', $3::jsonb, $4, 1)`,
      [CHANNEL, channel.name, JSON.stringify(channel), '0'.repeat(64)],
    );
    const config = loadAggregatorConfig({
      DATABASE_URL: database.databaseUrl,
      AMQP_URL: vhost.amqpUrl,
      REDIS_URL: redisUrl,
      FLEETWATCH_REDIS_PREFIX: redisPrefix,
      FLEETWATCH_SITE: 'bench',
      LOG_LEVEL: 'warn',
    });
    class Observability {}
    Global()(Observability);
    Module({
      providers: [
        ReadinessRegistry,
        { provide: FLEETWATCH_LOGGER, useValue: createLogger('aggregator', 'warn', process.stderr) },
      ],
      exports: [ReadinessRegistry, FLEETWATCH_LOGGER],
    })(Observability);
    class Root {}
    Module({ imports: [Observability, AggregatorModule.forRoot(config)] })(Root);
    app = await NestFactory.createApplicationContext(Root, { logger: false });
    const evaluator = app.get(ALERT_EVALUATOR);

    // Timing hooks: the tick (once the lease is taken) and each committed decision's queued alerts.
    const ticks = [];
    const fullTicks = [];
    const queuedAt = new Map();
    const tick = evaluator.tick.bind(evaluator);
    evaluator.tick = async () => {
      const was = evaluator.active;
      // A full tick (every rule × every target, and the reload before it) or an incremental one.
      const full = evaluator.fullDue || evaluator.configDirty || Date.now() >= evaluator.resyncAt;
      const t = performance.now();
      try {
        return await tick();
      } finally {
        if (was && collecting) (full ? fullTicks : ticks).push(performance.now() - t);
        if (collecting && !full && ticks.length % 4 === 0) evaluator.requestResync();
      }
    };
    const decide = evaluator.decide.bind(evaluator);
    evaluator.decide = async (...a) => {
      const summary = await decide(...a);
      const t = performance.now();
      for (const f of summary?.flushes ?? [])
        for (const n of f.firing) if (!queuedAt.has(n.targetId)) queuedAt.set(n.targetId, t);
      return summary;
    };
    let collecting = false;

    // The fleet, folded by the aggregator.
    console.error(`fleet: ${INSTANCES} instances, ${HOSTS} hosts, ${args.rules} rules`);
    for (let i = 0; i < INSTANCES; i += 1000) {
      const updates = Array.from({ length: Math.min(1000, INSTANCES - i) }, (_, k) => ({
        ...update(i + k, 'running'),
        id: C.uuidv7(),
      }));
      for (const part of M.splitByShard(updates, (u) => C.TargetIds.instance(u.instanceId)).values())
        await bus.publisher.publish(C.Messages.StatusUpdateBatch, { updates: part });
    }
    for (let i = 0; i < HOSTS; i += 500)
      await bus.publisher.publishMany(
        Array.from({ length: Math.min(500, HOSTS - i) }, (_, k) =>
          M.publishRequest(C.Messages.HostMetrics, hostSample(i + k)),
        ),
      );
    const t0 = Date.now();
    for (;;) {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM target_states');
      if (rows[0].n >= args.targets && evaluator.active) break;
      if (Date.now() - t0 > 300_000) throw new Error(`fleet not folded: ${rows[0].n} targets`);
      await sleep(500);
    }
    // A full reload so the evaluator sees the whole fleet, then the ticks.
    evaluator.requestResync();
    await sleep(2500);
    const targetsSeen = evaluator.targetCount;
    collecting = true;
    while (ticks.length < args.ticks || fullTicks.length < Math.ceil(args.ticks / 5)) await sleep(200);

    // Status change → queued.
    const delays = [];
    const requestDelays = [];
    for (let c = 0; c < args.changes; c++) {
      const i = Math.floor(Math.random() * INSTANCES);
      const id = `instance:i-${i}`;
      queuedAt.delete(id);
      received.delete(id);
      await sleep(100 + Math.random() * 900); // anywhere relative to the tick
      const sent = performance.now();
      await bus.publisher.publish(C.Messages.StatusUpdate, update(i, 'exited'));
      const until = Date.now() + 10_000;
      while (!queuedAt.has(id) && Date.now() < until) await sleep(2);
      if (!queuedAt.has(id)) throw new Error(`no message queued for ${id} within 10 s`);
      delays.push(queuedAt.get(id) - sent);
      while (!received.has(id) && Date.now() < until) await sleep(2);
      if (!received.has(id)) throw new Error(`no webhook request for ${id} within 10 s`);
      requestDelays.push(received.get(id) - sent);
      await bus.publisher.publish(C.Messages.StatusUpdate, update(i, 'running'));
    }
    collecting = false;
    const { rows: alerts } = await client.query('SELECT state, count(*)::int AS n FROM alert_states GROUP BY state');
    const result = {
      version: codeVersion(root, dist('apps/aggregator/src/aggregator.module.js')),
      cpus: cpus().length,
      load1: loadavg()[0],
      targets: targetsSeen,
      rules: args.rules,
      alerts: Object.fromEntries(alerts.map((r) => [r.state, r.n])),
      tickMs: stats(ticks),
      fullTickMs: stats(fullTicks),
      changeToQueuedMs: stats(delays),
      changeToWebhookMs: stats(requestDelays),
    };
    if (args.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `alert evaluation, ${result.targets} targets, ${result.rules} rules (${result.cpus} cores, load ${result.load1.toFixed(2)})`,
      );
      console.log(`  alerts held: ${JSON.stringify(result.alerts)}`);
      console.log(`  tick (incremental):      ${fmt(result.tickMs)}`);
      console.log(`  tick (full, with reload): ${fmt(result.fullTickMs)}`);
      console.log(`  status change → queued:  ${fmt(result.changeToQueuedMs)}`);
      console.log(`  status change → webhook: ${fmt(result.changeToWebhookMs)}`);
    }
  } finally {
    await app?.close().catch(() => undefined);
    for (const close of closers) await close();
    await bus.close().catch(() => undefined);
    await client.end().catch(() => undefined);
    const r = new Redis(redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.unlink(...keys);
    } while (cursor !== '0');
    r.disconnect();
    await Promise.allSettled([vhost.dispose(), database.dispose()]);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
