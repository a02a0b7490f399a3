import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import {
  Messages,
  uuidv7,
  subscriptionSpecSchema,
  TargetStatus,
  type StatusChangeDelivery,
  type SubscriptionInput,
} from '@fleetwatch/contracts';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import { generateSealingKeyText, SecretSealer, subscriptionSecretContext } from '@fleetwatch/persistence';
import { freePortBlock, waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, statusUpdate, type TestSite } from '../../aggregator.int-helpers';

// Issue 18, status-change subscriptions in one running aggregator, on the real bus and database: a target
// goes DOWN → exactly one signed request at a receiver started here (the HMAC verified), also when the
// same status event is delivered again; a change no subscription selects sends nothing; a receiver that
// is down gets retries, each logged, then the request once it is up.

jest.setTimeout(120_000);

const KEY = generateSealingKeyText();
const SECRET = 'subscription signing secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  verified: boolean;
  body: StatusChangeDelivery;
}

function receiver(received: Received[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = (name: string) => [req.headers[name]].flat()[0];
      received.push({
        verified: verifyWebhookSignature({
          secret: SECRET,
          body,
          timestamp: header(WEBHOOK_TIMESTAMP_HEADER),
          signature: header(WEBHOOK_SIGNATURE_HEADER),
          now: Date.now(),
        }),
        body: JSON.parse(body) as StatusChangeDelivery,
      });
      res.writeHead(200).end();
    });
  };
}

const listen = (server: Server, port = 0) =>
  new Promise<number>((r) => server.listen(port, '127.0.0.1', () => r((server.address() as AddressInfo).port)));

/**
 * A port nothing listens on now, bound only later by the test: drawn below the kernel's ephemeral range
 * (freePortBlock), where no outgoing connection of the aggregator's can take it meanwhile.
 */
const freePort = (): Promise<number> => freePortBlock(1);

let site: TestSite;
let app: INestApplicationContext;
const servers: Server[] = [];
const received: Received[] = [];

async function putSubscription(id: string, input: Partial<SubscriptionInput> & { url: string }): Promise<void> {
  const spec = subscriptionSpecSchema.parse({ name: id, ...input });
  const sealed = SecretSealer.fromText(KEY).seal(SECRET, subscriptionSecretContext(id));
  await site.pg.query(
    'INSERT INTO status_subscriptions (id, name, spec, secret, version) VALUES ($1, $2, $3::jsonb, $4, 1)',
    [id, spec.name, JSON.stringify(spec), sealed],
  );
}

async function deliveries(subscriptionId: string) {
  const { rows } = await site.pg.query<{ id: string; event_id: string; target_id: string; state: string }>(
    'SELECT id::text, event_id, target_id, state FROM subscription_deliveries WHERE subscription_id = $1 ORDER BY id',
    [subscriptionId],
  );
  return rows;
}

beforeAll(async () => {
  const main = createServer(receiver(received));
  servers.push(main);
  const port = await listen(main);
  site = await createIsolatedTestSite('subscriptions', {
    AGGREGATOR_BATCH_WAIT_MS: '5',
    FLEETWATCH_ENCRYPTION_KEY: KEY,
    FLEETWATCH_SITE: 'sub-site',
    FLEETWATCH_CHECK_DENY_NETWORKS: '169.254.0.0/16,127.0.0.2/32',
  });
  const url = `http://127.0.0.1:${port}/hook`;
  await putSubscription('sub-down', {
    url,
    selector: { targetIds: ['instance:api-1'] },
    transitions: { to: [TargetStatus.Down] },
  });
  await putSubscription('sub-tagged', { url, selector: { tags: ['nowhere'] } });
  app = await startAggregator(site.env);
});

