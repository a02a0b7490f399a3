import { createHash } from 'node:crypto';
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
import { clean, iso, jsonOrNull, ms, PAUSE_END } from '../sql-values';

// Alert notification delivery (writer: aggregator): the queue of messages still to send, with their next
// attempt time (a retry schedule survives a restart), and the log of every attempt. See the migration
// 20261202153000_alert_deliveries for the shape and why the queue stores notifications, not requests.

export type DeliveryOutcome = 'delivered' | 'retrying' | 'failed' | 'skipped';

/** Longest error text kept in the log. */
export const DELIVERY_ERROR_MAX = 1024;

export interface DeliveryDraft {
  channelId: string;
  groupKey: string;
  /** The notification (plain JSON) to send. */
  notification: unknown;
  /** Not before this time (ms); default: now. */
  notBefore?: number;
}

export interface PendingDelivery {
  id: string;
  channelId: string;
  groupKey: string;
  notification: unknown;
  /** Attempts made so far. */
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
}

export interface DeliveryAttempt {
  deliveryId: string;
  channelId: string;
  channelType: string;
  groupKey: string;
  status: string;
  attempt: number;
  outcome: DeliveryOutcome;
  httpStatus: number | null;
  error: string | null;
  durationMs: number;
  nextAttemptAt: number | null;
  test: boolean;
  at: number;
  /** The alerts the message carried (at most DELIVERY_ALERTS_MAX kept); default none. */
  alerts?: readonly DeliveryAlertRef[];
  /** How many alerts the message carried in all; default `alerts.length`. */
  alertCount?: number;
  /** With `retrying`: what is left to send, replacing the message's notification (default: kept as it is). */
  notification?: unknown;
  /**
   * The receiver rate limits the channel (429, or 503 with Retry-After): the whole channel pauses for this long (ms)
   * from the database's clock when recorded (see PAUSE_CLOCK), for every replica. With `retrying`, this message is not charged the attempt: it keeps its attempt count and its place
   * (its due time), so the channel's messages go out in their order once the pause ends. (With `failed` — the message
   * too old to wait — it is removed, and the channel pauses all the same.)
   */
  pauseChannelMs?: number;
}

/** An alert a logged message carried: its fingerprint, rule name, target and status in the message. */
export interface DeliveryAlertRef {
  id: string;
  ruleName: string;
  targetId: string | null;
  status: 'firing' | 'resolved';
}

/** Most alerts of one message kept in its log rows. */
export const DELIVERY_ALERTS_MAX = 20;

export interface DeliveryLogQuery {
  channelId?: string;
  deliveryId?: string;
  /** Only these outcomes. */
  outcomes?: readonly DeliveryOutcome[];
  /** Only test-sends (true) or only real messages (false). */
  test?: boolean;
  /** Only entries before this id (paging, newest first). */
  beforeId?: string;
  limit?: number;
}

export type DeliveryLogEntry = DeliveryAttempt & {
  id: string;
  /** The channel's name now; null when it was deleted since. */
  channelName: string | null;
  alerts: DeliveryAlertRef[];
  alertCount: number;
};

interface QueueRow {
  id: string;
  channel_id: string;
  group_key: string;
  notification: unknown;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
}

interface LogRow {
  id: string;
  delivery_id: string;
  channel_id: string;
  channel_type: string;
  group_key: string;
  status: string;
  attempt: number;
  outcome: string;
  http_status: number | null;
  error: string | null;
  duration_ms: number;
  next_attempt_at: number | null;
  test: boolean;
  at: number;
  alerts: unknown;
  alert_count: number;
  channel_name: string | null;
}

function alertRefsOf(raw: unknown): DeliveryAlertRef[] {
  if (!Array.isArray(raw)) return [];
  const out: DeliveryAlertRef[] = [];
  for (const a of raw as Record<string, unknown>[]) {
    if (!a || typeof a.id !== 'string' || typeof a.ruleName !== 'string') continue;
    out.push({
      id: a.id,
      ruleName: a.ruleName,
      targetId: typeof a.targetId === 'string' ? a.targetId : null,
      status: a.status === 'resolved' ? 'resolved' : 'firing',
    });
  }
  return out;
}

