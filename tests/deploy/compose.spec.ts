import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SERVICE_PORTS } from '@fleetwatch/config';
import { loadGatewayConfig } from '../../apps/api-gateway/src/config';

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

  it('waits for the migration before starting services', () => {
    for (const svc of SERVICES) expect(compose.services[svc].depends_on).toHaveProperty('migrate');
    expect(compose.services.migrate.build?.target).toBe('migrate');
  });
});

describe('Dockerfile', () => {
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
