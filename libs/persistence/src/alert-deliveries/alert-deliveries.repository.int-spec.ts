import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { toStorable } from '@fleetwatch/contracts';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { closeSqlPool, createSqlPool, runInSqlTransaction, sqlExecute, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { commitGatedPool } from '../sql/commit-gate.int-helpers';
import { AlertDeliveriesRepository, DELIVERY_ERROR_MAX, type DeliveryAttempt } from './alert-deliveries.repository';

// A database of its own: another spec's workers or claims must not take this one's queued messages.
let db: IsolatedDatabase;
let pool: SqlPool;
let repo: AlertDeliveriesRepository;
const T = Date.parse('2026-03-01T00:00:00Z');

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  repo = new AlertDeliveriesRepository(pool);
});
afterAll(async () => {
  await closeSqlPool(pool);
  await db?.dispose();
});

const attemptOf = (deliveryId: string, channelId: string, over: Partial<DeliveryAttempt> = {}): DeliveryAttempt => ({
  deliveryId,
  channelId,
  channelType: 'webhook',
  groupKey: 'g',
  status: 'firing',
  attempt: 1,
  outcome: 'delivered',
  httpStatus: 200,
  error: null,
  durationMs: 12,
  nextAttemptAt: null,
  test: false,
  at: T,
  ...over,
});