function alertRefsJson(a: DeliveryAttempt): string {
  const refs = (a.alerts ?? []).slice(0, DELIVERY_ALERTS_MAX).map((r) => ({
    id: clean(r.id.slice(0, 64)),
    ruleName: clean(truncateText(r.ruleName, 200)),
    targetId: r.targetId === null ? null : clean(truncateText(r.targetId, 300)),
    status: r.status,
  }));
  return JSON.stringify(refs);
}

/**
 * Serialises claims with a per-channel cap across replicas (a transaction-level advisory lock): each counts the leases
 * of the one before it.
 */
const CLAIM_LOCK = `SELECT pg_advisory_xact_lock(hashtextextended('fleetwatch.alert_delivery_queue.claim', 0))`;

const hashOf = (groupKey: string) => createHash('sha256').update(groupKey).digest('hex');
const epoch = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
const QUEUE_COLUMNS = `q.id::text AS id, q.channel_id, q.group_key, q.notification, q.attempts,
  ${epoch('q.next_attempt_at')} AS next_attempt_at, ${epoch('q.created_at')} AS created_at`;

function pendingOf(r: QueueRow): PendingDelivery {
  return {
    id: r.id,
    channelId: r.channel_id,
    groupKey: r.group_key,
    notification: r.notification,
    attempts: r.attempts,
    nextAttemptAt: ms(r.next_attempt_at) as number,
    createdAt: ms(r.created_at) as number,
  };
}

