import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { RetryPolicy } from '@fleetwatch/alerting';
import {
  closeSqlPool,
  createSqlPool,
  generateSealingKeyText,
  SecretSealer,
  subscriptionSecretContext,
  SubscriptionDeliveriesRepository,
  SubscriptionsRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import {
  capturedLogger,
  rateLimitingResponder,
  startHttpReceiver,
  type HttpReceiver,
  type ReceivedRequest,
} from '../delivery/receivers.int-helpers';
import { SubscriptionDeliveryWorker, type SubscriptionDeliveryOptions } from './subscription-delivery.worker';

// A subscription whose receiver rate limits (429 + Retry-After) pauses as a whole, not only the delivery it answered:
// the subscription's other queued status changes are not sent into the limit meanwhile — by this worker, or by one
// started after a restart — and go out once each, in their order, when the pause ends; nobody is charged an attempt
// for waiting, and the other subscriptions keep flowing.

jest.setTimeout(60_000);

const KEY = generateSealingKeyText();
const sealer = SecretSealer.fromText(KEY);
const FAST: RetryPolicy = { maxAttempts: 4, baseDelayMs: 150, maxDelayMs: 2000, maxAgeMs: 600_000, jitter: 0 };
let db: IsolatedDatabase;
let pool: SqlPool;
let pg: Client;
let deliveries: SubscriptionDeliveriesRepository;
let subscriptions: SubscriptionsRepository;
const receivers: HttpReceiver[] = [];
const running: SubscriptionDeliveryWorker[] = [];
const log = capturedLogger();

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 6 });
  pg = new Client({ connectionString: db.databaseUrl });
  await pg.connect();
  deliveries = new SubscriptionDeliveriesRepository(pool);
  subscriptions = new SubscriptionsRepository(pool);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await pg?.end();
  await closeSqlPool(pool);
  await db?.dispose();
});

function worker(over: Partial<SubscriptionDeliveryOptions> = {}): SubscriptionDeliveryWorker {
  const w = new SubscriptionDeliveryWorker(deliveries, subscriptions, sealer, log.logger, {
    owner: `test-${randomUUID()}`,
    policy: FAST,
    http: { timeoutMs: 5000, maxResponseBytes: 4096, maxRedirects: 0 },
    leaseMs: 60_000,
    pollMs: 50,
    batch: 20,
    retentionMs: 7 * 86_400_000,
    ...over,
  });
  running.push(w);
  w.start();
  return w;
}

/** A subscription sending to `url`. */
async function subscription(url: string): Promise<string> {
  const id = `sub-${randomUUID()}`;
  await pg.query(
    'INSERT INTO status_subscriptions (id, name, spec, secret, version) VALUES ($1, $2, $3::jsonb, $4, 1)',
    [id, id, JSON.stringify({ name: id, url, enabled: true }), sealer.seal('secret', subscriptionSecretContext(id))],
  );
  return id;
}

/** Queues `n` status changes for a subscription; answers their event ids, in their order. */
async function queue(subscriptionId: string, n: number): Promise<string[]> {
  const events = Array.from({ length: n }, () => randomUUID());
  await deliveries.enqueue(
    events.map((eventId) => ({ subscriptionId, eventId, targetId: 'instance:a', body: JSON.stringify({ eventId }) })),
  );
  return events;
}

/** A receiver that rate limits (rateLimitingResponder), closed after the spec. */
async function rateLimiting(seconds: number): Promise<HttpReceiver & { openAt: () => number }> {
  const { respond, openAt } = rateLimitingResponder(seconds);
  const r = await startHttpReceiver(respond);
  receivers.push(r);
  return Object.assign(r, { openAt });
}

async function flowing(): Promise<HttpReceiver> {
  const r = await startHttpReceiver(() => ({ status: 200 }));
  receivers.push(r);
  return r;
}

const eventOf = (q: ReceivedRequest) => (JSON.parse(q.body) as { eventId: string }).eventId;

interface Row {
  event_id: string;
  state: string;
  attempts: number;
  log: Array<{ attempt: number; outcome: string; http_status: number | null; error: string | null }>;
}

/** A subscription's deliveries in their order, each with its log. */
async function rowsOf(subscriptionId: string): Promise<Row[]> {
  const { rows } = await pg.query<Row>(
    `SELECT d.event_id, d.state, d.attempts,
       COALESCE((SELECT json_agg(json_build_object('attempt', a.attempt, 'outcome', a.outcome,
                   'http_status', a.http_status, 'error', a.error) ORDER BY a.id)
                 FROM subscription_delivery_attempts a WHERE a.delivery_id = d.id), '[]') AS log
     FROM subscription_deliveries d WHERE d.subscription_id = $1 ORDER BY d.id`,
    [subscriptionId],
  );
  return rows;
}

/** Until none of a subscription's deliveries is pending. */
async function allFinished(subscriptionId: string, timeoutMs = 20_000): Promise<Row[]> {
  return waitFor(
    async () => {
      const rows = await rowsOf(subscriptionId);
      return rows.length > 0 && rows.every((r) => r.state !== 'pending') ? rows : null;
    },
    { timeoutMs, description: `the deliveries of ${subscriptionId} to finish` },
  );
}

