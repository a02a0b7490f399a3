#!/usr/bin/env node
// Watcher benchmark (docs/benchmarks.md, "Watchers"): the built Docker watcher with N
// containers in the Docker Engine API stand-in and the built pod watcher with N pods in the
// Kubernetes API stand-in. Each watcher runs as its own process and pushes to a sink that
// answers 202 like status-ingest (the ingest's own throughput is `npm run bench:ingest`).
// Reports: resync time (the watcher's own figure), time until every update was accepted,
// then N lifecycle events (die / CrashLoopBackOff) until accepted, RSS and CPU of the watcher.
//
//   node tools/build/build.mjs && node tools/bench/watchers/bench.mjs [--count 1000] [--batch 500]
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../lib/args.mjs';
import { cpuSeconds, rssMb } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), { count: 1000, batch: 500, 'timeout-s': 300 });
// A private copy of dist/ inside the repository (node_modules resolves; another build cannot pull it away).
const dir = join(root, 'tmp', `bench-watchers-${process.pid}`);
mkdirSync(dir, { recursive: true });
cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
const dist = join(dir, 'dist');
const { DockerEngineStandin } = require(join(dist, 'apps/docker-watcher/src/standin/docker-engine.standin.js'));
const { KubeApiStandin, podFixtures } = require(join(dist, 'apps/k8s-watcher/src/standin/kube-api.standin.js'));

/** A 202 sink counting updates (single or batch), like status-ingest's answer. */
async function startSink() {
  let accepted = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      accepted += Array.isArray(body.updates) ? body.updates.length : 1;
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, accepted: () => accepted, close: () => server.close() };
}

async function metrics(port) {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' '))
        .map(([k, v]) => [k, Number(v)]),
    );
  } catch {
    return {};
  }
}

async function until(what, fn, timeoutMs = args['timeout-s'] * 1000) {
  const t0 = performance.now();
  while (!(await fn())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}

// As the Dockerfile runs them (deploy/docker/Dockerfile).
const NODE_FLAGS = ['--max-semi-space-size=2', '--max-old-space-size=256'];

function spawnWatcher(app, env) {
  const child = spawn(process.execPath, [...NODE_FLAGS, join(dist, `apps/${app}/src/main.js`)], {
    // No refreshes: the sink counts accepted updates as the resync's and the events' (a refresh would count too).
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'warn',
      WATCHER_BATCH_MAX: String(args.batch),
      WATCHER_REFRESH_SECONDS: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function run(label, app, port, setup, churn, env) {
  const sink = await startSink();
  const ctx = await setup();
  const t0 = performance.now();
  const child = spawnWatcher(app, { ...env(ctx), FLEETWATCH_INGEST_URL: sink.url, FLEETWATCH_INGEST_API_KEY: 'bench' });
  const n = args.count;
  try {
    await until(`${label} resync`, async () => ((await metrics(port))['fleetwatch_watcher_resyncs_total'] ?? 0) >= 1);
    const m = await metrics(port);
    await until(`${label}: ${n} updates accepted`, () => sink.accepted() >= n);
    const allPushedMs = performance.now() - t0;
    const rssAfterResync = rssMb(child.pid);
    const cpu0 = cpuSeconds(child.pid);
    const e0 = performance.now();
    await churn(ctx);
    await until(`${label}: ${n} events accepted`, () => sink.accepted() >= 2 * n);
    const eventsMs = performance.now() - e0;
    const cpuEvents = cpuSeconds(child.pid) - cpu0;
    await new Promise((r) => setTimeout(r, 2000));
    const rssSettled = rssMb(child.pid);
    return {
      watcher: label,
      objects: n,
      resyncMs: Math.round(m['fleetwatch_watcher_last_resync_seconds'] * 1000),
      spawnToAllAcceptedMs: Math.round(allPushedMs),
      eventsToAcceptedMs: Math.round(eventsMs),
      eventsPerSecond: Math.round(n / (eventsMs / 1000)),
      cpuSecondsForEvents: Number(cpuEvents.toFixed(2)),
      rssAfterResyncMb: Number(rssAfterResync.toFixed(1)),
      rssSettledMb: Number(rssSettled.toFixed(1)),
      requests: (await metrics(port))['fleetwatch_pusher_requests_total'],
    };
  } finally {
    child.kill('SIGKILL');
    sink.close();
    await ctx.stop();
  }
}

const results = [];
results.push(
  await run(
    'docker',
    'docker-watcher',
    3905,
    async () => {
      const engine = new DockerEngineStandin(join(dir, 'docker.sock'));
      await engine.start();
      for (let i = 0; i < args.count; i++)
        engine.add({
          name: `c-${i}`,
          labels: { 'fleetwatch.watch': 'true', 'com.docker.compose.service': `svc-${i % 50}` },
          running: true,
          quiet: true,
        });
      return { engine, stop: () => engine.stop() };
    },
    async ({ engine }) => {
      for (let i = 0; i < args.count; i++) engine.act(`c-${i}`, 'die', { exitCode: 137 });
    },
    ({ engine }) => ({
      DOCKER_SOCKET: engine.socketPath,
      DOCKER_WATCHER_LABEL_FILTER: 'fleetwatch.watch=true',
      DOCKER_WATCHER_PORT: '3905',
    }),
  ),
);
results.push(
  await run(
    'kubernetes',
    'k8s-watcher',
    3906,
    async () => {
      const kube = new KubeApiStandin('bench-token');
      await kube.start();
      for (let i = 0; i < args.count; i++)
        kube.add(podFixtures.running(`pod-${i}`, 'bench', { app: `app-${i % 50}`, fleetwatch: 'on' }), true);
      const kubeconfig = join(dir, 'kubeconfig.yaml');
      writeFileSync(
        kubeconfig,
        `apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: b\n  cluster:\n    server: ${kube.url}\ncontexts:\n- name: b\n  context:\n    cluster: b\n    user: b\nusers:\n- name: b\n  user:\n    token: bench-token\n`,
      );
      return { kube, kubeconfig, stop: () => kube.stop() };
    },
    async ({ kube }) => {
      for (let i = 0; i < args.count; i++) kube.update('bench', `pod-${i}`, (p) => podFixtures.crashLoop(p));
    },
    ({ kubeconfig }) => ({
      KUBECONFIG: kubeconfig,
      K8S_WATCHER_NAMESPACE: 'bench',
      K8S_WATCHER_LABEL_SELECTOR: 'fleetwatch=on',
      K8S_WATCHER_PORT: '3906',
    }),
  ),
);
rmSync(dir, { recursive: true, force: true });
console.table(results);
console.log(JSON.stringify({ settings: args, node: process.version, results }));
