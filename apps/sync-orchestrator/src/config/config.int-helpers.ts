import { connect, type ChannelModel } from 'amqplib';
import { envelopeSchema, QueueName, type Actor, type Envelope } from '@fleetwatch/contracts';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS, type TargetPolicy } from '@fleetwatch/domain';
import {
  BusConnection,
  BusPublisher,
  BusTopology,
  observationShardQueueSpecs,
  silentBusLogger,
} from '@fleetwatch/messaging';
import {
  AlertConfigRepository,
  ChecksRepository,
  closeSqlPool,
  ConfigVersionsRepository,
  createSqlPool,
  PropertiesRepository,
  PushMonitorsRepository,
  SecretSealer,
  SilencesRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { AlertConfigService } from '../alerting/alert-config.service';
import { DefaultRulesSeeder } from '../alerting/default-rules.seeder';
import { SilencesService } from '../alerting/silences.service';
import { PropertiesService } from '../properties/properties.service';
import {
  createIsolatedDatabase,
  createIsolatedVhost,
  type IsolatedDatabase,
  type IsolatedVhost,
} from '@fleetwatch/testing';
import { ConfigAsCodeService } from './config-as-code.service';
import { ConfigChangedRelay } from './config-changed.relay';
import { ConfigService } from './config.service';
import { ConfigWriter } from './config-writer';
import { HeartbeatAdoption, PushMonitors } from './push-monitors';

// The configuration owner's parts over real servers, without Nest: an empty migrated
// database of its own (versions start at 1), a vhost of its own with the collectors'
// config queue declared (so `config.changed` can be read back), and the services as
// sync-orchestrator wires them.

export const ALICE: Actor = { id: 'user:0190f0e0-0000-7000-8000-00000000a11c', name: 'alice' };
export const BOB: Actor = { id: 'api-key:0190f0e0-0000-7000-8000-000000000b0b', name: 'ci-pipeline' };

/** The channel-secret key of the owner tests (FLEETWATCH_ENCRYPTION_KEY's form). */
export const TEST_SEALING_KEY = 'a'.repeat(64);

export const quietLogger = { warn: () => undefined, error: () => undefined, info: () => undefined };

/** A bus connection of the test, started; `connected` waits for its first session. */
export function busConnection(url: string, name: string): BusConnection {
  return new BusConnection({
    url,
    name,
    heartbeatSeconds: 2,
    connectTimeoutMs: 2_000,
    backoff: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0.5 },
    logger: silentBusLogger,
  }).start();
}

export interface OwnerParts {
  pool: SqlPool;
  checks: ChecksRepository;
  versions: ConfigVersionsRepository;
  relay: ConfigChangedRelay;
  config: ConfigService;
  asCode: ConfigAsCodeService;
  adoption: HeartbeatAdoption;
  writer: ConfigWriter;
  /** Alert rules, channels and maintenance windows; silences; the default rules' seed. */
  alerts: AlertConfigService;
  silences: SilencesService;
  seeder: DefaultRulesSeeder;
  alertRepo: AlertConfigRepository;
  /** Site properties (issue 19). */
  properties: PropertiesService;
  /** The relay's publisher is connected. */
  busReady(): boolean;
  close(): Promise<void>;
}

/**
 * One "process" of the owner on `databaseUrl`: pool, repositories, relay, services. With
 * `bus` null the relay has no broker (its publisher never connects): writes commit and
 * leave their `config.changed` in the outbox, as when the process dies before publishing.
 */
