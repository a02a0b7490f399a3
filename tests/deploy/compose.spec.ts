import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SERVICE_PORTS } from '@fleetwatch/config';
import { loadAggregatorConfig } from '../../apps/aggregator/src/config';
import { loadGatewayConfig } from '../../apps/api-gateway/src/config';
import { loadCollectorConfig } from '../../apps/collector/src/config';
import { loadIngestConfig } from '../../apps/status-ingest/src/config';
import { loadSyncConfig } from '../../apps/sync-orchestrator/src/config';

// No Docker engine here: these tests keep docker-compose.yml and the Dockerfile
// honest by reading them against the code.
const root = join(__dirname, '../..');
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      build?: { dockerfile?: string; target?: string };
      environment?: Record<string, unknown>;
      ports?: string[];
      depends_on?: Record<string, unknown>;
    }
  >;
};
const dockerfile = readFileSync(join(root, 'deploy/docker/Dockerfile'), 'utf8');
const stages = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);

function sources(dir: string, acc: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'generated' || name === 'dist') continue;
    if (statSync(p).isDirectory()) sources(p, acc);
    else if (/\.(ts|mjs)$/.test(name) && !/\.(spec|int-spec)\.ts$/.test(name)) acc.push(p);
  }
  return acc;
}
const code = [...sources(join(root, 'apps')), ...sources(join(root, 'libs')), ...sources(join(root, 'tools'))]
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

const SERVICES = Object.keys(SERVICE_PORTS) as (keyof typeof SERVICE_PORTS)[];

const LOADERS: Record<(typeof SERVICES)[number], (env: Record<string, string | undefined>) => unknown> = {
  'api-gateway': loadGatewayConfig,
  'status-ingest': loadIngestConfig,
  collector: loadCollectorConfig,
  aggregator: loadAggregatorConfig,
  'sync-orchestrator': loadSyncConfig,
};
/** The variables a service's config reads (through a recording environment). */
function readBy(svc: (typeof SERVICES)[number]): Set<string> {
  const read = new Set<string>();
  LOADERS[svc](
    new Proxy({} as Record<string, string | undefined>, {
      get(_target, key) {
        if (typeof key === 'string') read.add(key);
        return undefined;
      },
    }),
  );
  return read;
}

/**
 * A value as Compose interpolates it from `shell` (the operator's environment and .env): `${NAME}`, `${NAME:-default}`
 * and `${NAME-default}`, the default interpolated in turn (nesting), `$$` a dollar.
 */
function interpolate(value: string, shell: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < value.length;) {
    if (value.startsWith('$$', i)) {
      out += '$';
      i += 2;
    } else if (value.startsWith('${', i)) {
      // The matching brace: nested `${` open, `}` close.
      let depth = 1;
      let end = i + 2;
      for (; end < value.length && depth > 0; end++) {
        if (value.startsWith('${', end)) {
          depth++;
          end++;
        } else if (value[end] === '}') depth--;
      }
      end--; // at the matching `}`
      if (depth > 0) throw new Error(`unclosed \${ in ${value}`);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([\s\S]*))?$/.exec(value.slice(i + 2, end));
      if (!m) throw new Error(`not a substitution this test knows: ${value.slice(i, end + 1)}`);
      const [, name, op, fallback] = m;
      const set = shell[name];
      const useDefault = op === ':-' ? !set : op === '-' ? set === undefined : false;
      out += useDefault ? interpolate(fallback, shell) : (set ?? '');
      i = end + 1;
    } else out += value[i++];
  }
  return out;
}

