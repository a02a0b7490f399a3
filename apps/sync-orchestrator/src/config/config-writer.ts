import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import {
  AlertConfigRpcMethod,
  ConfigRpcMethod,
  PropertyRpcMethod,
  StatusPageRpcMethod,
  SubscriptionRpcMethod,
  TargetIds,
  truncateText,
  uuidv7,
  type Actor,
  type CheckDefinition,
} from '@fleetwatch/contracts';
import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AlertConfigRepository,
  ChecksRepository,
  ConfigVersionsRepository,
  PropertiesRepository,
  runInSqlTransaction,
  SQL_POOL,
  type AuditDraft,
  type ConfigHead,
  type NewConfigVersion,
  type SqlPool,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import {
  ALERT_AREAS,
  AREA_EVENT,
  put,
  type AlertChanges,
  type AreaChanges,
  type ConfigArea,
} from '../alerting/alert-forms';
import { specOf } from './check-form';
import { checkHash } from './config-hash';
import { changesOf, SNAPSHOT_EVERY, storesFullSnapshot, type ConfigChanges, type TouchedCheck } from './config-history';
import type { ConfigSnapshot } from './config-yaml';
import { snapshotOf } from './config-plan';
import { CONFIG_SNAPSHOT_EVERY } from './config.tokens';
import { ConfigChangedRelay } from './config-changed.relay';
import { IdempotencyKeyReusedError } from './config.errors';
import { lifecycleOf, touchedChecks } from './check-lifecycle';

// The one path every configuration write takes (SPEC §2: local edits and, later,
// configs applied from a leader): ONE transaction that
//   1. locks config_head — writers take turns, so versions are gap-free and increasing;
//   2. runs the write (which checks its expected version against what it now reads);
//   3. if it changed anything: the new hash (from the checks' stored content hashes, in
//      SQL: config-hash.ts), the version row with the checks the write changed — or, every
//      SNAPSHOT_EVERY versions, the whole snapshot (config-history.ts) — the audit
//      entries and the `config.changed` outbox row, with a `check.lifecycle` for every
//      check the write touched (check-lifecycle.ts: how the aggregator learns of pauses
//      and deletes, at least once and in version order, like config.changed);
// then, after commit, kicks the relay to publish. A write that changes nothing makes no
// version and answers the current one.
//
// A write asked for by an RPC request is idempotent by the request's message id: the same
// transaction records the id with the answer (config_requests), and a request whose id is
// recorded — RabbitMQ redelivers it when the owner committed but stopped before acking —
// is answered with the recorded answer, writing nothing. The check runs under the head
// lock, so a redelivery racing the first run waits for its commit and then sees it.
// A client's Idempotency-Key (write-request.ts) names the request by key and body (its id)
// and by key alone (its keyId, kept on the same row): a keyed request whose id is not
// recorded but whose keyId is — the same key with another body — is refused, under the
// same lock (IdempotencyKeyReusedError).

export type WriteOutcome<R> =
  | { changed: false; result: R }
  | {
      changed: true;
      result: R;
      audit: AuditDraft[];
      summary: string;
      /**
       * Every check the write created, changed or deleted, before and after: what the version
       * stores (its changes), so no write reads the whole configuration back.
       */
      touched: readonly TouchedCheck[];
      /**
       * Alert rules, channels and maintenance windows the write changed: id → config form after
       * it, or null (deleted). Stored in the version like the checks' changes.
       */
      alertChanges?: AlertChanges;
      /** Properties the write changed: key → `{value}` after it, or null (deleted). */
      propertyChanges?: AreaChanges;
      /** `config.changed` areas beyond those of the changes (silences: versioned, not in snapshots). */
      areas?: readonly ConfigArea[];
    };

export interface WriteContext {
  tx: SqlTransaction;
  head: ConfigHead;
  /** The version this write creates if it changes anything. */
  next: number;
}

/** The RPC request a write answers (RpcContext's messageId, method and deadline). */
export interface WriteRequest {
  /** The request's message id: the same on every redelivery. */
  id: string;
  method: string;
  deadline: Date;
  /** The id is derived from the HTTP client's Idempotency-Key (a retry may come long after the deadline). */
  keyed?: boolean;
  /**
   * A keyed request's key, method and caller without its body (write-request.ts): recorded with the answer, so the
   * same key sent again with another body (another id) finds the first request's row and is refused.
   */
  keyId?: string;
  /**
   * The ids a keyed request had under earlier keys of FLEETWATCH_ENCRYPTION_KEY (and before the keyed digest): a
   * retry recorded under one of them is answered as recorded, not refused as a reused key (write-request.ts).
   */
  priorIds?: readonly string[];
}