export function startOwner(
  databaseUrl: string,
  bus: { amqpUrl: string } | null,
  policy: TargetPolicy = createTargetPolicy(DEFAULT_DENY_NETWORKS),
  /** Seals channel secrets; null: as without FLEETWATCH_ENCRYPTION_KEY. */
  sealer: SecretSealer | null = SecretSealer.fromText(TEST_SEALING_KEY),
): OwnerParts {
  const pool = createSqlPool(databaseUrl, { max: 12, applicationName: 'sync-orchestrator test' });
  const checks = new ChecksRepository(pool);
  const versions = new ConfigVersionsRepository(pool);
  // Without a bus: a connection that is never started, so the publisher is never connected.
  const connection = bus
    ? busConnection(bus.amqpUrl, 'sync-orchestrator test')
    : new BusConnection({ url: 'amqp://127.0.0.1:1', logger: silentBusLogger });
  // The shard queues as the module declares them: check.lifecycle must be routable.
  if (bus) new BusTopology(connection, { queues: [QueueName.CollectorConfig, ...observationShardQueueSpecs()] });
  const publisher = new BusPublisher(connection, {
    source: { site: 'test-site', service: 'sync-orchestrator', location: 'lab-1' },
    timeoutMs: 3_000,
  });
  const relay = new ConfigChangedRelay(publisher, versions, quietLogger, 60_000);
  const writer = new ConfigWriter(pool, checks, versions, relay);
  const monitorsRepo = new PushMonitorsRepository(pool);
  const monitors = new PushMonitors(monitorsRepo);
  const alertRepo = new AlertConfigRepository(pool);
  const propertiesRepo = new PropertiesRepository(pool);
  return {
    pool,
    checks,
    versions,
    relay,
    config: new ConfigService(writer, checks, versions, monitors, policy),
    asCode: new ConfigAsCodeService(
      writer,
      checks,
      monitors,
      policy,
      alertRepo,
      versions,
      sealer,
      null,
      propertiesRepo,
    ),
    adoption: new HeartbeatAdoption(writer, checks, monitorsRepo, quietLogger),
    writer,
    alerts: new AlertConfigService(writer, alertRepo, sealer, policy),
    silences: new SilencesService(writer, new SilencesRepository(pool)),
    seeder: new DefaultRulesSeeder(writer, alertRepo, true, quietLogger),
    alertRepo,
    properties: new PropertiesService(writer, propertiesRepo),
    busReady: () => publisher.isConnected(),
    async close() {
      await relay.onApplicationShutdown();
      await publisher.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await closeSqlPool(pool);
    },
  };
}

/** Private database + vhost for one test file (what the owner wrote is read back through its repositories). */
export class ConfigTestServers {
  private readonly versionsRepo: ConfigVersionsRepository;

  private constructor(
    readonly db: IsolatedDatabase,
    readonly vhost: IsolatedVhost,
    private readonly pool: SqlPool,
    private readonly amqp: ChannelModel,
  ) {
    this.versionsRepo = new ConfigVersionsRepository(pool);
  }

  static async create(name: string): Promise<ConfigTestServers> {
    const db = await createIsolatedDatabase();
    const vhost = await createIsolatedVhost(name);
    const pool = createSqlPool(db.databaseUrl, { max: 2 });
    return new ConfigTestServers(db, vhost, pool, await connect(vhost.amqpUrl));
  }

  /** Every `config.changed` in the collectors' config queue now (taken off it). */
  async takeConfigChanged(): Promise<Envelope[]> {
    const ch = await this.amqp.createChannel();
    const out: Envelope[] = [];
    try {
      await ch.checkQueue(QueueName.CollectorConfig);
      for (;;) {
        const m = await ch.get(QueueName.CollectorConfig, { noAck: true });
        if (!m) break;
        out.push(envelopeSchema.parse(JSON.parse(m.content.toString('utf8'))) as Envelope);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
    return out;
  }

  /** Every config version, oldest first. */
  async versions(): Promise<number[]> {
    return (await this.versionsRepo.list(10_000)).map((v) => v.version).reverse();
  }

  /** Versions whose config.changed waits in the outbox. */
  async outbox(): Promise<number[]> {
    return (await this.versionsRepo.pendingChanged(10_000)).map((p) => p.version);
  }

  async dispose(): Promise<void> {
    await this.amqp.close().catch(() => undefined);
    await closeSqlPool(this.pool);
    await this.vhost.dispose().catch(() => undefined);
    await this.db.dispose().catch(() => undefined);
  }
}
