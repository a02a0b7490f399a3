import { Inject, Injectable } from '@nestjs/common';
import { truncateText } from '@fleetwatch/contracts';
import {
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
  type SqlTx,
} from '../sql/sql-pool';
import { clean, PAUSE_END } from '../sql-values';

// subscription_deliveries and subscription_delivery_attempts (issue 18; writer: aggregator). A delivery is
// queued once per (subscription, status event): a redelivered event inserts nothing (at-least-once from the
// bus, exactly one row here). Every replica's worker claims due rows with SKIP LOCKED and a claim deadline
// (a replica that died mid-send hands its rows back when the claim runs out); each attempt is logged. A
// subscription whose receiver rate limits pauses as a whole (subscription_pauses, read by the claim): none of its
// deliveries is claimed before the pause ends, by any replica, and the delivery answered waits uncharged in its place.

/**
 * Serialises claims with a per-subscription cap across replicas (a transaction-level advisory lock): each counts the
 * leases of the one before it.
 */
const CLAIM_LOCK = `SELECT pg_advisory_xact_lock(hashtextextended('fleetwatch.subscription_deliveries.claim', 0))`;

export interface NewSubscriptionDelivery {
  subscriptionId: string;
  eventId: string;
  targetId: string;
  body: string;
}

export interface ClaimedSubscriptionDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  body: string;
  /** Attempts made before this one. */
  attempts: number;
  createdAt: number;
}

/** Longest error text kept in the log. */
export const SUBSCRIPTION_ERROR_MAX = 1024;

export interface SubscriptionAttemptLog {
  outcome: 'delivered' | 'retry' | 'failed';
  httpStatus: number | null;
  error: string | null;
  durationMs: number;
}

/** One attempt to record (recordMany): where the delivery goes next. */
export interface SubscriptionAttemptRecord {
  id: string;
  attempt: SubscriptionAttemptLog;
  /** With `retry`: when it is due again (null: its due time is kept). */
  retryAt: number | null;
  /**
   * The receiver rate limits (429, or 503 with Retry-After): the whole subscription pauses for `ms` from the
   * database's clock when recorded (PAUSE_CLOCK in sql-values), for every replica (a later end kept when one is set already). With `retry`, the delivery is not charged the attempt:
   * it keeps its attempt count and its due time (its place), so the subscription's deliveries go out in their order
   * once the pause ends. (With `failed` — too old to wait — it ends, and the subscription pauses all the same.)
   */
  pause?: { subscriptionId: string; ms: number };
}

export interface SubscriptionDeliveryRow {
  id: string;
  subscriptionId: string;
  eventId: string;
  targetId: string;
  state: string;
  attempts: number;
  lastError: string | null;
  log: Array<SubscriptionAttemptLog & { attempt: number; at: string }>;
}

