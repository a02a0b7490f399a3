import { connect, type ChannelModel } from 'amqplib';
import {
  envelopeSchema,
  Messages,
  OBSERVATION_SHARDS,
  observationShardQueue,
  type CheckLifecyclePayload,
  type Envelope,
} from '@fleetwatch/contracts';
import { shardOf } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { lifecycleMessageId } from './check-lifecycle';
import { ALICE, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// The configuration owner tells the aggregator where each check stands (check.lifecycle),
// through the config.changed outbox: one message per check a write touched, with the
// write's version, on the aggregator's shard queue of the check's target, published after
// commit with confirms, in version order — and by the next process when this one died
// between commit and publish, with the same message ids.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let amqp: ChannelModel;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-lifecycle');
  owner = startOwner(servers.db.databaseUrl, { amqpUrl: servers.vhost.amqpUrl });
  await waitFor(() => owner.busReady(), { description: 'owner connected to the bus' });
  amqp = await connect(servers.vhost.amqpUrl);
});
afterAll(async () => {
  await amqp?.close().catch(() => undefined);
  await owner?.close();
  await servers?.dispose();
});

interface Taken {
  envelope: Envelope<CheckLifecyclePayload>;
  shard: number;
}

/** Every check.lifecycle waiting in the shard queues now (taken off them), per shard in queue order. */
async function takeLifecycle(): Promise<Taken[]> {
  const ch = await amqp.createChannel();
  const out: Taken[] = [];
  try {
    for (let shard = 0; shard < OBSERVATION_SHARDS; shard++)
      for (;;) {
        const m = await ch.get(observationShardQueue(shard), { noAck: true });
        if (!m) break;
        const envelope = envelopeSchema.parse(JSON.parse(m.content.toString('utf8'))) as Envelope;
        if (envelope.type === Messages.CheckLifecycle.type)
          out.push({ envelope: envelope as Envelope<CheckLifecyclePayload>, shard });
      }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return out;
}

/** Takes check.lifecycle messages until `n` arrived (and the outbox is empty), in version order. */
async function lifecycleMessages(n: number): Promise<Taken[]> {
  const got: Taken[] = [];
  await waitFor(
    async () => {
      got.push(...(await takeLifecycle()));
      return got.length >= n && (await servers.outbox()).length === 0;
    },
    { description: `${n} check.lifecycle messages` },
  );
  return got.sort((a, b) => a.envelope.payload.version - b.envelope.payload.version);
}

const tcp = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'tcp',
  host: 'db.internal',
  port: 5432,
  intervalSeconds: 20,
  ...extra,
});

describe('check.lifecycle from the configuration owner', () => {
  it('create, pause, resume, rename, delete: one message per write, in version order, on the target shard', async () => {
    await takeLifecycle();
    const created = await owner.config.create(ALICE, tcp('life-1', { tags: ['team-a'] }));
    const id = created.check.id;
    const paused = await owner.config.setPaused(ALICE, id, true);
    const resumed = await owner.config.setPaused(ALICE, id, false);
    const renamed = await owner.config.patch(ALICE, id, { name: 'life-1b', downQuorumPct: 50 });
    const deleted = await owner.config.delete(ALICE, id);

    const got = await lifecycleMessages(5);
    expect(got).toHaveLength(5);
    expect(got.map((m) => m.envelope.payload)).toEqual([
      // No quorum of its own: null (the site's), through the outbox's JSON and the relay.
      expect.objectContaining({
        state: 'active',
        version: created.version,
        name: 'life-1',
        tags: ['team-a'],
        downQuorumPct: null,
      }),
      expect.objectContaining({ state: 'paused', version: paused.version, intervalSeconds: 20 }),
      expect.objectContaining({ state: 'active', version: resumed.version }),
      expect.objectContaining({
        state: 'active',
        version: renamed.version,
        name: 'life-1b',
        checkType: 'tcp',
        downQuorumPct: 50,
      }),
      { checkId: id, targetId: `check:${id}`, state: 'deleted', version: deleted.version, at: expect.any(String) },
    ]);
    // One target, one shard (the aggregator folds them in that order with the target's results).
    expect(new Set(got.map((m) => m.shard))).toEqual(new Set([shardOf(`check:${id}`)]));
    expect(got.every((m) => m.envelope.source.service === 'sync-orchestrator')).toBe(true);
    const times = got.map((m) => Date.parse(m.envelope.payload.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('a bulk write touches many checks in one version: one message each; a push check expects period + grace', async () => {
    await takeLifecycle();
    const bulk = await owner.config.bulkCreate(ALICE, [
      ...Array.from({ length: 20 }, (_, i) => tcp(`bulk-${i}`)),
      { name: 'bulk-push', type: 'push', periodSeconds: 600, graceSeconds: 60 },
    ]);
    const got = await lifecycleMessages(21);
    expect(got).toHaveLength(21);
    expect(new Set(got.map((m) => m.envelope.payload.version))).toEqual(new Set([bulk.version]));
    expect(new Set(got.map((m) => m.envelope.payload.checkId))).toEqual(new Set(bulk.checks.map((c) => c.id)));
    for (const m of got) expect(m.shard).toBe(shardOf(m.envelope.payload.targetId));
    expect(got.find((m) => m.envelope.payload.name === 'bulk-push')?.envelope.payload).toMatchObject({
      state: 'active',
      checkType: 'push',
      intervalSeconds: 660,
    });
  });

  it('a write committed by a process that died before publishing: the next one publishes its lifecycle with the same ids', async () => {
    const { check } = await owner.config.create(ALICE, tcp('life-crash'));
    await lifecycleMessages(1);

    const crashed = startOwner(servers.db.databaseUrl, null);
    const { version } = await crashed.config.setPaused(ALICE, check.id, true);
    const [orphan] = await crashed.versions.pendingChanged();
    await crashed.close();
    expect(orphan).toMatchObject({
      version,
      lifecycle: [expect.objectContaining({ checkId: check.id, state: 'paused' })],
    });

    const restarted = startOwner(servers.db.databaseUrl, { amqpUrl: servers.vhost.amqpUrl });
    try {
      await waitFor(() => restarted.busReady(), { description: 'restarted owner connected' });
      restarted.relay.onApplicationBootstrap();
      const [m] = await lifecycleMessages(1);
      expect(m.envelope.id).toBe(lifecycleMessageId(orphan.messageId, check.id));
      expect(m.envelope.payload).toMatchObject({ state: 'paused', version });
      expect(await servers.takeConfigChanged()).toEqual(
        expect.arrayContaining([expect.objectContaining({ id: orphan.messageId })]),
      );
    } finally {
      await restarted.close();
    }
  });
});
