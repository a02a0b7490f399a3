import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { copyBuiltDist, freePortBlock } from '@fleetwatch/testing';

// The configuration owner for the gateway's route tests: the real sync-orchestrator,
// built from the current sources and run as a child process (an app never imports
// another app), from a private copy of dist/ so another build cannot pull it away.

const root = join(__dirname, '../../../..');

export interface OwnerProcess {
  readonly url: string;
  /** The last few KB it printed (for failure messages). */
  output(): string;
  /** SIGTERM (graceful: in-flight requests finish), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Below the kernel's ephemeral range: the service's own connections cannot take it before it listens. */
const freePort = (): Promise<number> => freePortBlock(1);

/** Builds dist/ now (so the owner is today's code) and copies it under tmp/<name> (copyBuiltDist). */
export function privateOwnerDist(name: string): string {
  return copyBuiltDist(join(root, 'tmp', name), { build: 'always' });
}

/** The channel-secret key the owner process runs with (FLEETWATCH_ENCRYPTION_KEY). */
export const OWNER_ENCRYPTION_KEY = 'b'.repeat(64);

/**
 * Starts sync-orchestrator on the given servers and waits until it is ready. The shipped default
 * alert rules are not seeded (versions start at 1 with the test's own writes) unless `extraEnv`
 * says FLEETWATCH_DEFAULT_ALERT_RULES=true.
 */
export async function startOwnerProcess(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
  extraEnv: Record<string, string> = {},
): Promise<OwnerProcess> {
  const port = await freePort();
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
      FLEETWATCH_DEFAULT_ALERT_RULES: 'false',
      FLEETWATCH_ENCRYPTION_KEY: OWNER_ENCRYPTION_KEY,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-6000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sync-orchestrator exited (${child.exitCode}):\n${out}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
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
