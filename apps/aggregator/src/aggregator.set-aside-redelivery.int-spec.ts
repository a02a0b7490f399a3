import type { INestApplicationContext } from '@nestjs/common';
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { OBSERVATION_SHARDS, QueueName, uuidv7 } from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import {
  createIsolatedTestSite,
  refusePoisonMessages,
  type SqlClient,
  drainObservationDeadLetters,
  publishRawStatusBatch,
  startAggregator,
  statusUpdate,
  type TestSite,
} from './aggregator.int-helpers';

// SPEC §3 (at-least-once, idempotent consumers, only culprits dead-lettered): the bad updates of a batch message
// are dead-lettered once, even when the batch's commit does not finish and the whole message is redelivered.
// The set-aside must come after the commit of its neighbours; published before it, a redelivery sets the same
// update aside a second time. Real broker and Postgres: a CHECK constraint refuses one update (isolated by
// splitting), the schema refuses another, and a trigger holds the commit of the rest in an outage (53100, waited
// out) until the aggregator is shut down; a fresh aggregator then gets the message again.

jest.setTimeout(120_000);

let site: TestSite;
let app: INestApplicationContext | undefined;
let amqp: ChannelModel;

/** The poison (refusePoisonMessages), and a disk-full outage on demand for the 'stall' update. */
async function prepare(pg: SqlClient): Promise<void> {
  await refusePoisonMessages(pg);
  // While stall_flag has a row, the row whose message starts with 'stall' meets a disk-full outage (waited out).
  await pg.query(`CREATE TABLE stall_flag (on_ boolean)`);
  await pg.query(`CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.message LIKE 'stall%' AND EXISTS (SELECT 1 FROM stall_flag) THEN
      RAISE EXCEPTION 'simulated disk full' USING ERRCODE = '53100'; END IF;
    RETURN NEW; END $$`);
  await pg.query(`CREATE TRIGGER stall BEFORE INSERT ON status_updates FOR EACH ROW EXECUTE FUNCTION stall()`);
}

beforeAll(async () => {
  site = await createIsolatedTestSite(
    'agg-set-aside-redelivery',
    {
      AGGREGATOR_BATCH_WAIT_MS: '50',
      FLEETWATCH_SHUTDOWN_TIMEOUT_SECONDS: '5',
      AGGREGATOR_SHARD_CHECK_INTERVAL_MS: '200',
    },
    { shardObservations: false, prepare },
  );
  amqp = await connect(site.env.AMQP_URL);
});
afterAll(async () => {
  await amqp?.close().catch(() => undefined);
  try {
    await app?.close();
  } finally {
    await site?.dispose();
  }
});

const stored = async (ids: readonly string[]) =>
  (
    await site.pg.query<{ n: string }>('SELECT count(*) AS n FROM status_updates WHERE message_id = ANY($1::uuid[])', [
      ids,
    ])
  ).rows[0].n;

