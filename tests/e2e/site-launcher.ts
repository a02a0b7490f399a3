import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  copyBuiltDist,
  createIsolatedDatabase,
  createIsolatedVhost,
  freePortBlock,
  type IsolatedDatabase,
  type IsolatedVhost,
  testEnv,
  waitFor,
} from '@fleetwatch/testing';

// A whole site of built services for tests across running services, on this run's
// isolated resources: its own database (cloned from the run's migrated template), vhost
// and Redis key prefix. Each service runs from a private copy of dist/ (another build,
// which empties dist/, cannot pull it away mid-test), on a free port, in a working
// directory of its own (relative defaults such as the collector's spool and assignment
// cache cannot collide between two collectors), with the tail of its output kept for
// the failure message and the whole of it in <dir>/logs/<name>.log (tmp/e2e-<site>-<run id>/;
// removed at stop() unless FW_E2E_KEEP=1; FW_E2E_LOG_LEVEL sets the services' LOG_LEVEL, default warn).

const root = join(__dirname, '../..');

export type ServiceKind = 'api-gateway' | 'status-ingest' | 'aggregator' | 'collector' | 'sync-orchestrator';

const PORT_VARIABLE: Record<ServiceKind, string> = {
  'api-gateway': 'API_GATEWAY_PORT',
  'status-ingest': 'STATUS_INGEST_PORT',
  collector: 'COLLECTOR_PORT',
  aggregator: 'AGGREGATOR_PORT',
  'sync-orchestrator': 'SYNC_ORCHESTRATOR_PORT',
};

export const E2E_ADMIN_PASSWORD = 'e2e-admin-password';

/** A port nothing listens on right now (the OS's pick; released before the service binds it). */
/**
 * A port for a service the test spawns, drawn below the kernel's ephemeral range (freePortBlock): a port `listen(0)`
 * hands out may be taken by any outgoing connection the machine opens before the service binds it.
 */
export function freePort(): Promise<number> {
  return freePortBlock(1);
}

export interface StartOptions {
  /** Unique within the site (default: the kind); names the log file and working directory. */
  name?: string;
  /** On top of the site's environment. */
  env?: Record<string, string>;
  /** Wait for /readyz (default true). */
  ready?: boolean;
  readyTimeoutMs?: number;
  /** Extra Node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export class RunningService {
  private tail = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly kind: ServiceKind,
    readonly port: number,
    readonly dir: string,
    readonly child: ChildProcess,
    logFile: string,
  ) {
    const keep = (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString()).slice(-6000);
      appendFileSync(logFile, chunk);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last few KB it printed. */
  output(): string {
    return this.tail;
  }

  async waitReady(timeoutMs = 90_000): Promise<void> {
    try {
      await waitFor(
        async () => {
          // A service that exits while starting ends the wait at once (reported below).
          if (!this.running) return true;
          const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
          if (res.status !== 200) throw new Error(`/readyz ${res.status}: ${(await res.text()).slice(0, 300)}`);
          return true;
        },
        { timeoutMs, intervalMs: 200, description: `${this.name} /readyz` },
      );
      if (!this.running)
        throw new Error(`${this.name} exited (${this.child.signalCode ?? this.child.exitCode}) before it was ready`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${this.name} output ---\n${this.tail}`);
    }
  }

  /** SIGINT (graceful), SIGKILL after `graceMs`. Resolves once it has exited. */
  async stop(graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }

  kill(): Promise<unknown> {
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }
}

export interface E2eSite {
  readonly name: string;
  readonly db: IsolatedDatabase;
  readonly vhost: IsolatedVhost;
  readonly redisPrefix: string;
  /** What every service gets (database, vhost, Redis prefix, site name, admin password). */
  readonly env: Record<string, string>;
  /** Private directory of this site (dist copy, working directories, logs). */
  readonly dir: string;
  start(kind: ServiceKind, options?: StartOptions): Promise<RunningService>;
  service(name: string): RunningService;
  /** Stops every service (SIGINT, then SIGKILL), drops the database and vhost, removes the directory. */
  stop(): Promise<void>;
}

/** Builds dist/ when it is missing, then copies it for this site (copyBuiltDist). */
function privateDist(dir: string): void {
  copyBuiltDist(dir, { required: Object.keys(PORT_VARIABLE).map((kind) => `apps/${kind}/src/main.js`) });
}

/** A site on fresh isolated resources; nothing runs until start(). */
export async function createSite(name: string, extraEnv: Record<string, string> = {}): Promise<E2eSite> {
  const t = testEnv();
  // Per worker (scope): two files running side by side may name their sites alike.
  const dir = join(root, 'tmp', `e2e-${name}-${t.scope}`);
  privateDist(dir);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const [db, vhost] = await Promise.all([createIsolatedDatabase(), createIsolatedVhost(name)]);
  // Under the run's prefix: the run's teardown deletes the keys even when stop() is never reached.
  const redisPrefix = `${t.redisPrefix}${name}:`;
  const env: Record<string, string> = {
    DATABASE_URL: db.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: t.redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_SITE: 'e2e',
    FLEETWATCH_ADMIN_PASSWORD: E2E_ADMIN_PASSWORD,
    FLEETWATCH_BOOT_TIMEOUT_SECONDS: '60',
    LOG_LEVEL: process.env['FW_E2E_LOG_LEVEL'] ?? 'warn',
    // Each service gets its port when started: the gateway asks none for its version (not whatever listens on the
    // default ports).
    FLEETWATCH_COMPONENT_URLS: 'none',
    ...extraEnv,
  };
  const services = new Map<string, RunningService>();

  const start = async (kind: ServiceKind, options: StartOptions = {}): Promise<RunningService> => {
    const serviceName = options.name ?? kind;
    if (services.get(serviceName)?.running) throw new Error(`${serviceName} is already running`);
    const port = await freePort();
    const cwd = join(dir, 'work', serviceName);
    mkdirSync(cwd, { recursive: true });
    const base: Record<string, string | undefined> = { ...process.env };
    // The test runner's own settings must not leak into the services.
    delete base['NODE_OPTIONS'];
    const child = spawn(
      process.execPath,
      ['--enable-source-maps', ...(options.nodeArgs ?? []), join(dir, 'dist/apps', kind, 'src/main.js')],
      {
        cwd,
        env: { ...base, ...env, ...options.env, [PORT_VARIABLE[kind]]: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const svc = new RunningService(serviceName, kind, port, cwd, child, join(dir, 'logs', `${serviceName}.log`));
    services.set(serviceName, svc);
    if (options.ready !== false) await svc.waitReady(options.readyTimeoutMs);
    return svc;
  };

  return {
    name,
    db,
    vhost,
    redisPrefix,
    env,
    dir,
    start,
    service(serviceName) {
      const svc = services.get(serviceName);
      if (!svc) throw new Error(`no service ${serviceName} in site ${name}`);
      return svc;
    },
    async stop() {
      await Promise.allSettled([...services.values()].map((s) => s.stop()));
      await Promise.allSettled([vhost.dispose(), db.dispose()]);
      if (process.env['FW_E2E_KEEP'] !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
}
