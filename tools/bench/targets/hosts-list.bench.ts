import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  hostMetricsPayloadSchema,
  TargetKind,
  TargetStatus as S,
  type HostListResponse,
  type HostMetricsPayload,
} from '@fleetwatch/contracts';
import { LiveStateStore, type TargetWrite } from '@fleetwatch/live-state';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../../../apps/api-gateway/src/int-spec.helpers';
import { HostSystems } from '../../../apps/api-gateway/src/hosts/host-list';
import { HostsService } from '../../../apps/api-gateway/src/hosts/hosts.service';
import * as testing from '@fleetwatch/testing';

// Benchmark: `GET /api/v1/hosts` with its filters (status, location, q) over FW_BENCH_HOSTS hosts (default 5,000)
// whose latest samples are in live state, as the targets list benchmark (list.bench.ts) does it: a throwaway
// database, vhost and Redis prefix (libs/testing), the gateway in this process, FW_BENCH_REQUESTS sequential requests
// per row (default 100) after 20 warm-ups. Prints p50/p95/max, the answer's bytes, and this process's event-loop
// delay max (gateway and client together). A search (`q`) reads every candidate's latest sample unless the gateway's
// HostSystems holds it (30 s, host-list.ts): before each q row that is emptied, so the row's first request is a cold
// search (timed apart) and the rest are warm. No timed assertion. Run with `npm run bench:hosts-list`
// (docs/benchmarks.md). The figures include the client's own HTTP and JSON work (same process).

const HOSTS = Number(process.env.FW_BENCH_HOSTS ?? 5_000);
const REQUESTS = Number(process.env.FW_BENCH_REQUESTS ?? 100);
const WARMUP = 20;
const LOCATIONS = ['eu-west-1', 'us-east-1', 'ap-south-1', 'lab-2'];
const SYSTEMS = [
  { distro: 'Ubuntu', release: '24.04', kernel: '6.8.0-45-generic' },
  { distro: 'Debian', release: '12', kernel: '6.1.0-25-amd64' },
  { distro: 'Rocky', release: '9.4', kernel: '5.14.0-427.el9.x86_64' },
];
const NOW = Date.now();
const hostId = (i: number) => `host-${String(i).padStart(5, '0')}`;
/** 1 in 20 DOWN, 2 in 20 STALE, the rest UP. */
const statusOf = (i: number) => (i % 20 === 0 ? S.Down : i % 20 <= 2 ? S.Stale : S.Up);

function target(i: number): TargetWrite {
  const status = statusOf(i);
  const location = LOCATIONS[i % LOCATIONS.length] as string;
  return {
    id: `host:${hostId(i)}`,
    kind: TargetKind.Host,
    name: hostId(i),
    status,
    previousStatus: null,
    since: NOW - 3_600_000,
    lastSeen: NOW - 5_000,
    lastLatencyMs: null,
    lifecycle: null,
    tags: [],
    labels: {},
    seq: 1,
    locations: {
      [location]: {
        status,
        observedAt: NOW - 5_000,
        lastSeen: NOW - 5_000,
        latencyMs: null,
        detail: null,
        lifecycle: null,
      },
    },
  };
}

/** A collector's sample: 32 cores, 4 disks, 3 interfaces and, one host in four, 2 GPUs (~1.8 KB with them). */
function sample(i: number): HostMetricsPayload {
  const cpu = (i * 37) % 100;
  const gpus = i % 4 === 0 ? [0, 1] : [];
  return {
    hostId: hostId(i),
    location: LOCATIONS[i % LOCATIONS.length] as string,
    sampledAt: new Date(NOW - 5_000).toISOString(),
    intervalSeconds: 10,
    cpu: {
      usagePct: cpu + 0.25,
      cores: 32,
      load1: 3.21,
      load5: 2.87,
      load15: 2.5,
      perCorePct: Array.from({ length: 32 }, (_, k) => ((cpu + k * 7) % 100) + 0.125),
    },
    memory: { totalBytes: 68_719_476_736, usedBytes: 20e9 + i * 1e6, swapTotalBytes: 4e9, swapUsedBytes: 1.5e8 },
    disks: [0, 1, 2, 3].map((d) => ({
      mount: d === 0 ? '/' : `/data${d}`,
      totalBytes: 1e12,
      usedBytes: 3.5e11 + d * 1e10,
      readBytesPerSec: 123_456.5,
      writeBytesPerSec: 654_321.25,
    })),
    network: ['eth0', 'eth1', 'bond0'].map((iface) => ({
      iface,
      rxBytesPerSec: 1_234_567.5,
      txBytesPerSec: 765_432.5,
    })),
    gpus: gpus.map((index) => ({
      index,
      name: 'NVIDIA H200',
      utilizationPct: cpu,
      memoryUsedBytes: 4e10,
      memoryTotalBytes: 1.4e11,
      temperatureC: 55 + index,
      powerW: 412.5,
      fanPct: null,
    })),
    uptimeSeconds: 1_234_567,
    system: {
      hostname: `node-${String(i).padStart(5, '0')}.${LOCATIONS[i % LOCATIONS.length]}.example.net`,
      platform: 'linux',
      ...SYSTEMS[i % SYSTEMS.length],
      arch: 'x64',
      collectorVersion: '1.4.2',
      nodeVersion: '22.11.0',
    },
  };
}