describe('AlertDeliveriesRepository', () => {
  it('queues, claims once, retries later, and removes when delivered — the log keeps every attempt', async () => {
    const ch = `ch-${randomUUID()}`;
    const [id] = await repo.enqueue([{ channelId: ch, groupKey: 'g:{"a":"b"}', notification: { n: 1 } }], undefined, T);
    const claimed = await repo.claimDue('a', T, 100, 30_000);
    const mine = claimed.filter((p) => p.channelId === ch);
    expect(mine).toEqual([
      {
        id,
        channelId: ch,
        groupKey: 'g:{"a":"b"}',
        notification: { n: 1 },
        attempts: 0,
        nextAttemptAt: T,
        createdAt: T,
      },
    ]);
    // Claimed: nobody else gets it while the lease runs; after it expires, someone does.
    expect((await repo.claimDue('b', T + 1000, 100, 30_000)).some((p) => p.id === id)).toBe(false);
    await repo.recordAttempt(
      'a',
      attemptOf(id, ch, { outcome: 'retrying', httpStatus: 503, error: 'HTTP 503', nextAttemptAt: T + 5000 }),
    );
    expect((await repo.claimDue('b', T + 4000, 100, 30_000)).some((p) => p.id === id)).toBe(false);
    const again = (await repo.claimDue('b', T + 5000, 100, 30_000)).find((p) => p.id === id);
    expect(again).toMatchObject({ attempts: 1, nextAttemptAt: T + 5000 });
    // The first owner's late answer does not move a claim that went to another replica.
    await repo.recordAttempt('a', attemptOf(id, ch, { attempt: 2 }));
    expect((await repo.listPending(ch)).map((p) => p.id)).toEqual([id]);
    await repo.recordAttempt('b', attemptOf(id, ch, { attempt: 2, at: T + 5100 }));
    expect(await repo.listPending(ch)).toEqual([]);
    const log = await repo.listLog({ channelId: ch });
    expect(log.map((l) => [l.attempt, l.outcome, l.httpStatus])).toEqual([
      [2, 'delivered', 200],
      [2, 'delivered', 200],
      [1, 'retrying', 503],
    ]);
    expect(log[2]).toMatchObject({ deliveryId: id, nextAttemptAt: T + 5000, error: 'HTTP 503', durationMs: 12 });
  });

  it('one (channel, group) goes out in order: a later message waits for the earlier one', async () => {
    const ch = `ch-${randomUUID()}`;
    const [first, second] = await repo.enqueue(
      [
        { channelId: ch, groupKey: 'g', notification: 'firing' },
        { channelId: ch, groupKey: 'g', notification: 'resolved' },
      ],
      undefined,
      T,
    );
    const [other] = await repo.enqueue([{ channelId: ch, groupKey: 'h', notification: 'x' }], undefined, T);
    const ids = (await repo.claimDue('a', T, 100, 30_000)).map((p) => p.id);
    expect(ids).toEqual(expect.arrayContaining([first, other]));
    expect(ids).not.toContain(second);
    await repo.recordAttempt('a', attemptOf(first, ch, { outcome: 'failed', httpStatus: 400 }));
    expect((await repo.claimDue('a', T, 100, 30_000)).map((p) => p.id)).toContain(second);
  });

  it('a claim that expired and went to another owner cannot be renewed: only the new owner sends it', async () => {
    const ch = `ch-${randomUUID()}`;
    const [id] = await repo.enqueue([{ channelId: ch, groupKey: 'g', notification: 1 }], undefined, T);
    expect((await repo.claimDue('a', T, 100, 1_000)).some((p) => p.id === id)).toBe(true);
    expect(await repo.renewClaim(id, 'a', T + 1_500)).toBe(true); // still a's: extended
    // a is slow: its (extended) claim runs out and b takes the message.
    expect((await repo.claimDue('b', T + 1_000, 100, 30_000)).some((p) => p.id === id)).toBe(false);
    expect((await repo.claimDue('b', T + 2_000, 100, 30_000)).some((p) => p.id === id)).toBe(true);
    expect(await repo.renewClaim(id, 'a', T + 5_000)).toBe(false);
    expect(await repo.renewClaim(id, 'b', T + 5_000)).toBe(true);
    await repo.releaseClaims('b');
  });

  it('concurrent claimers never get the same message', async () => {
    const ch = `ch-${randomUUID()}`;
    await repo.enqueue(
      Array.from({ length: 40 }, (_, i) => ({ channelId: ch, groupKey: `g${i}`, notification: i })),
      undefined,
      T,
    );
    const claims = await Promise.all(['a', 'b', 'c', 'd'].map((o) => repo.claimDue(o, T, 15, 30_000)));
    const mine = claims
      .flat()
      .filter((p) => p.channelId === ch)
      .map((p) => p.id);
    expect(new Set(mine).size).toBe(mine.length);
    expect(mine.length).toBe(40);
    expect(await repo.releaseClaims('a')).toBeGreaterThan(0);
  });

  it('perChannel: a claim takes at most that many of one channel (its oldest), and the other channels’ too', async () => {
    const busy = `ch-${randomUUID()}`;
    const quiet = `ch-${randomUUID()}`;
    const backlog = await repo.enqueue(
      Array.from({ length: 10 }, (_, i) => ({ channelId: busy, groupKey: `g${i}`, notification: i })),
      undefined,
      T - 1000,
    );
    const [late] = await repo.enqueue([{ channelId: quiet, groupKey: 'g', notification: 'q' }], undefined, T);
    const mine = (claims: { id: string; channelId: string }[]) =>
      claims.filter((p) => p.channelId === busy || p.channelId === quiet).map((p) => p.id);
    const claimed = mine(await repo.claimDue('a', T, 100, 30_000, 2));
    expect(claimed).toEqual([backlog[0], backlog[1], late]);
    // Another replica, while those two are under way: the channel's share is taken, site-wide.
    expect(mine(await repo.claimDue('b', T, 100, 30_000, 2))).toEqual([]);
    // Once they are recorded, the rest of the backlog is there for the next claim, oldest first.
    for (const id of [backlog[0], backlog[1]]) await repo.recordAttempt('a', attemptOf(id, busy));
    expect(mine(await repo.claimDue('b', T, 100, 30_000, 2))).toEqual([backlog[2], backlog[3]]);
    await repo.releaseClaims('a');
    await repo.releaseClaims('b');
    await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = ANY($1::text[])', [[busy, quiet]]);
  });

  describe('perChannel holds for the site: every replica’s live leases count', () => {
    const drafts = (channelId: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ channelId, groupKey: `g${i}`, notification: i }));
    /** The channel's messages under a live lease at `at`, by owner. */
    const leasedAt = async (channelId: string, at: number) =>
      sqlQuery<{ owner: string; n: number }>(
        pool,
        `SELECT claimed_by AS owner, count(*)::int AS n FROM alert_delivery_queue
         WHERE channel_id = $1 AND claimed_until >= $2::timestamptz GROUP BY claimed_by ORDER BY claimed_by`,
        [channelId, new Date(at).toISOString()],
      );
    const total = (rows: { n: number }[]) => rows.reduce((sum, r) => sum + r.n, 0);

    it('two replicas claiming at the same instant: the second waits for the first (its commit) and counts its leases', async () => {
      const ch = `ch-${randomUUID()}`;
      await repo.enqueue(drafts(ch, 10), undefined, T);
      // Replica a's claim has run and holds its 4 rows, not committed yet, when replica b claims. Row locks alone
      // (SKIP LOCKED) keep b off a's rows, and b's cap would pick the same 4 first — but not when a message that ranks
      // ahead of them committed in between (queued by a replica whose clock is behind): b, not seeing a's leases, took
      // it as the channel's one free slot of 4, and 5 were under way.
      const gate = commitGatedPool(db.databaseUrl);
      try {
        const a = new AlertDeliveriesRepository(gate.pool);
        const atCommit = gate.hold();
        const claimA = a.claimDue('a', T, 100, 30_000, 4);
        await Promise.race([
          atCommit,
          new Promise((_, fail) => setTimeout(() => fail(new Error('a’s claim never reached its COMMIT')), 5000)),
        ]);
        const [early] = await repo.enqueue(
          [{ channelId: ch, groupKey: 'early', notification: 'e' }],
          undefined,
          T - 5000,
        );
        const claimB = repo.claimDue('b', T, 100, 30_000, 4);
        // b's claim would be done well within this, were it not waiting for a's.
        await new Promise((r) => setTimeout(r, 300));
        gate.release();
        const [got, other] = await Promise.all([claimA, claimB]);
        expect(got.filter((p) => p.channelId === ch)).toHaveLength(4);
        expect(other.filter((p) => p.channelId === ch)).toEqual([]);
        expect(await leasedAt(ch, T)).toEqual([{ owner: 'a', n: 4 }]);
        // Once a's are recorded, the early message is the first the channel's next claim takes.
        for (const p of got) await a.recordAttempt('a', attemptOf(p.id, ch));
        expect((await repo.claimDue('b', T, 100, 30_000, 4)).filter((p) => p.channelId === ch)[0]?.id).toBe(early);
      } finally {
        gate.release();
        await gate.close();
        await repo.releaseClaims('a');
        await repo.releaseClaims('b');
        await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = $1', [ch]);
      }
    });

    it('claimers of two replicas (pools of their own) claiming concurrently, round after round: never more than perChannel of a channel leased', async () => {
      const at = T - 2 * 86_400_000;
      const channels = Array.from({ length: 5 }, () => `ch-${randomUUID()}`);
      for (const ch of channels) await repo.enqueue(drafts(ch, 30), undefined, at);
      const otherPool = createSqlPool(db.databaseUrl, { max: 4 });
      const replicas: [string, AlertDeliveriesRepository][] = [
        ['r1', repo],
        ['r2', new AlertDeliveriesRepository(otherPool)],
      ];
      const most = new Map<string, number>();
      try {
        for (let round = 0; round < 12; round++) {
          // Each replica makes two claims at once (as workers of several replicas do), of various sizes.
          const claims = await Promise.all(
            replicas.flatMap(([owner, r]) => [
              r.claimDue(owner, at, 3 + round, 30_000, 3),
              r.claimDue(owner, at, 2, 30_000, 3),
            ]),
          );
          for (const ch of channels) {
            const n = total(await leasedAt(ch, at));
            expect(n).toBeLessThanOrEqual(3);
            most.set(ch, Math.max(most.get(ch) ?? 0, n));
          }
          // Some sends end (recorded): their slots are free for the next round.
          for (const [i, claim] of claims.entries())
            for (const p of claim.slice(0, 2))
              await replicas[i >> 1][1].recordAttempt(replicas[i >> 1][0], attemptOf(p.id, p.channelId));
        }
        // The cap was reached (the claims were not simply small): every channel had 3 under way after some round.
        expect([...most.values()]).toEqual(channels.map(() => 3));
      } finally {
        await closeSqlPool(otherPool);
        await repo.releaseClaims('r1');
        await repo.releaseClaims('r2');
        await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = ANY($1::text[])', [channels]);
      }
    });

    it('an expired lease does not count; a recorded attempt (sent, or to retry later) frees its slot', async () => {
      const ch = `ch-${randomUUID()}`;
      const ids = await repo.enqueue(drafts(ch, 8), undefined, T);
      const mine = (claims: { id: string; channelId: string }[]) =>
        claims.filter((p) => p.channelId === ch).map((p) => p.id);
      // Replica a takes the share with a short lease.
      expect(mine(await repo.claimDue('a', T, 100, 1_000, 4))).toEqual(ids.slice(0, 4));
      expect(mine(await repo.claimDue('b', T + 500, 100, 30_000, 4))).toEqual([]);
      // a's leases ended (a died): they count no more — b takes those messages again, the share is whole again.
      expect(mine(await repo.claimDue('b', T + 1_001, 100, 30_000, 4))).toEqual(ids.slice(0, 4));
      expect(mine(await repo.claimDue('c', T + 1_001, 100, 30_000, 4))).toEqual([]);
      // Two of b's are recorded — one delivered, one to be retried later: two slots free, for any replica.
      await repo.recordAttempt('b', attemptOf(ids[0], ch));
      await repo.recordAttempt('b', attemptOf(ids[1], ch, { outcome: 'retrying', nextAttemptAt: T + 600_000 }));
      expect(mine(await repo.claimDue('c', T + 1_002, 100, 30_000, 4))).toEqual([ids[4], ids[5]]);
      expect(await leasedAt(ch, T + 1_002)).toEqual([
        { owner: 'b', n: 2 },
        { owner: 'c', n: 2 },
      ]);
      // The caller's own sends count once: its leases and its count of sends under way are the same sends.
      await repo.recordAttempt('c', attemptOf(ids[4], ch));
      expect(mine(await repo.claimDue('c', T + 1_003, 100, 30_000, 4, new Map([[ch, 1]])))).toEqual([ids[6]]);
      await repo.releaseClaims('b');
      await repo.releaseClaims('c');
      await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = $1', [ch]);
    });
  });

  it('perChannel counts the sends the caller has under way: a channel at its cap gives nothing more, the others do', async () => {
    const busy = `ch-${randomUUID()}`;
    const half = `ch-${randomUUID()}`;
    const quiet = `ch-${randomUUID()}`;
    const drafts = (channelId: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ channelId, groupKey: `g${i}`, notification: i }));
    const b = await repo.enqueue(drafts(busy, 5), undefined, T - 1000);
    const h = await repo.enqueue(drafts(half, 5), undefined, T - 1000);
    const q = await repo.enqueue(drafts(quiet, 5), undefined, T - 1000);
    const mine = (claims: { id: string; channelId: string }[]) =>
      claims.filter((p) => [busy, half, quiet].includes(p.channelId)).map((p) => p.id);
    // 3 of `busy` and 2 of `half` under way (claimed by an earlier claim of this caller): none more of `busy`, one of `half`.
    const inFlight = new Map([
      [busy, 3],
      [half, 2],
      [`ch-${randomUUID()}`, 7],
    ]);
    const claimed = mine(await repo.claimDue('a', T, 100, 30_000, 3, inFlight));
    expect(new Set(claimed)).toEqual(new Set([h[0], q[0], q[1], q[2]]));
    expect(b.some((id) => claimed.includes(id))).toBe(false);
    await repo.releaseClaims('a');
    await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = ANY($1::text[])', [
      [busy, half, quiet],
    ]);
  });

  it('a claim smaller than what is due shares it across channels: two older backlogs do not take every slot', async () => {
    // Long before T: no other test's rows are due then.
    const at = T - 86_400_000;
    const [h1, h2, good] = [0, 1, 2].map(() => `ch-${randomUUID()}`);
    const drafts = (channelId: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ channelId, groupKey: `g${i}`, notification: i }));
    // Two receivers that hang, each with a backlog queued first; another channel's messages after them.
    const b1 = await repo.enqueue(drafts(h1, 6), undefined, at - 2000);
    const b2 = await repo.enqueue(drafts(h2, 6), undefined, at - 2000);
    const g = await repo.enqueue(drafts(good, 4), undefined, at - 1000);
    const ids = (claims: { id: string }[]) => claims.map((p) => p.id);
    // 8 slots free, 4 a channel at most: oldest first gave the two backlogs all 8, and `good` none until they drained
    // (each a send timeout per 4 messages). Shared: each channel's oldest first, in turn.
    expect(new Set(ids(await repo.claimDue('a', at, 8, 30_000, 4)))).toEqual(
      new Set([b1[0], b1[1], b1[2], b2[0], b2[1], b2[2], g[0], g[1]]),
    );
    // The sends under way count: `good`'s two ended, 3 of each backlog still hang — the 2 slots freed go to `good`.
    const inFlight = new Map([
      [h1, 3],
      [h2, 3],
    ]);
    expect(new Set(ids(await repo.claimDue('b', at, 2, 30_000, 4, inFlight)))).toEqual(new Set([g[2], g[3]]));
    await repo.releaseClaims('a');
    await repo.releaseClaims('b');
    await sqlExecute(pool, 'DELETE FROM alert_delivery_queue WHERE channel_id = ANY($1::text[])', [[h1, h2, good]]);
  });

  it('a rate-limited channel pauses for every owner: none of its messages is claimed until then, none is charged', async () => {
    const paused = `ch-${randomUUID()}`;
    const other = `ch-${randomUUID()}`;
    const ids = await repo.enqueue(
      ['g1', 'g2', 'g3'].map((g) => ({ channelId: paused, groupKey: g, notification: g })),
      undefined,
      T,
    );
    const first = (await repo.claimDue('a', T, 100, 30_000, 1)).filter((p) => p.channelId === paused);
    expect(first.map((p) => p.id)).toEqual([ids[0]]);
    await repo.recordAttempt(
      'a',
      attemptOf(ids[0], paused, {
        outcome: 'retrying',
        httpStatus: 429,
        error: 'HTTP 429',
        nextAttemptAt: T + 10_000,
        pauseChannelMs: 60_000,
      }),
    );
    // Another 429 that was in flight, with a shorter Retry-After: the later end is kept.
    await repo.recordAttempt(
      'a',
      attemptOf(randomUUID(), paused, {
        outcome: 'retrying',
        httpStatus: 429,
        nextAttemptAt: T + 5000,
        pauseChannelMs: 5000,
      }),
    );
    // The end is the database's clock plus the pause (PAUSE_CLOCK), whatever clock the claims are given.
    const [{ dbNow }] = await sqlQuery<{ dbNow: Date }>(pool, 'SELECT now() AS "dbNow"');
    const until = await repo.channelPausedUntil(paused);
    expect(until).toBeGreaterThanOrEqual(dbNow.getTime() + 55_000);
    expect(until).toBeLessThanOrEqual(dbNow.getTime() + 60_000);
    const [flowing] = await repo.enqueue(
      [{ channelId: other, groupKey: 'g1', notification: 'x' }],
      undefined,
      T + 1000,
    );
    // Another replica (owner b), before the pause ends: the other channel's message, none of the paused one's.
    const during = await repo.claimDue('b', T + 9_999, 100, 30_000);
    expect(during.map((p) => p.id)).toContain(flowing);
    expect(during.filter((p) => p.channelId === paused)).toEqual([]);
    // Waiting cost the answered message nothing: its attempts and its place (due time) are as they were.
    expect((await repo.listPending(paused)).map((p) => [p.id, p.attempts, p.nextAttemptAt])).toEqual(
      ids.map((id) => [id, 0, T]),
    );
    // A replica whose clock runs two hours ahead of the database's still finds it paused (the end is compared on the
    // database's clock, as it was computed).
    const ahead = await repo.claimDue('skewed', Date.now() + 7_200_000, 100, 30_000);
    await repo.releaseClaims('skewed');
    expect(ahead.filter((p) => p.channelId === paused)).toEqual([]);
    await sqlExecute(
      pool,
      `UPDATE alert_channel_pauses SET paused_until = now() - interval '1 ms' WHERE channel_id = $1`,
      [paused],
    );
    expect(await repo.channelPausedUntil(paused)).toBeNull();
    // Once it ends, the channel's messages come in their order (the oldest first, one at a time with perChannel 1).
    const after = (await repo.claimDue('c', T + 10_001, 100, 30_000, 1)).filter((p) => p.channelId === paused);
    expect(after.map((p) => p.id)).toEqual([ids[0]]);
  });

  it('enqueues in the caller’s transaction: a rollback queues nothing', async () => {
    const ch = `ch-${randomUUID()}`;
    await expect(
      runInSqlTransaction(pool, async (tx) => {
        await repo.enqueue([{ channelId: ch, groupKey: 'g', notification: 1 }], tx, T);
        throw new Error('state write failed');
      }),
    ).rejects.toThrow('state write failed');
    expect(await repo.listPending(ch)).toEqual([]);
  });

  it('bounds error text, keeps test-sends apart, and prunes by age', async () => {
    const ch = `ch-${randomUUID()}`;
    await repo.logAttempt(
      attemptOf(randomUUID(), ch, { error: 'e'.repeat(5000), test: true, outcome: 'failed', at: T - 86_400_000 }),
    );
    const [entry] = await repo.listLog({ channelId: ch });
    expect(entry.error).toHaveLength(DELIVERY_ERROR_MAX);
    expect(entry.test).toBe(true);
    await repo.pruneLog(T - 1000);
    expect(await repo.listLog({ channelId: ch })).toEqual([]);
  });

  it('any notification and group key is storable and reads back as its storable form', async () => {
    const text = fc.string({ unit: 'binary', maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(
        text,
        fc.dictionary(text, text, { maxKeys: 6 }),
        fc.array(
          fc.record({
            labels: fc.dictionary(text, text, { maxKeys: 4 }),
            value: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })),
          }),
          { maxLength: 3 },
        ),
        async (groupKey, groupLabels, alerts) => {
          const ch = `ch-${randomUUID()}`;
          const notification = { groupKey, groupLabels, alerts };
          const [id] = await repo.enqueue([{ channelId: ch, groupKey, notification }], undefined, T);
          const [back] = await repo.listPending(ch);
          expect(back.id).toBe(id);
          expect(back.groupKey).toBe(toStorable(groupKey));
          // -0 has no JSON form: it reads back as 0, as any JSON store gives it.
          expect(back.notification).toEqual(JSON.parse(JSON.stringify(toStorable(notification))));
        },
      ),
      { numRuns: 40 },
    );
  });
});
