// Services as child processes for the collector's tests: the configuration owner (the real
// sync-orchestrator: an app never imports another app) and the collector itself where a test
// must kill it (SIGKILL), both built from the current sources and run from a private copy of
// dist/ so a build elsewhere cannot pull files away under them.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { copyBuiltDist, freePortBlock } from '@fleetwatch/testing';

const root = join(__dirname, '../../../..');

export interface OwnerProcess {
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Builds dist/ and copies it to tmp/<name>/dist (copyBuiltDist: a build running beside it cannot spoil the copy). */
export function privateDist(name: string): string {
  return copyBuiltDist(join(root, 'tmp', name), { build: 'always' });
}

export async function startOwner(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
): Promise<OwnerProcess> {
  const port = await freePortBlock(1);
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [join(dist, 'dist/apps/sync-orchestrator/src/main.js')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      AMQP_URL: env.amqpUrl,
      REDIS_URL: env.redisUrl,
      FLEETWATCH_REDIS_PREFIX: env.redisPrefix,
      SYNC_ORCHESTRATOR_PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-6000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sync-orchestrator exited (${child.exitCode}):\n${out}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sync-orchestrator not ready within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    },
  };
}

export interface CollectorProcess {
  readonly url: string;
  readonly pid: number;
  output(): string;
  /** The exit code once it exited (null while it runs, or when a signal ended it). */
  readonly exitCode: number | null;
  /** SIGKILL: no shutdown hook runs. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Starts a collector from `dist` with `env` (AMQP_URL, FLEETWATCH_LOCATION, COLLECTOR_SPOOL_DIR …) and waits for /readyz. */
export async function startCollectorProcess(dist: string, env: Record<string, string>): Promise<CollectorProcess> {
  const port = await freePortBlock(1);
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [join(dist, 'dist/apps/collector/src/main.js')], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, COLLECTOR_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-6000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`collector exited (${child.exitCode}):\n${out}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`collector not ready within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    url,
    pid: child.pid as number,
    output: () => out,
    get exitCode() {
      return child.exitCode;
    },
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    },
  };
}