let gw: GatewayHarness;
let token: string;
let sampleBytes = 0;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;

async function timed(path: string): Promise<{ ms: number; bytes: number; total: number }> {
  const t0 = performance.now();
  const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  const total = (JSON.parse(Buffer.from(body).toString('utf8')) as HostListResponse).total;
  return { ms, bytes: body.byteLength, total };
}

/** Runs `fn` with this process's event-loop delay watched; answers its result and the delay's max in ms. */
async function watchingLoop<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  try {
    const r = await fn();
    h.disable();
    return [r, h.max / 1e6];
  } finally {
    h.disable();
  }
}

beforeAll(async () => {
  gw = await startGateway(testing, 'bench-hosts');
  token = await gw.login('admin', ADMIN_PASSWORD);
  hostMetricsPayloadSchema.parse(sample(0)); // the samples are valid ones
  sampleBytes = JSON.stringify(sample(0)).length;
  for (let from = 0; from < HOSTS; from += 500) {
    const is = Array.from({ length: Math.min(500, HOSTS - from) }, (_, k) => from + k);
    await gw.live.writeTargets(is.map(target));
    await gw.live.setHostMetricsMany(
      is.map((i) => ({ hostId: hostId(i), sampledAt: NOW - 5_000, json: JSON.stringify(sample(i)) })),
    );
  }
}, 300_000);
afterAll(() => gw?.close()); // drops the database, vhost and the Redis prefix's keys

describe(`GET /api/v1/hosts with ${HOSTS} hosts in live state`, () => {
  const rows: string[] = [];
  afterAll(() => {
    process.stdout.write(
      `\napi-gateway hosts list benchmark (${HOSTS} hosts with a latest sample, ${sampleBytes} bytes for one with GPUs, ` +
        `${REQUESTS} sequential requests per row after ${WARMUP} warm-ups, default limit (100), session-token auth, ` +
        `in-process gateway; q rows: the gateway's held systems emptied first, so "cold" is the row's first request)\n` +
        `| request | total | bytes | cold ms | p50 ms | p95 ms | max ms | loop delay max ms (cold / warm) |\n` +
        `|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n\n`,
    );
  });

  // [path, expected total, a search]
  const third = (r: number) => Array.from({ length: HOSTS }, (_, i) => i).filter((i) => i % 3 === r).length;
  it.each([
    ['/api/v1/hosts', HOSTS, false],
    [
      '/api/v1/hosts?status=STALE',
      Array.from({ length: HOSTS }, (_, i) => statusOf(i) === S.Stale).filter(Boolean).length,
      false,
    ],
    ['/api/v1/hosts?location=eu-west-1', Math.ceil(HOSTS / LOCATIONS.length), false],
    ['/api/v1/hosts?q=host-0123', 10, true], // ids host-01230…host-01239 (only ids say "host-")
    ['/api/v1/hosts?q=rocky', third(2), true], // only the OS says it
    ['/api/v1/hosts?q=no-such-host', 0, true],
  ] as const)('%s', async (path, expected, search) => {
    let cold = '–';
    let coldLoop = '–';
    if (search) {
      // Forget what the gateway holds of the hosts' systems: the next search reads every candidate's sample.
      const service = gw.running.app.get(HostsService, { strict: false });
      Reflect.set(service, 'systems', new HostSystems(gw.running.app.get(LiveStateStore, { strict: false })));
      const [first, loop] = await watchingLoop(() => timed(path));
      cold = first.ms.toFixed(1);
      coldLoop = loop.toFixed(0);
    }
    for (let i = 0; i < WARMUP; i++) await timed(path);
    const [results, loop] = await watchingLoop(async () => {
      const out: Awaited<ReturnType<typeof timed>>[] = [];
      for (let i = 0; i < REQUESTS; i++) out.push(await timed(path));
      return out;
    });
    expect(results.every((r) => r.total === expected)).toBe(true);
    const times = results.map((r) => r.ms).sort((a, b) => a - b);
    rows.push(
      `| GET ${path} | ${expected} | ${results[0]?.bytes} | ${cold} | ${pct(times, 50).toFixed(1)} | ` +
        `${pct(times, 95).toFixed(1)} | ${(times[times.length - 1] as number).toFixed(1)} | ${coldLoop} / ${loop.toFixed(0)} |`,
    );
  });
});
