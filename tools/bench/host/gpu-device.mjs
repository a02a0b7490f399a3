#!/usr/bin/env node
// GPU sampling on a real GPU host (issue 16's "per-device GPU via nvidia-smi", checked on hardware).
//
//   node tools/build/build.mjs && node tools/bench/host/gpu-device.mjs [--samples 10 --interval-ms 1000
//       --nvidia-smi nvidia-smi --load "python3 -c '…'" --json]
//
// Uses the collector's own code from dist/ (HostSampler with GpuSampler, exactly what a collector
// runs each tick) and the bus contract (hostMetricsPayloadSchema) that the aggregator validates with:
//   1. the inventory (`nvidia-smi -q -x`, once) — driver version, GPUs;
//   2. --samples host samples at --interval-ms with the GPU idle, then --samples more while the
//      --load command runs (a process keeping the GPU busy), each parsed by the contract;
//   3. what GPU sampling costs a tick: the same number of samples with and without the GpuSampler,
//      wall time per sample and CPU per sample (this process plus its nvidia-smi children, from
//      /proc/self/stat's utime+stime+cutime+cstime).
// Prints one table per phase and, with --json, one JSON line with every figure. Exits 1 when a
// sample is refused by the contract, no GPU is found, or the busy phase never shows utilisation.
//
// Where Node is not installed (a GPU machine lent for a few minutes), bundle this script and carry
// node: see docs/benchmarks.md, "GPU sampling on an H200".
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const { HostSampler } = require(join(root, 'dist/apps/collector/src/host/host-sampler.js'));
const { GpuSampler } = require(join(root, 'dist/apps/collector/src/host/gpu/gpu-sampler.js'));
const { hostMetricsPayloadSchema } = require(join(root, 'dist/libs/contracts/src/index.js'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const samples = Number(opt('samples', 10));
const intervalMs = Number(opt('interval-ms', 1000));
const nvidiaSmi = opt('nvidia-smi', 'nvidia-smi');
const loadCmd = opt('load', undefined);
const json = argv.includes('--json');
const log = (s) => process.stderr.write(`[gpu-device] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TICK = 100; // USER_HZ on Linux
function cpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // fields 14-17 (utime stime cutime cstime) are rest[11..14]
  return ((+rest[11] + +rest[12] + +rest[13] + +rest[14]) * 1000) / TICK;
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const r1 = (x) => Math.round(x * 10) / 10;

async function phase(label, sampler) {
  const out = [];
  const cpu0 = cpuMs();
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const raw = await sampler.sample();
    const wallMs = performance.now() - t0;
    const parsed = hostMetricsPayloadSchema.safeParse(raw);
    if (!parsed.success) {
      log(`${label}: sample ${i} refused by the contract: ${JSON.stringify(parsed.error.issues.slice(0, 3))}`);
      process.exitCode = 1;
    }
    out.push({ wallMs, gpus: raw.gpus });
    await sleep(Math.max(0, intervalMs - wallMs));
  }
  const cpuPerSampleMs = (cpuMs() - cpu0) / samples;
  const walls = out.map((s) => s.wallMs);
  return {
    label,
    samples,
    wallMsP50: r1(pct(walls, 50)),
    wallMsMax: r1(Math.max(...walls)),
    cpuMsPerSample: r1(cpuPerSampleMs),
    gpus: out.at(-1).gpus,
    utilMax: Math.max(0, ...out.flatMap((s) => s.gpus.map((g) => g.utilizationPct ?? 0))),
    all: out.map((s) => s.gpus),
  };
}

const gpu = new GpuSampler({ command: nvidiaSmi, timeoutMs: 10_000 });
const withGpu = new HostSampler({ hostId: 'gpu-device-check', location: 'device', intervalSeconds: 1, gpu });
const without = new HostSampler({ hostId: 'gpu-device-check', location: 'device', intervalSeconds: 1 });
const t0 = performance.now();
const inventory = await gpu.inventory();
const inventoryMs = performance.now() - t0;
await withGpu.init();
await without.init();
log(`inventory in ${r1(inventoryMs)} ms: ${JSON.stringify(inventory)}`);
if (!inventory || inventory.gpus?.length === 0) {
  log(`no GPU found through ${nvidiaSmi} (sampler state ${gpu.status})`);
  process.exitCode = 1;
}
// first samples have null rates: one of each before measuring
await withGpu.sample();
await without.sample();

const results = [];
results.push(await phase('no GpuSampler', without));
results.push(await phase('GPU idle', withGpu));
let load;
if (loadCmd) {
  load = spawn('sh', ['-c', loadCmd], { stdio: ['ignore', 'inherit', 'inherit'] });
  await sleep(Number(opt('load-warmup-ms', 8000)));
  results.push(await phase('GPU busy', withGpu));
  load.kill('SIGKILL');
  const busy = results.at(-1);
  if (!(busy.utilMax > 0)) {
    log('busy phase: no utilisation seen');
    process.exitCode = 1;
  }
}
gpu.stop();

for (const r of results) {
  log(
    `${r.label.padEnd(14)} wall p50 ${r.wallMsP50} ms, max ${r.wallMsMax} ms; CPU ${r.cpuMsPerSample} ms a sample; ` +
      `max utilisation ${r.utilMax} %`,
  );
  for (const g of r.gpus) log(`  last sample: ${JSON.stringify(g)}`);
}
if (json) {
  process.stdout.write(
    JSON.stringify({
      nvidiaSmi,
      samples,
      intervalMs,
      inventoryMs: r1(inventoryMs),
      inventory,
      system: withGpu.system,
      phases: results.map(({ all, ...r }) => ({ ...r, series: all })),
    }) + '\n',
  );
}
