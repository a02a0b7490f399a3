import { randomUUID } from 'node:crypto';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { commitGatedPool } from '../sql/commit-gate.int-helpers';
import { SUBSCRIPTION_ERROR_MAX, SubscriptionDeliveriesRepository } from './subscription-deliveries.repository';

// The subscription delivery log keeps what a receiver answered. That answer is the receiver's to choose: a body
// holding a NUL (which Postgres text refuses) or longer than the log keeps must still be recorded — a failed
// record leaves the delivery claimed and unlogged, and it is sent again at each claim's end, forever.

let db: IsolatedDatabase;
let pool: SqlPool;
let repo: SubscriptionDeliveriesRepository;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  repo = new SubscriptionDeliveriesRepository(pool);
});
afterAll(async () => {
  await closeSqlPool(pool);
  await db?.dispose();
});

async function claimOne(subscriptionId: string, owner: string) {
  await repo.enqueue([{ subscriptionId, eventId: randomUUID(), targetId: 'instance:a', body: '{"to":"DOWN"}' }]);
  const claimed = (await repo.claimDue(owner, 100, 60_000)).filter((d) => d.subscriptionId === subscriptionId);
  expect(claimed).toHaveLength(1);
  return claimed[0];
}

describe('SubscriptionDeliveriesRepository.record', () => {
  it('records an attempt whose error holds a NUL (the receiver answered one): logged, moved on, not claimed again', async () => {
    const sub = `sub-${randomUUID()}`;
    const d = await claimOne(sub, 'w1');
    const kept = await repo.record(
      'w1',
      d.id,
      { outcome: 'retry', httpStatus: 500, error: 'HTTP 500: bad\u0000byte', durationMs: 3 },
      Date.now() + 3_600_000,
    );
    expect(kept).toBe(true);
    const [row] = await repo.bySubscription(sub);
    expect(row).toMatchObject({ state: 'pending', attempts: 1, lastError: 'HTTP 500: badbyte' });
    expect(row.log).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'retry', httpStatus: 500, error: 'HTTP 500: badbyte' }),
    ]);
    // Its next attempt is an hour away and its claim was handed back: nobody takes it now.
    expect((await repo.claimDue('w2', 100, 60_000)).some((c) => c.id === d.id)).toBe(false);
  });

  it('keeps at most SUBSCRIPTION_ERROR_MAX characters of an error, never a half surrogate pair', async () => {
    const sub = `sub-${randomUUID()}`;
    const d = await claimOne(sub, 'w1');
    const long = `${'x'.repeat(SUBSCRIPTION_ERROR_MAX - 1)}😀 and more`;
    expect(
      await repo.record('w1', d.id, { outcome: 'failed', httpStatus: 400, error: long, durationMs: 1 }, null),
    ).toBe(true);
    const rows = await sqlQuery<{ error: string }>(
      pool,
      `SELECT a.error FROM subscription_delivery_attempts a JOIN subscription_deliveries d ON d.id = a.delivery_id
       WHERE d.subscription_id = $1`,
      [sub],
    );
    expect(rows).toEqual([{ error: 'x'.repeat(SUBSCRIPTION_ERROR_MAX - 1) }]);
    expect((await repo.bySubscription(sub))[0]).toMatchObject({ state: 'failed', attempts: 1 });
  });
});

describe('SubscriptionDeliveriesRepository.recordMany', () => {
  it('records several attempts in one statement, each as record would, and not one whose claim was lost', async () => {
    const sub = `sub-${randomUUID()}`;
    await repo.enqueue(
      Array.from({ length: 3 }, () => ({
        subscriptionId: sub,
        eventId: randomUUID(),
        targetId: 'instance:a',
        body: '{}',
      })),
    );
    const [a, b, lost] = (await repo.claimDue('w1', 100, 60_000)).filter((d) => d.subscriptionId === sub);
    // Another replica took `lost` once w1's claim ran out.
    await sqlQuery(pool, `UPDATE subscription_deliveries SET claimed_by = 'w2' WHERE id = $1::bigint`, [lost.id]);
    const retryAt = Date.now() + 3_600_000;
    const kept = await repo.recordMany('w1', [
      { id: a.id, attempt: { outcome: 'delivered', httpStatus: 204, error: null, durationMs: 7 }, retryAt: null },
      { id: b.id, attempt: { outcome: 'retry', httpStatus: 503, error: 'HTTP 503: x\u0000y', durationMs: 9 }, retryAt },
      { id: lost.id, attempt: { outcome: 'failed', httpStatus: 400, error: 'no', durationMs: 1 }, retryAt: null },
    ]);
    expect([...kept].sort()).toEqual([a.id, b.id].sort());
    const rows = new Map((await repo.bySubscription(sub)).map((r) => [r.id, r]));
    expect(rows.get(a.id)).toMatchObject({ state: 'delivered', attempts: 1, lastError: null });
    expect(rows.get(a.id)?.log).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'delivered', httpStatus: 204, durationMs: 7 }),
    ]);
    expect(rows.get(b.id)).toMatchObject({ state: 'pending', attempts: 1, lastError: 'HTTP 503: xy' });
    expect(rows.get(b.id)?.log).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'retry', httpStatus: 503, error: 'HTTP 503: xy', durationMs: 9 }),
    ]);
    expect(rows.get(lost.id)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(rows.get(lost.id)?.log).toEqual([]);
    // b's next attempt is an hour away, its claim handed back: nobody takes it now; a is done.
    expect((await repo.claimDue('w3', 100, 60_000)).filter((c) => c.subscriptionId === sub)).toEqual([]);
    expect(await repo.recordMany('w1', [])).toEqual(new Set());
  });
});