/** Until the aggregator consumes the legacy observations queue (a look at a queue not there yet closes its channel). */
const consuming = () =>
  waitFor(
    async () => {
      const ch = await amqp.createChannel();
      ch.on('error', () => undefined);
      try {
        return (await ch.checkQueue(QueueName.AggregatorObservations)).consumerCount > 0;
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    { timeoutMs: 30_000, description: 'the aggregator consuming the observations queue' },
  );

/** Builds status updates at `at`, each with an id of its own: `update(instance, message)`. */
const updatesAt = (at: number) => (instance: string, message: string) => ({
  ...statusUpdate(instance, 'running', at, { message }),
  id: uuidv7(),
});

/**
 * The message ids dead-lettered: waits for at least `atLeast`, then a second more, so that anything dead-lettered
 * twice would be there too.
 */
async function deadLettered(atLeast: number, description: string): Promise<unknown[]> {
  const letters: GetMessage[] = [];
  await waitFor(
    async () => {
      letters.push(...(await drainObservationDeadLetters(site.env.AMQP_URL)));
      return letters.length >= atLeast;
    },
    { timeoutMs: 30_000, description },
  );
  // Anything dead-lettered twice would be there by now (the redelivered batch is fully committed).
  await new Promise((r) => setTimeout(r, 1000));
  letters.push(...(await drainObservationDeadLetters(site.env.AMQP_URL)));
  return letters.map((m) => m.properties.messageId);
}

it('a batch redelivered after its commit did not finish: each bad update is dead-lettered once, every good one stored', async () => {
  const update = updatesAt(Date.now() - 1000);
  const invalid = { ...update('redeliver-invalid', 'NUL \u0000 inside') };
  const poison = update('redeliver-poison', 'poison: refused by the store');
  const good = Array.from({ length: 4 }, (_, i) => update(`redeliver-good-${i}`, `fine #${i}`));
  const stall = update('redeliver-stall', 'stall: stored once the outage ends');
  // The mapper refuses `invalid`; the rest commit split in two halves: [poison, good0, good1] (poison isolated and
  // set aside, good0 and good1 committed) and [good2, good3, stall] (held in the outage).

  await site.pg.query('INSERT INTO stall_flag VALUES (true)');
  app = await startAggregator(site.env);
  await consuming();
  await publishRawStatusBatch(amqp, [invalid, poison, ...good, stall]);

  // The first half is committed; the second waits out the outage.
  await waitFor(async () => (await stored([good[0].id, good[1].id])) === '2', {
    timeoutMs: 30_000,
    description: 'the first half committed',
  });
  await new Promise((r) => setTimeout(r, 500));
  expect(await stored([stall.id])).toBe('0');
  // Shut down mid-outage: the batch is returned to the queue unacked, and delivered again to a fresh aggregator.
  await app.close();
  app = undefined;
  await site.pg.query('DELETE FROM stall_flag');
  app = await startAggregator(site.env);

  await waitFor(async () => (await stored([...good, stall].map((u) => u.id))) === String(good.length + 1), {
    timeoutMs: 30_000,
    description: 'every good update stored after the redelivery',
  });
  const letters = await deadLettered(2, 'the bad updates in the DLQ');
  expect(letters.sort()).toEqual([invalid.id, poison.id].sort());
  expect(await stored([invalid.id, poison.id])).toBe('0');
});

it('a batch refused after its shard was taken over (epoch moved on mid-commit): its bad update is dead-lettered once, by the next commit', async () => {
  const update = updatesAt(Date.now() - 1000);
  const poison = update('fenced-poison', 'poison: refused by the store');
  const good = Array.from({ length: 4 }, (_, i) => update(`fenced-good-${i}`, `fine #${i}`));
  const stall = update('fenced-stall', 'stall: stored once the shard is back');
  // As above: [poison, good0, good1] commit first (poison isolated), [good2, good3, stall] wait out the outage.
  await drainObservationDeadLetters(site.env.AMQP_URL);
  await site.pg.query('INSERT INTO stall_flag VALUES (true)');
  app ??= await startAggregator(site.env);
  await consuming();
  await publishRawStatusBatch(amqp, [poison, ...good, stall]);
  await waitFor(async () => (await stored([good[0].id, good[1].id])) === '2', {
    timeoutMs: 30_000,
    description: 'the first half committed',
  });
  // Another holder took the legacy pseudo-shard meanwhile (its epoch moved on): the retried second half is refused,
  // the message returned to the queue; the shard comes back to this replica (a new epoch), which commits it all.
  await site.pg.query('UPDATE aggregator_shard_epochs SET epoch = epoch + 1 WHERE shard = $1', [OBSERVATION_SHARDS]);
  await site.pg.query('DELETE FROM stall_flag');
  await waitFor(async () => (await stored([...good, stall].map((u) => u.id))) === String(good.length + 1), {
    timeoutMs: 60_000,
    description: 'every good update stored after the shard came back',
  });
  expect(await deadLettered(1, 'the bad update in the DLQ')).toEqual([poison.id]);
  expect(await stored([poison.id])).toBe('0');
});
