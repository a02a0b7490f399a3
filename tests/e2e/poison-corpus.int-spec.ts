import { Client } from 'pg';
import { Redis } from 'ioredis';
import { deadLetterQueueOf, OBSERVATION_SHARDS, observationShardQueue, QueueName } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { testEnv, waitFor } from '@fleetwatch/testing';
import { connect } from 'amqplib';
import { startSite, type E2eSite } from './e2e-site';

// Issue 13's first must-show, across the running services: a poison corpus pushed
// among 600 good concurrent updates, from the same key and from another. Every 202
// reaches Postgres and live state; each poison value is refused with a 400 naming
// the field, or (where a store can hold it) stored as sent; the observations DLQ
// holds no collateral.

jest.setTimeout(180_000);

let site: E2eSite;
let pg: Client;
let redis: Redis;
let keys: { a: string; b: string };

beforeAll(async () => {
  site = await startSite('poison', { aggregator: 13203, 'status-ingest': 13201, 'api-gateway': 13200 });
  pg = new Client({ connectionString: site.db.databaseUrl });
  await pg.connect();
  redis = new Redis(testEnv().redisUrl, { keyPrefix: site.redisPrefix });
  keys = { a: (await site.apiKey(['ingest'], 'poison-a')).key, b: (await site.apiKey(['ingest'], 'poison-b')).key };
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  await pg?.end();
  await site?.stop();
});

/** Raw JSON text, so escapes (`\u0000`, `\ud800`) reach the server exactly as a client could send them. */
interface Poison {
  name: string;
  json: string;
  /** 400 with this path named, or 202 and the stored update's message/source/labels/metadata as given. */
  expect: { status: 400; path: string } | { status: 202; stored: Record<string, unknown> };
}

const one = (id: string, fields: string) =>
  `{"instanceId":"${id}","kind":"container","status":"running"${fields ? `,${fields}` : ''}}`;
const longPair = 'a'.repeat(1014) + '\ud83d\ude00';
const CORPUS: Poison[] = [
  {
    name: 'NUL escape in message',
    json: one('p-1', '"message":"x\\u0000y"'),
    expect: { status: 400, path: 'message' },
  },
  { name: 'NUL escape in source', json: one('p-2', '"source":"\\u0000"'), expect: { status: 400, path: 'source' } },
  {
    name: 'NUL escape in a label',
    json: one('p-3', '"labels":{"team":"a\\u0000"}'),
    expect: { status: 400, path: 'labels.team' },
  },
  {
    name: 'NUL escape in a metadata key',
    json: one('p-4', '"metadata":{"\\u0000":1}'),
    expect: { status: 400, path: 'metadata.\u0000' },
  },
  {
    name: 'NUL escape deep in metadata',
    json: one('p-5', '"metadata":{"a":{"b":["ok","\\u0000"]}}'),
    expect: { status: 400, path: 'metadata.a.b.1' },
  },
  {
    name: 'lone high surrogate in message',
    json: one('p-6', '"message":"\\ud800"'),
    expect: { status: 400, path: 'message' },
  },
  {
    name: 'lone low surrogate in a label',
    json: one('p-7', '"labels":{"x":"\\udfff"}'),
    expect: { status: 400, path: 'labels.x' },
  },
  {
    name: 'lone surrogate in metadata',
    json: one('p-8', '"metadata":{"k":"a\\ud83d"}'),
    expect: { status: 400, path: 'metadata.k' },
  },
  {
    name: 'poison inside a batch refuses the batch whole',
    json: `{"updates":[${one('p-9a', '')},${one('p-9b', '"message":"\\u0000"')}]}`,
    expect: { status: 400, path: 'updates.1.message' },
  },
  // Storable, though they look alike: stored exactly as sent.
  {
    name: 'literal backslash-u0000 in message and metadata',
    json: one('p-10', '"message":"\\\\u0000","metadata":{"k":"\\\\u0000","\\\\u0000":"v"}'),
    expect: { status: 202, stored: { message: '\\u0000', metadata: { k: '\\u0000', '\\u0000': 'v' } } },
  },
  {
    name: 'a surrogate pair where the event reason is cut at 1024',
    json: one('p-11', `"message":${JSON.stringify(longPair)}`),
    expect: { status: 202, stored: { message: longPair } },
  },
  {
    name: 'U+2028, BOM and emoji keys',
    json: one('p-12', '"message":"a\\u2028b\\ufeff","metadata":{"😀":"\\u2029","":""}'),
    expect: { status: 202, stored: { message: 'a\u2028b\ufeff', metadata: { '😀': '\u2029', '': '' } } },
  },
  {
    name: 'extreme numbers',
    json: one('p-13', '"metadata":{"big":1.7976931348623157e308,"tiny":5e-324,"neg":-0,"int":9007199254740993}'),
    expect: {
      status: 202,
      stored: { metadata: { big: 1.7976931348623157e308, tiny: 5e-324, neg: 0, int: 9007199254740992 } },
    },
  },
  {
    name: 'escaped quotes and backslashes in a source',
    json: one('p-14', '"source":"\\"\\\\\'%s$1"'),
    expect: { status: 202, stored: { source: '"\\\'%s$1' } },
  },
];