describe('SubscriptionDeliveriesRepository.claimDue', () => {
  it('takes at most perSubscription of one subscription, so a backlog for one receiver leaves room for the others', async () => {
    // A receiver that hangs until the send timeout builds a backlog (every status change adds one); claimed oldest
    // first, a backlog as long as the batch filled every claim, and the other subscriptions' deliveries waited
    // behind it, one send timeout per batch.
    const busy = `sub-${randomUUID()}`;
    const quiet = `sub-${randomUUID()}`;
    await repo.enqueue(
      Array.from({ length: 30 }, () => ({
        subscriptionId: busy,
        eventId: randomUUID(),
        targetId: 'instance:a',
        body: '{}',
      })),
    );
    await repo.enqueue([{ subscriptionId: quiet, eventId: randomUUID(), targetId: 'instance:b', body: '{}' }]);
    const claimed = await repo.claimDue('w1', 20, 60_000, 4);
    const of = (sub: string) => claimed.filter((d) => d.subscriptionId === sub);
    expect(of(busy)).toHaveLength(4);
    expect(of(quiet)).toHaveLength(1);
    await repo.release('w1');
  });

  it("counts a subscription's deliveries still in flight against its share (a worker claiming as sends end)", async () => {
    const busy = `sub-${randomUUID()}`;
    const other = `sub-${randomUUID()}`;
    await repo.enqueue(
      [busy, other].flatMap((subscriptionId) =>
        Array.from({ length: 6 }, () => ({
          subscriptionId,
          eventId: randomUUID(),
          targetId: 'instance:a',
          body: '{}',
        })),
      ),
    );
    // 3 of busy's are still being sent: it may have 1 more; the other subscription its whole share.
    const claimed = await repo.claimDue('w1', 20, 60_000, 4, new Map([[busy, 3]]));
    const of = (sub: string) => claimed.filter((d) => d.subscriptionId === sub);
    expect(of(busy)).toHaveLength(1);
    expect(of(other)).toHaveLength(4);
    // At its share or beyond: none.
    await repo.release('w1');
    const none = await repo.claimDue('w1', 20, 60_000, 4, new Map([[busy, 5]]));
    expect(none.filter((d) => d.subscriptionId === busy)).toHaveLength(0);
    expect(await repo.claimDue('w1', 0, 60_000, 4)).toEqual([]);
    await repo.release('w1');
  });
});

