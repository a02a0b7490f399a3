import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigRpcMethod, type CheckView } from '@fleetwatch/contracts';
import { createBus, RpcClient, silentBusLogger, type Bus } from '@fleetwatch/messaging';
import {
  createIsolatedDatabase,
  createIsolatedVhost,
  testEnv,
  waitFor,
  type IsolatedDatabase,
  type IsolatedVhost,
} from '@fleetwatch/testing';
import { closedPort, CollectorHarness, countingTarget, ResultTap, type CountingTarget } from './checks.int-helpers';
import { privateDist, startOwner, type OwnerProcess } from './owner.int-helpers';

// Assignment per location against the real configuration owner (sync-orchestrator run as
// a process on a database and vhost of this test), with two collectors at different
// locations: each follows config.changed on a queue of its own, so a change reaches BOTH
// within 2 s; each runs only what is assigned to its location; changes, pauses and
// deletes apply to running collectors; the last assignment is kept on disk.

jest.setTimeout(180_000);

const ACTOR = { id: 'user:collector-test', name: 'collector-test' };
let db: IsolatedDatabase;
let vhost: IsolatedVhost;
let owner: OwnerProcess;
let bus: Bus;
let rpc: RpcClient;
let tap: ResultTap;
let target: CountingTarget;
let dir: string;
let a: CollectorHarness;
let b: CollectorHarness;

beforeAll(async () => {
  const dist = privateDist('collector-assignment-owner');
  [db, vhost] = await Promise.all([createIsolatedDatabase(), createIsolatedVhost('collector-assignment')]);
  owner = await startOwner(dist, {
    databaseUrl: db.databaseUrl,
    amqpUrl: vhost.amqpUrl,
    redisUrl: testEnv().redisUrl,
    redisPrefix: `${testEnv().redisPrefix}collector-assignment:`,
  });
  bus = createBus({
    url: vhost.amqpUrl,
    source: { site: 'test', service: 'api-gateway' },
    name: 'test-gateway',
    logger: silentBusLogger,
  });
  rpc = new RpcClient(bus.connections.publishing, bus.connections.consuming, {
    source: { site: 'test', service: 'api-gateway' },
    timeoutMs: 10_000,
    logger: silentBusLogger,
  });
  tap = await ResultTap.open(vhost.amqpUrl);
  target = await countingTarget();
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-assignment-'));
  const env = (location: string) => ({
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: location,
    COLLECTOR_SPOOL_DIR: join(dir, location),
  });
  [a, b] = await Promise.all([CollectorHarness.start(env('lab-a')), CollectorHarness.start(env('lab-b'))]);
  await waitFor(() => a.checks.current?.origin === 'bus' && b.checks.current?.origin === 'bus', {
    timeoutMs: 15_000,
    description: 'both collectors got their assignment from the owner',
  });
});

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await rpc?.close();
  await bus?.close();
  await owner?.stop();
  await tap?.close();
  await target?.close();
  await vhost?.dispose();
  await db?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const has = (c: CollectorHarness, id: string): boolean => c.checks.current?.checks.some((x) => x.id === id) ?? false;
const versionOf = (c: CollectorHarness): number => c.checks.current?.version ?? -1;

async function create(check: Record<string, unknown>): Promise<{ check: CheckView; version: number }> {
  return rpc.call(ConfigRpcMethod.ChecksCreate, { actor: ACTOR, check });
}

it('a new check reaches both collectors within 2 s; only its location runs it', async () => {
  const t0 = Date.now();
  const { check, version } = await create({
    name: 'only-a',
    type: 'tcp',
    host: '127.0.0.1',
    port: target.port,
    intervalSeconds: 1,
    timeoutSeconds: 1,
    locations: ['lab-a'],
  });
  // Both refetched (each has its own config.changed queue); only lab-a was given the check.
  await waitFor(() => has(a, check.id) && versionOf(b) >= version, {
    timeoutMs: 2_000,
    intervalMs: 10,
    description: 'change at both collectors',
  });
  expect(Date.now() - t0).toBeLessThan(2_000);
  expect(has(b, check.id)).toBe(false);
  await waitFor(() => tap.of(check.id).length >= 3, { timeoutMs: 6_000, description: 'results of the new check' });
  expect(new Set(tap.of(check.id).map((e) => e.payload.location))).toEqual(new Set(['lab-a']));
  expect(tap.of(check.id)[0].payload).toMatchObject({
    targetId: check.targetId,
    ok: true,
    checkName: 'only-a',
    checkType: 'tcp',
    intervalSeconds: 1,
  });

  // The copy on disk is the latest.
  const stored = JSON.parse(await readFile(join(dir, 'lab-a', 'assignment.json'), 'utf8')) as {
    version: number;
    checks: Array<{ id: string }>;
  };
  expect(stored.version).toBe(versionOf(a));
  expect(stored.checks.map((c) => c.id)).toContain(check.id);
});

it('a check for every location runs at both; a change applies from the next run; pause and delete stop it', async () => {
  const { check } = await create({
    name: 'everywhere',
    type: 'tcp',
    host: '127.0.0.1',
    port: target.port,
    intervalSeconds: 1,
    timeoutSeconds: 1,
  });
  await waitFor(() => new Set(tap.of(check.id).map((e) => e.payload.location)).size === 2, {
    timeoutMs: 4_000,
    description: 'results from both locations',
  });

  // Change: the port now refuses connections → DOWN results from the next run on, at both.
  const changedAt = Date.now();
  const closed = await closedPort();
  const patched = await rpc.call(ConfigRpcMethod.ChecksPatch, { actor: ACTOR, id: check.id, patch: { port: closed } });
  await waitFor(
    () => {
      const after = tap.of(check.id).filter((e) => Date.parse(e.payload.startedAt) > changedAt + 100);
      return ['lab-a', 'lab-b'].every((l) => after.some((e) => e.payload.location === l && !e.payload.ok));
    },
    { timeoutMs: 4_000, description: 'DOWN results after the change' },
  );
  expect(tap.of(check.id).find((e) => !e.payload.ok)?.payload.failureReason).toMatch(/ECONNREFUSED/);

  // Paused: no longer assigned. Resumed, then deleted: gone.
  await rpc.call(ConfigRpcMethod.ChecksSetPaused, {
    actor: ACTOR,
    id: check.id,
    paused: true,
    expectedVersion: patched.check.version,
  });
  await waitFor(() => !has(a, check.id) && !has(b, check.id), {
    timeoutMs: 2_000,
    intervalMs: 10,
    description: 'paused everywhere',
  });
  const pausedAt = Date.now();
  await new Promise((r) => setTimeout(r, 2_000));
  expect(tap.of(check.id).filter((e) => Date.parse(e.payload.startedAt) > pausedAt)).toEqual([]);

  await rpc.call(ConfigRpcMethod.ChecksSetPaused, { actor: ACTOR, id: check.id, paused: false });
  await waitFor(() => has(a, check.id) && has(b, check.id), {
    timeoutMs: 2_000,
    intervalMs: 10,
    description: 'resumed everywhere',
  });
  await rpc.call(ConfigRpcMethod.ChecksDelete, { actor: ACTOR, id: check.id });
  await waitFor(() => !has(a, check.id) && !has(b, check.id), {
    timeoutMs: 2_000,
    intervalMs: 10,
    description: 'deleted everywhere',
  });
  expect(a.checks.state.scheduled).toBe(1);
  expect(b.checks.state.scheduled).toBe(0);
});