afterAll(async () => {
  await app?.close();
  await site?.dispose();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

it('a target DOWN: exactly one signed request, also when the event comes again (alone or regrouped in a batch); nothing for the others', async () => {
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-1', 'running', Date.now()));
  await waitFor(() => site.changes.some((c) => c.targetId === 'instance:api-1' && c.location === null), {
    timeoutMs: 20_000,
    description: 'api-1 UP',
  });
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-1', 'exited', Date.now()));
  await waitFor(() => received.length >= 1, { timeoutMs: 20_000, description: 'the signed request' });
  const [first] = received;
  expect(first.verified).toBe(true);
  expect(first.body).toMatchObject({
    version: '1',
    type: 'status.changed',
    subscriptionId: 'sub-down',
    site: 'sub-site',
    targetId: 'instance:api-1',
    kind: 'instance',
    location: null,
    from: 'UP',
    to: 'DOWN',
  });

  // The same status event delivered again (a relay's republish after a lost confirm): nothing more is sent.
  const event = site.changes.find((c) => c.targetId === 'instance:api-1' && c.location === null && c.to === 'DOWN');
  if (!event) throw new Error('the DOWN event was not seen');
  await site.bus.publisher.publish(Messages.StatusChanged, event, { id: first.body.eventId, mandatory: false });
  // …and again regrouped in a new status.changed.batch (a relay re-sending what it left behind) beside an event
  // sub-down does select: that one is sent once, the first one not again — the batch was read, each event by its id.
  const extraId = uuidv7();
  await site.bus.publisher.publish(
    Messages.StatusChangedBatch,
    {
      events: [
        { ...event, eventId: first.body.eventId },
        { ...event, eventId: extraId, reason: 'regrouped' },
      ],
    },
    { mandatory: false },
  );
  await waitFor(() => received.length >= 2, { timeoutMs: 20_000, description: 'the batched event’s request' });
  expect(received[1].body).toMatchObject({
    eventId: extraId,
    subscriptionId: 'sub-down',
    to: 'DOWN',
    reason: 'regrouped',
  });
  // A change nothing selects (another target; and api-1's recovery, which sub-down does not ask for).
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-2', 'exited', Date.now()));
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-1', 'running', Date.now()));
  await waitFor(
    () =>
      site.changes.some((c) => c.targetId === 'instance:api-2') &&
      site.changes.filter((c) => c.targetId === 'instance:api-1' && c.location === null && c.to === 'UP').length >= 2,
    { timeoutMs: 20_000, description: 'api-2 DOWN and api-1 UP again' },
  );
  await sleep(2500);
  expect(received).toHaveLength(2);
  const rows = await deliveries('sub-down');
  expect(rows).toHaveLength(2);
  expect(rows).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ event_id: first.body.eventId, target_id: 'instance:api-1', state: 'delivered' }),
      expect.objectContaining({ event_id: extraId, target_id: 'instance:api-1', state: 'delivered' }),
    ]),
  );
  expect(await deliveries('sub-tagged')).toEqual([]);
  const log = await site.pg.query<{ attempt: number; outcome: string; http_status: number }>(
    `SELECT a.attempt, a.outcome, a.http_status FROM subscription_delivery_attempts a
     JOIN subscription_deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = 'sub-down'`,
  );
  expect(log.rows).toEqual([
    { attempt: 1, outcome: 'delivered', http_status: 200 },
    { attempt: 1, outcome: 'delivered', http_status: 200 },
  ]);
});

it('a receiver that is down: retries, each logged, then delivered once it is up', async () => {
  const port = await freePort();
  await putSubscription('sub-later', {
    url: `http://127.0.0.1:${port}/late`,
    selector: { targetIds: ['instance:api-3'] },
  });
  const late: Received[] = [];
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-3', 'exited', Date.now()));
  const retries = async () =>
    (
      await site.pg.query<{ attempt: number; outcome: string; error: string | null }>(
        `SELECT a.attempt, a.outcome, a.error FROM subscription_delivery_attempts a
         JOIN subscription_deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = 'sub-later' ORDER BY a.id`,
      )
    ).rows;
  await waitFor(async () => (await retries()).length >= 2, { timeoutMs: 30_000, description: 'two failed attempts' });
  expect(late).toHaveLength(0);
  const server = createServer(receiver(late));
  servers.push(server);
  await listen(server, port);
  await waitFor(() => late.length >= 1, { timeoutMs: 40_000, description: 'the request once the receiver is up' });
  await sleep(1500);
  expect(late).toHaveLength(1);
  expect(late[0].verified).toBe(true);
  expect(late[0].body).toMatchObject({ subscriptionId: 'sub-later', targetId: 'instance:api-3', to: 'DOWN' });
  const log = await retries();
  expect(log.length).toBeGreaterThanOrEqual(3);
  expect(log.slice(0, -1).every((a) => a.outcome === 'retry' && /ECONNREFUSED/.test(a.error ?? ''))).toBe(true);
  expect(log[log.length - 1]).toMatchObject({ outcome: 'delivered', error: null });
  expect(log.map((a) => a.attempt)).toEqual(log.map((_a, i) => i + 1));
  expect(await deliveries('sub-later')).toEqual([expect.objectContaining({ state: 'delivered' })]);
});

