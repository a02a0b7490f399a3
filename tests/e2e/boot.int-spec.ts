import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { testEnv, waitFor } from '@fleetwatch/testing';

// Issue 9 must-shows: bad URLs exit naming the variable; `npm start` brings the
// five services up and SIGINT stops them all within 10 s with exit 0.
const root = join(__dirname, '../..');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
  options: { group?: boolean } = {},
): { child: ChildProcess; exit: Promise<Exit>; output: () => string } {
  const child = spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own (the launcher and the services it starts), to signal as a terminal's Ctrl-C does.
    detached: options.group === true,
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<Exit>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
  return { child, exit, output: () => output };
}

const service = (name: string) => join(root, 'dist/apps', name, 'src/main.js');

describe('service boot', () => {
  const env = () => {
    const t = testEnv();
    return {
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      AMQP_URL: t.amqpUrl,
      FLEETWATCH_REDIS_PREFIX: `${t.redisPrefix}boot:`,
      FLEETWATCH_BOOT_TIMEOUT_SECONDS: '5',
      SYNC_ORCHESTRATOR_PORT: '13904',
    };
  };

  it.each([
    ['AMQP_URL', 'not-a-url', 78, /AMQP_URL: not a valid URL/],
    ['AMQP_URL', 'http://127.0.0.1:5672', 78, /AMQP_URL: scheme "http:"/],
    ['DATABASE_URL', 'mysql://127.0.0.1/x', 78, /DATABASE_URL: scheme "mysql:"/],
    ['SYNC_ORCHESTRATOR_PORT', '99999', 78, /SYNC_ORCHESTRATOR_PORT: must be 1–65535/],
  ])('%s=%s is refused before anything starts (exit %d)', async (variable, value, code, message) => {
    const r = await run(process.execPath, [service('sync-orchestrator')], { ...env(), [variable]: value }, 20_000).exit;
    expect(r.code).toBe(code);
    expect(r.output).toMatch(message);
  });

  it('a database that does not exist exits 1 naming DATABASE_URL', async () => {
    const url = new URL(testEnv().databaseUrl);
    url.pathname = '/fw_no_such_database';
    const r = await run(
      process.execPath,
      [service('sync-orchestrator')],
      { ...env(), DATABASE_URL: url.toString() },
      20_000,
    ).exit;
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/DATABASE_URL: PostgreSQL at .*fw_no_such_database.*does not exist/);
  });

  it('refused RabbitMQ credentials exit 1 naming AMQP_URL, with the password masked', async () => {
    const url = new URL(testEnv().amqpUrl);
    url.username = 'guest';
    url.password = 'wrong-secret';
    const r = await run(
      process.execPath,
      [service('sync-orchestrator')],
      { ...env(), AMQP_URL: url.toString() },
      30_000,
    ).exit;
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/AMQP_URL: RabbitMQ at amqp:\/\/guest:\*\*\*@/);
    expect(r.output).not.toContain('wrong-secret');
  });

  it('an unreachable server exits 1 naming it after the boot timeout', async () => {
    const r = await run(
      process.execPath,
      [service('sync-orchestrator')],
      { ...env(), REDIS_URL: 'redis://127.0.0.1:1', FLEETWATCH_BOOT_TIMEOUT_SECONDS: '2' },
      30_000,
    ).exit;
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/REDIS_URL: Redis at redis:\/\/127\.0\.0\.1:1.*gave up after 2 s/);
  });
});

describe('npm start', () => {
  it('brings all five /readyz up, and Ctrl-C (SIGINT to the process group) stops them all cleanly within 10 s', async () => {
    const t = testEnv();
    const db = new URL(t.databaseUrl);
    db.pathname = `/${t.databaseName}_start`; // created by the launcher; dropped by the run's teardown (same prefix)
    const ports = {
      API_GATEWAY_PORT: '13000',
      STATUS_INGEST_PORT: '13001',
      COLLECTOR_PORT: '13002',
      AGGREGATOR_PORT: '13003',
      SYNC_ORCHESTRATOR_PORT: '13004',
    };
    const started = run(
      'node',
      ['tools/launcher/start.mjs'],
      {
        ...ports,
        DATABASE_URL: db.toString(),
        REDIS_URL: t.redisUrl,
        AMQP_URL: t.amqpUrl,
        FLEETWATCH_REDIS_PREFIX: `${t.redisPrefix}start:`,
        FLEETWATCH_ADMIN_PASSWORD: 'start-test-password',
        // Each service's "<name> stopped" line is looked for below.
        LOG_LEVEL: 'info',
      },
      240_000,
      { group: true },
    );
    const group = -(started.child.pid as number);
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(group, signal);
      } catch {
        // The group is gone already.
      }
    };
    try {
      await waitFor(() => started.output().includes('Fleetwatch is up.') || started.child.exitCode !== null, {
        timeoutMs: 200_000,
        intervalMs: 250,
        description: 'launcher to report the site is up',
      });
      expect(started.output()).toContain('Fleetwatch is up.');
      for (const port of Object.values(ports)) {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect({ port, status: res.status }).toEqual({ port, status: 200 });
      }
      const t0 = Date.now();
      // As a terminal's Ctrl-C: every process of the group gets SIGINT, and the launcher forwards one more to each
      // service. Each stops once, cleanly, and says so (a second SIGINT used to meet Node's default action mid-shutdown
      // and kill the service: the race is bootstrap.spec's, deterministically).
      signalGroup('SIGINT');
      const r = await started.exit;
      expect(r.code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r.output).not.toContain('did not stop cleanly');
      expect(r.output).toContain('all services stopped');
      for (const name of ['api-gateway', 'status-ingest', 'collector', 'aggregator', 'sync-orchestrator'])
        expect({ name, stopped: r.output.includes(`${name} stopped`) }).toEqual({ name, stopped: true });
      for (const port of Object.values(ports))
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      signalGroup('SIGKILL');
    }
  }, 300_000);
});
