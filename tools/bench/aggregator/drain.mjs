#!/usr/bin/env node
// Aggregator drain benchmark (issue 14): how fast one aggregator stores a backlog of
// batched updates, end to end (delivered → committed in Postgres → acked).
//
//   npm run build && node tools/bench/aggregator/drain.mjs [--messages 300 --per-message 100 --targets 10000
//       --flip 0.05 --runs 1 --commit <rev> --profile <dir> --count-sql true --keep-logs]
//
// Each run: a throwaway database (migrated), vhost and Redis prefix; the aggregator is
// started once so it declares its own topology (one observations queue, or however many
// shards this build declares), stopped, then `--messages` status.update.batch messages
// (`--per-message` updates each, over `--targets` instances, `--flip` of the updates a
// status change) are published to fleetwatch.events with the routing key the contracts
// of the build define, and the aggregator is started again. The drain rate is the
// updates persisted (status_updates rows) per second from the first row stored to the
// last. Also printed: aggregator CPU seconds per 1,000 updates (robust on a shared box),
// SQL statements per commit (`--count-sql`: pg's Client.query counted in the
// aggregator process through a preload, tools/bench/aggregator/count-sql.cjs).
//
// `--commit <rev>` benchmarks another revision: it is extracted with `git archive`
// into tmp/bench-aggregator/<sha>/ (node_modules linked, the generated Prisma client
// copied) and built there, so before/after runs can alternate in one sitting without
// touching the shared dist/. Several revisions: `--commit a,b` alternates them per run.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { parseArgs } from '../lib/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);

const args = parseArgs(process.argv.slice(2), {
  messages: 300,
  'per-message': 100,
  targets: 10_000,
  /** Share of updates reporting 'exited' instead of 'running' (each a status change, and one back): the rest repeat it. */
  flip: 0.05,
  runs: 1,
  /** Revision(s) to benchmark (comma-separated, alternated per run); empty: the working tree's dist/. */
  commit: '',
  /** Directory for the aggregator's V8 CPU profile (one file per run). */
  profile: '',
  /** Count SQL statements in the aggregator (preload wrapping pg's Client.query). */
  'count-sql': true,
  'keep-logs': false,
  /** Extra aggregator environment, NAME=value,NAME=value. */
  env: '',
  /** Store every target once before the backlog (measured: the steady state, targets known). */
  prefill: true,
  /** Give up on a drain after this many seconds. */
  timeout: 300,
});

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

function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