describe('SubscriptionDeliveriesRepository.claimDue: perSubscription holds for the site (every replica’s live leases count)', () => {
  const queue = async (subscriptionId: string, n: number) => {
    await repo.enqueue(
      Array.from({ length: n }, () => ({ subscriptionId, eventId: randomUUID(), targetId: 'instance:a', body: '{}' })),
    );
    return (
      await sqlQuery<{ id: string }>(
        pool,
        'SELECT id::text AS id FROM subscription_deliveries WHERE subscription_id = $1 ORDER BY id',
        [subscriptionId],
      )
    ).map((r) => r.id);
  };
  /** The subscription's deliveries under a live lease, by owner. */
  const leased = (subscriptionId: string) =>
    sqlQuery<{ owner: string; n: number }>(
      pool,
      `SELECT claimed_by AS owner, count(*)::int AS n FROM subscription_deliveries
       WHERE subscription_id = $1 AND claimed_until >= now() GROUP BY claimed_by ORDER BY claimed_by`,
      [subscriptionId],
    );
  const ids = (claimed: { id: string; subscriptionId: string }[], sub: string) =>
    claimed.filter((d) => d.subscriptionId === sub).map((d) => d.id);
  const delivered = { outcome: 'delivered' as const, httpStatus: 200, error: null, durationMs: 1 };

  it('two replicas claiming at the same instant: the second waits for the first (its commit) and counts its leases', async () => {
    const sub = `sub-${randomUUID()}`;
    await queue(sub, 10);
    // Replica a's claim has run and holds 4, not committed yet, when b claims; a delivery that ranks ahead of a's
    // (stamped earlier: its transaction began first) committed in between — b, not seeing a's leases, took it as one
    // free slot of 4, and 5 were under way.
    const gate = commitGatedPool(db.databaseUrl);
    try {
      const a = new SubscriptionDeliveriesRepository(gate.pool);
      const atCommit = gate.hold();
      const claimA = a.claimDue('a', 100, 60_000, 4);
      await Promise.race([
        atCommit,
        new Promise((_, fail) => setTimeout(() => fail(new Error('a’s claim never reached its COMMIT')), 5000)),
      ]);
      await repo.enqueue([{ subscriptionId: sub, eventId: 'early', targetId: 'instance:a', body: '{}' }]);
      await sqlQuery(
        pool,
        `UPDATE subscription_deliveries SET next_attempt_at = now() - interval '1 hour'
         WHERE subscription_id = $1 AND event_id = 'early'`,
        [sub],
      );
      const claimB = repo.claimDue('b', 100, 60_000, 4);
      // b's claim would be done well within this, were it not waiting for a's.
      await new Promise((r) => setTimeout(r, 300));
      gate.release();
      const [got, other] = await Promise.all([claimA, claimB]);
      expect(ids(got, sub)).toHaveLength(4);
      expect(ids(other, sub)).toEqual([]);
      expect(await leased(sub)).toEqual([{ owner: 'a', n: 4 }]);
    } finally {
      gate.release();
      await gate.close();
      await repo.release('a');
      await repo.release('b');
    }
  });

  it('an expired lease does not count; a recorded attempt (delivered, or to retry later) frees its slot', async () => {
    const sub = `sub-${randomUUID()}`;
    const all = await queue(sub, 8);
    // Replica a takes the share with a short lease.
    expect(ids(await repo.claimDue('a', 100, 200, 4), sub)).toEqual(all.slice(0, 4));
    expect(ids(await repo.claimDue('b', 100, 60_000, 4), sub)).toEqual([]);
    // a's leases ended (a died): they count no more — b takes those deliveries again, the share is whole again.
    await new Promise((r) => setTimeout(r, 300));
    expect(ids(await repo.claimDue('b', 100, 60_000, 4), sub)).toEqual(all.slice(0, 4));
    expect(ids(await repo.claimDue('c', 100, 60_000, 4), sub)).toEqual([]);
    // Two of b's are recorded — one delivered, one to be retried later: two slots free, for any replica.
    await repo.record('b', all[0], delivered, null);
    await repo.record(
      'b',
      all[1],
      { outcome: 'retry', httpStatus: 503, error: 'HTTP 503', durationMs: 1 },
      Date.now() + 3_600_000,
    );
    expect(ids(await repo.claimDue('c', 100, 60_000, 4), sub)).toEqual([all[4], all[5]]);
    expect(await leased(sub)).toEqual([
      { owner: 'b', n: 2 },
      { owner: 'c', n: 2 },
    ]);
    // The caller's own sends count once: its leases and its count of sends under way are the same sends.
    await repo.record('c', all[4], delivered, null);
    expect(ids(await repo.claimDue('c', 100, 60_000, 4, new Map([[sub, 1]])), sub)).toEqual([all[6]]);
    await repo.release('b');
    await repo.release('c');
  });
});

