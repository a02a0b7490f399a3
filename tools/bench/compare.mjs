#!/usr/bin/env node
// The push path against the raw reference chain (../shared/perf), in one sitting (issue 14):
// raw, ours, raw, ours … each run after the box is quiet (the raw chain's waitquiet.js), with the
// same connections, duration and rate, then one table with the ratios.
//
//   npm run build && npm run bench:compare -- [--rounds 2] [--modes closed,paced,replicas]
//       [--connections 50] [--duration 15] [--rate auto] [--prefetch 2000] [--queue-type quorum]
//       [--aggregators 1] [--replicas 1,2] [--batch-size 100] [--batch-duration 30]
//       [--client autocannon|http] [--results file.jsonl] [--raw-dir /tmp/raw-chain]
//
//   closed    single-update POSTs, closed loop: raw `chain_bench.js max D P C` vs ours `--phases single`;
//             ratio of updates persisted/s (end to end), backlog at load end beside it; both loads come from
//             autocannon (the raw chain's load_ac.js, ours `--client autocannon`), so each side pays the same
//             for its load generator on the shared cores
//   paced     open loop at `--rate` (auto: half the raw chain's first closed-loop figure, in hundreds):
//             raw POST → Redis vs ours POST → live state, p50/p99
//   replicas  ours only, batch POSTs with 1 then 2 (`--replicas`) aggregators: sustained persisted/s, ratio
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeVersion } from './lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const defaults = {
  rounds: 2,
  modes: 'closed,paced,replicas',
  connections: 50,
  duration: 15,
  rate: 'auto',
  prefetch: 2000,
  'queue-type': 'quorum',
  aggregators: 1,
  replicas: '1,2',
  'batch-size': 100,
  'batch-connections': 8,
  'batch-duration': 30,
  targets: 10_000,
  client: 'autocannon',
  results: '',
  'raw-dir': '/tmp/raw-chain',
};
const args = { ...defaults };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
  if (!m || !(m[1] in defaults))
    throw new Error(
      `unknown argument ${argv[i]} (known: ${Object.keys(defaults)
        .map((k) => `--${k}`)
        .join(' ')})`,
    );
  const v = m[2] ?? argv[++i];
  args[m[1]] = typeof defaults[m[1]] === 'number' ? Number(v) : v;
}
const modes = String(args.modes).split(',');
for (const m of modes) if (!['closed', 'paced', 'replicas'].includes(m)) throw new Error(`unknown mode ${m}`);

// ── the raw chain: a writable copy with its dependencies (../shared is read-only where CI runs) ──
const rawDir = resolve(args['raw-dir']);
const rawSource = resolve(root, '../shared/perf/raw-chain');
if (!existsSync(join(rawDir, 'chain_bench.js'))) {
  if (!existsSync(rawSource)) throw new Error(`no raw chain at ${rawDir} nor ${rawSource}`);
  console.log(`copying ${rawSource} to ${rawDir}`);
  cpSync(rawSource, rawDir, { recursive: true });
  spawnSync('chmod', ['-R', 'u+w', rawDir]);
}
if (!existsSync(join(rawDir, 'node_modules/amqplib'))) {
  console.log(`installing the raw chain's dependencies (npm ci in ${rawDir})`);
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: rawDir, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci of the raw chain failed');
}
if (!existsSync(join(root, 'dist/apps/aggregator/src/main.js'))) throw new Error('run `npm run build` first');
if (args['queue-type'] !== 'quorum')
  console.log(`note: the raw chain runs a ${args['queue-type']} queue; ours always runs quorum queues (SPEC §3)`);

const version = codeVersion(root, join(root, 'dist/apps/aggregator/src/main.js'));
const stamp = `${process.pid}-${Date.now()}`;
const tmp = (name) => join(tmpdir(), `fw-compare-${stamp}-${name}.jsonl`);

let current = null;
// Interrupted: the running benchmark cleans up (services, database, vhost, queue) before this exits.
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    if (!current || current.exitCode !== null) process.exit(130);
    current.once('exit', () => process.exit(130));
    // The raw chain forks its processes and has no signal handler: its whole process group goes.
    if (current.group) process.kill(-current.pid, 'SIGKILL');
    else current.kill(signal);
  });