@Injectable()
export class SubscriptionDeliveriesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Queues the deliveries not queued before; answers how many are new. */
  async enqueue(rows: readonly NewSubscriptionDelivery[]): Promise<number> {
    if (rows.length === 0) return 0;
    return sqlExecute(
      this.pool,
      `INSERT INTO subscription_deliveries (subscription_id, event_id, target_id, body)
       SELECT r->>'subscriptionId', r->>'eventId', r->>'targetId', r->>'body' FROM jsonb_array_elements($1::jsonb) r
       ON CONFLICT (subscription_id, event_id) DO NOTHING`,
      [JSON.stringify(rows)],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Claims up to `limit` due deliveries for `owner` until now + `leaseMs`. `perSubscription`: at most that many of one
   * subscription under way at once, site-wide (its oldest due claimed), so a receiver with a backlog — one that hangs
   * until the send timeout — cannot fill a claim and hold up the other subscriptions' deliveries behind it, and never
   * gets more than that many at once from all replicas together: the subscription's deliveries under a live lease (any
   * owner's, not yet recorded, the lease not over) count against it, and such claims are serialised across replicas
   * (CLAIM_LOCK). (A replica that died holds its share until its leases end.) `inFlight`: deliveries of a subscription
   * the caller is still sending, counted against its `perSubscription` in place of the caller's own leases where they
   * are more (a worker that claims again as sends end). A
   * paused subscription (its receiver rate limits: recordMany's `pause`) has none of its deliveries claimed before its
   * pause ends.
   */
  async claimDue(
    owner: string,
    limit: number,
    leaseMs: number,
    perSubscription: number | null = null,
    inFlight: ReadonlyMap<string, number> = new Map(),
  ): Promise<ClaimedSubscriptionDelivery[]> {
    if (limit <= 0) return [];
    type Row = {
      id: string;
      subscription_id: string;
      event_id: string;
      body: string;
      attempts: number;
      created_at: Date;
    };
    const claim = (on: SqlHandle | SqlTx) =>
      sqlQuery<Row>(
        on,
        `UPDATE subscription_deliveries d SET claimed_by = $1, claimed_until = now() + ($3::int * interval '1 millisecond')
         FROM (SELECT s.id FROM subscription_deliveries s
               JOIN (SELECT id, subscription_id,
                            row_number() OVER (PARTITION BY subscription_id ORDER BY next_attempt_at, id) AS rank
                     FROM subscription_deliveries q
                     WHERE state = 'pending' AND next_attempt_at <= now()
                       AND (claimed_until IS NULL OR claimed_until < now())
                       AND NOT EXISTS (
                         SELECT 1 FROM subscription_pauses p
                         WHERE p.subscription_id = q.subscription_id AND p.paused_until > now())) r ON r.id = s.id
               -- The subscription's deliveries under a live lease (claimed, not recorded, the lease not over), by any
               -- replica: the cap is the site's. (A claimed delivery was due when claimed and its due time stays: the
               -- due rows' index finds them all; none counted without a cap.)
               LEFT JOIN (SELECT l.subscription_id, count(*) FILTER (WHERE l.claimed_by IS DISTINCT FROM $1) AS others,
                                 count(*) FILTER (WHERE l.claimed_by = $1) AS own
                          FROM subscription_deliveries l
                          WHERE $4::int IS NOT NULL AND l.state = 'pending' AND l.next_attempt_at <= now()
                            AND l.claimed_until >= now()
                          GROUP BY l.subscription_id) leased ON leased.subscription_id = s.subscription_id
               -- Under way: the other replicas' leases, and this one's — its leases or the sends it counts (inFlight),
               -- whichever is more.
               -- (The first line alone, on the window's own column, lets the window stop at the cap per subscription.)
               WHERE ($4::int IS NULL OR r.rank <= $4::int)
                 AND ($4::int IS NULL
                      OR r.rank <= $4::int - COALESCE(leased.others, 0)
                         - GREATEST(COALESCE(leased.own, 0), COALESCE(($5::jsonb ->> r.subscription_id::text)::int, 0)))
                 AND s.state = 'pending' AND s.next_attempt_at <= now() AND (s.claimed_until IS NULL OR s.claimed_until < now())
               ORDER BY s.next_attempt_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED) due
         WHERE d.id = due.id
         RETURNING d.id::text AS id, d.subscription_id, d.event_id, d.body, d.attempts, d.created_at`,
        [owner, limit, leaseMs, perSubscription, inFlight.size ? JSON.stringify(Object.fromEntries(inFlight)) : null],
      );
    const rows = await (
      perSubscription === null
        ? claim(this.pool)
        : // One claim with a cap at a time, site-wide: the lock in a statement of its own, so the claim's snapshot (taken
          // when it starts) sees the leases of the claim before it, committed by then. In the claim statement itself it
          // would not: two claims at once each count none of the other's new leases (SKIP LOCKED and the same ranking
          // keep them apart, except for a delivery ranking ahead that committed between their snapshots: one over the
          // cap per such delivery).
          runInSqlTransaction(this.pool as SqlPool, async (tx) => {
            await sqlExecute(tx, CLAIM_LOCK);
            return claim(tx);
          })
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      id: r.id,
      subscriptionId: r.subscription_id,
      eventId: r.event_id,
      body: r.body,
      attempts: r.attempts,
      createdAt: new Date(r.created_at).getTime(),
    }));
  }

  /**
   * Records one attempt of a delivery `owner` still holds and where it goes next: delivered, failed for good,
   * or due again at `retryAt`. Answers false when the claim was lost meanwhile (another replica has it).
   */
  async record(
    owner: string,
    id: string,
    attempt: SubscriptionAttemptLog,
    retryAt: number | null,
    pause?: SubscriptionAttemptRecord['pause'],
  ): Promise<boolean> {
    return (await this.recordMany(owner, [{ id, attempt, retryAt, pause }])).has(id);
  }

  /**
   * Records attempts of several deliveries `owner` holds in one statement (record's, for each): the worker records
   * the sends that ended meanwhile together, one round trip and commit for many instead of one each. Answers the ids
   * recorded (a delivery whose claim was lost meanwhile is not). Each id at most once. An item's `pause` pauses its
   * subscription in the same statement (also when its claim was lost: the receiver's answer holds all the same).
   */
  async recordMany(owner: string, items: ReadonlyArray<SubscriptionAttemptRecord>): Promise<Set<string>> {
    if (items.length === 0) return new Set();
    const rows = await sqlQuery<{ id: string }>(
      this.pool,
      `WITH input AS (
         SELECT *, (state = 'pending' AND pause_ms IS NOT NULL) AS waits, ${PAUSE_END('pause_ms')} AS paused_until
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::int[], $8::int[],
                     $9::text[], $10::float8[])
           AS i(id, state, error, retry_at, outcome, http_status, duration_ms, paused_subscription, pause_ms)
       ), paused AS (
         -- One row a subscription (ON CONFLICT updates a row once per statement): the latest end asked for.
         INSERT INTO subscription_pauses (subscription_id, paused_until, http_status, reason, updated_at)
         SELECT DISTINCT ON (paused_subscription) paused_subscription, paused_until, http_status, error, now()
         FROM input WHERE pause_ms IS NOT NULL ORDER BY paused_subscription, paused_until DESC
         ON CONFLICT (subscription_id) DO UPDATE SET
           paused_until = GREATEST(subscription_pauses.paused_until, EXCLUDED.paused_until),
           http_status = EXCLUDED.http_status, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at
       ), done AS (
         -- A delivery waiting out its subscription's pause is not charged: attempts and due time stay as they were
         -- (its log entry carries the number of the attempt it will make).
         UPDATE subscription_deliveries d SET state = i.state,
           attempts = CASE WHEN i.waits THEN d.attempts ELSE d.attempts + 1 END, last_error = i.error,
           next_attempt_at = COALESCE(i.retry_at, d.next_attempt_at), claimed_by = NULL, claimed_until = NULL,
           finished_at = CASE WHEN i.state = 'pending' THEN NULL ELSE now() END
         FROM input i WHERE d.id = i.id AND d.claimed_by = $1
         RETURNING d.id, CASE WHEN i.waits THEN d.attempts + 1 ELSE d.attempts END AS attempts, i.outcome,
           i.http_status, i.error, i.duration_ms)
       INSERT INTO subscription_delivery_attempts (delivery_id, attempt, outcome, http_status, error, duration_ms)
       SELECT id, attempts, outcome, http_status, error, duration_ms FROM done RETURNING delivery_id::text AS id`,
      [
        owner,
        items.map((i) => i.id),
        items.map((i) => (i.attempt.outcome === 'retry' ? 'pending' : i.attempt.outcome)),
        // The error holds the receiver's answer, which may carry a NUL that Postgres refuses: refused, the
        // attempt would never be recorded and the delivery sent again at each claim's end, forever.
        items.map((i) =>
          i.attempt.error === null ? null : truncateText(clean(i.attempt.error), SUBSCRIPTION_ERROR_MAX),
        ),
        items.map((i) => (i.retryAt === null ? null : new Date(i.retryAt).toISOString())),
        items.map((i) => i.attempt.outcome),
        items.map((i) => i.attempt.httpStatus),
        items.map((i) => i.attempt.durationMs),
        items.map((i) => i.pause?.subscriptionId ?? null),
        items.map((i) => i.pause?.ms ?? null),
      ],
    ).catch((err: unknown) => rethrowSql(err));
    return new Set(rows.map((r) => r.id));
  }

  /** Hands back what `owner` holds (shutdown): due again at once for any replica. */
  async release(owner: string): Promise<void> {
    await sqlExecute(
      this.pool,
      `UPDATE subscription_deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1`,
      [owner],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /** A subscription's deliveries, newest first, each with its attempts (the delivery log). */
  async bySubscription(subscriptionId: string, limit = 100): Promise<SubscriptionDeliveryRow[]> {
    const rows = await sqlQuery<{
      id: string;
      subscription_id: string;
      event_id: string;
      target_id: string;
      state: string;
      attempts: number;
      last_error: string | null;
      log: Array<{
        attempt: number;
        at: string;
        outcome: SubscriptionAttemptLog['outcome'];
        http_status: number | null;
        error: string | null;
        duration_ms: number;
      }> | null;
    }>(
      this.pool,
      `SELECT d.id::text AS id, d.subscription_id, d.event_id, d.target_id, d.state, d.attempts, d.last_error,
         (SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at, 'outcome', a.outcome,
                  'http_status', a.http_status, 'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.id)
          FROM subscription_delivery_attempts a WHERE a.delivery_id = d.id) AS log
       FROM subscription_deliveries d WHERE d.subscription_id = $1 ORDER BY d.id DESC LIMIT $2`,
      [subscriptionId, limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      id: r.id,
      subscriptionId: r.subscription_id,
      eventId: r.event_id,
      targetId: r.target_id,
      state: r.state,
      attempts: r.attempts,
      lastError: r.last_error,
      log: (r.log ?? []).map((a) => ({
        attempt: a.attempt,
        at: a.at,
        outcome: a.outcome,
        httpStatus: a.http_status,
        error: a.error,
        durationMs: a.duration_ms,
      })),
    }));
  }

  /** When a subscription's pause ends (ms), or null when it is not paused now (the database's clock). */
  async pausedUntil(subscriptionId: string): Promise<number | null> {
    const rows = await sqlQuery<{ until: Date }>(
      this.pool,
      `SELECT paused_until AS until FROM subscription_pauses WHERE subscription_id = $1 AND paused_until > now()`,
      [subscriptionId],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.length === 0 ? null : new Date(rows[0].until).getTime();
  }

  /**
   * Deletes finished deliveries (and their log) older than `before` (ms): retention. Pauses that ended before then
   * (they mean nothing any more) go with them.
   */
  async purgeFinished(before: number): Promise<number> {
    const at = new Date(before).toISOString();
    try {
      await sqlExecute(this.pool, 'DELETE FROM subscription_pauses WHERE paused_until < $1::timestamptz', [at]);
      return await sqlExecute(
        this.pool,
        `DELETE FROM subscription_deliveries WHERE state <> 'pending' AND finished_at < $1::timestamptz`,
        [at],
      );
    } catch (err) {
      rethrowSql(err);
    }
  }
}
