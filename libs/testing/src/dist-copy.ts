import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './admin/postgres';

export interface DistCopyOptions {
  /** Build dist/ first: `always` (the test must run today's code) or `if-missing` (default). */
  build?: 'always' | 'if-missing';
  /** Files under dist/ the copy must hold (default: every service's `apps/<service>/src/main.js`). */
  required?: readonly string[];
}

const SERVICES = ['api-gateway', 'status-ingest', 'collector', 'aggregator', 'sync-orchestrator'];
const ATTEMPTS = 5;

/** The compiled scripts under `dir`, the dashboard's (Vite's, another step's) left out. */
function countJs(dir: string, top = dir): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(top, 'apps/dashboard')) n += countJs(path, top);
    } else if (entry.name.endsWith('.js')) n++;
  }
  return n;
}

function build(root: string): void {
  const r = spawnSync(process.execPath, [join(root, 'tools/build/build.mjs')], { cwd: root, stdio: 'pipe' });
  if (r.status !== 0) throw new Error(`build failed (${r.status ?? r.signal}): ${r.stderr.toString()}`);
}

/** build(), without holding the event loop: the child runs while this process goes on. */
function buildAsync(root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'tools/build/build.mjs')], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`build failed (${code ?? signal}): ${stderr}`)),
    );
  });
}

/** Whether `dist` (a copy) is whole: the required files, and as many scripts as its build compiled. */
function whole(dist: string, required: readonly string[]): boolean {
  if (!required.every((f) => existsSync(join(dist, f)))) return false;
  const info = join(dist, 'build-info.json');
  if (!existsSync(info)) return true; // a build from before build-info.json: the required files must do
  const { files } = JSON.parse(readFileSync(info, 'utf8')) as { files: number };
  return countJs(dist) >= files;
}

/**
 * A private copy of the built services: `<dir>/dist`, made from the repository's dist/ (built first per `build`), so a
 * build running meanwhile — another integration file's, side by side — cannot pull the code from under the test's
 * processes. tools/build/build.mjs replaces dist/ by renames, so a copy sees one build or the other; one made across
 * the replacement (a file gone between two renames, or fewer scripts than its build compiled) is taken again.
 * Returns `dir`; remove it when done.
 */
export function copyBuiltDist(dir: string, options: DistCopyOptions = {}): string {
  const root = repoRoot();
  const required = options.required ?? SERVICES.map((s) => `apps/${s}/src/main.js`);
  if (options.build === 'always' || !existsSync(join(root, 'dist', required[0] ?? 'build-info.json'))) build(root);
  let last: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    try {
      cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      if (whole(join(dir, 'dist'), required)) return dir;
      last = new Error('the copy is not whole');
    } catch (err) {
      last = err; // ENOENT: a file (or dist/ itself) went while a build replaced it
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200 * attempt);
  }
  throw new Error(
    `could not copy a whole dist/ to ${dir} in ${ATTEMPTS} attempts (builds running beside this test?): ${String(last)}`,
  );
}

/**
 * copyBuiltDist without holding the event loop, for a test that has a service (and its AMQP connection, heartbeats
 * every 5 s) running in this process already: the build runs as a child awaited, the copy with fs.promises. The
 * synchronous one blocked the loop for the whole build (measured 7-10 s on a loaded 2-core box), and RabbitMQ
 * closed the in-process service's connection for missed heartbeats.
 */
export async function copyBuiltDistAsync(dir: string, options: DistCopyOptions = {}): Promise<string> {
  const root = repoRoot();
  const required = options.required ?? SERVICES.map((s) => `apps/${s}/src/main.js`);
  if (options.build === 'always' || !existsSync(join(root, 'dist', required[0] ?? 'build-info.json')))
    await buildAsync(root);
  let last: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    try {
      await cp(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      if (whole(join(dir, 'dist'), required)) return dir;
      last = new Error('the copy is not whole');
    } catch (err) {
      last = err; // ENOENT: a file (or dist/ itself) went while a build replaced it
    }
    await new Promise((r) => setTimeout(r, 200 * attempt));
  }
  throw new Error(
    `could not copy a whole dist/ to ${dir} in ${ATTEMPTS} attempts (builds running beside this test?): ${String(last)}`,
  );
}