describe('SubscriptionDeliveriesRepository: a subscription paused (its receiver rate limits)', () => {
  const queue = async (subscriptionId: string, n: number) => {
    await repo.enqueue(
      Array.from({ length: n }, () => ({ subscriptionId, eventId: randomUUID(), targetId: 'instance:a', body: '{}' })),
    );
    return (await repo.bySubscription(subscriptionId)).map((r) => r.id).reverse();
  };
  const dueOf = async (subscriptionId: string) =>
    sqlQuery<{ id: string; attempts: number; due: Date }>(
      pool,
      `SELECT id::text, attempts, next_attempt_at AS due FROM subscription_deliveries
       WHERE subscription_id = $1 ORDER BY id`,
      [subscriptionId],
    );

  it('none of its deliveries is claimed by any owner until the pause ends; the answered ones are not charged', async () => {
    const paused = `sub-${randomUUID()}`;
    const other = `sub-${randomUUID()}`;
    const ids = await queue(paused, 3);
    const before = await dueOf(paused);
    const claimed = (await repo.claimDue('a', 100, 60_000, 2)).filter((d) => d.subscriptionId === paused);
    expect(claimed.map((d) => d.id)).toEqual(ids.slice(0, 2));
    const limited = { outcome: 'retry' as const, httpStatus: 429, error: 'HTTP 429 (rate limited)', durationMs: 2 };
    const [{ dbNow }] = await sqlQuery<{ dbNow: Date }>(pool, 'SELECT now() AS "dbNow"');
    // Both sends under way came back 429, recorded together (one pause row, the later end kept).
    const kept = await repo.recordMany('a', [
      { id: ids[0], attempt: limited, retryAt: null, pause: { subscriptionId: paused, ms: 60_000 } },
      { id: ids[1], attempt: limited, retryAt: null, pause: { subscriptionId: paused, ms: 30_000 } },
    ]);
    expect(kept).toEqual(new Set(ids.slice(0, 2)));
    // A shorter Retry-After recorded later does not shorten it (and pauses even from a send whose claim was lost).
    expect(await repo.record('a', ids[2], limited, null, { subscriptionId: paused, ms: 50_000 })).toBe(false);
    // The end is the database's clock plus the pause (PAUSE_CLOCK), not the aggregator's.
    const until = await repo.pausedUntil(paused);
    expect(until).toBeGreaterThanOrEqual(dbNow.getTime() + 60_000);
    expect(until).toBeLessThan(dbNow.getTime() + 65_000);
    await queue(other, 1);
    // Another owner: the other subscription's delivery, none of the paused one's.
    const during = await repo.claimDue('b', 100, 60_000);
    expect(during.some((d) => d.subscriptionId === other)).toBe(true);
    expect(during.filter((d) => d.subscriptionId === paused)).toEqual([]);
    // Waiting cost nothing: attempts and due times (their order) as they were, claims handed back.
    expect(await dueOf(paused)).toEqual(before);
    const [row] = (await repo.bySubscription(paused)).filter((r) => r.id === ids[0]);
    expect(row.log).toEqual([expect.objectContaining({ attempt: 1, outcome: 'retry', httpStatus: 429 })]);
    // Once it ends, its deliveries come in their order.
    await sqlQuery(
      pool,
      `UPDATE subscription_pauses SET paused_until = now() - interval '1 second' WHERE subscription_id = $1`,
      [paused],
    );
    expect(await repo.pausedUntil(paused)).toBeNull();
    const after = (await repo.claimDue('c', 100, 60_000, 1)).filter((d) => d.subscriptionId === paused);
    expect(after.map((d) => [d.id, d.attempts])).toEqual([[ids[0], 0]]);
    await repo.release('b');
    await repo.release('c');
  });

  it('a delivery too old to wait ends failed, charged; the subscription pauses all the same', async () => {
    const sub = `sub-${randomUUID()}`;
    const [id] = await queue(sub, 1);
    await repo.claimDue('a', 100, 60_000);
    await repo.record(
      'a',
      id,
      { outcome: 'failed', httpStatus: 429, error: 'HTTP 429 (gave up)', durationMs: 1 },
      null,
      { subscriptionId: sub, ms: 60_000 },
    );
    expect((await repo.bySubscription(sub))[0]).toMatchObject({ state: 'failed', attempts: 1 });
    expect(await repo.pausedUntil(sub)).toBeGreaterThan(Date.now() + 50_000);
  });

  it('pauses that ended are deleted with the retention, a pause still running is kept', async () => {
    const ended = `sub-${randomUUID()}`;
    const running = `sub-${randomUUID()}`;
    for (const [sub, ms] of [
      [ended, -3_600_000],
      [running, 3_600_000],
    ] as const) {
      const [id] = await queue(sub, 1);
      await repo.claimDue('p', 100, 60_000);
      await repo.record('p', id, { outcome: 'retry', httpStatus: 429, error: null, durationMs: 1 }, null, {
        subscriptionId: sub,
        ms,
      });
      await repo.release('p');
    }
    await repo.purgeFinished(Date.now() - 60_000);
    const left = await sqlQuery<{ subscription_id: string }>(
      pool,
      'SELECT subscription_id FROM subscription_pauses WHERE subscription_id = ANY($1::text[])',
      [[ended, running]],
    );
    expect(left).toEqual([{ subscription_id: running }]);
  });
});
