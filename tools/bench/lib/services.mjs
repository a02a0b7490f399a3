// Running the built services for a benchmark: a private copy of dist/ (a build by someone else
// mid-run cannot pull it away), services started from it with `npm start`'s Node flags, readiness,
// free ports, and a keep-alive HTTP client that times each exchange.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { serviceEnv, serviceNodeArgs } from '../../launcher/common.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

/** Copies `root`/dist (which must hold `required`) to `root`/tmp/`name`/dist; returns that folder and a remover. */
export function privateDist(root, name, required) {
  const source = join(root, 'dist');
  for (const f of required)
    if (!existsSync(join(source, f))) throw new Error(`dist/${f} is missing: run \`npm run build\` first`);
  const dir = join(root, 'tmp', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(source, join(dir, 'dist'), { recursive: true });
  return { dir, dist: (p) => join(dir, 'dist', p), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts one built service. `port` is the port it listens on (its *_PORT variable is in `env`);
 * `profileDir` adds `--cpu-prof` (the profile is written when it stops); `echo` copies its log to stderr.
 * `onUnexpectedExit` is called when it exits while `isStopping()` is false.
 */
export function startService({ dist, app, label, env, port, cwd, profileDir = '', echo = false, isStopping, onExit }) {
  const profile = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`, `--cpu-prof-name=${label}.cpuprofile`]
    : [];
  const child = spawn(process.execPath, [...profile, ...serviceNodeArgs(app), dist(`apps/${app}/src/main.js`)], {
    cwd,
    env: serviceEnv({ ...process.env, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 50) tail.shift();
        if (echo) process.stderr.write(`[${label}] ${line}\n`);
      }
    });
  }
  child.on('exit', (code, signal) => {
    if (!isStopping?.()) {
      console.error(`${label} exited unexpectedly (${signal ?? code}); last lines:\n${tail.join('\n')}`);
      onExit?.(code, signal);
    }
  });
  return { app, label, child, tail, port };
}

export async function waitReady(service, timeoutMs = 90_000) {
  const url = `http://127.0.0.1:${service.port}/readyz`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null)
      throw new Error(
        `${service.label} exited (${service.child.exitCode}) before it was ready:\n${service.tail.join('\n')}`,
      );
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${last}`);
}

/** Stops services (SIGINT, SIGKILL after `graceMs`) and waits for them to exit. */
export async function stopServices(services, graceMs = 15_000) {
  await Promise.all(
    services.map(async (s) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return;
      const exited = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGINT');
      const hard = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(hard);
    }),
  );
}

/**
 * One HTTP exchange on `agent`: resolves (never rejects) with the status, the body, and the
 * milliseconds from sending to the end of the answer (status 0: a network error).
 */
export function request(agent, { port, method = 'GET', path, headers = {}, body }) {
  return new Promise((done) => {
    const started = performance.now();
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        agent,
        headers: payload ? { 'content-length': payload.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          done({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
          }),
        );
        res.on('error', () => done({ status: 0, headers: {}, body: '', ms: performance.now() - started }));
      },
    );
    req.on('error', () => done({ status: 0, headers: {}, body: '', ms: performance.now() - started }));
    req.end(payload);
  });
}
