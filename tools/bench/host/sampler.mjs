#!/usr/bin/env node
// Host sampling overhead (issue 16): what sampling every 5 s costs a collector with no checks.
//
//   node tools/build/build.mjs && node tools/bench/host/sampler.mjs [--interval 5 --warmup 20 --window 120
//       --micro 200 --json]
//
// 1. Side by side, in one sitting: two collectors from dist/ (npm start's Node flags) on a throwaway
//    vhost with an empty assignment — one sampling the host every --interval s, one with sampling off
//    (COLLECTOR_HOST_INTERVAL_SECONDS=0). After --warmup s, each one's CPU (user+sys from /proc, % of
//    one core) and RSS (max of 5 s readings) over --window s; the difference is the sampler's share.
//    The sampling collector's own histogram gives the wall time per sample.
// 2. In this process, --micro samples back to back: CPU per sample of our sampler (/proc + statfs)
//    against the same figures through systeminformation's per-call functions (currentLoad, mem,
//    fsSize, networkStats, disksIO) — the ratio is why the sampler reads /proc itself.
//
// Runs from a private copy of dist/ (a build elsewhere mid-run cannot pull files away).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceEnv, serviceNodeArgs, waitHttp } from '../../launcher/common.mjs';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion, cpuSeconds, rssMb } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), { interval: 5, warmup: 20, window: 120, micro: 200, json: false });
if (!existsSync(join(root, 'dist/apps/collector/src/main.js')))
  throw new Error('dist/ is missing: run `node tools/build/build.mjs` first');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`[bench:host] ${s}\n`);
const dir = join(root, 'tmp', `bench-host-sampler-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
const dist = (p) => require(join(dir, 'dist', p));
const testing = dist('libs/testing/src/index.js');

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

const children = [];
async function startCollector(label, env) {
  const port = await freePort();
  // No checks: an empty assignment, as if the owner had sent one (no sync-orchestrator needed).
  const { AssignmentFile } = dist('apps/collector/src/checks/assignment/assignment-file.js');
  await new AssignmentFile(join(dir, `spool-${label}`, 'assignment.json')).save({
    location: `bench-host-${label}`,
    version: 1,
    hash: 'b'.repeat(64),
    receivedAt: new Date().toISOString(),
    checks: [],
  });
  const child = spawn(
    process.execPath,
    [...serviceNodeArgs('collector'), join(dir, 'dist/apps/collector/src/main.js')],
    {
      cwd: root,
      env: serviceEnv({
        ...process.env,
        LOG_LEVEL: 'warn',
        FLEETWATCH_LOCATION: `bench-host-${label}`,
        COLLECTOR_PORT: String(port),
        COLLECTOR_SPOOL_DIR: join(dir, `spool-${label}`),
        COLLECTOR_HOST_ID: `bench-host-${label}`,
        ...env,
      }),
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const tail = [];
  child.stderr.on('data', (d) => tail.push(String(d)) > 20 && tail.shift());
  children.push(child);
  try {
    await waitHttp(`http://127.0.0.1:${port}/readyz`, 60_000);
  } catch (e) {
    throw new Error(`collector ${label} did not get ready: ${e.message}\n${tail.join('')}`);
  }
  return { label, child, port, pid: child.pid };
}

async function metricsText(port) {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}
const series = (text, name) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);

/** CPU seconds of this process and of the children it waited for (`df`, `cat` … that systeminformation spawns). */
function selfAndChildrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (f[11] + f[12] + f[13] + f[14]) / 100;
}

/** CPU ms per call of `fn` (children included), over `n` calls after 5 warm-up calls. */
async function cpuPerCall(fn, n) {
  for (let i = 0; i < 5; i++) await fn();
  const c0 = selfAndChildrenCpu();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return { cpuMs: ((selfAndChildrenCpu() - c0) * 1000) / n, wallMs: (performance.now() - t0) / n };
}

async function micro() {
  const { HostSampler } = dist('apps/collector/src/host/host-sampler.js');
  const si = require('systeminformation');
  const ours = new HostSampler({ hostId: 'micro', location: 'micro', intervalSeconds: 5 });
  const t0 = performance.now();
  await ours.init();
  const initMs = performance.now() - t0;
  const oursCost = await cpuPerCall(() => ours.sample(), args.micro);
  // The same figures through systeminformation's per-call functions (what the sampler would call without /proc).
  const siCost = await cpuPerCall(
    () => Promise.all([si.currentLoad(), si.mem(), si.fsSize(), si.networkStats('*'), si.disksIO()]),
    Math.max(20, Math.round(args.micro / 5)),
  );
  return { initMs: Math.round(initMs), ours: oursCost, systeminformation: siCost };
}

