#!/usr/bin/env node
// Alert evaluation, engine only (issue 18): how long one tick of the pure rule engine takes over a fleet.
//
//   node tools/build/build.mjs && node tools/bench/alerts/evaluate.mjs [--targets 10000 --rules 50
//       --ticks 30 --warmup 5 --change 0.01 --single 2000 --json]
//
// Builds a synthetic fleet in memory — 70 % checks, 20 % hosts (3 disks, 2 GPUs each), 10 % pushed
// instances, random tags and locations — and --rules rules cycling through every condition kind and
// selector field (status DOWN/PARTIAL/STALE, host CPU/memory/disk, GPU temperature/utilisation,
// check metric; `for` from 0 s to 5 min). Each tick, --change of the targets flip status and every
// metric moves a little; the tick is `evaluateFleet` (every rule × every selected target × series, then
// the sweep of remembered alerts) plus grouping (`addToGroups`, `flushDue`), at a simulated 15 s step.
// After --warmup ticks, prints per-tick wall time (median, p95, max) and what the tick did; then the
// time of one status-change evaluation (`evaluateTarget`: one target against all rules), --single times.
// No I/O: the aggregator's reads and writes around it are not measured here.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), {
  targets: 10_000,
  rules: 50,
  ticks: 30,
  warmup: 5,
  change: 0.01,
  single: 2000,
  json: false,
});
const entry = join(root, 'dist/libs/alerting/src/index.js');
if (!existsSync(entry)) throw new Error('dist/ is missing: run `node tools/build/build.mjs` first');
const A = require(entry);
const C = require(join(root, 'dist/libs/contracts/src/index.js'));

// Deterministic pseudo-random numbers (mulberry32): every run sees the same fleet.
let seed = 42;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];
const TAGS = Array.from({ length: 20 }, (_, i) => `tag-${i}`);
const LOCATIONS = ['eu', 'us', 'ap'];
const STATUSES = ['UP', 'UP', 'UP', 'UP', 'UP', 'UP', 'DOWN', 'PARTIAL', 'STALE'];

// The fleet.
const fleet = [];
for (let i = 0; i < args.targets; i++) {
  const r = i / args.targets;
  const kind = r < 0.7 ? 'check' : r < 0.9 ? 'host' : 'instance';
  const target = {
    id: `${kind}:${i}`,
    kind,
    name: `${kind} ${i}`,
    site: 'bench',
    tags: [pick(TAGS), pick(TAGS)],
    locations: kind === 'check' ? LOCATIONS.filter(() => rnd() < 0.7) : [pick(LOCATIONS)],
  };
  const metrics = [];
  if (kind === 'host') {
    metrics.push({ kind: 'host_cpu_pct', labels: {}, value: rnd() * 100 });
    metrics.push({ kind: 'host_memory_pct', labels: {}, value: rnd() * 100 });
    for (const mount of ['/', '/data', '/var'])
      metrics.push({ kind: 'host_disk_pct', labels: { mount }, value: rnd() * 100 });
    for (const device of ['0', '1']) {
      metrics.push({ kind: 'gpu_temperature_c', labels: { device }, value: 40 + rnd() * 55 });
      metrics.push({ kind: 'gpu_utilization_pct', labels: { device }, value: rnd() * 100 });
    }
  } else if (kind === 'check' && i % 10 === 0)
    metrics.push({
      kind: 'check_metric',
      name: 'redis_connected_clients',
      labels: { role: 'master' },
      value: rnd() * 1000,
    });
  fleet.push({ target, observation: { status: pick(STATUSES), metrics } });
}

// The rules: every condition kind and selector field, in rotation.
const templates = [
  () => ({ condition: { type: 'status', statuses: ['DOWN'] }, for: '1m' }),
  () => ({ condition: { type: 'status', statuses: ['PARTIAL'] }, for: '5m', selector: { tags: [pick(TAGS)] } }),
  () => ({ condition: { type: 'status', statuses: ['STALE'] }, selector: { kinds: ['instance', 'check'] } }),
  () => ({
    condition: { type: 'status', statuses: ['DOWN', 'STALE'] },
    for: '30s',
    selector: { locations: [pick(LOCATIONS)] },
  }),
  () => ({
    condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 90 },
    for: '5m',
    selector: { kinds: ['host'] },
  }),
  () => ({ condition: { type: 'metric', metric: { kind: 'host_memory_pct' }, op: 'above', threshold: 95 }, for: '2m' }),
  () => ({ condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 } }),
  () => ({
    condition: { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'above', threshold: 85 },
    selector: { kinds: ['host'] },
  }),
  () => ({
    condition: { type: 'metric', metric: { kind: 'gpu_utilization_pct', device: 0 }, op: 'below', threshold: 5 },
    for: '10m',
  }),
  () => ({
    condition: {
      type: 'metric',
      metric: { kind: 'check_metric', name: 'redis_connected_clients', labels: { role: 'master' } },
      op: 'above',
      threshold: 900,
    },
    for: '1m',
  }),
];
const rules = [];
for (let i = 0; i < args.rules; i++) {
  const spec = C.alertRuleSpecSchema.parse({
    name: `rule ${i}`,
    channels: ['ops', 'pager'],
    annotations: { summary: '{{ target.name }} {{ alert.value }}' },
    ...templates[i % templates.length](),
  });
  rules.push(A.compileAlertRule({ id: `r${i}`, ...spec }));
}
const routes = A.routesOf(rules);

