import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { InstanceKind, Messages, TargetIds } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import {
  createIsolatedTestSite,
  flushPrefix,
  startAggregator,
  statusUpdate,
  updateRequest,
  type TestSite,
} from '../aggregator.int-helpers';

// What a pushed instance is (its update's `kind`: container, pod, …) through the running aggregator: kept in live
// state and its index (what `GET /api/v1/targets?kind=container` reads: LiveStateStore.listTargets), in target_states,
// the latest update's winning, and still there after Redis lost live state and the aggregator rebuilt it from
// Postgres. The aggregator runs in this process on an isolated vhost, database and Redis prefix; the test publishes
// as status-ingest and the collector would.

jest.setTimeout(90_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-instance-kind';
  site = await createIsolatedTestSite(name, {
    STALE_AFTER_SECONDS: '300',
    SWEEP_INTERVAL_MS: '200',
    AGGREGATOR_BATCH_WAIT_MS: '20',
  });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const checkId = randomUUID();
const CHECK = TargetIds.check(checkId);
const WEB = 'instance:web-1';
const DB = 'instance:db-1';
const API = 'instance:api-1';
const ids = [CHECK, WEB, DB, API];

/** The ids of this spec's targets the list filter `kind` (as the gateway passes it) gives, in id order. */
const listed = async (...kind: string[]) =>
  (await store.listTargets({ kind }, 1000)).items.map((t) => t.id).filter((id) => ids.includes(id));
const instanceKindsInPostgres = async () =>
  Object.fromEntries(
    (
      await site.pg.query<{ target_id: string; instance_kind: string | null }>(
        'SELECT target_id, instance_kind FROM target_states ORDER BY target_id',
      )
    ).rows.map((r) => [r.target_id, r.instance_kind]),
  );

describe('a pushed instance’s kind through the aggregator', () => {
  const t0 = Date.now() - 60_000;

  it('is kept in live state and Postgres, listed by kind with the target kinds; the latest update’s wins', async () => {
    await site.bus.publisher.publishMany([
      updateRequest(statusUpdate('web-1', 'running', t0, { kind: InstanceKind.Container })),
      updateRequest(statusUpdate('db-1', 'running', t0, { kind: InstanceKind.Container })),
      updateRequest(statusUpdate('api-1', 'failed', t0, { kind: InstanceKind.Pod })),
      publishRequest(Messages.CheckResult, {
        checkId,
        targetId: CHECK,
        location: 'eu',
        ok: true,
        latencyMs: 3,
        startedAt: new Date(t0).toISOString(),
        intervalSeconds: 60,
        checkName: 'api',
        checkType: 'tcp',
      }),
    ]);
    await waitFor(async () => (await store.getTargets(ids)).size === 4, { description: 'the four targets in Redis' });

    expect((await store.getTarget(WEB))?.instanceKind).toBe(InstanceKind.Container);
    expect((await store.getTarget(API))?.instanceKind).toBe(InstanceKind.Pod);
    expect((await store.getTarget(CHECK))?.instanceKind ?? null).toBeNull();
    expect(await listed('container')).toEqual([DB, WEB]);
    expect(await listed('pod', 'check')).toEqual([CHECK, API]);
    expect(await listed('instance')).toEqual([API, DB, WEB]);
    expect(await instanceKindsInPostgres()).toEqual({
      [CHECK]: null,
      [API]: InstanceKind.Pod,
      [DB]: InstanceKind.Container,
      [WEB]: InstanceKind.Container,
    });

    // web-1 re-created as a pod; an older update (a container's, late) takes nothing back.
    await site.bus.publisher.publishMany([
      updateRequest(statusUpdate('web-1', 'running', t0 + 2000, { kind: InstanceKind.Pod })),
      updateRequest(statusUpdate('web-1', 'running', t0 + 1000, { kind: InstanceKind.Container })),
    ]);
    await waitFor(async () => (await listed('container')).length === 1, {
      description: 'web-1 out of the containers',
    });
    expect(await listed('container')).toEqual([DB]);
    expect(await listed('pod')).toEqual([API, WEB]);
    expect((await store.getTarget(WEB))?.instanceKind).toBe(InstanceKind.Pod);
    expect((await instanceKindsInPostgres())[WEB]).toBe(InstanceKind.Pod);
  });

  it('survives a Redis flush: live state rebuilt from Postgres lists each instance under its kind again', async () => {
    expect(await flushPrefix(site.redis, site.redisPrefix)).toBeGreaterThan(0);
    // The rebuild (the aggregator notices the lost mark) writes every target back, each index entry with it.
    await waitFor(async () => (await store.getTargets(ids)).size === 4 && (await store.isBuilt()), {
      timeoutMs: 10_000,
      description: 'live state rebuilt',
    });
    expect(await listed('container')).toEqual([DB]);
    expect(await listed('pod', 'check')).toEqual([CHECK, API, WEB]);
    expect(await listed('instance')).toEqual([API, DB, WEB]);
    expect((await store.getTarget(WEB))?.instanceKind).toBe(InstanceKind.Pod);
    expect((await store.getTarget(DB))?.instanceKind).toBe(InstanceKind.Container);
  });
});