export interface WriteOptions {
  origin?: 'local' | 'leader';
  /** Makes the write idempotent by this request's id (see above). */
  request?: WriteRequest;
}

/** An answer as config_requests keeps it (persistence's RecordedRequest). */
type RecordedRequest = NonNullable<Awaited<ReturnType<ConfigVersionsRepository['recordedRequest']>>>;

/** Fields of an answer that are credentials: recorded apart, and cleared after the request's deadline. */
const SECRET_FIELDS = ['pingTokens'] as const;

/**
 * `alice (user:42)`: who, as the audit log and versions show it (bounded as the event's actor is). Cut without
 * splitting a surrogate pair: half of one is a lone surrogate, which jsonb (the outbox row) refuses.
 */
export function actorText(actor: Actor): string {
  const text = `${actor.name} (${actor.id})`;
  return text.length <= 256 ? text : `${truncateText(text, 255)}…`;
}

@Injectable()
export class ConfigWriter implements OnModuleInit {
  /** Stateless over the pool: the full snapshot's alert areas and properties (no DI change for the writer's users). */
  private readonly alertConfig: AlertConfigRepository;
  private readonly properties: PropertiesRepository;

  constructor(
    @Inject(SQL_POOL) private readonly pool: SqlPool,
    private readonly checks: ChecksRepository,
    private readonly versions: ConfigVersionsRepository,
    private readonly relay: ConfigChangedRelay,
    @Optional() @Inject(CONFIG_SNAPSHOT_EVERY) private readonly snapshotEvery: number = SNAPSHOT_EVERY,
    @Optional() @Inject(FLEETWATCH_LOGGER) private readonly logger?: Pick<Logger, 'info' | 'warn'>,
  ) {
    this.alertConfig = new AlertConfigRepository(pool);
    this.properties = new PropertiesRepository(pool);
  }

  /**
   * At start: checks from before content hashes existed get theirs, and checks hashed with credential headers'
   * values (before those were write-only) today's hash (refreshHeaderHashes). Not awaited — the service
   * starts with the database away too — and not needed for correctness meanwhile: a write that
   * finds a check without its hash fills it first (below), under the same lock.
   */
  onModuleInit(): void {
    void this.fillContentHashes().then(
      (n) => n > 0 && this.logger?.info({ checks: n }, 'content hashes of earlier checks stored'),
      (err: unknown) =>
        this.logger?.warn({ err: (err as Error).message }, 'content hashes not filled at start; the next write does'),
    );
  }

  /**
   * Stores the content hash of every check that has none (rows written before the hashes
   * were stored: the migration cannot compute canonical config forms) and sets the head's
   * hash to what the stored hashes give — the same content, under today's definition. Under
   * the head lock, so no write interleaves; cheap when there is nothing to fill. Answers how
   * many checks got a hash.
   */
  async fillContentHashes(): Promise<number> {
    return runInSqlTransaction(this.pool, async (tx) => {
      const head = await this.versions.lockHead(tx);
      const filled = (await this.fillMissing(tx)) + (await this.refreshHeaderHashes(tx));
      const hash = await this.versions.configHash(tx);
      if (head.version > 0 && hash !== head.hash) await this.versions.setHeadHash(tx, hash);
      return filled;
    });
  }

  /**
   * Content hashes of http checks with headers, stored again where today's definition differs: a check stored
   * before credential headers were write-only was hashed with their values (a hash that tells a guess from the
   * truth, offline), today's hashes `{set: true}` (check-form.ts). The same content hashes as before otherwise.
   */
  private async refreshHeaderHashes(tx: SqlTransaction): Promise<number> {
    const stale = (await this.checks.httpWithHeaders(tx))
      .map((r) => ({ id: r.id, hash: checkHash(r.spec), was: r.hash }))
      .filter((r) => r.was !== null && r.hash !== r.was);
    await this.checks.setHashes(
      tx,
      stale.map(({ id, hash }) => ({ id, hash })),
    );
    return stale.length;
  }

  private async fillMissing(tx: SqlTransaction): Promise<number> {
    const rows = await this.checks.withoutHash(tx);
    await this.checks.setHashes(
      tx,
      rows.map((r) => ({ id: r.id, hash: checkHash(r.spec) })),
    );
    return rows.length;
  }

  /**
   * The head lock, waited for at most until the request's deadline (1 ms when it has passed: a redelivered request is
   * still answered from its record when nobody holds the lock). A write holding the lock past a waiter's deadline
   * (a large import) made the waiter hold a pool connection and an open transaction into the statement timeout, to
   * answer a caller who had been told 503 long before.
   */
  private async lockHead(tx: SqlTransaction, request: WriteRequest | undefined) {
    if (!request) return this.versions.lockHead(tx);
    try {
      return await this.versions.lockHead(tx, request.deadline.getTime() - Date.now());
    } catch (err) {
      if (isLockTimeout(err))
        throw new UnavailableError(
          "the request's deadline passed while waiting for the configuration lock (another write holds it); nothing was changed, try again",
          1,
        );
      throw err;
    }
  }

