#!/usr/bin/env node
// `npm start`: installs what is missing, checks the servers, creates and
// migrates the database, builds, starts the five services and stays in the
// foreground. Ctrl-C (SIGINT) stops every service cleanly.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkServers,
  DEFAULTS,
  ensureDependencies,
  fail,
  paint,
  run,
  say,
  spawnService,
  waitHttp,
} from './common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

const SERVICES = [
  // Order matters only for the printout: each service waits for its own dependencies.
  { name: 'sync-orchestrator', portVar: 'SYNC_ORCHESTRATOR_PORT', port: 3004, color: '35' },
  { name: 'aggregator', portVar: 'AGGREGATOR_PORT', port: 3003, color: '33' },
  { name: 'status-ingest', portVar: 'STATUS_INGEST_PORT', port: 3001, color: '32' },
  { name: 'collector', portVar: 'COLLECTOR_PORT', port: 3002, color: '34' },
  { name: 'api-gateway', portVar: 'API_GATEWAY_PORT', port: 3000, color: '36' },
];

/**
 * Channel secrets are sealed with FLEETWATCH_ENCRYPTION_KEY (sync-orchestrator). Unset, `npm start`
 * uses a development key it keeps in .fleetwatch/encryption.key (generated on the first start, mode
 * 0600, git-ignored), so a fresh clone works; a deployment sets its own key.
 */
function ensureEncryptionKey(env) {
  if (env.FLEETWATCH_ENCRYPTION_KEY) return;
  const dir = join(ROOT, '.fleetwatch');
  const file = join(dir, 'encryption.key');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    say(
      `channel secrets: generated a development encryption key in ${file} (set FLEETWATCH_ENCRYPTION_KEY in production)`,
    );
  }
  env.FLEETWATCH_ENCRYPTION_KEY = readFileSync(file, 'utf8').trim();
}

async function main() {
  ensureDependencies();
  const env = { ...DEFAULTS, ...process.env };
  ensureEncryptionKey(env);
  const missing = await checkServers(env);
  if (missing.length) {
    fail(`cannot start: ${missing.map((m) => m.name).join(', ')} not reachable (see above).`);
    process.exit(1);
  }
  say('database: creating if missing and applying migrations …');
  run('npm', ['run', '--silent', 'db:migrate'], { env });
  say('building services …');
  run('npm', ['run', '--silent', 'build'], { env });

  const children = new Map();
  // A child killed by a signal has exitCode null and signalCode set: it has exited too.
  const running = (child) => child.exitCode === null && child.signalCode === null;
  let stopping = false;
  const stopAll = (signal) => {
    if (stopping) return;
    stopping = true;
    say(`stopping (${signal}) …`);
    for (const child of children.values()) if (running(child)) child.kill('SIGINT');
    const hard = setTimeout(() => {
      for (const child of children.values()) if (running(child)) child.kill('SIGKILL');
      fail('some services did not stop within 10 s and were killed');
      process.exit(1);
    }, 10_000);
    Promise.all(
      [...children.values()].map((c) => (running(c) ? new Promise((r) => c.once('exit', r)) : Promise.resolve())),
    ).then(() => {
      clearTimeout(hard);
      // A service that exited non-zero, or was killed by a signal other than the stop signal (SIGKILL, SIGSEGV, an
      // abort), did not stop cleanly: say so. A stop signal's default action can still end a service that has
      // finished stopping — a second Ctrl-C or this launcher's forward landing while Node tears the process down, its
      // handlers gone — which is no fault (a service absorbs the signal until it has stopped).
      const bad = [...children.entries()].filter(
        ([, c]) => c.exitCode !== 0 && c.signalCode !== 'SIGINT' && c.signalCode !== 'SIGTERM',
      );
      if (bad.length)
        fail(
          `did not stop cleanly: ${bad.map(([n, c]) => `${n} (${c.signalCode ? `killed by ${c.signalCode}` : `exit ${c.exitCode}`})`).join(', ')}`,
        );
      else say('all services stopped');
      process.exit(bad.length ? 1 : 0);
    });
  };
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGTERM', () => stopAll('SIGTERM'));

  const width = Math.max(...SERVICES.map((s) => s.name.length));
  for (const svc of SERVICES) {
    const child = spawnService(svc.name, env);
    children.set(svc.name, child);
    const prefix = paint(svc.color, svc.name.padEnd(width)) + ' │ ';
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          process.stdout.write(prefix + buf.slice(0, i) + '\n');
          buf = buf.slice(i + 1);
        }
      });
    }
    child.on('exit', (code, signal) => {
      if (!stopping) {
        fail(`${svc.name} exited unexpectedly (${signal ?? code}); stopping the rest`);
        process.exitCode = 1;
        stopAll('child exit');
      }
    });
  }
  try {
    await Promise.all(SERVICES.map((s) => waitHttp(`http://127.0.0.1:${env[s.portVar] ?? s.port}/readyz`, 90_000)));
  } catch (e) {
    fail(e.message);
    stopAll('not ready');
    return;
  }
  const gw = env.API_GATEWAY_PORT ?? 3000;
  say(paint('1;32', 'Fleetwatch is up.'));
  say(`  dashboard      http://127.0.0.1:${gw}/`);
  say(`  REST API       http://127.0.0.1:${gw}/api/v1   (OpenAPI: /api/docs)`);
  say(`  push ingest    http://127.0.0.1:${env.STATUS_INGEST_PORT ?? 3001}/api/v1/status/updates`);
  for (const s of SERVICES) say(`  ${s.name.padEnd(width)}  http://127.0.0.1:${env[s.portVar] ?? s.port}/readyz`);
  say('Press Ctrl-C to stop.');
}

main().catch((e) => {
  fail(e.message);
  process.exit(1);
});