describe('a subscription rate limited by its receiver', () => {
  it('pauses as a whole until Retry-After: nothing more is sent to it meanwhile, then each change once, in order; another subscription is not held up', async () => {
    // Paused 3 s: the other subscription's four sends, one at a time, fit well inside it on a loaded CI box.
    const limited = await rateLimiting(3);
    const other = await flowing();
    const a = await subscription(`${limited.url}/hook`);
    const b = await subscription(`${other.url}/hook`);
    const aEvents = await queue(a, 5);
    const bEvents = await queue(b, 4);
    // One send of a subscription at a time: the order the receiver sees is the order the changes go out in.
    worker({ perSubscription: 1 });
    const aRows = await allFinished(a);
    await allFinished(b);

    const openAt = limited.openAt();
    // Before it ends: only the first change was sent (its 429 paused the subscription); none of the four others was
    // sent into the limit. After: each change once, in its order.
    expect(limited.requests.filter((q) => q.at < openAt).map(eventOf)).toEqual([aEvents[0]]);
    expect(limited.requests.filter((q) => q.at >= openAt).map(eventOf)).toEqual(aEvents);
    // The other subscription went on at its own pace, not after the pause (no tighter wall-clock bound: a loaded CI
    // box takes its time).
    expect(other.requests.map(eventOf)).toEqual(bEvents);
    expect(Math.max(...other.requests.map((q) => q.at))).toBeLessThan(openAt);

    // Waiting was not charged: the answered change's delivery counts its one send; the others had one each.
    expect(aRows.map((r) => [r.event_id, r.state, r.attempts])).toEqual(aEvents.map((e) => [e, 'delivered', 1]));
    expect(aRows[0].log.map((e) => [e.attempt, e.outcome, e.http_status])).toEqual([
      [1, 'retry', 429],
      [1, 'delivered', 200],
    ]);
    expect(aRows[0].log[0].error).toMatch(
      /^HTTP 429.* \(rate limited: the subscription pauses until .*; not counted as an attempt\)$/,
    );
    for (const r of aRows.slice(1)) expect(r.log.map((e) => [e.attempt, e.outcome])).toEqual([[1, 'delivered']]);
  });

  it('with several sends of the subscription under way: only those already sent meet the limit; each change is delivered once, uncharged', async () => {
    const limited = await rateLimiting(2);
    const a = await subscription(`${limited.url}/hook`);
    const aEvents = await queue(a, 8);
    worker({ perSubscription: 3 });
    const rows = await allFinished(a);
    const openAt = limited.openAt();
    // The sends on their way when the first 429 came back (at most the subscription's 3), none after it.
    expect(limited.requests.filter((q) => q.at < openAt).length).toBeLessThanOrEqual(3);
    expect(
      limited.requests
        .filter((q) => q.at >= openAt)
        .map(eventOf)
        .sort(),
    ).toEqual([...aEvents].sort());
    expect(rows.map((r) => [r.state, r.attempts])).toEqual(aEvents.map(() => ['delivered', 1]));
  });

  it('a 503 with Retry-After pauses the subscription too', async () => {
    let openAt = 0;
    const busy = await startHttpReceiver((req) => {
      if (openAt === 0) openAt = req.at + 1000;
      return req.at < openAt ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 };
    });
    receivers.push(busy);
    const a = await subscription(`${busy.url}/hook`);
    const aEvents = await queue(a, 3);
    worker({ perSubscription: 1 });
    const rows = await allFinished(a);
    expect(busy.requests.filter((q) => q.at < openAt).map(eventOf)).toEqual([aEvents[0]]);
    expect(busy.requests.filter((q) => q.at >= openAt).map(eventOf)).toEqual(aEvents);
    expect(rows[0].log.map((e) => [e.attempt, e.outcome, e.http_status])).toEqual([
      [1, 'retry', 503],
      [1, 'delivered', 200],
    ]);
  });

  it('a change too old to wait out the pause gives up (the age limit still holds); the subscription pauses all the same', async () => {
    const limited = await rateLimiting(30);
    const a = await subscription(`${limited.url}/hook`);
    await queue(a, 1);
    worker({ policy: { ...FAST, maxAgeMs: 10_000 } });
    const [row] = await allFinished(a);
    expect(row.log.map((e) => [e.attempt, e.outcome, e.http_status])).toEqual([[1, 'failed', 429]]);
    expect(row.log[0].error).toMatch(/^HTTP 429.* \(gave up: older than 0 min\)$/);
    expect(await deliveries.pausedUntil(a)).toBeGreaterThan(Date.now() + 25_000);
  });

  it('the pause is kept in Postgres: a worker started after a restart sends nothing to the subscription until it ends', async () => {
    const limited = await rateLimiting(3);
    const a = await subscription(`${limited.url}/hook`);
    const aEvents = await queue(a, 3);
    const first = worker({ perSubscription: 1 });
    await waitFor(async () => (await deliveries.pausedUntil(a)) !== null, {
      timeoutMs: 5000,
      description: 'the subscription to pause',
    });
    // This worker stops (a restart, or another replica takes over): the new one knows nothing of the 429 itself.
    await first.stop();
    const second = worker({ perSubscription: 1 });
    second.kick();
    const rows = await allFinished(a);
    const openAt = limited.openAt();
    expect(limited.requests.filter((q) => q.at < openAt).map(eventOf)).toEqual([aEvents[0]]);
    expect(limited.requests.filter((q) => q.at >= openAt).map(eventOf)).toEqual(aEvents);
    expect(rows.map((r) => r.attempts)).toEqual([1, 1, 1]);
  });
});