@Injectable()
export class AlertDeliveriesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /**
   * Queues messages; returns their delivery ids in input order. Pass the transaction that stores the alert
   * state which caused them, so a crash can neither lose a notification nor queue it twice.
   */
  async enqueue(
    drafts: readonly DeliveryDraft[],
    on: SqlHandle | SqlTx = this.pool,
    now = Date.now(),
  ): Promise<string[]> {
    if (!drafts.length) return [];
    try {
      const rows = await sqlQuery<{ id: string }>(
        on,
        `INSERT INTO alert_delivery_queue (channel_id, group_key, group_hash, notification, next_attempt_at, created_at)
         SELECT u.channel_id, u.group_key, u.group_hash, u.notification::jsonb, u.next_at, $6::timestamptz
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY
           AS u(channel_id, group_key, group_hash, notification, next_at, ord)
         ORDER BY u.ord
         RETURNING id::text AS id`,
        [
          drafts.map((d) => clean(d.channelId)),
          drafts.map((d) => clean(d.groupKey)),
          drafts.map((d) => hashOf(d.groupKey)),
          drafts.map((d) => jsonOrNull(d.notification) ?? 'null'),
          drafts.map((d) => iso(d.notBefore ?? now)),
          iso(now),
        ],
      );
      return rows.map((r) => r.id);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /**
   * Claims up to `limit` due messages for `leaseMs`: each is the oldest waiting of its (channel, group), not
   * claimed by a live lease, and locked rows are skipped, so concurrent replicas never claim the same one.
   * `perChannel`: at most that many of one channel under way at once, site-wide (its oldest due claimed), so a channel
   * with a backlog — a receiver that hangs until the send timeout — cannot fill a claim and hold up the other channels'
   * messages behind it, and a receiver never has more than that many at once from all replicas together: the channel's
   * messages under a live lease — claimed by any owner, not yet recorded, the lease not over at `now` — count against
   * it. Such claims are serialised across replicas (CLAIM_LOCK), so two at once cannot both take the same free share.
   * (A replica that died holds its share until its leases end.)
   * `inFlight`: the caller's sends still under way, by channel: they count against that channel's `perChannel` in place
   * of the caller's own leases where they are more (a worker that claims again as each send ends never has more than
   * that many of one channel going at once).
   * A claim smaller than what is due is shared across channels — the channels with the fewest under way first, each
   * one's oldest first — not given oldest-first overall: two channels with older backlogs (receivers that hang) would
   * take every slot a worker has, claim after claim, and the other channels' messages would wait until they drained.
   * A channel paused (its receiver rate limits: recordAttempt's `pauseChannelUntil`) has none of its messages claimed
   * before its pause ends.
   */
  async claimDue(
    owner: string,
    now: number,
    limit: number,
    leaseMs: number,
    perChannel: number | null = null,
    inFlight: ReadonlyMap<string, number> = new Map(),
    /** Only channels with nothing in `inFlight` (the slot a worker keeps for them). */
    idleOnly = false,
  ): Promise<PendingDelivery[]> {
    if (limit <= 0) return [];
    const claim = (on: SqlHandle | SqlTx) =>
      sqlQuery<QueueRow>(
        on,
        `WITH busy AS (
           SELECT b.channel_id, b.n FROM unnest($6::text[], $7::int[]) AS b(channel_id, n)
         ),
         -- The channel's messages under a live lease (claimed, not recorded, the lease not over), by any replica: the
         -- cap is the site's, not each replica's. (None counted without a cap: the statement plans as without it.)
         leased AS (
           SELECT l.channel_id, count(*) FILTER (WHERE l.claimed_by IS DISTINCT FROM $4) AS others,
             count(*) FILTER (WHERE l.claimed_by = $4) AS own
           FROM alert_delivery_queue l
           WHERE $5::int IS NOT NULL AND l.claimed_until >= $1::timestamptz
           GROUP BY l.channel_id
         ),
         ready AS (
           SELECT q.id, row_number() OVER (PARTITION BY q.channel_id ORDER BY q.next_attempt_at, q.seq) AS rank
           FROM alert_delivery_queue q
           WHERE q.next_attempt_at <= $1::timestamptz
             AND (q.claimed_until IS NULL OR q.claimed_until < $1::timestamptz)
             AND NOT EXISTS (
               SELECT 1 FROM alert_delivery_queue o
               WHERE o.channel_id = q.channel_id AND o.group_hash = q.group_hash AND o.seq < q.seq)
             AND NOT EXISTS (
               SELECT 1 FROM alert_channel_pauses p
               WHERE p.channel_id = q.channel_id AND p.paused_until > now())
         ),
         due AS (
           SELECT q.id FROM alert_delivery_queue q JOIN ready r ON r.id = q.id
             LEFT JOIN busy ON busy.channel_id = q.channel_id
             LEFT JOIN leased ON leased.channel_id = q.channel_id
             -- Under way: the other replicas' leases, and this one's — its leases or the sends it counts, whichever is
             -- more (a send whose record failed keeps its lease until it ends; the caller's count is the same sends).
             CROSS JOIN LATERAL (
               SELECT COALESCE(leased.others, 0) + GREATEST(COALESCE(leased.own, 0), COALESCE(busy.n, 0)) AS n
             ) used
           -- (The first line alone, on the window's own column, lets the window stop at the cap per channel.)
           WHERE ($5::int IS NULL OR r.rank <= $5::int)
             AND ($5::int IS NULL OR r.rank + used.n <= $5::int)
             AND (NOT $8::boolean OR busy.n IS NULL)
             AND q.next_attempt_at <= $1::timestamptz
             AND (q.claimed_until IS NULL OR q.claimed_until < $1::timestamptz)
           ORDER BY r.rank + used.n, q.next_attempt_at, q.seq
           LIMIT $2
           FOR UPDATE OF q SKIP LOCKED
         )
         UPDATE alert_delivery_queue q SET claimed_until = $3::timestamptz, claimed_by = $4
         FROM due WHERE q.id = due.id
         RETURNING ${QUEUE_COLUMNS}`,
        [
          iso(now),
          limit,
          iso(now + leaseMs),
          owner,
          perChannel,
          [...inFlight.keys()],
          [...inFlight.values()],
          idleOnly,
        ],
      );
    try {
      const rows =
        perChannel === null
          ? await claim(this.pool)
          : // One claim with a cap at a time, site-wide: the lock is taken in a statement of its own, so the claim's
            // snapshot (taken when it starts) sees the leases of the claim that held the lock before — committed then.
            // Taken in the claim statement itself it would not: two claims at once each count none of the other's new
            // leases. SKIP LOCKED keeps them off each other's rows, and both rank the channel's messages alike — but a
            // message ranking ahead of the first one's, committed between their snapshots (stamped earlier by a
            // replica whose clock is behind), was taken as a free slot: one over the cap per such message.
            await runInSqlTransaction(this.pool as SqlPool, async (tx) => {
              await sqlExecute(tx, CLAIM_LOCK);
              return claim(tx);
            });
      return rows.map(pendingOf).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /**
   * Right before a send: extends this owner's claim on the message to `until`; false when the claim is no longer
   * this owner's (it expired while earlier messages of the batch were sent, and another replica took it): the
   * message must not be sent by this owner then — the other one sends it.
   */
  async renewClaim(id: string, owner: string, until: number): Promise<boolean> {
    try {
      const n = await sqlExecute(
        this.pool,
        'UPDATE alert_delivery_queue SET claimed_until = $3::timestamptz WHERE id = $1::uuid AND claimed_by = $2',
        [id, owner, iso(until)],
      );
      return n > 0;
    } catch (err) {
      rethrowSql(err);
    }
  }

  /**
   * Logs an attempt and moves its message on, in one transaction: retried at `attempt.nextAttemptAt`
   * (outcome `retrying`), else removed from the queue. Only the claim's owner moves it: a claim that
   * expired and went to another replica is left to that one (the attempt is still logged). With
   * `pauseChannelMs`: the channel pauses that long (a later end kept when one is set already), and a `retrying`
   * message is handed back as it was (attempts, due time), to go out in its place when the pause ends.
   */
  async recordAttempt(owner: string, attempt: DeliveryAttempt): Promise<void> {
    const pool = this.pool as SqlPool;
    await runInSqlTransaction(pool, async (tx) => {
      await this.insertLog(tx, attempt);
      if (attempt.pauseChannelMs !== undefined)
        await sqlExecute(
          tx,
          `INSERT INTO alert_channel_pauses (channel_id, paused_until, http_status, reason, updated_at)
           VALUES ($1, ${PAUSE_END('$2')}, $3, $4, $5::timestamptz)
           ON CONFLICT (channel_id) DO UPDATE SET
             paused_until = GREATEST(alert_channel_pauses.paused_until, EXCLUDED.paused_until),
             http_status = EXCLUDED.http_status, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at`,
          [
            clean(attempt.channelId),
            attempt.pauseChannelMs,
            attempt.httpStatus,
            attempt.error === null ? null : truncateText(clean(attempt.error), DELIVERY_ERROR_MAX),
            iso(attempt.at),
          ],
        );
      if (attempt.outcome === 'retrying' && attempt.pauseChannelMs !== undefined)
        await sqlExecute(
          tx,
          `UPDATE alert_delivery_queue SET claimed_until = NULL, claimed_by = NULL WHERE id = $1::uuid AND claimed_by = $2`,
          [attempt.deliveryId, owner],
        );
      else if (attempt.outcome === 'retrying' && attempt.nextAttemptAt !== null)
        await sqlExecute(
          tx,
          `UPDATE alert_delivery_queue SET attempts = $2, next_attempt_at = $3::timestamptz, claimed_until = NULL, claimed_by = NULL,
             notification = COALESCE($5::jsonb, notification)
           WHERE id = $1::uuid AND claimed_by = $4`,
          [
            attempt.deliveryId,
            attempt.attempt,
            iso(attempt.nextAttemptAt),
            owner,
            attempt.notification === undefined ? null : jsonOrNull(attempt.notification),
          ],
        );
      else
        await sqlExecute(tx, 'DELETE FROM alert_delivery_queue WHERE id = $1::uuid AND claimed_by = $2', [
          attempt.deliveryId,
          owner,
        ]);
    });
  }

  /** When a channel's pause ends (ms), or null when it is not paused now (the database's clock: PAUSE_CLOCK). */
  async channelPausedUntil(channelId: string): Promise<number | null> {
    try {
      const rows = await sqlQuery<{ until: number }>(
        this.pool,
        `SELECT ${epoch('paused_until')} AS until FROM alert_channel_pauses
         WHERE channel_id = $1 AND paused_until > now()`,
        [channelId],
      );
      return ms(rows[0]?.until ?? null);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Logs an attempt that belongs to no queued message (a test-send). */
  async logAttempt(attempt: DeliveryAttempt): Promise<void> {
    await this.insertLog(this.pool, attempt);
  }

  /** Gives up this owner's claims (shutdown): another replica, or this one restarted, takes them at once. */
  async releaseClaims(owner: string): Promise<number> {
    try {
      return await sqlExecute(
        this.pool,
        'UPDATE alert_delivery_queue SET claimed_until = NULL, claimed_by = NULL WHERE claimed_by = $1',
        [owner],
      );
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** When the next waiting message is due (ms), or null. */
  async nextDueAt(): Promise<number | null> {
    try {
      const rows = await sqlQuery<{ at: number | null }>(
        this.pool,
        `SELECT ${epoch('min(GREATEST(next_attempt_at, COALESCE(claimed_until, next_attempt_at)))')} AS at FROM alert_delivery_queue`,
      );
      return ms(rows[0]?.at ?? null);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Messages waiting (oldest first), optionally of one channel. */
  async listPending(channelId?: string, limit = 500): Promise<PendingDelivery[]> {
    try {
      const rows = await sqlQuery<QueueRow>(
        this.pool,
        `SELECT ${QUEUE_COLUMNS} FROM alert_delivery_queue q WHERE ($1::text IS NULL OR q.channel_id = $1) ORDER BY q.seq LIMIT $2`,
        [channelId ?? null, limit],
      );
      return rows.map(pendingOf);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** The delivery log, newest first, with each channel's name now (null: deleted since). */
  async listLog(query: DeliveryLogQuery = {}): Promise<DeliveryLogEntry[]> {
    try {
      const rows = await sqlQuery<LogRow>(
        this.pool,
        `SELECT d.id::text AS id, d.delivery_id::text AS delivery_id, d.channel_id, d.channel_type, d.group_key, d.status,
           d.attempt, d.outcome, d.http_status, d.error, d.duration_ms, ${epoch('d.next_attempt_at')} AS next_attempt_at,
           d.test, ${epoch('d.at')} AS at, d.alerts, d.alert_count, c.name AS channel_name
         FROM alert_deliveries d LEFT JOIN notification_channels c ON c.id = d.channel_id
         WHERE ($1::text IS NULL OR d.channel_id = $1) AND ($2::uuid IS NULL OR d.delivery_id = $2::uuid)
           AND ($3::bigint IS NULL OR d.id < $3::bigint)
           AND ($5::text[] IS NULL OR d.outcome = ANY($5::text[])) AND ($6::boolean IS NULL OR d.test = $6)
         ORDER BY d.id DESC LIMIT $4`,
        [
          query.channelId ?? null,
          query.deliveryId ?? null,
          query.beforeId ?? null,
          Math.min(query.limit ?? 100, 1001),
          query.outcomes?.length ? [...query.outcomes] : null,
          query.test ?? null,
        ],
      );
      return rows.map((r) => ({
        id: r.id,
        channelName: r.channel_name,
        alerts: alertRefsOf(r.alerts),
        alertCount: Number(r.alert_count),
        deliveryId: r.delivery_id,
        channelId: r.channel_id,
        channelType: r.channel_type,
        groupKey: r.group_key,
        status: r.status,
        attempt: r.attempt,
        outcome: r.outcome as DeliveryOutcome,
        httpStatus: r.http_status,
        error: r.error,
        durationMs: r.duration_ms,
        nextAttemptAt: ms(r.next_attempt_at),
        test: r.test,
        at: ms(r.at) as number,
      }));
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Retention of the log (and of channel pauses long over). */
  async pruneLog(olderThan: number): Promise<number> {
    try {
      await sqlExecute(this.pool, 'DELETE FROM alert_channel_pauses WHERE paused_until < $1::timestamptz', [
        iso(olderThan),
      ]);
      return await sqlExecute(this.pool, 'DELETE FROM alert_deliveries WHERE at < $1::timestamptz', [iso(olderThan)]);
    } catch (err) {
      rethrowSql(err);
    }
  }

  private async insertLog(on: SqlHandle | SqlTx, a: DeliveryAttempt): Promise<void> {
    try {
      await sqlExecute(
        on,
        `INSERT INTO alert_deliveries (delivery_id, channel_id, channel_type, group_key, status, attempt, outcome,
           http_status, error, duration_ms, next_attempt_at, test, at, alerts, alert_count)
         VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12, $13::timestamptz, $14::jsonb, $15)`,
        [
          a.deliveryId,
          clean(a.channelId),
          a.channelType,
          clean(a.groupKey),
          a.status,
          a.attempt,
          a.outcome,
          a.httpStatus,
          a.error === null ? null : truncateText(clean(a.error), DELIVERY_ERROR_MAX),
          Math.max(0, Math.round(a.durationMs)),
          iso(a.nextAttemptAt),
          a.test,
          iso(a.at),
          alertRefsJson(a),
          Math.max(0, Math.round(a.alertCount ?? a.alerts?.length ?? 0)),
        ],
      );
    } catch (err) {
      rethrowSql(err);
    }
  }
}
