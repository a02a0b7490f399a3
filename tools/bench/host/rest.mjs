#!/usr/bin/env node
// A collector at rest (issue 16: RSS < 80 MB while sampling every 5 s, no checks), variants side by side.
//
//   node tools/build/build.mjs && node tools/bench/host/rest.mjs [--runs 3 --warmup 15 --window 45 --json]
//       [--variant 'name=--flag1 --flag2' ...] [--env 'name=VAR=value'] [--no-default]
//
// Starts --runs collectors per variant at once (all variants interleaved, so noise hits each alike) from a
// private copy of dist/, with npm start's Node flags and malloc settings plus the variant's extra flags, each on
// an empty assignment and one throwaway vhost, sampling the host every 5 s. After --warmup s it reads each
// one's RSS every second for --window s and prints, per variant, the median of the runs' medians and the largest
// single reading, with the split into anonymous and file-backed memory (/proc/PID/status) at the end.
// The default variants are npm start's flags alone ("npm-start"); --variant adds more.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceEnv, serviceNodeArgs, waitHttp } from '../../launcher/common.mjs';
import { codeVersion, cpuSeconds, rssMb } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);

const argv = process.argv.slice(2);
const opt = { runs: 3, warmup: 15, window: 45, json: false, variants: [], envs: [], defaults: true };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--runs') opt.runs = Number(argv[++i]);
  else if (a === '--warmup') opt.warmup = Number(argv[++i]);
  else if (a === '--window') opt.window = Number(argv[++i]);
  else if (a === '--json') opt.json = true;
  else if (a === '--no-default') opt.defaults = false;
  else if (a === '--variant') {
    const [name, ...rest] = argv[++i].split('=');
    opt.variants.push({ name, flags: rest.join('=').split(/\s+/).filter(Boolean), env: {} });
  } else if (a === '--env') {
    const [name, variable, ...value] = argv[++i].split('=');
    opt.variants.push({ name, flags: [], env: { [variable]: value.join('=') } });
  } else throw new Error(`unknown argument ${a}`);
}
if (opt.defaults) opt.variants.unshift({ name: 'npm-start', flags: [], env: {} });
if (!existsSync(join(root, 'dist/apps/collector/src/main.js')))
  throw new Error('dist/ is missing: run `node tools/build/build.mjs` first');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`[bench:rest] ${s}\n`);
const dir = join(root, 'tmp', `bench-host-rest-${process.pid}`);
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

function statusKb(pid, field) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : 0;
}

const children = [];
async function startCollector(label, variant, amqpUrl) {
  const port = await freePort();
  const { AssignmentFile } = dist('apps/collector/src/checks/assignment/assignment-file.js');
  await new AssignmentFile(join(dir, `spool-${label}`, 'assignment.json')).save({
    location: `bench-rest-${label}`,
    version: 1,
    hash: 'b'.repeat(64),
    receivedAt: new Date().toISOString(),
    checks: [],
  });
  const child = spawn(
    process.execPath,
    [...serviceNodeArgs('collector'), ...variant.flags, join(dir, 'dist/apps/collector/src/main.js')],
    {
      cwd: root,
      env: {
        ...serviceEnv({
          ...process.env,
          LOG_LEVEL: 'warn',
          AMQP_URL: amqpUrl,
          FLEETWATCH_LOCATION: `bench-rest-${label}`,
          COLLECTOR_PORT: String(port),
          COLLECTOR_SPOOL_DIR: join(dir, `spool-${label}`),
          COLLECTOR_HOST_ID: `bench-rest-${label}`,
          COLLECTOR_HOST_INTERVAL_SECONDS: '5',
        }),
        ...variant.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const tail = [];
  child.stderr.on('data', (d) => tail.push(String(d)) > 20 && tail.shift());
  children.push(child);
  try {
    await waitHttp(`http://127.0.0.1:${port}/readyz`, 90_000);
  } catch (e) {
    throw new Error(`collector ${label} did not get ready: ${e.message}\n${tail.join('')}`);
  }
  return { label, variant: variant.name, child, pid: child.pid, rss: [] };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;

async function main() {
  const load0 = loadavg().map((l) => l.toFixed(2));
  const vhost = await testing.createIsolatedVhost('bench-host-rest');
  try {
    const started = [];
    for (let r = 0; r < opt.runs; r++)
      for (const v of opt.variants) started.push(startCollector(`${v.name}-${r}`, v, vhost.amqpUrl));
    const procs = await Promise.all(started);
    log(`${procs.length} collectors up; warm-up ${opt.warmup} s, window ${opt.window} s`);
    await sleep(opt.warmup * 1000);
    const cpu0 = new Map(procs.map((p) => [p.pid, cpuSeconds(p.pid)]));
    for (let t = 0; t < opt.window; t++) {
      for (const p of procs) p.rss.push(rssMb(p.pid));
      await sleep(1000);
    }
    const rows = opt.variants.map((v) => {
      const mine = procs.filter((p) => p.variant === v.name);
      return {
        variant: v.name,
        flags: [...serviceNodeArgs('collector'), ...v.flags].join(' '),
        env: v.env,
        rssMedianMb: round1(median(mine.map((p) => median(p.rss)))),
        rssMaxMb: round1(Math.max(...mine.flatMap((p) => p.rss))),
        rssEndMb: mine.map((p) => round1(p.rss.at(-1))),
        anonMb: round1(median(mine.map((p) => statusKb(p.pid, 'RssAnon') / 1024))),
        fileMb: round1(median(mine.map((p) => statusKb(p.pid, 'RssFile') / 1024))),
        cpuPctOfCore: round1(median(mine.map((p) => ((cpuSeconds(p.pid) - cpu0.get(p.pid)) / opt.window) * 100)) * 1),
      };
    });
    const code = codeVersion(root, join(root, 'dist/apps/collector/src/main.js'));
    const out = { code, load: { start: load0, end: loadavg().map((l) => l.toFixed(2)) }, ...opt, rows };
    if (opt.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    else {
      process.stdout.write(
        `code ${code.commit} (built ${code.builtAt}); ${opt.runs} collectors per variant, warm-up ${opt.warmup} s, window ${opt.window} s; load ${out.load.start.join(',')} → ${out.load.end.join(',')}\n`,
      );
      for (const r of rows)
        process.stdout.write(
          `${r.variant.padEnd(14)} RSS median ${r.rssMedianMb} MB, max ${r.rssMaxMb}, end ${r.rssEndMb.join('/')} (anon ${r.anonMb}, file ${r.fileMb}); CPU ${r.cpuPctOfCore} % of a core — ${r.flags}${Object.keys(r.env).length ? ' ' + JSON.stringify(r.env) : ''}\n`,
        );
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await sleep(1500);
    for (const c of children) c.kill('SIGKILL');
    await vhost.dispose().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  log(e.stack ?? String(e));
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});
