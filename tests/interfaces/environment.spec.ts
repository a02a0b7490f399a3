import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { loadAggregatorConfig } from '../../apps/aggregator/src/config';
import { loadGatewayConfig } from '../../apps/api-gateway/src/config';
import { loadCollectorConfig } from '../../apps/collector/src/config';
import { loadDockerWatcherConfig } from '../../apps/docker-watcher/src/config';
import { loadK8sWatcherConfig } from '../../apps/k8s-watcher/src/config';
import { loadIngestConfig } from '../../apps/status-ingest/src/config';
import { loadSyncConfig } from '../../apps/sync-orchestrator/src/config';

// The environment of SPEC §10 and §11 as users, scripts and acceptance checks set it: each service's port, the local
// servers' defaults, the variables §11 names — and the configuration tables of README.md and docs/configuration.md
// against what each app's config really reads (captured by reading it through a recording environment).

type Env = Record<string, string | undefined>;
type Loader = (env: Env) => object;

const SERVICES = {
  'api-gateway': loadGatewayConfig,
  'status-ingest': loadIngestConfig,
  collector: loadCollectorConfig,
  aggregator: loadAggregatorConfig,
  'sync-orchestrator': loadSyncConfig,
} satisfies Record<string, Loader>;
type Service = keyof typeof SERVICES;
const WATCHERS = {
  'docker-watcher': loadDockerWatcherConfig,
  'k8s-watcher': loadK8sWatcherConfig,
} satisfies Record<string, Loader>;
const ALL: Record<string, Loader> = { ...SERVICES, ...WATCHERS };
/** What a watcher cannot start without. */
const REQUIRED: Env = { FLEETWATCH_INGEST_API_KEY: 'k' };

/** Loads an app's config from `env`, recording every variable it reads. */
function load(app: string, env: Env = {}): { config: Record<string, unknown>; read: Set<string> } {
  const read = new Set<string>();
  const recording = new Proxy(
    { ...REQUIRED, ...env },
    {
      get(target, key) {
        if (typeof key === 'string') read.add(key);
        return (target as Env)[key as string];
      },
    },
  );
  return { config: ALL[app](recording) as Record<string, unknown>, read };
}

describe('SPEC §11 ports and §10 defaults', () => {
  it.each<[Service, string, number]>([
    ['api-gateway', 'API_GATEWAY_PORT', 3000],
    ['status-ingest', 'STATUS_INGEST_PORT', 3001],
    ['collector', 'COLLECTOR_PORT', 3002],
    ['aggregator', 'AGGREGATOR_PORT', 3003],
    ['sync-orchestrator', 'SYNC_ORCHESTRATOR_PORT', 3004],
  ])('%s listens on %s, default %d', (service, variable, port) => {
    expect(load(service).config['port']).toBe(port);
    expect(load(service, { [variable]: '4567' }).config['port']).toBe(4567);
  });

  it.each(Object.keys(SERVICES) as Service[])('%s: the local servers by default, as §10 writes them', (service) => {
    const { config } = load(service);
    expect(config['amqpUrl']).toBe('amqp://guest:guest@127.0.0.1:5672');
    if (service !== 'collector') {
      expect(config['databaseUrl']).toBe('postgresql://postgres@127.0.0.1:5432/fleetwatch');
      expect(config['redisUrl']).toBe('redis://127.0.0.1:6379');
    }
  });

  it.each(Object.keys(SERVICES) as Service[])('%s reads FLEETWATCH_SITE, _ROLE and _LOCATION', (service) => {
    expect(load(service).config).toMatchObject({ site: 'local', role: 'standalone', location: 'local' });
    const { config } = load(service, {
      FLEETWATCH_SITE: 'berlin',
      FLEETWATCH_ROLE: 'member',
      FLEETWATCH_LOCATION: 'lab-2',
      DATABASE_URL: 'postgres://u:p@db.example:5433/fw',
      REDIS_URL: 'redis://cache.example:6380',
      AMQP_URL: 'amqps://u:p@bus.example:5671/site',
    });
    expect(config).toMatchObject({ site: 'berlin', role: 'member', location: 'lab-2' });
    expect(config['amqpUrl']).toBe('amqps://u:p@bus.example:5671/site');
    if (service !== 'collector') {
      expect(config['databaseUrl']).toBe('postgres://u:p@db.example:5433/fw');
      expect(config['redisUrl']).toBe('redis://cache.example:6380');
    }
  });

  it('FLEETWATCH_ADMIN_PASSWORD is the first admin’s password, whatever its length', () => {
    expect(load('api-gateway', { FLEETWATCH_ADMIN_PASSWORD: 'admin' }).config['adminPassword']).toBe('admin');
    expect(load('api-gateway').config['adminPassword']).toBeUndefined();
  });

  it('FLEETWATCH_LEADER_CONFIG reaches sync-orchestrator', () => {
    const members = '[{"name":"m1","url":"http://m1:3000"}]';
    expect(load('sync-orchestrator', { FLEETWATCH_LEADER_CONFIG: members }).config['leaderConfig']).toBe(members);
  });

  it('FLEETWATCH_CHECK_DENY_NETWORKS replaces the default list wherever checks or channels connect', () => {
    const deny = (service: Service, env: Env = {}) => {
      const config = load(service, env).config;
      return service === 'aggregator'
        ? (config['alertDelivery'] as { denyNetworks: string[] }).denyNetworks
        : config['denyNetworks'];
    };
    for (const service of ['collector', 'sync-orchestrator', 'aggregator'] as const) {
      expect(deny(service)).toEqual([...DEFAULT_DENY_NETWORKS]);
      expect(deny(service, { FLEETWATCH_CHECK_DENY_NETWORKS: '10.0.0.0/8, 127.0.0.0/8' })).toEqual([
        '10.0.0.0/8',
        '127.0.0.0/8',
      ]);
      // A value naming no network keeps the default; only `none` denies nothing.
      expect(deny(service, { FLEETWATCH_CHECK_DENY_NETWORKS: ' , ' })).toEqual([...DEFAULT_DENY_NETWORKS]);
      expect(deny(service, { FLEETWATCH_CHECK_DENY_NETWORKS: 'none' })).toEqual([]);
    }
  });
});

