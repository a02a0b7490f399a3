#!/usr/bin/env node
// Fleet polling benchmark (issue 19): a leader sync-orchestrator (from dist/) polling 1,000
// simulated members (tools/fleet-sim in its own process) that answer after --latency ms.
//
//   node tools/bench/fleet/bench.mjs [--members 1000 --latency 50
//       --cycles 3 --hang 0.1 --json --only a|b --timeout 9 --cpu-prof DIR]
//
// --timeout S: scenario A's overall timeout (interval S + 1): a longer one lets every member
// answer on a loaded box, so that the leader's CPU per full cycle can be compared.
// --cpu-prof DIR: the leader runs with --cpu-prof, its .cpuprofile files written under DIR
// (read them with tools/bench/fleet/top-profile.mjs DIR/*.cpuprofile). --only: one scenario.
// --node-flags "…": extra Node/V8 flags for the leader, after npm start's.
//
// A. All members answer: --cycles poll cycles (interval 10 s, overall timeout 9 s); each cycle's
//    duration from the leader's own log line, the leader's RSS (max of 1 s readings).
// B. --hang of the members never answer: one cycle with the default 25 s overall timeout (interval
//    30 s) — it must end at the timeout with the others polled, not wait for the hanging ones.
// Each scenario gets a throwaway database (migrated), vhost and Redis prefix, removed afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { serviceEnv, serviceNodeArgs } from '../../launcher/common.mjs';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion, cpuSeconds, rssMb } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const args = parseArgs(process.argv.slice(2), {
  members: 1000,
  latency: 50,
  cycles: 3,
  hang: 0.1,
  json: false,
  only: '',
  timeout: 9,
  'cpu-prof': '',
  'node-flags': '',
});
const PG = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const MGMT = process.env.BENCH_RABBIT_MGMT ?? 'http://127.0.0.1:15672';
const AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
const run = `bench_fleet_${Date.now().toString(36)}`;
const work = mkdtempSync(join(tmpdir(), 'fw-bench-fleet-'));
const cleanups = [];

// A private copy of a fresh build (under the repository, so node_modules resolve): another
// build elsewhere empties dist/ and would pull files from under a running leader.
const dist = join(root, 'tmp', run);
function privateDist() {
  const b = spawnSync(process.execPath, [join(root, 'tools/build/build.mjs')], { cwd: root, stdio: 'pipe' });
  if (b.status !== 0) throw new Error(`build: ${b.stderr}`);
  mkdirSync(dist, { recursive: true });
  cpSync(join(root, 'dist'), join(dist, 'dist'), { recursive: true });
  cleanups.push(() => rmSync(dist, { recursive: true, force: true }));
}

async function database(name) {
  const admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG.replace(/\/[^/]*$/, `/${name}`);
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: PG });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  const m = spawnSync(process.execPath, [join(root, 'tools/db/migrate.mjs')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: url },
    stdio: 'pipe',
  });
  if (m.status !== 0) throw new Error(`migrate: ${m.stderr}`);
  return url;
}

async function vhost(name) {
  const res = await fetch(`${MGMT}/api/vhosts/${name}`, { method: 'PUT', headers: { authorization: AUTH } });
  if (!res.ok) throw new Error(`vhost: ${res.status}`);
  await fetch(`${MGMT}/api/permissions/${name}/guest`, {
    method: 'PUT',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ configure: '.*', write: '.*', read: '.*' }),
  });
  cleanups.push(() => fetch(`${MGMT}/api/vhosts/${name}`, { method: 'DELETE', headers: { authorization: AUTH } }));
  return `amqp://guest:guest@127.0.0.1:5672/${name}`;
}