describe('docker-compose.yml', () => {
  it('runs the three servers, a migration step and the five services', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['postgres', 'redis', 'rabbitmq', 'migrate', ...SERVICES]),
    );
    expect(compose.services.rabbitmq).toMatchObject({});
    expect(JSON.stringify(compose.services.rabbitmq)).toContain('management');
  });

  it.each(SERVICES)('%s: built from an existing Dockerfile stage whose entry point exists', (svc) => {
    const s = compose.services[svc];
    expect(s.build?.dockerfile).toBe('deploy/docker/Dockerfile');
    expect(stages).toContain(s.build?.target);
    const cmd = new RegExp(`FROM runtime AS ${svc}[\\s\\S]*?CMD \\[.*"dist/apps/${svc}/src/main.js"\\]`);
    expect(dockerfile).toMatch(cmd);
    expect(statSync(join(root, 'apps', svc, 'src/main.ts')).isFile()).toBe(true);
  });

  it.each(SERVICES)('%s: publishes the SPEC port and sets its port variable', (svc) => {
    const { variable, port } = SERVICE_PORTS[svc];
    expect(compose.services[svc].ports).toContain(`${port}:${port}`);
    expect(String(compose.services[svc].environment?.[variable])).toBe(String(port));
    expect(dockerfile).toMatch(new RegExp(`AS ${svc}\\nEXPOSE ${port}`));
  });

  it("the gateway reads the other services' versions at their containers, on their ports", () => {
    const value = compose.services['api-gateway'].environment?.['FLEETWATCH_COMPONENT_URLS'];
    expect(loadGatewayConfig({ FLEETWATCH_COMPONENT_URLS: String(value) }).componentUrls).toEqual(
      Object.fromEntries(
        SERVICES.filter((s) => s !== 'api-gateway').map((s) => [s, `http://${s}:${SERVICE_PORTS[s].port}`]),
      ),
    );
  });

  it.each(SERVICES)('%s: every environment variable it sets is read by the code', (svc) => {
    for (const name of Object.keys(compose.services[svc].environment ?? {})) {
      expect({ name, read: code.includes(name) }).toEqual({ name, read: true });
    }
  });

  it("a variable taken from the operator's shell reaches every service that reads it", () => {
    // FLEETWATCH_ENCRYPTION_KEY given to sync-orchestrator alone: it sealed channel secrets the aggregator could not
    // open (those channels were never sent); FLEETWATCH_CHECK_DENY_NETWORKS given to the collector alone: the save-time
    // check and notification delivery kept the default list.
    const fromShell = new Set(
      SERVICES.flatMap((svc) =>
        Object.entries(compose.services[svc].environment ?? {})
          .filter(([name, value]) => String(value).includes(`\${${name}`))
          .map(([name]) => name),
      ),
    );
    const missing: string[] = [];
    for (const svc of SERVICES) {
      const read = readBy(svc);
      for (const name of fromShell)
        if (read.has(name) && !(name in (compose.services[svc].environment ?? {}))) missing.push(`${svc}: ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it("names the collector's host the same at every recreate, after the operator's choice or the location", () => {
    // Unset, the collector named its host after the container (hostname(): the container id), new whenever compose
    // recreates it: a new host each time, the old one STALE until retired.
    const value = String(compose.services.collector.environment?.['COLLECTOR_HOST_ID']);
    const hostId = (shell: Record<string, string>) =>
      loadCollectorConfig({
        FLEETWATCH_LOCATION: interpolate(
          String(compose.services.collector.environment?.['FLEETWATCH_LOCATION']),
          shell,
        ),
        COLLECTOR_HOST_ID: interpolate(value, shell),
      }).hostId;
    expect(hostId({})).toBe('local/docker-host');
    // Whatever the shell that runs compose holds besides (sudo keeps no HOSTNAME; a login shell may export one).
    expect(hostId({ HOSTNAME: 'box-1', USER: 'ops' })).toBe('local/docker-host');
    expect(hostId({ FLEETWATCH_LOCATION: 'lab-2' })).toBe('lab-2/docker-host');
    expect(hostId({ FLEETWATCH_LOCATION: 'lab-2', COLLECTOR_HOST_ID: 'db-box-1' })).toBe('db-box-1');
  });

  it("keeps the collector's spool on a named volume the image's user owns: a recreated container keeps its results", () => {
    const collector = compose.services.collector as { environment?: Record<string, unknown>; volumes?: string[] };
    const dir = String(collector.environment?.['COLLECTOR_SPOOL_DIR']);
    expect(loadCollectorConfig({ COLLECTOR_SPOOL_DIR: dir }).spool.dir).toBe(dir);
    const mount = (collector.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === dir);
    expect(mount).toBeDefined();
    const [volume] = mount as string[];
    expect(volume).toMatch(/^[a-z][\w-]*$/); // a named volume, not a path on the Docker host
    expect(Object.keys((compose as unknown as { volumes: Record<string, unknown> }).volumes)).toContain(volume);
    // A new named volume takes the owner of the image's directory: made and given to the user the collector runs as.
    const stage = dockerfile.split(/^FROM /m).find((s) => /^\S+\s+AS\s+collector\b/i.test(s)) ?? '';
    expect(stage).toMatch(new RegExp(`mkdir -p ${dir} && chown node:node ${dir}`));
    expect(
      stage
        .trim()
        .split('\n')
        .filter((l) => /^USER /.test(l))
        .at(-1),
    ).toBe('USER node');
  });

  it('waits for the migration before starting services', () => {
    for (const svc of SERVICES) expect(compose.services[svc].depends_on).toHaveProperty('migrate');
    expect(compose.services.migrate.build?.target).toBe('migrate');
  });
});

describe('Dockerfile', () => {
  /** The stage's HEALTHCHECK command run with `env` beside a server answering /healthz; its exit code. */
  async function healthcheck(stage: string, env: Record<string, string>, port: number): Promise<number | null> {
    const section = dockerfile.slice(dockerfile.indexOf(`AS ${stage}\n`));
    const script = /^HEALTHCHECK .*? CMD node -e "(.*)"$/m.exec(section)?.[1];
    if (!script) throw new Error(`no HEALTHCHECK in ${stage}`);
    const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const child = spawn(process.execPath, ['-e', script], {
        env: { ...env, PATH: process.env.PATH },
        stdio: 'ignore',
      });
      return await new Promise((r) => child.on('exit', (code) => r(code)));
    } finally {
      server.close();
    }
  }

  it.each(SERVICES)("%s: its HEALTHCHECK asks the port its variable sets, else SPEC's", async (svc) => {
    const { variable, port } = SERVICE_PORTS[svc];
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const free = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    // Ports overridable by environment (SPEC §11): a container given another port must not be reported unhealthy.
    expect(await healthcheck(svc, { [variable]: String(free) }, free)).toBe(0);
    expect(dockerfile).toMatch(new RegExp(`process\\.env\\.${variable}\\|\\|${port}\\)`));
  });

  it('is multi-stage and runs every service as a non-root user', () => {
    expect(stages).toEqual(expect.arrayContaining(['deps', 'build', 'runtime', 'migrate', ...SERVICES]));
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).toMatch(/^USER node$/m);
    // A stage that switches to root must switch back.
    const migrate = dockerfile.slice(dockerfile.indexOf('AS migrate'), dockerfile.indexOf('AS api-gateway'));
    expect(
      migrate
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('USER'))
        .pop(),
    ).toBe('USER node');
  });
});