// ── builds ──
function git(...a) {
  const r = spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${a.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A built tree of `rev` (extracted and compiled once), or the working tree's dist/. */
function treeOf(rev) {
  if (!rev) {
    if (!existsSync(join(root, 'dist/apps/aggregator/src/main.js'))) {
      console.error('dist/apps/aggregator/src/main.js is missing: run `npm run build` first');
      process.exit(1);
    }
    return { label: 'working tree', dir: root };
  }
  const sha = git('rev-parse', '--verify', `${rev}^{commit}`);
  const dir = join(root, 'tmp/bench-aggregator', sha.slice(0, 12));
  const label = `${rev} (${sha.slice(0, 9)})`;
  if (existsSync(join(dir, 'dist/apps/aggregator/src/main.js'))) return { label, dir };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync('sh', ['-c', `git archive ${sha} | tar -x -C '${dir}'`], { cwd: root, stdio: 'inherit' });
  if (archive.status !== 0) throw new Error(`git archive ${sha} failed`);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  // Copied, not linked: the build resolves links and would require the original's path.
  cpSync(join(root, 'libs/persistence/src/generated'), join(dir, 'libs/persistence/src/generated'), {
    recursive: true,
  });
  console.log(`building ${label} in ${dir} …`);
  const build = spawnSync(process.execPath, [join(dir, 'tools/build/build.mjs')], { cwd: dir, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`build of ${label} failed`);
  return { label, dir };
}

// ── the workload ──
const STATUSES = ['running', 'exited'];
function makeBatches(contracts, messages, first = 0) {
  const { buildEnvelope, Messages } = contracts;
  const now = Date.now();
  const batches = [];
  let n = first;
  for (let m = 0; m < messages; m++) {
    const updates = [];
    for (let u = 0; u < args['per-message']; u++, n++) {
      const target = ((n % args.targets) + args.targets) % args.targets;
      // About `flip` of the updates report 'exited' (a status change, and one back after it), the rest 'running'.
      const flipped = hash(target, Math.floor(n / args.targets)) < args.flip;
      const id = randomUUID();
      updates.push({
        id,
        updateId: `drain-${id}`,
        instanceId: `drain-${target}`,
        kind: 'container',
        status: STATUSES[flipped ? 1 : 0],
        labels: { app: 'bench', shard: String(target % 16) },
        message: 'benchmark',
        apiKeyId: 'bench',
        occurredAt: new Date(now + n).toISOString(),
        receivedAt: new Date(now + n).toISOString(),
      });
    }
    const payload = Messages.StatusUpdateBatch.payload.parse({ updates });
    batches.push(
      buildEnvelope(
        Messages.StatusUpdateBatch.type,
        Messages.StatusUpdateBatch.schemaVersion,
        { site: 'bench', service: 'status-ingest' },
        payload,
      ),
    );
  }
  return batches;
}

function hash(a, b) {
  let h = (a * 2654435761) ^ (b * 2246822519);
  h = Math.imul(h ^ (h >>> 15), 2246822507);
  return ((h ^ (h >>> 13)) >>> 0) / 4294967296;
}

/**
 * Where a batch goes: when this build shards observations (contracts
 * `shardedRoutingKey`, libs/messaging `splitByShard`), each batch is split per shard of
 * its targets, as ingest does; else the message's own routing key.
 */
function routeBatches(contracts, messaging, envelopes) {
  const { Messages, ExchangeName, buildEnvelope, TargetIds, shardedRoutingKey } = contracts;
  const base = Messages.StatusUpdateBatch.routingKey;
  if (typeof shardedRoutingKey !== 'function' || typeof messaging.splitByShard !== 'function')
    return envelopes.map((e) => ({ exchange: ExchangeName.Events, routingKey: base, envelope: e }));
  const out = [];
  for (const e of envelopes)
    for (const [shard, updates] of messaging.splitByShard(e.payload.updates, (u) => TargetIds.instance(u.instanceId)))
      out.push({
        exchange: ExchangeName.Events,
        routingKey: shardedRoutingKey(base, shard),
        envelope: buildEnvelope(e.type, e.schemaVersion, e.source, { updates }),
      });
  return out;
}

// ── the aggregator ──
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startAggregator(tree, env, { profileName, countFile } = {}) {
  const flags = [];
  if (profileName && args.profile)
    flags.push('--cpu-prof', `--cpu-prof-dir=${resolve(args.profile)}`, `--cpu-prof-name=${profileName}`);
  if (countFile) flags.push('--require', join(root, 'tools/bench/aggregator/count-sql.cjs'));
  const child = spawn(
    process.execPath,
    ['--max-old-space-size=256', ...flags, join(tree.dir, 'dist/apps/aggregator/src/main.js')],
    {
      cwd: tree.dir,
      env: { ...process.env, ...env, ...(countFile ? { FW_BENCH_SQL_COUNT_FILE: countFile } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const tail = [];
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (args['keep-logs']) process.stderr.write(`[aggregator] ${line}\n`);
      }
    });
  children.add(child);
  return { child, tail };
}

async function waitReady(port, service, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null)
      throw new Error(`aggregator exited (${service.child.exitCode}):\n${service.tail.join('\n')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`aggregator not ready within ${timeoutMs} ms: ${last}`);
}

async function stop(service) {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  const exited = new Promise((r) => service.child.once('exit', r));
  service.child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000)]);
  if (service.child.exitCode === null && service.child.signalCode === null) {
    service.child.kill('SIGKILL');
    await exited;
  }
}

async function oneRun(tree, index) {
  const req = createRequire(join(tree.dir, 'package.json'));
  const dist = (p) => join(tree.dir, 'dist', p);
  const { createIsolatedDatabase, createIsolatedVhost } = req(dist('libs/testing/src/index.js'));
  const contracts = req(dist('libs/contracts/src/index.js'));
  const messaging = req(dist('libs/messaging/src/index.js'));
  const amqplib = req('amqplib');
  const pg = req('pg');
  const { Redis } = req('ioredis');

  const database = await createIsolatedDatabase();
  const vhost = await createIsolatedVhost(`bench-drain-${index}`);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisPrefix = `fwbench:drain:${Date.now()}:`;
  const port = await freePort();
  const env = {
    DATABASE_URL: database.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_SITE: 'bench',
    AGGREGATOR_PORT: String(port),
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(
      args.env
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  };
  const client = new pg.Client({ connectionString: database.databaseUrl });
  await client.connect();
  const countFile = args['count-sql']
    ? join(root, 'tmp/bench-aggregator', `sql-count-${process.pid}-${index}.json`)
    : undefined;
  if (countFile) mkdirSync(dirname(countFile), { recursive: true });
  let service;
  try {
    // 1. Let this build declare its own topology, then stop it.
    service = startAggregator(tree, env);
    await waitReady(port, service);
    await stop(service);

    // 2. Every target stored once (unless --prefill false): the backlog then measures the steady state.
    const publish = async (envelopes) => {
      const messages = routeBatches(contracts, messaging, envelopes);
      const amqp = await amqplib.connect(vhost.amqpUrl);
      amqp.on('error', () => undefined);
      const ch = await amqp.createConfirmChannel();
      ch.on('error', (e) => console.error(`bench channel: ${e.message}`));
      const unroutable = [];
      ch.on('return', (m) => unroutable.push(m.fields.routingKey));
      for (const { exchange, routingKey, envelope } of messages) {
        const ok = ch.publish(exchange, routingKey, Buffer.from(JSON.stringify(envelope)), {
          persistent: true,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          messageId: envelope.id,
          correlationId: envelope.correlationId,
          type: envelope.type,
          appId: 'status-ingest',
          mandatory: true,
          headers: { 'x-fleetwatch-schema-version': envelope.schemaVersion, 'x-fleetwatch-type': envelope.type },
        });
        if (!ok) await new Promise((r) => ch.once('drain', r));
      }
      await ch.waitForConfirms();
      await amqp.close();
      if (unroutable.length) throw new Error(`${unroutable.length} messages unroutable (e.g. ${unroutable[0]})`);
      return messages.length;
    };
    const storedUpdates = async () =>
      Number((await client.query('SELECT count(*)::int AS n FROM status_updates')).rows[0].n);
    let before = 0;
    if (args.prefill) {
      const perMessage = args['per-message'];
      await publish(
        makeBatches(
          contracts,
          Math.ceil(args.targets / perMessage),
          -Math.ceil(args.targets / perMessage) * perMessage,
        ),
      );
      service = startAggregator(tree, env);
      before = Math.ceil(args.targets / perMessage) * perMessage;
      const deadline = Date.now() + args.timeout * 1000;
      while ((await storedUpdates()) < before) {
        if (Date.now() > deadline) throw new Error('prefill timed out');
        await sleep(200);
      }
      await sleep(300);
      await stop(service);
    }

    // 3. The backlog.
    const envelopes = makeBatches(contracts, args.messages);
    const total = envelopes.reduce((n, e) => n + e.payload.updates.length, 0);
    const published = await publish(envelopes);

    // 4. Drain it.
    service = startAggregator(tree, env, { profileName: `aggregator-${index}.cpuprofile`, countFile });
    const started = Date.now();
    let first = 0;
    let firstCount = 0;
    let cpuAtFirst = NaN;
    let count = 0;
    const deadline = started + args.timeout * 1000;
    while (count < total) {
      if (Date.now() > deadline) throw new Error(`drain timed out at ${count}/${total}`);
      if (service.child.exitCode !== null) throw new Error(`aggregator exited:\n${service.tail.join('\n')}`);
      await sleep(100);
      count = (await storedUpdates()) - before;
      if (count > 0 && !first) {
        first = Date.now();
        firstCount = count;
        cpuAtFirst = cpuSeconds(service.child.pid);
      }
    }
    const done = Date.now();
    const cpu = cpuSeconds(service.child.pid) - cpuAtFirst;
    const stored = (
      await client.query(
        `SELECT (SELECT count(*)::int FROM target_states) AS targets, (SELECT count(*)::int FROM status_events) AS events`,
      )
    ).rows[0];
    // Let the projection queue finish before stopping (it is part of the work).
    await sleep(300);
    await stop(service);
    const sql = countFile && existsSync(countFile) ? JSON.parse(readFileSync(countFile, 'utf8')) : null;
    const seconds = (done - first) / 1000;
    return {
      tree: tree.label,
      updates: total,
      messages: published,
      seconds,
      rate: (total - firstCount) / seconds,
      cpuPer1000: (cpu / (total - firstCount)) * 1000,
      targets: stored.targets,
      events: stored.events,
      sql,
    };
  } finally {
    if (service) await stop(service);
    await client.end().catch(() => undefined);
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
  }
}

function summarizeSql(sql) {
  if (!sql) return '';
  const commits = sql.counts['COMMIT'] ?? 0;
  const rows = Object.entries(sql.counts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14)
    .map(
      ([k, n]) =>
        `      ${String(n).padStart(7)}  ${(commits ? (n / commits).toFixed(2) : '-').padStart(6)}/commit  ${k}`,
    );
  return `    SQL statements (${sql.total} total, ${commits} commits):\n${rows.join('\n')}`;
}

const revs = args.commit ? args.commit.split(',') : [''];
const trees = revs.map(treeOf);
console.log(
  `drain: ${args.messages} × ${args['per-message']} updates over ${args.targets} targets, flip ${args.flip}, ${args.runs} run(s) per build`,
);
const results = [];
for (let run = 0; run < args.runs; run++)
  for (const tree of trees) {
    const r = await oneRun(tree, results.length);
    results.push(r);
    console.log(
      `${r.tree.padEnd(28)} run ${run + 1}: ${Math.round(r.rate).toLocaleString('en')} updates/s ` +
        `(${r.updates} in ${r.seconds.toFixed(2)} s, ${r.messages} messages), aggregator CPU ${r.cpuPer1000.toFixed(3)} s/1000 updates, ` +
        `${r.targets} targets, ${r.events} events`,
    );
    if (r.sql) console.log(summarizeSql(r.sql));
  }
if (trees.length > 1 || args.runs > 1) {
  console.log('\nsummary (median updates/s, median CPU s/1000 updates):');
  for (const tree of trees) {
    const mine = results.filter((r) => r.tree === tree.label);
    const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(
      `  ${tree.label.padEnd(28)} ${Math.round(med(mine.map((r) => r.rate))).toLocaleString('en')} updates/s, ` +
        `${med(mine.map((r) => r.cpuPer1000)).toFixed(3)} CPU s/1000 (runs: ${mine.map((r) => Math.round(r.rate)).join(', ')})`,
    );
  }
}