function startSim(hang) {
  const config = join(work, `members-${hang}.json`);
  const child = spawn(
    process.execPath,
    [
      join(root, 'tools/fleet-sim/fleet-sim.cjs'),
      ...['--members', String(args.members), '--latency', String(args.latency), '--port', '0'],
      ...['--hang', String(hang), '--token', 'bench-token', '--config-out', config],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => child.kill('SIGTERM'));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve({ child, config, info: JSON.parse(String(d).split('\n')[0]) }));
    child.once('exit', (code) => reject(new Error(`fleet-sim exited ${code}`)));
  });
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Runs a leader until `cycles` poll cycles are logged; returns them with the RSS readings. */
async function leader(name, config, { interval, timeout, cycles }) {
  const [databaseUrl, amqpUrl] = await Promise.all([database(`${run}_${name}`), vhost(`${run}_${name}`)]);
  const child = spawn(
    process.execPath,
    [
      ...serviceNodeArgs('sync-orchestrator'),
      // After npm start's flags, so a V8 flag given here wins (e.g. --max-semi-space-size=8).
      ...String(args['node-flags']).split(/\s+/).filter(Boolean),
      ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`] : []),
      join(dist, 'dist/apps/sync-orchestrator/src/main.js'),
    ],
    {
      cwd: root,
      env: serviceEnv({
        ...process.env,
        DATABASE_URL: databaseUrl,
        AMQP_URL: amqpUrl,
        FLEETWATCH_REDIS_PREFIX: `${run}:${name}:`,
        SYNC_ORCHESTRATOR_PORT: String(await freePort()),
        FLEETWATCH_ROLE: 'leader',
        FLEETWATCH_LEADER_CONFIG: config,
        FLEET_SIM_TOKEN: 'bench-token',
        FLEET_POLL_INTERVAL_SECONDS: String(interval),
        FLEET_POLL_TIMEOUT_SECONDS: String(timeout),
        FLEETWATCH_DEFAULT_ALERT_RULES: 'false',
        FLEETWATCH_ENCRYPTION_KEY: 'c'.repeat(64),
        LOG_LEVEL: 'info',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanups.push(() => child.kill('SIGTERM'));
  const seen = [];
  const rss = [];
  const sampler = setInterval(() => rss.push(rssMb(child.pid)), 1000);
  let buffer = '';
  let tail = '';
  let lastCpu = 0;
  child.stderr.on('data', (d) => (tail = (tail + d).slice(-4000)));
  await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`leader exited ${code}: ${tail}`)));
    child.stdout.on('data', (d) => {
      buffer += d;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (!line.includes('fleet poll cycle')) continue;
        const entry = JSON.parse(line);
        // The leader's CPU since the previous cycle's line (idle between cycles costs next to nothing):
        // comparable across builds, and under load, where wall-clock cycle times are not.
        const cpu = cpuSeconds(child.pid);
        const cpuSincePreviousMs = seen.length > 0 ? Math.round((cpu - lastCpu) * 1000) : null;
        lastCpu = cpu;
        seen.push({
          cpuSincePreviousMs,
          durationMs: entry.durationMs,
          pollMs: entry.pollMs,
          ok: entry.ok,
          failed: entry.failed,
          notStarted: entry.notStarted,
          cpuMs: entry.cpuMs,
        });
        if (seen.length >= cycles) resolve();
      }
    });
  });
  clearInterval(sampler);
  // Waits for the exit: a --cpu-prof profile is written as the process ends.
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  return { cycles: seen, rssMaxMb: Math.max(...rss.filter(Number.isFinite)) };
}

let code = 0;
try {
  privateDist();
  const load = () =>
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} cores`;
  const nodeFlags = [
    ...serviceNodeArgs('sync-orchestrator'),
    ...String(args['node-flags']).split(/\s+/).filter(Boolean),
  ];
  const result = {
    code: codeVersion(root),
    cores: cpus().length,
    members: args.members,
    latencyMs: args.latency,
    nodeFlags,
  };
  const lines = [
    `leader: sync-orchestrator from dist/ of ${result.code.commit ?? result.code}, node flags ${nodeFlags.join(' ') || '(none)'}`,
  ];
  if (args.only !== 'b') {
    const a = await startSim(0);
    const allAnswer = await leader('a', a.config, {
      interval: args.timeout + 1,
      timeout: args.timeout,
      cycles: args.cycles,
    });
    a.child.kill('SIGTERM');
    result.allAnswer = allAnswer;
    const durations = allAnswer.cycles.map((c) => c.durationMs);
    lines.push(
      `fleet: ${args.members} members at ${args.latency} ms — cycles ${durations.join(', ')} ms ` +
        `(polling ${allAnswer.cycles.map((c) => c.pollMs).join(', ')} ms; ok ${allAnswer.cycles.map((c) => c.ok).join(', ')}; ` +
        `leader CPU ${allAnswer.cycles.map((c) => c.cpuMs ?? '?').join(', ')} ms, ` +
        `since the previous cycle ${allAnswer.cycles
          .slice(1)
          .map((c) => c.cpuSincePreviousMs)
          .join(', ')} ms) ` +
        `(goal < 5000), leader RSS max ${allAnswer.rssMaxMb.toFixed(0)} MB; ${load()}`,
    );
    if (Math.max(...durations) >= 5000) code = 1;
  }
  if (args.only !== 'a') {
    const b = await startSim(args.hang);
    const hanging = await leader('b', b.config, { interval: 30, timeout: 25, cycles: 1 });
    b.child.kill('SIGTERM');
    result.hanging = { ratio: args.hang, timeoutMs: 25_000, ...hanging };
    const c = hanging.cycles[0];
    lines.push(
      `fleet: ${Math.round(args.hang * 100)} % of ${args.members} hanging: cycle ${c.durationMs} ms ` +
        `(polling ${c.pollMs} ms) with timeout 25000 (ok ${c.ok}, failed ${c.failed}), ` +
        `RSS max ${hanging.rssMaxMb.toFixed(0)} MB; ${load()}`,
    );
    if (c.durationMs > 26_000) code = 1;
  }
  result.loadavg = loadavg();
  if (args.json) console.log(JSON.stringify(result));
  else for (const l of lines) console.log(l);
} catch (err) {
  console.error(err);
  code = 2;
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
