import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { OWNER_ENCRYPTION_KEY } from '../checks/owner-process.int-helpers';
import { freePortBlock } from '@fleetwatch/testing';

// The aggregator for the gateway's test-send route tests: the real service, run as a child process from a
// private copy of dist/ (privateOwnerDist builds it), with the same channel-secret key as the owner process.

const root = join(__dirname, '../../../..');

export interface AggregatorProcess {
  readonly url: string;
  /** The last few KB it printed. */
  output(): string;
  stop(): Promise<void>;
}

/** Below the kernel's ephemeral range: the service's own connections cannot take it before it listens. */
const freePort = (): Promise<number> => freePortBlock(1);

export async function startAggregatorProcess(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
  extraEnv: Record<string, string> = {},
): Promise<AggregatorProcess> {
  const port = await freePort();
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [join(dist, 'dist/apps/aggregator/src/main.js')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      AMQP_URL: env.amqpUrl,
      REDIS_URL: env.redisUrl,
      FLEETWATCH_REDIS_PREFIX: env.redisPrefix,
      AGGREGATOR_PORT: String(port),
      LOG_LEVEL: 'info',
      FLEETWATCH_ENCRYPTION_KEY: OWNER_ENCRYPTION_KEY,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`aggregator exited (${child.exitCode}):\n${out}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`aggregator not ready within 45 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 250));
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

/**
 * The aggregator beside a test gateway: on its database and Redis prefix, on the vhost given (the gateway's own may
 * reach the broker through a proxy the test cuts), sweeping every 200 ms and committing after 20 ms.
 */
export function startAggregatorBeside(
  dist: string,
  gw: { database: { databaseUrl: string }; config: { redisUrl: string; redisPrefix: string } },
  amqpUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<AggregatorProcess> {
  return startAggregatorProcess(
    dist,
    { databaseUrl: gw.database.databaseUrl, amqpUrl, redisUrl: gw.config.redisUrl, redisPrefix: gw.config.redisPrefix },
    { SWEEP_INTERVAL_MS: '200', AGGREGATOR_BATCH_WAIT_MS: '20', LOG_LEVEL: 'warn', ...extraEnv },
  );
}