it('a receiver whose refusal holds a NUL: the attempt is logged (NUL dropped) and retried, not sent again unlogged', async () => {
  // Postgres text refuses NUL: unrecorded, the attempt left the delivery claimed and it was sent again at each
  // claim's end (a minute), forever, with nothing in the log.
  const hits: number[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push(Date.now());
      if (hits.length === 1) res.writeHead(503, { 'retry-after': '1' }).end('busy\u0000now');
      else res.writeHead(200).end();
    });
  });
  servers.push(server);
  const port = await listen(server);
  await putSubscription('sub-nul', {
    url: `http://127.0.0.1:${port}/nul`,
    selector: { targetIds: ['instance:api-5'] },
  });
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-5', 'exited', Date.now()));
  const rows = await waitFor(
    async () => {
      const d = await deliveries('sub-nul');
      return d.length === 1 && d[0].state === 'delivered' ? d : null;
    },
    { timeoutMs: 30_000, description: 'the delivery, retried after the NUL refusal, delivered' },
  );
  const log = await site.pg.query<{ attempt: number; outcome: string; http_status: number; error: string | null }>(
    'SELECT attempt, outcome, http_status, error FROM subscription_delivery_attempts WHERE delivery_id = $1::bigint ORDER BY id',
    [rows[0].id],
  );
  // A 503 with Retry-After pauses the subscription (rate limited): the wait is logged, not counted as an attempt.
  expect(log.rows).toEqual([
    {
      attempt: 1,
      outcome: 'retry',
      http_status: 503,
      error: expect.stringMatching(
        /^HTTP 503: busynow \(rate limited: the subscription pauses until .*; not counted as an attempt\)$/,
      ),
    },
    { attempt: 1, outcome: 'delivered', http_status: 200, error: null },
  ]);
  expect(hits).toHaveLength(2);
});

it('a URL the target policy denies (FLEETWATCH_CHECK_DENY_NETWORKS) fails at the first attempt, logged, never retried', async () => {
  const late: Received[] = [];
  const server = createServer(receiver(late));
  servers.push(server);
  const port = await new Promise<number>((r) =>
    server.listen(0, '127.0.0.2', () => r((server.address() as AddressInfo).port)),
  );
  // Stored as if written before the deny list named it (save time checks the same list).
  await putSubscription('sub-denied', {
    url: `http://127.0.0.2:${port}/x`,
    selector: { targetIds: ['instance:api-4'] },
  });
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-4', 'exited', Date.now()));
  const rows = await waitFor(
    async () => {
      const d = await deliveries('sub-denied');
      return d.length === 1 && d[0].state === 'failed' ? d : null;
    },
    { timeoutMs: 30_000, description: 'the denied delivery failed' },
  );
  const log = await site.pg.query<{ attempt: number; outcome: string; error: string | null }>(
    'SELECT attempt, outcome, error FROM subscription_delivery_attempts WHERE delivery_id = $1::bigint',
    [rows[0].id],
  );
  expect(log.rows).toEqual([{ attempt: 1, outcome: 'failed', error: expect.stringMatching(/target policy/) }]);
  await sleep(1500);
  expect(late).toHaveLength(0);
});
