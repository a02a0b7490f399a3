import { Client } from 'pg';
import { createTargetPolicy } from '@fleetwatch/domain';
import { BusConnection, BusPublisher, silentBusLogger } from '@fleetwatch/messaging';
import {
  AlertConfigRepository,
  ChecksRepository,
  closeSqlPool,
  ConfigVersionsRepository,
  createSqlPool,
  PropertiesRepository,
  PushMonitorsRepository,
  StatusPagesRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { ConfigAsCodeService } from './config-as-code.service';
import { ConfigChangedRelay } from './config-changed.relay';
import { ConfigWriter } from './config-writer';
import { ALICE, BOB, ConfigTestServers, quietLogger } from './config.int-helpers';
import { ConfigService } from './config.service';
import { PushMonitors } from './push-monitors';

// An import runs inside the writer's transaction, which holds one pool connection and config_head's lock.
// Everything it reads there must go through that transaction: a read on another pool connection waits for
// one to be free — and with the pool's other connections held by writers queued on the same lock, none
// frees up until the pool's connect timeout fails the import (every config write stalled meanwhile).

jest.setTimeout(60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let servers: ConfigTestServers;
let pool: SqlPool;
let lock: Client;
let config: ConfigService;
let asCode: ConfigAsCodeService;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-import-pool');
  // As small as a writer and one queued writer need (the service's pool: 4, with up to 8 requests at once).
  pool = createSqlPool(servers.db.databaseUrl, { max: 2, connectionTimeoutMs: 3_000 });
  const checks = new ChecksRepository(pool);
  const versions = new ConfigVersionsRepository(pool);
  const publisher = new BusPublisher(new BusConnection({ url: 'amqp://127.0.0.1:1', logger: silentBusLogger }), {
    source: { site: 'test-site', service: 'sync-orchestrator', location: 'lab-1' },
  });
  const writer = new ConfigWriter(pool, checks, versions, new ConfigChangedRelay(publisher, versions, quietLogger));
  const monitors = new PushMonitors(new PushMonitorsRepository(pool));
  const policy = createTargetPolicy([]);
  config = new ConfigService(writer, checks, versions, monitors, policy);
  asCode = new ConfigAsCodeService(
    writer,
    checks,
    monitors,
    policy,
    new AlertConfigRepository(pool),
    versions,
    null,
    new StatusPagesRepository(pool),
    new PropertiesRepository(pool),
  );
  lock = new Client({ connectionString: servers.db.databaseUrl });
  await lock.connect();
});

afterAll(async () => {
  await lock?.end();
  if (pool) await closeSqlPool(pool);
  await servers?.dispose();
});

it('an import with a status page section, with another writer queued behind it, reads through its own transaction', async () => {
  // Hold config_head so the import and then another write queue on it, each on its pool connection.
  await lock.query('BEGIN');
  await lock.query('SELECT version FROM config_head WHERE id = 1 FOR UPDATE');
  const yaml = [
    'checks:',
    '  web: {type: tcp, host: db.internal, port: 5432}',
    'statusPages:',
    '  acme: {title: Acme status, published: true, components: [{name: Web, tags: [web]}]}',
    '',
  ].join('\n');
  const imported = asCode.import(ALICE, yaml, { dryRun: false, prune: false });
  await sleep(300);
  const created = config.create(BOB, { name: 'other', type: 'tcp', host: 'db.internal', port: 5433 });
  await sleep(300);
  await lock.query('COMMIT');

  const started = Date.now();
  const [a, b] = await Promise.allSettled([imported, created]);
  expect(a).toMatchObject({ status: 'fulfilled', value: { version: 1 } });
  expect(b).toMatchObject({ status: 'fulfilled', value: { version: 2 } });
  expect(Date.now() - started).toBeLessThan(2_000);
});
