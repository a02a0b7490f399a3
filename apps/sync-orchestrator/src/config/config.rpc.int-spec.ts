import { Global, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigRpcMethod as M, ExchangeName, QueueName, RoutingKey, type Envelope } from '@fleetwatch/contracts';
import { createBus, RpcClient, RpcError, type Bus } from '@fleetwatch/messaging';
import { createLogger, FLEETWATCH_LOGGER, ReadinessRegistry } from '@fleetwatch/observability';
import { LIVE_STATE_REDIS } from '@fleetwatch/live-state';
import { maybeTestEnv, testEnv, waitFor } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { loadSyncConfig } from '../config';
import { SyncOrchestratorModule } from '../sync-orchestrator.module';
import { ALICE, ConfigTestServers } from './config.int-helpers';

// Across the bus: sync-orchestrator's module as it boots (minus HTTP) on a database and
// vhost of its own, called by a real RpcClient as the gateway and collectors call it.
// Params are validated on both sides; domain errors come back as the contract's reply
// codes (invalid with issues, conflict with currentVersion, denied, not_found); a write
// reaches a collector's config queue as `config.changed`.

jest.setTimeout(120_000);

@Global()
@Module({
  providers: [
    ReadinessRegistry,
    {
      provide: FLEETWATCH_LOGGER,
      useValue: createLogger('sync-orchestrator', process.env['TEST_LOG_LEVEL'] ?? 'silent', process.stderr),
    },
  ],
  exports: [ReadinessRegistry, FLEETWATCH_LOGGER],
})
class TestObservabilityModule {}

let servers: ConfigTestServers;
let app: INestApplicationContext;
let bus: Bus;
let client: RpcClient;
const changed: Envelope[] = [];

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-rpc');
  const env = maybeTestEnv() ? testEnv() : null;
  const config = loadSyncConfig({
    DATABASE_URL: servers.db.databaseUrl,
    AMQP_URL: servers.vhost.amqpUrl,
    REDIS_URL: env?.redisUrl ?? 'redis://127.0.0.1:6379',
    FLEETWATCH_REDIS_PREFIX: `${env?.redisPrefix ?? 'fwtest:'}config-rpc:`,
    FLEETWATCH_SITE: 'test',
    LOG_LEVEL: 'warn',
    // A loopback address the policy denies: the canary of SSRF tests.
    FLEETWATCH_CHECK_DENY_NETWORKS: '169.254.0.0/16,127.0.0.2/32',
    // Versions start at 1 with this file's writes (the default-rule seed is tested in alerting/).
    FLEETWATCH_DEFAULT_ALERT_RULES: 'false',
    SYNC_REDIS_TIMEOUT_MS: '6000',
  });
  @Module({ imports: [TestObservabilityModule, SyncOrchestratorModule.forRoot(config)] })
  class TestRoot {}
  app = await NestFactory.createApplicationContext(TestRoot, { logger: false });
  await app.init();

  // The caller: the gateway's kind of bus, with a collector's view of config.changed.
  bus = createBus({
    url: servers.vhost.amqpUrl,
    source: { site: 'test', service: 'api-gateway', location: 'lab-1' },
    name: 'test-gateway',
    queues: [QueueName.SyncOrchestratorCommands],
  });
  const sub = bus.consumer.consume(
    {
      name: 'test.config-rpc.changed',
      bindings: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.ConfigChanged }],
    },
    async (envelope: Envelope) => void changed.push(envelope),
  );
  await sub.waitUntilActive(15_000);
  client = new RpcClient(bus.connections.publishing, bus.connections.consuming, {
    source: { site: 'test', service: 'api-gateway', location: 'lab-1' },
    timeoutMs: 10_000,
    ownerName: 'sync-orchestrator',
  });
});
afterAll(async () => {
  await client?.close();
  await bus?.close();
  await app?.close();
  await servers?.dispose();
});

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error('expected an RpcError');
}

describe('the module as it boots', () => {
  it("gives its Redis connection SYNC_REDIS_TIMEOUT_MS as the command timeout (a silent Redis can't hold a fleet poll)", () => {
    const redis = app.get<Redis>(LIVE_STATE_REDIS);
    expect(redis.options.commandTimeout).toBe(6000);
    // Twice the command timeout, at least 10 s (createRedis): a connection silent that long is opened again.
    expect(redis.options.socketTimeout).toBe(12_000);
  });
});