// ---- the configuration tables ----

const root = join(__dirname, '../..');
/** Read by code outside the config loaders (libraries, the build): documented, never validated. */
const READ_ELSEWHERE = new Set(['KUBECONFIG', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'FLEETWATCH_VERSION']);

interface Row {
  file: string;
  section: string;
  names: string[];
  usedBy: string;
}

/** Rows of the tables whose first cell names variables (`NAME`, `NAME_A`, `_SUFFIX` after a full name). */
function rowsOf(file: string): Row[] {
  const rows: Row[] = [];
  let section = '';
  for (const line of readFileSync(join(root, file), 'utf8').split('\n')) {
    if (line.startsWith('#')) section = line.replace(/^#+\s*/, '');
    if (!line.startsWith('| `')) continue;
    const cells = line.split('|').map((c) => c.trim());
    const names = [...cells[1].matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]);
    if (names.length) rows.push({ file, section, names, usedBy: cells[3] ?? '' });
  }
  return rows;
}
const rows = [...rowsOf('README.md'), ...rowsOf('docs/configuration.md')];

const reads: Record<string, Set<string>> = Object.fromEntries(Object.keys(ALL).map((app) => [app, load(app).read]));
const readersOf = (name: string) => Object.keys(reads).filter((app) => reads[app].has(name));

/** The apps a README "used by" cell names. */
function usedByOf(cell: string): string[] {
  const services = Object.keys(SERVICES);
  if (cell === 'all') return services;
  if (cell === 'all but collector') return services.filter((s) => s !== 'collector');
  if (cell === 'both') return Object.keys(WATCHERS);
  return cell.split(',').map((s) => s.trim());
}

/** The app a docs/configuration.md section is about (`## status-ingest (:3001)`), or null. */
const appOfSection = (section: string) => Object.keys(ALL).find((app) => section.startsWith(`${app} (`)) ?? null;

describe('README.md and docs/configuration.md list the environment each app reads', () => {
  it('every variable an app reads is in a table — under that app', () => {
    const missing: string[] = [];
    for (const [app, names] of Object.entries(reads)) {
      for (const name of names) {
        const listed = rows.some(
          (r) =>
            r.names.includes(name) &&
            (r.file === 'README.md'
              ? usedByOf(r.usedBy).includes(app)
              : appOfSection(r.section) === app || (r.section.startsWith('Postgres connections') && app in SERVICES)),
        );
        if (!listed) missing.push(`${app}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every variable in a table is read by the apps it is listed under, and none is listed that nothing reads', () => {
    const wrong: string[] = [];
    for (const r of rows) {
      for (const name of r.names) {
        if (READ_ELSEWHERE.has(name)) continue;
        const readers = readersOf(name);
        if (readers.length === 0) {
          wrong.push(`${r.file} (${r.section}): ${name} is read by no app`);
          continue;
        }
        const listed = r.file === 'README.md' ? usedByOf(r.usedBy) : [appOfSection(r.section)].filter(Boolean);
        for (const app of listed)
          if (!readers.includes(app as string)) wrong.push(`${r.file} (${r.section}): ${name} is not read by ${app}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