function run(cmd, cmdArgs, { cwd, env, group = false } = {}) {
  return new Promise((ok, fail) => {
    console.log(`\n$ ${[cmd, ...cmdArgs].join(' ')}`);
    const p = spawn(cmd, cmdArgs, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: group,
    });
    p.group = group;
    current = p;
    p.on('error', fail);
    p.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${cmd} ${cmdArgs.join(' ')} exited ${code}`))));
  });
}

function waitQuiet() {
  const r = spawnSync(process.execPath, [join(rawDir, 'waitquiet.js')], { encoding: 'utf8' });
  const line = (r.stdout ?? '').trim();
  console.log(line);
  const m = /busy=([\d.]+)/.exec(line);
  return m ? Number(m[1]) : null;
}

const lastLine = (file) => {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  rmSync(file, { force: true });
  return JSON.parse(lines.at(-1));
};

async function raw(load) {
  const quiet = waitQuiet();
  const file = tmp('raw');
  await run(
    process.execPath,
    ['chain_bench.js', String(load), String(args.duration), String(args.prefetch), String(args.connections)],
    {
      cwd: rawDir,
      env: { RESULTS: file, QUEUE_TYPE: args['queue-type'] },
      group: true,
    },
  );
  return { ...lastLine(file), tool: 'raw-chain', queueType: args['queue-type'], quietBusyCores: quiet };
}

async function ours(extra) {
  const quiet = waitQuiet();
  const file = tmp('ours');
  await run(process.execPath, [
    join(root, 'tools/bench/ingest/bench.mjs'),
    '--connections',
    String(args.connections),
    '--duration',
    String(args.duration),
    '--targets',
    String(args.targets),
    '--client',
    String(args.client),
    '--results',
    file,
    ...extra,
  ]);
  return { ...lastLine(file), quietBusyCores: quiet };
}

const rows = [];
const record = (round, mode, side, r) => {
  rows.push({ round, mode, side, r });
  if (args.results)
    appendFileSync(args.results, `${JSON.stringify({ compare: { round, mode, side, stamp }, ...r })}\n`);
};

let rate = args.rate === 'auto' ? null : Number(args.rate);
const replicaCounts = String(args.replicas).split(',').map(Number);
const settings = {
  rounds: args.rounds,
  modes,
  connections: args.connections,
  durationS: args.duration,
  rate: args.rate,
  targets: args.targets,
  queueType: { raw: args['queue-type'], ours: 'quorum' },
  prefetch: { raw: args.prefetch, ours: process.env.AGGREGATOR_PREFETCH ?? 'default' },
  aggregators: args.aggregators,
  replicas: replicaCounts,
  batch: { size: args['batch-size'], connections: args['batch-connections'], durationS: args['batch-duration'] },
  commit: version.commit,
  distBuiltAt: version.builtAt,
  node: process.version,
};
console.log(`compare settings: ${JSON.stringify(settings)}`);

for (let round = 1; round <= args.rounds; round++) {
  if (modes.includes('closed')) {
    const r = await raw('max');
    record(round, 'closed', 'raw', r);
    if (rate === null) rate = Math.max(100, Math.round(r.pgPerSec / 2 / 100) * 100);
    record(round, 'closed', 'ours', await ours(['--phases', 'single', '--aggregators', String(args.aggregators)]));
  }
  if (modes.includes('paced')) {
    if (rate === null) {
      const r = await raw('max');
      record(round, 'closed', 'raw', r);
      rate = Math.max(100, Math.round(r.pgPerSec / 2 / 100) * 100);
    }
    record(round, 'paced', 'raw', await raw(rate));
    record(
      round,
      'paced',
      'ours',
      await ours(['--phases', 'paced', '--rate', String(rate), '--aggregators', String(args.aggregators)]),
    );
  }
  if (modes.includes('replicas')) {
    // Alternate the order between rounds so neither count always runs first.
    const counts = round % 2 ? replicaCounts : [...replicaCounts].reverse();
    for (const n of counts) {
      const r = await ours([
        '--phases',
        'batch',
        '--aggregators',
        String(n),
        '--batch-size',
        String(args['batch-size']),
        '--batch-connections',
        String(args['batch-connections']),
        '--batch-duration',
        String(args['batch-duration']),
      ]);
      record(round, 'replicas', `ours ×${n}`, r);
    }
  }
}

// ── the table ──
const f = (n, d = 0) =>
  typeof n === 'number' && Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : '—';
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '—');
const backlog = (r) => (r.tool === 'raw-chain' ? r.backlogAtLoadEnd : r.backlogAtLoadEnd?.updates);
const drain = (r) =>
  r.tool === 'raw-chain'
    ? `${f(r.drainMs / 1000, 1)} s`
    : typeof r.drainS === 'number'
      ? `${f(r.drainS, 1)} s`
      : r.drainS;
const busy = (...rs) => rs.map((r) => f(r?.quietBusyCores, 2)).join(' / ');
const lat = (l) => (l ? `${f(l.p50, 1)} / ${f(l.p99, 1)} ms` : '—');
const out = [];
out.push(`\nsettings: ${JSON.stringify(settings)}${rate !== null ? `; paced rate ${rate}/s` : ''}`);
out.push('| round | load | raw chain | ours | ratio (ours / raw) | busy cores before (raw / ours) |');
out.push('| --- | --- | --- | --- | --- | --- |');
const pairs = [];
for (let round = 1; round <= args.rounds; round++) {
  const of = (mode, side) => rows.find((x) => x.round === round && x.mode === mode && x.side === side)?.r;
  const rc = of('closed', 'raw');
  const oc = of('closed', 'ours');
  if (rc && oc) {
    pairs.push({ mode: 'closed', v: oc.persistedPerS / rc.pgPerSec });
    out.push(
      `| ${round} | closed loop, ${args.connections} conns, single updates | ${f(rc.pgPerSec)}/s persisted (accepted ${f(rc.ingestPerSec)}/s), backlog ${f(backlog(rc))}, drained ${drain(rc)}; POST → Redis ${lat(rc.e2eLatMs)} | ${f(oc.persistedPerS)}/s persisted (accepted ${f(oc.acceptedPerS)}/s), backlog ${f(backlog(oc))}, drained ${drain(oc)}; POST → live ${lat(oc.liveState)} | **${ratio(oc.persistedPerS, rc.pgPerSec)}** persisted | ${busy(rc, oc)} |`,
    );
  }
  const rp = of('paced', 'raw');
  const op = of('paced', 'ours');
  if (rp && op) {
    pairs.push({ mode: 'paced', v: op.liveState?.p99 / rp.e2eLatMs?.p99 });
    out.push(
      `| ${round} | open loop ${rate}/s, single updates | POST → Redis ${lat(rp.e2eLatMs)} (persisted ${f(rp.pgPerSec)}/s) | POST → live state ${lat(op.liveState)} (persisted ${f(op.persistedPerS)}/s, backlog ${f(backlog(op))}) | p99 ${ratio(op.liveState?.p99, rp.e2eLatMs?.p99)} (goal: ours p99 ≤ 50 ms) | ${busy(rp, op)} |`,
    );
  }
  const reps = replicaCounts.map((n) => of('replicas', `ours ×${n}`));
  if (reps.every(Boolean) && reps.length >= 2) {
    pairs.push({ mode: 'replicas', v: reps.at(-1).persistedPerS / reps[0].persistedPerS });
    out.push(
      `| ${round} | batches of ${args['batch-size']}, ${args['batch-connections']} conns, ${args['batch-duration']} s | — | ${reps.map((r, i) => `×${replicaCounts[i]} aggregators: ${f(r.persistedPerS)}/s persisted (accepted ${f(r.acceptedPerS)}/s), backlog ${f(backlog(r))}`).join('; ')} | ×${replicaCounts.at(-1)} / ×${replicaCounts[0]}: **${ratio(reps.at(-1).persistedPerS, reps[0].persistedPerS)}** | — / ${busy(...reps)} |`,
    );
  }
}
for (const mode of ['closed', 'paced', 'replicas']) {
  const v = pairs.filter((p) => p.mode === mode && Number.isFinite(p.v)).map((p) => p.v);
  if (v.length)
    out.push(
      `${mode}: ratios ${v.map((x) => x.toFixed(2)).join(', ')} (min ${Math.min(...v).toFixed(2)}, max ${Math.max(...v).toFixed(2)})`,
    );
}
console.log(out.join('\n'));
if (args.results)
  appendFileSync(
    args.results,
    `${JSON.stringify({ compare: { summary: true, stamp }, settings, rate, ratios: pairs })}\n`,
  );