describe('config over RPC', () => {
  it('creates, reads, patches and deletes a check; every write reaches config.changed', async () => {
    const created = await client.call(M.ChecksCreate, {
      actor: ALICE,
      check: { name: 'api', type: 'http', url: 'http://127.0.0.1:9/health', intervalSeconds: 10 },
    });
    expect(created.version).toBe(1);
    expect(created.check).toMatchObject({ name: 'api', intervalSeconds: 10, targetId: `check:${created.check.id}` });
    expect(await client.call(M.ChecksGet, { id: created.check.id })).toEqual({ check: created.check });

    const patched = await client.call(M.ChecksPatch, {
      actor: ALICE,
      id: created.check.id,
      patch: { tags: ['team-a'] },
      expectedVersion: 1,
    });
    expect(patched.version).toBe(2);
    const stale = await rpcError(
      client.call(M.ChecksPatch, { actor: ALICE, id: created.check.id, patch: { tags: [] }, expectedVersion: 1 }),
    );
    expect(stale).toMatchObject({ code: 'conflict', currentVersion: 2 });

    const listed = await client.call(M.ChecksList, { tag: 'team-a' });
    expect(listed.items.map((c) => c.id)).toEqual([created.check.id]);
    const assignment = await client.call(M.AssignmentGet, { location: 'lab-1' });
    expect(assignment).toMatchObject({ version: 2, location: 'lab-1', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    if (assignment.notModified) throw new Error('asked without `known`: the whole assignment is due');
    expect(assignment.checks.map((c) => c.name)).toEqual(['api']);
    // Asked with what it holds: the head is that version → notModified, without the checks.
    const known = { version: assignment.version, hash: assignment.hash };
    expect(await client.call(M.AssignmentGet, { location: 'lab-1', known })).toEqual({
      ...known,
      location: 'lab-1',
      notModified: true,
    });
    // Another version or hash than the head's → the whole assignment again.
    for (const other of [
      { ...known, version: 1 },
      { ...known, hash: '0'.repeat(64) },
    ]) {
      const again = await client.call(M.AssignmentGet, { location: 'lab-1', known: other });
      expect(again).toMatchObject({ version: 2, hash: known.hash, checks: [expect.objectContaining({ name: 'api' })] });
      expect(again.notModified).toBeUndefined();
    }
    // A malformed `known` is refused, naming it.
    await expect(
      client.call(M.AssignmentGet, { location: 'lab-1', known: { version: -1, hash: 'x' } }),
    ).rejects.toMatchObject({ code: 'invalid' });

    expect(await client.call(M.ChecksDelete, { actor: ALICE, id: created.check.id, expectedVersion: 2 })).toEqual({
      version: 3,
    });
    expect(await rpcError(client.call(M.ChecksGet, { id: created.check.id }))).toMatchObject({ code: 'not_found' });

    await waitFor(() => changed.length >= 3, { description: 'three config.changed' });
    expect(changed.map((e) => (e.payload as { version: number }).version)).toEqual([1, 2, 3]);
    expect(changed[2].source.service).toBe('sync-orchestrator');
    const audit = await client.call(M.ConfigAudit, { subject: created.check.id });
    expect(audit.items.map((a) => [a.version, a.action])).toEqual([
      [3, 'check.delete'],
      [2, 'check.patch'],
      [1, 'check.create'],
    ]);
    const versions = await client.call(M.ConfigVersions, {});
    expect(versions.items.map((v) => v.version)).toEqual([3, 2, 1]);
    expect((await client.call(M.ConfigVersion, { version: 2 })).snapshot).toEqual({
      checks: { api: { type: 'http', intervalSeconds: 10, tags: ['team-a'], url: 'http://127.0.0.1:9/health' } },
    });
  });

  it('answers refusals with the contract codes, naming why', async () => {
    const invalid = await rpcError(
      client.call(M.ChecksCreate, {
        actor: ALICE,
        check: { name: 'x', type: 'tcp', host: 'a', port: 1, conditions: ['latency <'] },
      }),
    );
    expect(invalid.code).toBe('invalid');
    expect(invalid.issues).toEqual([{ path: 'conditions.0', message: expect.stringMatching(/^line 1, column \d+: /) }]);

    const denied = await rpcError(
      client.call(M.ChecksCreate, {
        actor: ALICE,
        check: { name: 'canary', type: 'tcp', host: '127.0.0.2', port: 80 },
      }),
    );
    expect(denied.code).toBe('denied');
    expect(denied.issues).toEqual([{ path: 'host', message: expect.stringMatching(/127\.0\.0\.2\/32/) }]);

    // The owner validates params too (a caller that skipped its own check).
    const badParams = await rpcError(client.call(M.ChecksGet, { id: 'not-a-uuid' } as unknown as { id: string }));
    expect(badParams.code).toBe('invalid');
  });

  it('imports and exports YAML: dry run, apply as one version, round trip no-op', async () => {
    const yaml =
      'checks:\n  db:\n    type: tcp\n    host: db.internal\n    port: 5432\n  cache:\n    type: redis\n    host: 127.0.0.1\n';
    const head = (await client.call(M.ConfigVersions, { limit: 1 })).items[0].version;
    const dry = await client.call(M.ConfigImport, { actor: ALICE, yaml, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, version: head });
    expect(dry.plan.map((i) => [i.action, i.name])).toEqual([
      ['create', 'cache'],
      ['create', 'db'],
    ]);
    const applied = await client.call(M.ConfigImport, { actor: ALICE, yaml, expectedVersion: head });
    expect(applied.version).toBe(head + 1);
    const exported = await client.call(M.ConfigExport, {});
    expect(exported.version).toBe(head + 1);
    const again = await client.call(M.ConfigImport, { actor: ALICE, yaml: exported.yaml, expectedVersion: head + 1 });
    expect(again.version).toBe(head + 1);
    expect(again.plan.every((i) => i.action === 'unchanged')).toBe(true);
    const stale = await rpcError(client.call(M.ConfigImport, { actor: ALICE, yaml, expectedVersion: head }));
    expect(stale).toMatchObject({ code: 'conflict', currentVersion: head + 1 });
  });

  it('bulk-creates 1,000 checks in one call and one version', async () => {
    const head = (await client.call(M.ConfigVersions, { limit: 1 })).items[0].version;
    const started = performance.now();
    const r = await client.call(M.ChecksBulkCreate, {
      actor: ALICE,
      checks: Array.from({ length: 1000 }, (_, i) => ({
        name: `rpc-bulk-${i}`,
        type: 'tcp',
        host: '10.9.0.1',
        port: 1 + i,
      })),
    });
    process.stderr.write(`bulk create of 1,000 checks over RPC: ${(performance.now() - started).toFixed(0)} ms\n`);
    expect(r.version).toBe(head + 1);
    expect(r.checks).toHaveLength(1000);
  });
});