async function post(
  key: string,
  json: string,
): Promise<{ status: number; body: { ids?: string[]; error?: { issues?: Array<{ path: string }> } } }> {
  const res = await fetch(`${site.url('status-ingest')}/api/v1/status/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: json,
  });
  return { status: res.status, body: (await res.json()) as { ids?: string[]; issues?: Array<{ path: string }> } };
}

it('every 202 among 600 concurrent good updates and a poison corpus, from two keys, reaches Postgres and live state; poison is refused naming the field or stored as sent', async () => {
  type Job = { key: string; json: string; poison?: Poison; instanceId?: string };
  const jobs: Job[] = [];
  let poisoned = 0;
  for (let i = 0; i < 600; i++) {
    const instanceId = `good-${i}`;
    jobs.push({
      key: i % 2 ? keys.a : keys.b,
      instanceId,
      json: one(instanceId, `"labels":{"n":"${i}"},"message":"fine ${i}"`),
    });
    // Poison spread through the stream, from both keys.
    if (i % 40 === 7 && poisoned < CORPUS.length)
      jobs.push({ key: poisoned % 2 ? keys.a : keys.b, json: CORPUS[poisoned].json, poison: CORPUS[poisoned++] });
  }
  expect(poisoned).toBe(CORPUS.length);

  // 50 in flight at a time, as concurrent clients would.
  const answers = new Array<{ status: number; body: { ids?: string[]; error?: { issues?: Array<{ path: string }> } } }>(
    jobs.length,
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < jobs.length) {
        const i = next++;
        answers[i] = await post(jobs[i].key, jobs[i].json);
      }
    }),
  );

  const accepted: string[] = [];
  const acceptedInstances: string[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const { poison, instanceId } = jobs[i];
    const a = answers[i];
    expect(a.status).toBeLessThan(500);
    if (!poison) {
      expect(a.status).toBe(202);
      accepted.push(...(a.body.ids ?? []));
      acceptedInstances.push(instanceId as string);
      continue;
    }
    expect({ poison: poison.name, status: a.status }).toEqual({ poison: poison.name, status: poison.expect.status });
    if (poison.expect.status === 400) expect(a.body.error?.issues?.map((x) => x.path)).toContain(poison.expect.path);
    else {
      accepted.push(...(a.body.ids ?? []));
      acceptedInstances.push(JSON.parse(poison.json).instanceId as string);
    }
  }
  expect(accepted.length).toBe(600 + CORPUS.filter((p) => p.expect.status === 202).length);

  // Every 202 is in Postgres…
  await waitFor(
    async () =>
      Number(
        (await pg.query('SELECT count(*) AS n FROM status_updates WHERE update_id = ANY($1)', [accepted])).rows[0].n,
      ) === accepted.length,
    {
      timeoutMs: 60_000,
      description: 'every accepted update in Postgres',
    },
  );
  // …and in live state.
  const store = new LiveStateStore(redis, { keyPrefix: site.redisPrefix });
  await waitFor(
    async () =>
      (await store.getTargets(acceptedInstances.map((id) => `instance:${id}`))).size === acceptedInstances.length,
    { timeoutMs: 30_000, description: 'every accepted instance in live state' },
  );

  // The storable look-alikes are stored as sent.
  for (const p of CORPUS) {
    if (p.expect.status !== 202) continue;
    const id = JSON.parse(p.json).instanceId as string;
    const row = (
      await pg.query('SELECT message, source, labels, metadata FROM status_updates WHERE instance_id = $1', [id])
    ).rows[0] as Record<string, unknown>;
    expect({ name: p.name, ...Object.fromEntries(Object.keys(p.expect.stored).map((k) => [k, row[k]])) }).toEqual({
      name: p.name,
      ...p.expect.stored,
    });
  }
  // Nothing refused was stored, and no collateral went to the dead-letter queue.
  expect(
    Number(
      (
        await pg.query(
          "SELECT count(*) AS n FROM status_updates WHERE instance_id LIKE 'p-%' AND instance_id <> ALL($1)",
          [acceptedInstances],
        )
      ).rows[0].n,
    ),
  ).toBe(0);
  const amqp = await connect(site.vhost.amqpUrl);
  try {
    const ch = await amqp.createChannel();
    ch.on('error', () => undefined);
    // Nothing accepted was set aside: neither in a shard's dead-letter queue nor in the legacy one's.
    for (const queue of [
      QueueName.AggregatorObservations,
      ...Array.from({ length: OBSERVATION_SHARDS }, (_, i) => observationShardQueue(i)),
    ]) {
      const dlq = await ch.assertQueue(deadLetterQueueOf(queue), {
        durable: true,
        arguments: { 'x-queue-type': 'quorum' },
      });
      expect([queue, dlq.messageCount]).toEqual([queue, 0]);
    }
  } finally {
    await amqp.close();
  }
});