// Ticks.
const STEP = 15_000;
let now = Date.parse('2026-01-01T00:00:00Z');
const states = new Map();
let grouping = A.emptyGroupingState();
const perTick = [];
let evaluated = 0;
const nsToMs = (ns) => Number(ns) / 1e6;
for (let tick = 0; tick < args.warmup + args.ticks; tick++) {
  for (const t of fleet) {
    if (rnd() < args.change) t.observation = { ...t.observation, status: pick(STATUSES) };
    for (const m of t.observation.metrics) m.value = Math.max(0, m.value + (rnd() - 0.5) * 4);
  }
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = A.evaluateFleet({ rules, states, now, isMuted: () => false }, fleet);
  const t1 = process.hrtime.bigint();
  A.applyChanges(states, r.changed);
  grouping = A.addToGroups(grouping, r.notifications, routes, now);
  const f = A.flushDue(grouping, now);
  grouping = f.state;
  const t2 = process.hrtime.bigint();
  const c = process.cpuUsage(c0);
  if (tick >= args.warmup)
    perTick.push({
      cpuMs: (c.user + c.system) / 1000,
      evaluateMs: nsToMs(t1 - t0),
      tickMs: nsToMs(t2 - t0),
      changed: r.changed.size,
      notifications: r.notifications.length,
      flushes: f.flushes.length,
    });
  now += STEP;
}
// Series one tick evaluates: rule × selected target × matching series.
for (const rule of rules)
  for (const t of fleet)
    if (rule.selector.matches(t.target)) evaluated += A.sampleCondition(rule.rule.condition, t.observation).length;

// One status change: one target against every rule.
const singles = [];
for (let i = 0; i < args.single; i++) {
  const t = fleet[Math.floor(rnd() * fleet.length)];
  const obs = { target: t.target, observation: { ...t.observation, status: pick(STATUSES) } };
  const t0 = process.hrtime.bigint();
  A.evaluateTarget({ rules, states, now, isMuted: () => false }, obs);
  singles.push(nsToMs(process.hrtime.bigint() - t0) * 1000);
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const result = {
  settings: {
    targets: args.targets,
    rules: args.rules,
    ticks: args.ticks,
    warmup: args.warmup,
    changePerTick: args.change,
    seriesPerTick: evaluated,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    loadAverage: loadavg().map((x) => round(x)),
    code: codeVersion(root, entry),
  },
  tick: {
    evaluateMedianMs: round(
      q(
        perTick.map((t) => t.evaluateMs),
        0.5,
      ),
    ),
    evaluateP95Ms: round(
      q(
        perTick.map((t) => t.evaluateMs),
        0.95,
      ),
    ),
    tickMedianMs: round(
      q(
        perTick.map((t) => t.tickMs),
        0.5,
      ),
    ),
    tickP95Ms: round(
      q(
        perTick.map((t) => t.tickMs),
        0.95,
      ),
    ),
    tickMaxMs: round(Math.max(...perTick.map((t) => t.tickMs))),
    /** CPU of this process during a tick (user + system, GC threads included): less sensitive to a busy machine than wall time. */
    tickCpuMedianMs: round(
      q(
        perTick.map((t) => t.cpuMs),
        0.5,
      ),
    ),
    nsPerSeries: round(
      (q(
        perTick.map((t) => t.evaluateMs),
        0.5,
      ) *
        1e6) /
        evaluated,
      0,
    ),
    alertStates: states.size,
    changedMedian: q(
      perTick.map((t) => t.changed),
      0.5,
    ),
    notificationsMedian: q(
      perTick.map((t) => t.notifications),
      0.5,
    ),
    flushesMedian: q(
      perTick.map((t) => t.flushes),
      0.5,
    ),
  },
  statusChange: { medianUs: round(q(singles, 0.5)), p95Us: round(q(singles, 0.95)), samples: args.single },
};
if (args.json) console.log(JSON.stringify(result, null, 2));
else {
  const s = result.settings;
  console.log(
    `alert evaluation (engine only): ${s.targets} targets × ${s.rules} rules = ${s.seriesPerTick} series per tick; ` +
      `${s.changePerTick * 100} % of targets change status per tick; ${s.ticks} ticks after ${s.warmup} warm-up; ` +
      `node ${s.node}, ${s.cores} × ${s.cpu}, load ${s.loadAverage.join(' ')}; code ${s.code.commit}`,
  );
  const t = result.tick;
  console.log(
    `tick: evaluateFleet median ${t.evaluateMedianMs} ms (p95 ${t.evaluateP95Ms}); with grouping median ${t.tickMedianMs} ms ` +
      `(p95 ${t.tickP95Ms}, max ${t.tickMaxMs}; CPU median ${t.tickCpuMedianMs} ms); ${t.nsPerSeries} ns per series; ${t.alertStates} alert states; ` +
      `per tick ${t.changedMedian} states changed, ${t.notificationsMedian} notifications, ${t.flushesMedian} group messages`,
  );
  console.log(
    `status change (evaluateTarget, one target × ${s.rules} rules): median ${result.statusChange.medianUs} µs, p95 ${result.statusChange.p95Us} µs`,
  );
}
