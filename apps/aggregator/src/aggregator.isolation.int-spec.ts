import type { INestApplicationContext } from '@nestjs/common';
import { connect, type ChannelModel } from 'amqplib';
import { BusHeader, deadLetterQueueOf, Messages, QueueName, uuidv7, type Envelope } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest, type PublishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { AggregatorMetrics } from './aggregator.metrics';
import { LiveProjection } from './live/live-projection.service';
import { ProjectionQueue } from './live/projection.queue';
import {
  count,
  createIsolatedTestSite,
  refusePoisonMessages,
  type SqlClient,
  startAggregator,
  statusUpdate,
  type StatusUpdateInput,
  drainObservationDeadLetters,
  publishRawStatusBatch,
  type TestSite,
} from './aggregator.int-helpers';

// Issue 13, "isolation instead of collateral loss": a value the store refuses, in a
// batch message or among many concurrent messages, costs only itself. The store's
// refusal is real: the test adds a CHECK constraint to its own isolated database
// (standing in for any refusal the contracts cannot foresee), and bad batch items
// come as raw bytes from an "older producer" that skipped the edge's rules.

jest.setTimeout(120_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;
let amqp: ChannelModel;

/** The poison (refusePoisonMessages), an outage and a statement timeout on demand. */
async function prepare(pg: SqlClient): Promise<void> {
  await refusePoisonMessages(pg);
  // An outage of the database's own (a full disk, a statement timeout…) while a row in outage_flag says so:
  // a real Postgres error with that SQLSTATE for every row alike.
  await pg.query(`CREATE TABLE outage_flag (code text)`);
  await pg.query(`CREATE FUNCTION outage() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE c text; BEGIN SELECT code INTO c FROM outage_flag LIMIT 1;
    IF c IS NOT NULL THEN RAISE EXCEPTION 'simulated outage %', c USING ERRCODE = c; END IF;
    RETURN NEW; END $$`);
  await pg.query(`CREATE TRIGGER outage BEFORE INSERT ON status_updates FOR EACH ROW EXECUTE FUNCTION outage()`);
  // A database that times out on large statements: while size_limit holds n, an insert of more than n rows at once
  // fails with a statement timeout (57014), as a slow or locked table would.
  await pg.query(`CREATE TABLE size_limit (n int)`);
  await pg.query(`CREATE FUNCTION size_limit() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE lim int; rows int; BEGIN SELECT n INTO lim FROM size_limit LIMIT 1; SELECT count(*) INTO rows FROM inserted;
    IF lim IS NOT NULL AND rows > lim THEN RAISE EXCEPTION 'canceling statement due to statement timeout (simulated, % rows)', rows USING ERRCODE = '57014'; END IF;
    RETURN NULL; END $$`);
  await pg.query(
    `CREATE TRIGGER size_limit AFTER INSERT ON status_updates REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION size_limit()`,
  );
}

beforeAll(async () => {
  site = await createIsolatedTestSite(
    'agg-isolation',
    { AGGREGATOR_BATCH_WAIT_MS: '50' },
    // Batches mixing targets of every shard, as producers older than sharding sent them (the legacy lane).
    { shardObservations: false, prepare },
  );
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  amqp = await connect(site.env.AMQP_URL);
});
afterAll(async () => {
  await amqp?.close().catch(() => undefined);
  await app?.close();
  await site?.dispose();
});

const drainDeadLetters = () => drainObservationDeadLetters(site.env.AMQP_URL);

const storedIds = async (ids: readonly string[]) =>
  new Set(
    (
      await site.pg.query<{ id: string }>(
        'SELECT message_id::text AS id FROM status_updates WHERE message_id = ANY($1::uuid[])',
        [ids],
      )
    ).rows.map((r) => r.id),
  );

interface Item {
  id: string;
  payload: StatusUpdateInput;
  poison: boolean;
}

function item(i: number, poison: boolean, prefix: string): Item {
  const at = Date.now() - 1000;
  return {
    id: uuidv7(),
    poison,
    payload: statusUpdate(`${prefix}-${i}`, i % 3 === 0 ? 'exited' : 'running', at, {
      message: poison ? `poison #${i}` : `fine #${i}`,
      apiKeyId: i % 2 ? 'key-a' : 'key-b',
    }),
  };
}

it('a store refusal inside batch messages and among single messages sets aside only the culprits; all 600 good updates are stored and live', async () => {
  const good: Item[] = Array.from({ length: 600 }, (_, i) => item(i, false, 'iso'));
  const poison: Item[] = [7, 123, 124, 555].map((i) => item(10_000 + i, true, 'iso-bad'));
  // 20 batch messages of 25 updates (four carry a poison update somewhere inside) and 100 single messages, interleaved.
  const queue = [...good];
  const requests: PublishRequest[] = [];
  for (let b = 0; b < 20; b++) {
    const updates = queue.splice(0, 25);
    if (b % 5 === 1) updates.splice(b % 25, 0, poison[(b - 1) / 5]);
    requests.push(
      publishRequest(Messages.StatusUpdateBatch, { updates: updates.map((u) => ({ ...u.payload, id: u.id })) }),
    );
    for (const single of queue.splice(0, 5))
      requests.push(publishRequest(Messages.StatusUpdate, single.payload, { id: single.id }));
  }
  expect(queue).toHaveLength(0);
  const setAsideBefore = (await AggregatorMetrics.get().setAside.get()).values.reduce((n, v) => n + v.value, 0);
  await site.bus.publisher.publishMany(requests);

  await waitFor(async () => (await storedIds(good.map((g) => g.id))).size === good.length, {
    timeoutMs: 60_000,
    description: 'all 600 good updates in Postgres',
  });
  // Live state: every good instance is there with its last status.
  const live = await store.getTargets(good.map((g) => `instance:${g.payload.instanceId}`));
  expect(live.size).toBe(good.length);

  const dead = await waitFor(
    async () => {
      const letters = await drainDeadLetters();
      return letters.length >= poison.length ? letters : undefined;
    },
    { timeoutMs: 30_000, description: 'the poison updates in the DLQ' },
  );
  // Only the culprits, each as its own replayable status.update, with the reason and who sent it.
  expect(dead.map((m) => m.properties.messageId).sort()).toEqual(poison.map((p) => p.id).sort());
  for (const m of dead) {
    const envelope = JSON.parse(m.content.toString()) as Envelope;
    const source = poison.find((p) => p.id === m.properties.messageId) as Item;
    expect(envelope).toMatchObject({
      id: source.id,
      type: Messages.StatusUpdate.type,
      payload: { instanceId: source.payload.instanceId, message: source.payload.message },
    });
    const headers = m.properties.headers ?? {};
    expect(headers[BusHeader.DeadLetterReason]).toMatch(/could not be stored: .*test_poison.*\(23514\)/);
    expect(headers[BusHeader.DeadLetterQueue]).toBe(QueueName.AggregatorObservations);
    expect(headers[BusHeader.UpdateId]).toBe(source.payload.updateId);
    expect(headers[BusHeader.ApiKeyId]).toBe(source.payload.apiKeyId);
  }
  expect(await storedIds(poison.map((p) => p.id))).toEqual(new Set());
  const setAsideAfter = (await AggregatorMetrics.get().setAside.get()).values.reduce((n, v) => n + v.value, 0);
  expect(setAsideAfter - setAsideBefore).toBe(poison.length);
  // Nothing is left unacked or requeued: the observations queue drains.
  await waitFor(
    async () => (await (await amqp.createChannel()).checkQueue(QueueName.AggregatorObservations)).messageCount === 0,
    { timeoutMs: 10_000, description: 'an empty observations queue' },
  );
});

it('an invalid update inside a batch from an older producer is set aside alone; its neighbours are stored', async () => {
  const neighbours = Array.from({ length: 5 }, (_, i) => item(i, false, 'old'));
  const badId = uuidv7();
  const bad = {
    ...statusUpdate('old-bad', 'running', Date.now() - 1000, { message: 'NUL \u0000 inside', apiKeyId: 'key-old' }),
    id: badId,
  };
  await publishRawStatusBatch(amqp, [
    ...neighbours.slice(0, 2).map((n) => ({ ...n.payload, id: n.id })),
    bad,
    ...neighbours.slice(2).map((n) => ({ ...n.payload, id: n.id })),
  ]);

  await waitFor(async () => (await storedIds(neighbours.map((n) => n.id))).size === neighbours.length, {
    timeoutMs: 30_000,
    description: 'the five neighbours stored',
  });
  const dead = await waitFor(
    async () => {
      const letters = await drainDeadLetters();
      return letters.length > 0 ? letters : undefined;
    },
    { timeoutMs: 30_000, description: 'the bad update in the DLQ' },
  );
  expect(dead).toHaveLength(1);
  expect(dead[0].properties.messageId).toBe(badId);
  expect(dead[0].properties.headers?.[BusHeader.DeadLetterReason]).toMatch(
    /^invalid update at updates\.2: message: contains a NUL character/,
  );
  expect(dead[0].properties.headers?.[BusHeader.ApiKeyId]).toBe('key-old');
  expect(JSON.parse(dead[0].content.toString())).toMatchObject({
    id: badId,
    type: 'status.update',
    payload: { instanceId: 'old-bad' },
  });
  expect(await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE instance_id = 'old-bad'")).toBe(0);
});

it('a dead-letter queue deleted by hand: the culprit still lands in it, declared again, and its neighbours are stored', async () => {
  const ch = await amqp.createChannel();
  await ch.deleteQueue(deadLetterQueueOf(QueueName.AggregatorObservations));
  await ch.close();
  // Reading a queue that is gone fails that read only; the test's connection goes on.
  await expect(drainDeadLetters()).rejects.toThrow(/NOT_FOUND|404/);
  const good = Array.from({ length: 5 }, (_, i) => item(i, false, 'redeclare'));
  const bad = item(99, true, 'redeclare-bad');
  await site.bus.publisher.publish(Messages.StatusUpdateBatch, {
    updates: [...good, bad].map((u) => ({ ...u.payload, id: u.id })),
  });
  await waitFor(async () => (await storedIds(good.map((g) => g.id))).size === good.length, {
    timeoutMs: 30_000,
    description: 'the neighbours stored',
  });
  const dead = await waitFor(
    async () => {
      const letters = await drainDeadLetters().catch(() => []);
      return letters.length > 0 ? letters : undefined;
    },
    { timeoutMs: 30_000, description: 'the culprit in the re-declared DLQ' },
  );
  expect(dead.map((m) => m.properties.messageId)).toEqual([bad.id]);
});

describe('an outage is waited out, never split into the dead-letter queue', () => {
  const publishTwenty = async (prefix: string) => {
    const at = Date.now() - 1000;
    const batch = Array.from({ length: 10 }, (_, i) => ({
      ...statusUpdate(`${prefix}-b${i}`, 'running', at),
      id: uuidv7(),
    }));
    const singles = Array.from({ length: 10 }, (_, i) => ({
      payload: statusUpdate(`${prefix}-s${i}`, 'running', at),
      id: uuidv7(),
    }));
    await site.bus.publisher.publishMany([
      publishRequest(Messages.StatusUpdateBatch, { updates: batch }),
      ...singles.map((u) => publishRequest(Messages.StatusUpdate, u.payload, { id: u.id })),
    ]);
    return [...batch.map((b) => b.id), ...singles.map((u) => u.id)];
  };

  it.each([
    ['disk full', '53100'],
    ['statement timeout', '57014'],
    ['out of memory', '53200'],
    ['read-only after a failover', '25006'],
  ])('Postgres: %s (%s) for 3 s, then all 20 stored and nothing dead-lettered', async (_name, code) => {
    await site.pg.query('INSERT INTO outage_flag VALUES ($1)', [code]);
    let ids: string[] = [];
    try {
      ids = await publishTwenty(`outage-${code}`);
      await new Promise((r) => setTimeout(r, 3000));
      expect((await storedIds(ids)).size).toBe(0);
    } finally {
      await site.pg.query('DELETE FROM outage_flag');
    }
    await waitFor(async () => (await storedIds(ids)).size === ids.length, {
      timeoutMs: 30_000,
      description: 'all 20 stored after the outage',
    });
    expect(await drainDeadLetters()).toHaveLength(0);
  });

  it('Redis refusing writes (OOM) while live state must be rebuilt: all stored afterwards, nothing dead-lettered', async () => {
    const live = app.get(LiveProjection);
    // As after a failed projection with Redis found behind: live state must be rebuilt whole before the next
    // batch; Redis answers OOM meanwhile.
    app.get(ProjectionQueue).onFailure();
    const behind = jest.spyOn(live, 'isBehind').mockResolvedValue(true);
    const oom = Object.assign(new Error("OOM command not allowed when used memory > 'maxmemory'."), {
      name: 'ReplyError',
    });
    const rebuild = live.rebuild.bind(live);
    let failing = true;
    const spy = jest.spyOn(live, 'rebuild').mockImplementation(async (...args) => {
      if (failing) throw oom;
      return rebuild(...args);
    });
    try {
      const ids = await publishTwenty('redis-oom');
      await new Promise((r) => setTimeout(r, 2000));
      failing = false;
      await waitFor(async () => (await storedIds(ids)).size === ids.length, {
        timeoutMs: 30_000,
        description: 'all 20 stored once Redis takes writes',
      });
      expect(await drainDeadLetters()).toHaveLength(0);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      behind.mockRestore();
    }
  });

  it('a commit too large for the database (statement timeout on more than 5 rows) is split, not retried as it is: all stored, nothing dead-lettered', async () => {
    await site.pg.query('INSERT INTO size_limit VALUES (5)');
    try {
      const ids = await publishTwenty('too-large');
      await waitFor(async () => (await storedIds(ids)).size === ids.length, {
        timeoutMs: 30_000,
        description: 'all 20 stored in commits of at most 5',
      });
      expect(await drainDeadLetters()).toHaveLength(0);
    } finally {
      await site.pg.query('DELETE FROM size_limit');
    }
  });
});