  async write<R>(
    actor: Actor,
    work: (ctx: WriteContext) => Promise<WriteOutcome<R>>,
    options: WriteOptions = {},
  ): Promise<R & { version: number }> {
    const { origin = 'local', request } = options;
    const committed = await runInSqlTransaction(this.pool, async (tx) => {
      const head = await this.lockHead(tx, request);
      // A statement after the lock: it sees what the writer before committed.
      const state = await this.versions.writeState(tx, request?.id ?? null, request?.keyId ?? null);
      if (request && state.recorded) return { answer: replayOf<R>(state.recorded, request), created: false };
      if (request && state.keyUsedBy) {
        // The same request recorded under an earlier key (a rotation, or before the keyed digest): its answer.
        if (request.priorIds?.includes(state.keyUsedBy.requestId)) {
          const prior = await this.versions.writeState(tx, state.keyUsedBy.requestId);
          if (prior.recorded) return { answer: replayOf<R>(prior.recorded, request), created: false };
        }
        // The same key, method and caller, another body: the client reused its key for another request.
        throw keyReused(state.keyUsedBy, request);
      }
      beforeDeadline(request, 'waiting for the configuration lock');
      // Rows from before content hashes (normally filled at start): fill them, or the hash would skip them.
      if (state.missingHashes > 0) await this.fillMissing(tx);
      const next = head.version + 1;
      const outcome = await work({ tx, head, next });
      if (!outcome.changed) {
        const answer = { ...outcome.result, version: head.version };
        if (request) await this.recordAnswer(tx, request, answer);
        return { answer, created: false };
      }
      const changes: ConfigChanges = { ...changesOf(outcome.touched), ...outcome.alertChanges };
      if (outcome.propertyChanges) changes.properties = outcome.propertyChanges;
      let checksAfter = state.checks;
      for (const t of outcome.touched) checksAfter += (t.after ? 1 : 0) - (t.before ? 1 : 0);
      // Every SNAPSHOT_EVERY-th version reads the whole configuration once (O(N) / K per write).
      let full = storesFullSnapshot(next, changes, checksAfter, this.snapshotEvery);
      // "As big as the configuration itself" counts the alert entries and properties too (read only when it matters).
      if (full && next % this.snapshotEvery !== 0)
        full = storesFullSnapshot(
          next,
          changes,
          checksAfter + (await this.alertConfig.count(tx)) + (await this.properties.count(tx)),
          this.snapshotEvery,
        );
      const snapshot = full ? await this.fullSnapshot(tx) : null;
      const who = actorText(actor);
      // The touched checks as the write left them: no need to read them back.
      const lifecycle = lifecycleOf(touchedChecks(outcome.audit), stateAfter(outcome.touched, next), next, new Date());
      const answer = { ...outcome.result, version: next };
      // The hash (Postgres computes it from the stored check hashes), version, audit, outbox and
      // the request's answer: one statement.
      await this.versions.record(tx, {
        version: next,
        snapshot,
        changes: full ? null : changes,
        actor: who,
        summary: outcome.summary,
        origin,
        audit: outcome.audit,
        request: request && answerRecord(request, answer),
        outbox: {
          messageId: uuidv7(),
          // `hash` is set by Postgres in the same statement.
          payload: { version: next, hash: '', areas: areasOf(changes, outcome.areas), actor: who, origin },
          lifecycle,
        },
      });
      // The caller was told 503 once its deadline passed: a write it gave up on must not appear after all
      // (a push check's ping token would be issued to nobody). Checked last, right before COMMIT.
      beforeDeadline(request, 'writing');
      return { answer, created: true };
    });
    // After commit: publish now. A crash before this leaves the outbox row for the next start.
    if (committed.created) void this.relay.kick();
    return committed.answer;
  }

  /** The whole configuration as a version stores it: checks, then the alert areas and properties that hold something. */
  private async fullSnapshot(tx: SqlTransaction): Promise<ConfigSnapshot> {
    const snapshot: ConfigSnapshot = snapshotOf((await this.checks.all(tx)).map(specOf));
    for (const area of ALERT_AREAS) {
      const rows = await this.alertConfig.all(area, tx);
      if (rows.length === 0) continue;
      const entries: Record<string, Record<string, unknown>> = {};
      for (const r of rows) put(entries, r.id, r.spec);
      snapshot[area] = entries;
    }
    const properties = await this.properties.all(tx);
    if (properties.length > 0) {
      const entries: Record<string, Record<string, unknown>> = {};
      for (const p of properties) put(entries, p.key, { value: p.value });
      snapshot.properties = entries;
    }
    return snapshot;
  }