async function main() {
  const report = {
    settings: {
      ...args,
      cpus: cpus().length,
      node: process.version,
      loadavgAtStart: loadavg().map((x) => +x.toFixed(2)),
    },
    code: codeVersion(root, join(root, 'dist/apps/collector/src/main.js')),
  };
  const vhost = await testing.createIsolatedVhost('bench-host-sampler');
  try {
    const amqp = { AMQP_URL: vhost.amqpUrl, COLLECTOR_NVIDIA_SMI: 'nvidia-smi' };
    const on = await startCollector('on', { ...amqp, COLLECTOR_HOST_INTERVAL_SECONDS: String(args.interval) });
    const off = await startCollector('off', { ...amqp, COLLECTOR_HOST_INTERVAL_SECONDS: '0' });
    log(`two collectors up (pids ${on.pid}, ${off.pid}); warm-up ${args.warmup} s, window ${args.window} s`);
    await sleep(args.warmup * 1000);
    const before = { on: cpuSeconds(on.pid), off: cpuSeconds(off.pid) };
    const m0 = await metricsText(on.port);
    const rss = { on: [], off: [] };
    const t0 = performance.now();
    while (performance.now() - t0 < args.window * 1000) {
      rss.on.push(rssMb(on.pid));
      rss.off.push(rssMb(off.pid));
      await sleep(5000);
    }
    const secs = (performance.now() - t0) / 1000;
    const m1 = await metricsText(on.port);
    const pct = (c) => +(((cpuSeconds(c.pid) - before[c.label]) / secs) * 100).toFixed(2);
    const samples =
      series(m1, 'fleetwatch_collector_host_sample_duration_seconds_count') -
      series(m0, 'fleetwatch_collector_host_sample_duration_seconds_count');
    const sampleSeconds =
      series(m1, 'fleetwatch_collector_host_sample_duration_seconds_sum') -
      series(m0, 'fleetwatch_collector_host_sample_duration_seconds_sum');
    const cpuOn = pct(on);
    const cpuOff = pct(off);
    report.collectors = {
      windowSeconds: Math.round(secs),
      samplingOn: { cpuPctOfCore: cpuOn, rssMaxMb: Math.round(Math.max(...rss.on)), samples },
      samplingOff: { cpuPctOfCore: cpuOff, rssMaxMb: Math.round(Math.max(...rss.off)) },
      samplerSharePctOfCore: +(cpuOn - cpuOff).toFixed(2),
      wallMsPerSample: samples > 0 ? +((sampleSeconds / samples) * 1000).toFixed(2) : null,
      published: series(m1, 'fleetwatch_collector_host_samples_published_total'),
    };
    for (const c of [on, off]) c.child.kill('SIGTERM');
    await sleep(2000);
    if (args.micro > 0) report.micro = await micro();
    report.settings.loadavgAtEnd = loadavg().map((x) => +x.toFixed(2));
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await vhost.dispose().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const c = report.collectors;
    console.log(
      `code ${report.code.commit} (built ${report.code.builtAt}); ${report.settings.cpus} cores; load at start ${report.settings.loadavgAtStart}`,
    );
    console.log(
      `collector sampling every ${args.interval} s, no checks: CPU ${c.samplingOn.cpuPctOfCore} % of a core, RSS max ${c.samplingOn.rssMaxMb} MB (${c.samplingOn.samples} samples, ${c.wallMsPerSample} ms wall each)`,
    );
    console.log(
      `collector with sampling off:             CPU ${c.samplingOff.cpuPctOfCore} % of a core, RSS max ${c.samplingOff.rssMaxMb} MB`,
    );
    console.log(`sampler's share: ${c.samplerSharePctOfCore} % of a core`);
    if (report.micro) {
      const m = report.micro;
      console.log(
        `per sample, in process: ours ${m.ours.cpuMs.toFixed(2)} ms CPU (${m.ours.wallMs.toFixed(2)} ms wall); systeminformation per-call functions ${m.systeminformation.cpuMs.toFixed(2)} ms CPU (${m.systeminformation.wallMs.toFixed(2)} ms wall) — ${(m.systeminformation.cpuMs / m.ours.cpuMs).toFixed(1)}× ; init (OS facts, GPU inventory) ${m.initMs} ms once`,
      );
    }
  }
}

main().catch((e) => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  console.error(e);
  process.exit(1);
});
