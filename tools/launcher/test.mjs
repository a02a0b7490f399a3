#!/usr/bin/env node
// `npm test`: lint, type-check, build, unit and integration tests (real
// servers, isolated per run by libs/testing) and the dashboard's tests.
// Ends with one line for the whole run: `tests: N passed, N failed, N skipped`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkServers, DEFAULTS, enableRabbitPlugins, ensureDependencies, fail, root, say } from './common.mjs';

const totals = { passed: 0, failed: 0, skipped: 0 };
const failedSteps = [];
const tmp = join(root, 'tmp');
mkdirSync(tmp, { recursive: true });

function step(name, cmd, args, env = process.env) {
  say(`── ${name}: ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: 'inherit' });
  const ok = r.status === 0;
  say(
    `── ${name}: ${ok ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  if (!ok) failedSteps.push(name);
  return ok;
}

/**
 * Steps in lanes that run side by side (a lane's steps one after another), each step's output held and printed whole
 * when it ends, so that two steps' lines never mix. For the static checks: each is CPU-bound on one core, and CI's
 * box has two.
 */
async function lanes(list, env = process.env) {
  const runOne = ([name, cmd, args]) =>
    new Promise((resolve) => {
      const started = Date.now();
      const out = [];
      const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (b) => out.push(b));
      child.stderr.on('data', (b) => out.push(b));
      const end = (code, signal) => {
        const ok = code === 0;
        say(`── ${name}: ${cmd} ${args.join(' ')}`);
        process.stdout.write(Buffer.concat(out));
        say(
          `── ${name}: ${ok ? 'ok' : `FAILED (exit ${code ?? signal})`} in ${Math.round((Date.now() - started) / 1000)} s`,
        );
        if (!ok) failedSteps.push(name);
        resolve(ok);
      };
      child.on('error', (e) => {
        out.push(Buffer.from(`${e.message}\n`));
        end(null, e.code);
      });
      child.on('close', end);
    });
  await Promise.all(
    list.map(async (lane) => {
      for (const s of lane) if (s) await runOne(s);
    }),
  );
}

function countJest(file, label) {
  if (!existsSync(file)) {
    fail(`${label}: no results file (the runner crashed before reporting)`);
    totals.failed++;
    return;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests;
  totals.skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  // A suite that fails to load has no failed tests but must still count.
  const brokenSuites = r.testResults.filter((t) => t.status === 'failed' && t.assertionResults.length === 0).length;
  totals.failed += brokenSuites;
}

function countVitest(file) {
  if (!existsSync(file)) {
    totals.failed++;
    return;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed +=
    r.numFailedTests +
    (r.testResults ?? []).filter((t) => t.status === 'failed' && !(t.assertionResults ?? []).length).length;
  totals.skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}

/**
 * FW_TEST_UNIT_WORKERS (1–8, default 2) / FW_TEST_INTEGRATION_WORKERS (1–8, default 3): test files run side by side.
 * Jest's own default is one less than the cores: on CI's 2-core box, one — the unit files ran one at a time on one
 * core. An integration file mostly waits (timers, servers, child services): three at a time took 990 s on that box
 * where two took about 1,300 s, every test passing.
 */
function workers(variable, fallback) {
  const raw = process.env[variable];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    fail(`${variable} must be a whole number from 1 to 8, not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

/** The slowest test files of the run (jest's per-file start and end), so the run's time can be kept in check. */
function reportSlowest(files, top = 15) {
  const rows = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    try {
      const r = JSON.parse(readFileSync(file, 'utf8'));
      for (const t of r.testResults ?? [])
        if (typeof t.startTime === 'number' && typeof t.endTime === 'number')
          rows.push({ seconds: (t.endTime - t.startTime) / 1000, name: t.name.replace(root + '/', '') });
    } catch {
      // a results file the runner left half written: its step already counted as failed
    }
  }
  if (rows.length === 0) return;
  rows.sort((a, b) => b.seconds - a.seconds);
  say(`── slowest test files (of ${rows.length}):`);
  for (const r of rows.slice(0, top)) say(`   ${r.seconds.toFixed(1).padStart(6)} s  ${r.name}`);
}

async function main() {
  ensureDependencies();
  // Server URLs are not injected: libs/testing tells env-given servers from the local ones.
  const env = { ...process.env, NX_NO_CLOUD: 'true', NX_DAEMON: 'false', FORCE_COLOR: process.env.FORCE_COLOR ?? '0' };
  const missing = await checkServers({ ...DEFAULTS, ...process.env });
  if (missing.length) {
    fail(`cannot run the integration tests: ${missing.map((m) => m.name).join(', ')} not reachable (see above).`);
    process.stdout.write('tests: 0 passed, 1 failed\n');
    process.exit(1);
  }
  // libs/testing creates a RabbitMQ vhost per run through the management API when it is there.
  enableRabbitPlugins(['rabbitmq_management']);

  const only = process.argv.slice(2);
  const want = (s) => only.length === 0 || only.includes(s);

  if (want('generate')) step('prisma generate', 'npm', ['run', '--silent', 'db:generate'], env);
  // Lint, format and the two type-checks in two lanes side by side (about a minute less on a 2-core box).
  const lint = [];
  const types = [];
  if (want('lint')) {
    // The module-boundary rule reads Nx's project graph; compute it first (a fresh clone has
    // no .nx cache, and without it the rule is silently skipped).
    step('project graph', 'npx', ['nx', 'show', 'projects'], env);
    lint.push(['lint', 'npx', ['eslint', '--max-warnings=0', '.']], ['format', 'npx', ['prettier', '--check', '.']]);
  }
  if (want('typecheck')) {
    types.push(['typecheck (services, libs, tools)', 'npx', ['tsc', '-p', 'tsconfig.json']]);
    if (existsSync(join(root, 'apps/dashboard/tsconfig.json')))
      types.push(['typecheck (dashboard)', 'npx', ['tsc', '-p', 'apps/dashboard/tsconfig.json', '--noEmit']]);
  }
  await lanes([lint, types], env);
  if (want('build')) step('build', 'npm', ['run', '--silent', 'build'], env);

  /** One jest project as a step of its own, its results counted (tmp/jest-<project>.json). */
  function jestStep(name, project, ...args) {
    const out = join(tmp, `jest-${project}.json`);
    rmSync(out, { force: true });
    // --forceExit: a test that leaves a handle open (a server, a timer) would otherwise hold the step until CI's time
    // limit once every test has passed (it happened once: a unit spec left a started service listening). Jest's
    // "Force exiting" line is printed on every run with the flag, so it tells nothing: look for a leak with
    // `npx jest --selectProjects <project> --detectOpenHandles`.
    step(
      name,
      'npx',
      ['jest', '--selectProjects', project, ...args, '--forceExit', '--json', `--outputFile=${out}`],
      env,
    );
    countJest(out, name);
  }

  if (want('unit')) {
    // The unit files are CPU-bound (no servers): one per core.
    const n = workers('FW_TEST_UNIT_WORKERS', 2);
    say(`── unit tests run ${n} file(s) at a time (FW_TEST_UNIT_WORKERS)`);
    jestStep('unit tests', 'unit', `--maxWorkers=${n}`);
  }
  if (want('integration')) {
    // Three files at a time by default (each jest worker on a database, vhost and key prefix of its own): most of
    // an integration file's time is spent waiting on timers, servers and child services, not on a CPU.
    const n = workers('FW_TEST_INTEGRATION_WORKERS', 3);
    say(`── integration tests run ${n} file(s) at a time (FW_TEST_INTEGRATION_WORKERS)`);
    jestStep('integration tests', 'integration', `--maxWorkers=${n}`);
    // The few that must not run beside another (jest.config.js says why for each), one at a time.
    jestStep('serial integration tests', 'integration-serial', '--runInBand');
  }
  // After every other integration test, with nothing beside them: these raise a broker
  // resource alarm, which blocks every publisher on the node (*.alone.int-spec.ts).
  if (want('integration') || want('integration-alone'))
    jestStep('alone integration tests', 'integration-alone', '--runInBand');
  if (want('dashboard') && existsSync(join(root, 'apps/dashboard/vite.config.mts'))) {
    const out = join(tmp, 'vitest-dashboard.json');
    rmSync(out, { force: true });
    step(
      'dashboard tests',
      'npx',
      [
        'vitest',
        'run',
        '--root',
        'apps/dashboard',
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${out}`,
      ],
      env,
    );
    countVitest(out);
  }

  // Lint/type/build failures are failures of the run even when every test passed.
  reportSlowest(
    ['unit', 'integration', 'integration-serial', 'integration-alone'].map((p) => join(tmp, `jest-${p}.json`)),
  );

  const stepFailures = failedSteps.filter((s) => !/tests$/.test(s)).length;
  if (failedSteps.length) fail(`failed steps: ${failedSteps.join(', ')}`);
  const line = `tests: ${totals.passed} passed, ${totals.failed + stepFailures} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`;
  writeFileSync(join(tmp, 'test-summary.txt'), line + '\n');
  process.stdout.write(line + '\n');
  process.exit(failedSteps.length || totals.failed ? 1 : 0);
}

main().catch((e) => {
  fail(e.stack ?? e.message);
  process.stdout.write('tests: 0 passed, 1 failed\n');
  process.exit(1);
});
