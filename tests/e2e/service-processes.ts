import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKeysRepository, createPrismaClient, generateApiKey } from '@fleetwatch/persistence';
import { copyBuiltDist, freePortBlock, testEnv } from '@fleetwatch/testing';

// Built services as child processes for the heavy e2e tests (memory flood, broker
// alarm): run from a private copy of dist/ — another build (which empties dist/)
// cannot pull it away mid-test — with the tail of each one's output kept for the
// failure message, killed hard at the end.

const root = join(__dirname, '../..');

export class ServiceProcesses {
  private readonly children: ChildProcess[] = [];
  private readonly output = new Map<string, string>();
  private readonly dir: string;

  constructor(name: string) {
    this.dir = copyBuiltDist(join(root, 'tmp', `${name}-${testEnv().scope}`));
  }

  start(service: 'status-ingest' | 'aggregator', env: Record<string, string>, nodeOptions?: string): ChildProcess {
    const child = spawn(process.execPath, [join(this.dir, 'dist/apps', service, 'src/main.js')], {
      cwd: root,
      env: { ...process.env, ...env, LOG_LEVEL: 'warn', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.output.set(service, '');
    const keep = (d: Buffer) =>
      this.output.set(service, ((this.output.get(service) ?? '') + d.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.children.push(child);
    return child;
  }

  /** The last few KB a service printed. */
  outputOf(service: string): string {
    return this.output.get(service) ?? '';
  }

  async killAll(): Promise<void> {
    await Promise.all(
      this.children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? null
          : new Promise((resolve) => {
              c.once('exit', resolve);
              c.kill('SIGKILL');
            }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An `ingest` API key made straight in the site's database (no gateway running); returns the key to send. */
export async function createIngestKey(databaseUrl: string, name: string): Promise<string> {
  const prisma = createPrismaClient(databaseUrl, { poolSize: 1 });
  try {
    const generated = generateApiKey();
    await new ApiKeysRepository(prisma).create({
      name,
      prefix: generated.prefix,
      keyHash: generated.keyHash,
      scopes: ['ingest'],
      allowedCidrs: [],
    });
    return generated.key;
  } finally {
    await prisma.$disconnect();
  }
}

/** Two free ports and the environment of a site on the test's database, vhost and a Redis prefix of its own. */
export async function siteEnv(
  name: string,
  databaseUrl: string,
  amqpUrl: string,
): Promise<{ ports: { ingest: number; aggregator: number }; env: Record<string, string> }> {
  const base = await freePortBlock(2);
  return {
    ports: { ingest: base, aggregator: base + 1 },
    env: {
      DATABASE_URL: databaseUrl,
      AMQP_URL: amqpUrl,
      REDIS_URL: testEnv().redisUrl,
      FLEETWATCH_REDIS_PREFIX: `${testEnv().redisPrefix}${name}:`,
      FLEETWATCH_SITE: 'test',
    },
  };
}