  private async recordAnswer(tx: SqlTransaction, request: WriteRequest, answer: object): Promise<void> {
    await this.versions.recordRequest(tx, answerRecord(request, answer));
  }
}

/** The `config.changed` areas of a write: those its changes touch, and any it names. */
function areasOf(changes: ConfigChanges, extra: readonly ConfigArea[] = []): ConfigArea[] {
  const areas = new Set<ConfigArea>();
  if (Object.keys(changes.checks).length > 0) areas.add('checks');
  for (const area of ALERT_AREAS) if (changes[area]) areas.add(AREA_EVENT[area]);
  if (changes.properties) areas.add('properties');
  for (const a of extra) areas.add(a);
  return [...areas];
}

/** A lock wait that ran out (lock_timeout, SQLSTATE 55P03). */
const isLockTimeout = (err: unknown): boolean => err instanceof UnavailableError && err.sqlState === '55P03';

/** Throws (→ rollback, reply `unavailable`) when the RPC caller's deadline has passed. */
function beforeDeadline(request: WriteRequest | undefined, doing: string): void {
  if (request && Date.now() >= request.deadline.getTime())
    throw new UnavailableError(`the request's deadline passed while ${doing}; nothing was changed, try again`, 1);
}

/** Writes whose whole answer is the version (a delete): a kept version is the whole answer. */
const KEEPS_NO_ANSWER: ReadonlySet<string> = new Set([
  ConfigRpcMethod.ChecksDelete,
  AlertConfigRpcMethod.RulesDelete,
  AlertConfigRpcMethod.ChannelsDelete,
  AlertConfigRpcMethod.WindowsDelete,
  AlertConfigRpcMethod.SilencesDelete,
  StatusPageRpcMethod.Delete,
  PropertyRpcMethod.Delete,
  SubscriptionRpcMethod.Delete,
]);

/** The refusal of a key already used (within the day answers are kept) by the same caller for another request. */
function keyReused(first: { version: number }, request: WriteRequest): IdempotencyKeyReusedError {
  const problem =
    `already used by you for another ${request.method} request (another body, If-Match or path), applied as config ` +
    `version ${first.version}: a key names one request — send a new key for a new request, or the first request's ` +
    'body again to get its answer';
  return new IdempotencyKeyReusedError(`Idempotency-Key: ${problem}`, [{ path: 'Idempotency-Key', message: problem }]);
}

/** A request's answer as config_requests keeps it: its secrets apart. */
function answerRecord(request: WriteRequest, answer: object): NonNullable<NewConfigVersion['request']> {
  const reply: Record<string, unknown> = { ...answer };
  let secrets: Record<string, unknown> | null = null;
  for (const field of SECRET_FIELDS) {
    if (reply[field] === undefined) continue;
    (secrets ??= {})[field] = reply[field];
    delete reply[field];
  }
  return {
    requestId: request.id,
    keyId: request.keyId ?? null,
    method: request.method,
    deadline: request.deadline,
    reply,
    secrets,
  };
}

/** The touched checks that are still there after the write, as stored (its version, no timestamps read back). */
function stateAfter(touched: readonly TouchedCheck[], version: number): CheckDefinition[] {
  const out: CheckDefinition[] = [];
  for (const t of touched)
    if (t.after)
      out.push({ ...t.after, id: t.id, targetId: TargetIds.check(t.id), version, createdAt: '', updatedAt: '' });
  return out;
}

/** The recorded answer again (with its secrets while they are kept); a reused id of another method is refused. */
function replayOf<R>(recorded: RecordedRequest, request: WriteRequest): R & { version: number } {
  if (recorded.method !== request.method)
    throw new ConflictError(
      `request ${request.id} was already answered as ${recorded.method}, not ${request.method}: send a new request`,
    );
  // A client's retry (Idempotency-Key) after the whole answer was let go (config_requests keeps only the version of
  // answers 5 minutes past their deadline): applied, but there is no answer left to give but that.
  if (
    request.keyed &&
    !KEEPS_NO_ANSWER.has(request.method) &&
    Object.keys(recorded.reply).every((k) => k === 'version')
  )
    throw new ConflictError(
      `the request with this Idempotency-Key was applied as config version ${String(recorded.reply['version'])}; ` +
        'its answer is no longer kept: read the configuration again',
    );
  return { ...recorded.reply, ...(recorded.secrets ?? {}) } as R & { version: number };
}
