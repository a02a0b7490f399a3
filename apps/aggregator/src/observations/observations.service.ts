import { Inject, Injectable } from '@nestjs/common';
import { observationShardQueue, QueueName, type Envelope } from '@fleetwatch/contracts';
import {
  foldObservations,
  isTombstone,
  UnavailableError,
  type FoldItem,
  type TargetSnapshot,
} from '@fleetwatch/domain';
import {
  HistoryRepository,
  runInSqlTransaction,
  SQL_POOL,
  StatusEventsRepository,
  TargetStatesRepository,
  type SqlPool,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import { SetAsideWriter, type SetAsidePart } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { SerialLane } from '../status/serial-lane';
import { errorText, isTooLarge, isTransient, retryTransient } from '../status/outage-retry';
import type { AggregatorConfig } from '../config';
import type { CheckMetricsWrite } from '@fleetwatch/live-state';
import { LiveStateBoot } from '../live/live-state.boot';
import { CHECK_METRICS_MIN_TTL_SECONDS, type IndexedAs } from '../live/live-projection.service';
import { ProjectionQueue } from '../live/projection.queue';
import { StatusPropagation, type CommittedChange } from '../status/status-propagation.service';
import { AGGREGATOR_CONFIG } from '../tokens';
import { mapEnvelope, type MappedMessage } from './observation.mapper';
import { HostConflicts, type ReporterSighting } from '../hosts/host-conflicts.service';
import { newestPerHost } from '../hosts/host-observation';
import { claimKey, ShardFence, ShardFencedError } from '../shards/shard-fence';

/**
 * Whether only the target's row can hold its last seen: none of its locations saw it that late. A paused check's
 * result from a location it has not been heard from moves the target's last seen and leaves the location out
 * (libs/domain applyObservation); a load reads last seen as the latest of the row's and its locations'.
 */
function lastSeenOnlyInRow(t: TargetSnapshot): boolean {
  if (t.lastSeen === null) return false;
  for (const location in t.locations) if (t.locations[location].lastSeen >= t.lastSeen) return false;
  return true;
}

/** Whether the target's own row must be written (not only its locations). */
function rowChanged(before: TargetSnapshot | undefined, after: TargetSnapshot): boolean {
  if (!before) return true;
  return (
    before.seq !== after.seq ||
    (before.lastSeen !== after.lastSeen && lastSeenOnlyInRow(after)) ||
    before.status !== after.status ||
    before.since !== after.since ||
    before.name !== after.name ||
    before.kind !== after.kind ||
    before.lifecycle !== after.lifecycle ||
    (before.instanceKind ?? null) !== (after.instanceKind ?? null) ||
    (before.downQuorumPct ?? null) !== (after.downQuorumPct ?? null) ||
    (before.paused ?? false) !== (after.paused ?? false) ||
    (before.configVersion ?? null) !== (after.configVersion ?? null) ||
    (before.deletedAt ?? null) !== (after.deletedAt ?? null) ||
    (before.configuredLocations ?? []).join('\u0000') !== (after.configuredLocations ?? []).join('\u0000') ||
    (before.pingWindowMs ?? null) !== (after.pingWindowMs ?? null) ||
    (before.pingWindowVersion ?? null) !== (after.pingWindowVersion ?? null) ||
    before.tags.join('\u0000') !== after.tags.join('\u0000') ||
    JSON.stringify(before.labels) !== JSON.stringify(after.labels)
  );
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Rethrows a failure of a dependency as an outage (waited out), whatever its kind. */
function asOutage(what: string): (e: unknown) => never {
  return (e: unknown) => {
    if (e instanceof UnavailableError) throw e;
    throw new UnavailableError(`${what}: ${errorText(e)}`, 5);
  };
}

function toFoldItem(m: Active): FoldItem {
  if (m.type === 'lifecycle') return { type: 'lifecycle', id: m.messageId, lifecycle: m.lifecycle };
  if (m.type === 'retire') return { type: 'retire', id: m.messageId, targetId: m.targetId, at: m.at, reason: m.reason };
  if (m.type !== 'ping') return { type: 'observation', id: m.messageId, observation: m.observation };
  // Runs and ping times are recorded for stored monitors only (heartbeat_monitors.id is a UUID).
  return {
    type: 'ping',
    id: m.messageId,
    targetId: m.targetId,
    location: m.location,
    name: m.name,
    ping: m.ping,
    monitorId: UUID.test(m.row.monitorId) ? m.row.monitorId : null,
  };
}

/** A shard's lane, or the exclusive lane of the un-sharded (legacy) queues. */
export type LaneKey = number | 'legacy';

interface Waiting {
  items: Active[];
  lane: LaneKey;
  /** The shard epoch this replica held the lane under when the batch arrived (ShardFence). */
  epoch: number | undefined;
  resolve: () => void;
  reject: (e: unknown) => void;
}

type Active = Exclude<MappedMessage, { type: 'ignored' | 'rejected' }>;
type Rejected = Extract<MappedMessage, { type: 'rejected' }>;
/** An observation that failed alone (commitIsolating), to set aside with its reason. */
interface Isolated {
  item: Active;
  reason: string;
}

interface BatchOutcome extends CommittedChange {
  fresh: number;
  duplicates: number;
  hostMetrics: Map<string, { json: string; at: number }>;
  /** The applied host samples that name their reporter, in delivery order (HostConflicts). */
  hostReporters: ReporterSighting[];
  /** Hosts retired in this commit (their conflict marks end with their life). */
  retiredHosts: string[];
  /** Service collectors' figures of the check results this commit applied. */
  checkMetrics: CheckMetricsWrite[];
}

/**
 * Folds a batch of observations (in delivery order) into history, target state
 * and status events in ONE transaction, publishes the transitions (confirmed)
 * before the batch is acked, and queues the Redis projection (in commit order,
 * overlapping the next batch). Idempotent by message id: the history insert (ON CONFLICT
 * (message_id) DO NOTHING) says which messages are new; redelivered ones change
 * nothing and emit nothing — their targets are only re-projected to Redis, which
 * repairs live state after a crash between commit and projection.
 */
@Injectable()
export class ObservationsService {
  private readonly metrics = AggregatorMetrics.get();
  private stopping = false;
  /** Batches waiting for the committer, in arrival order. */
  private readonly waiting: Waiting[] = [];
  private committing = false;
  /** Batches of each lane handed to the committer and not yet settled. */
  private readonly pendingIn = new Map<LaneKey, number>();
  private readonly idleWaiters = new Map<LaneKey, Array<() => void>>();
  /** The lane (queue) each waiting observation came from: where it is set aside if it must be. */
  private readonly laneOf = new WeakMap<Active, LaneKey>();
  /** The shard epoch each waiting observation arrived under: a commit checks it is still current. */
  private readonly epochOf = new WeakMap<Active, number | undefined>();

  constructor(
    @Inject(SQL_POOL) private readonly db: SqlPool,
    private readonly history: HistoryRepository,
    private readonly states: TargetStatesRepository,
    private readonly events: StatusEventsRepository,
    private readonly propagation: StatusPropagation,
    private readonly boot: LiveStateBoot,
    private readonly lane: SerialLane,
    private readonly projections: ProjectionQueue,
    private readonly setAsideWriter: SetAsideWriter,
    private readonly fence: ShardFence,
    private readonly hostConflicts: HostConflicts,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  /** Shutdown: stop waiting out outages so the in-flight batch returns (unacked) promptly. */
  stop(): void {
    this.stopping = true;
  }

  /**
   * `lane`: the shard the envelopes came from, or 'legacy' for the un-sharded queues.
   * Resolves once the batch's observations are committed and projected. Batches of every
   * shard this replica holds are committed together (group commit): one transaction at a
   * time takes whatever batches wait, in arrival order — each shard's batches arrive one
   * after another, so each target's observations stay in delivery order — and a busy
   * database gets fewer, larger transactions instead of one small one per shard.
   */
  async processBatch(envelopes: readonly Envelope[], lane: LaneKey = 'legacy'): Promise<void> {
    const started = performance.now();
    const mapped = envelopes.flatMap((e) => mapEnvelope(e, { staleAfterSeconds: this.config.staleAfterSeconds }));
    const rejected = mapped.filter((m): m is Rejected => m.type === 'rejected');
    const active = mapped.filter((m): m is Active => m.type !== 'ignored' && m.type !== 'rejected');
    // Set aside only once the rest of the batch is committed: a commit that does not finish returns the message
    // (redelivered, its bad updates found again) and a set-aside before it would dead-letter them a second time.
    const setAsideRejected = () =>
      rejected.length === 0
        ? Promise.resolve()
        : this.setAside(
            rejected.map((r) => ({ envelope: r.origin.envelope, reason: r.reason, headers: r.origin.headers })),
            lane,
          );
    if (active.length === 0) await setAsideRejected();
    else {
      const epoch = this.fence.epochOf(lane);
      for (const m of active) {
        this.laneOf.set(m, lane);
        this.epochOf.set(m, epoch);
      }
      this.pendingIn.set(lane, (this.pendingIn.get(lane) ?? 0) + 1);
      try {
        await new Promise<void>((resolve, reject) => {
          this.waiting.push({ items: active, lane, epoch, resolve, reject });
          this.commitWaiting();
        });
        await setAsideRejected();
      } finally {
        const left = (this.pendingIn.get(lane) ?? 1) - 1;
        if (left > 0) this.pendingIn.set(lane, left);
        else {
          this.pendingIn.delete(lane);
          for (const w of this.idleWaiters.get(lane)?.splice(0) ?? []) w();
        }
      }
    }
    this.metrics.batchSeconds.observe((performance.now() - started) / 1000);
  }

  /**
   * Resolves once no batch of `lane` waits for the committer or is being committed (a
   * shard is handed over only then: the next holder's commits must come after ours).
   */
  idle(lane: LaneKey): Promise<void> {
    if (!this.pendingIn.has(lane)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.idleWaiters.get(lane) ?? [];
      list.push(resolve);
      this.idleWaiters.set(lane, list);
    });
  }

  /** Commits waiting batches, one group at a time, until none waits. */
  private commitWaiting(): void {
    if (this.committing) return;
    this.committing = true;
    void (async () => {
      while (this.waiting.length > 0) {
        // Whole batches, in arrival order, up to maxObservationsPerCommit (a larger batch alone).
        const group = [this.waiting.shift() as Waiting];
        let size = group[0].items.length;
        while (this.waiting.length > 0 && size + this.waiting[0].items.length <= this.config.maxObservationsPerCommit) {
          const next = this.waiting.shift() as Waiting;
          size += next.items.length;
          group.push(next);
        }
        // The events' publishes of this group's commits: the batches are acked after them, while the next
        // group already commits (the outbox holds the events meanwhile).
        const published: Promise<void>[] = [];
        // Claims (lane and epoch, claimKey) whose shard another replica took since (its lock was lost): refused.
        const fenced = new Set<string>();
        // Observations that failed alone: set aside once the whole group is committed (commitIsolating).
        const isolated: Isolated[] = [];
        try {
          const items = group.length === 1 ? group[0].items : group.flatMap((g) => g.items);
          const lanes = [...new Set(group.map((g) => g.lane))];
          // Batch messages (status.update.batch) may carry 1000 updates each: bound each transaction, in order.
          const max = this.config.maxObservationsPerCommit;
          for (let i = 0; i < items.length; i += max)
            await this.commitIsolating(items.slice(i, i + max), lanes, published, fenced, isolated);
          await this.setAsideIsolated(isolated, fenced);
          void Promise.all(published).then(() => {
            for (const g of group)
              if (fenced.has(claimKey(g.lane, g.epoch))) g.reject(new ShardFencedError(g.lane));
              else g.resolve();
          });
        } catch (e) {
          // Committed parts are acked with the rest refused: their redelivery is a duplicate.
          void Promise.all(published).then(() => {
            for (const g of group) g.reject(e);
          });
        }
      }
      this.committing = false;
    })();
  }

  /**
   * Commits the observations; when that fails for a reason that is not an outage,
   * splits them in two and commits each half (in order, so each target's
   * observations stay ordered) until only the observations that fail alone
   * remain. Those go to `isolated`, set aside to the dead-letter queue by the caller
   * (each as its own replayable message with the reason) once every other observation
   * of the group is committed: a commit that does not finish returns the whole message,
   * and its redelivery isolates them again — set aside before, they would be dead-lettered
   * twice. Everything else is stored (SPEC §3: a bad message never takes good ones with it).
   */
  private async commitIsolating(
    items: Active[],
    lanes: readonly LaneKey[],
    published: Promise<void>[],
    fenced: Set<string>,
    isolated: Isolated[],
  ): Promise<void> {
    try {
      await this.commitChunk(items, lanes, published, fenced);
    } catch (e) {
      if (this.stopping) throw e;
      if (isTooLarge(e) && items.length > 1) {
        // Too much for one statement (timeout, memory): smaller commits, nothing set aside.
        this.logger.warn(
          { err: errorText(e), observations: items.length },
          'commit too large for the database; splitting it',
        );
        const half = Math.ceil(items.length / 2);
        await this.commitIsolating(items.slice(0, half), lanes, published, fenced, isolated);
        await this.commitIsolating(items.slice(half), lanes, published, fenced, isolated);
        return;
      }
      if (isTransient(e)) throw e;
      if (items.length === 1) {
        isolated.push({ item: items[0], reason: `could not be stored: ${errorText(e)}` });
        return;
      }
      this.logger.warn(
        { err: errorText(e), observations: items.length },
        'batch refused by a store; splitting it to isolate the observations that fail',
      );
      const half = Math.ceil(items.length / 2);
      await this.commitIsolating(items.slice(0, half), lanes, published, fenced, isolated);
      await this.commitIsolating(items.slice(half), lanes, published, fenced, isolated);
    }
  }

  /**
   * Sets aside the observations that failed alone, each into its own lane's dead-letter queue — but none of a
   * batch refused since (its shard taken over: redelivered to the new holder, which sets them aside).
   */
  private async setAsideIsolated(isolated: readonly Isolated[], fenced: ReadonlySet<string>): Promise<void> {
    const byLane = new Map<LaneKey, SetAsidePart[]>();
    for (const { item, reason } of isolated) {
      if (fenced.has(this.claimOf(item))) continue;
      const lane = this.laneOf.get(item) ?? 'legacy';
      const parts = byLane.get(lane) ?? [];
      parts.push({ envelope: item.origin.envelope, reason, headers: item.origin.headers });
      byLane.set(lane, parts);
    }
    for (const [lane, parts] of byLane) await this.setAside(parts, lane);
  }

  /**
   * Dead-letters single observations (confirmed) before the messages that carried them are
   * acked; an outage is waited out. Into the dead-letter queue of the queue they came from
   * (a shard's, or the legacy one): a replay puts them back there, so into their target's lane.
   */
  private async setAside(parts: SetAsidePart[], lane: LaneKey): Promise<void> {
    const queue = lane === 'legacy' ? QueueName.AggregatorObservations : observationShardQueue(lane);
    await retryTransient(() => this.setAsideWriter.setAside(queue, parts), {
      stopping: () => this.stopping,
      treatAsTransient: () => true,
      onRetry: (e, attempt, delayMs) =>
        this.logger.warn(
          { err: errorText(e), attempt, delayMs },
          'could not set observations aside: dead-letter exchange unavailable, retrying',
        ),
    });
    for (const p of parts) this.metrics.setAside.inc({ type: p.envelope.type });
  }

  /** One commit of a group (of one or several shards): alone in the lane, so ordered with expiry and the relay. */
  private async commitChunk(
    active: Active[],
    lanes: readonly LaneKey[],
    published: Promise<void>[],
    fenced: Set<string>,
  ): Promise<void> {
    const { outcome, publishing, kept } = await retryTransient(
      () =>
        this.lane.run(async () => {
          // Only the SQL transaction can blame the observations: live state and the
          // bus failing (Redis OOM/READONLY, a rebuild, a publish) is an outage for all of them.
          for (const l of lanes) await this.boot.ensureReady(l).catch(asOutage('live state not ready'));
          const { result, kept } = await runInSqlTransaction(this.db, async (tx) => {
            // First, under a share lock until the commit: are the shards still ours? A batch of a shard taken
            // over since is left out (refused, redelivered to the new holder after what it already committed).
            for (const c of await this.fence.superseded(tx, this.claimsOf(active))) fenced.add(c);
            const kept = fenced.size === 0 ? active : active.filter((m) => !fenced.has(this.claimOf(m)));
            return { kept, result: kept.length > 0 ? await this.commit(tx, kept) : undefined };
          });
          if (!result) return { outcome: undefined, publishing: Promise.resolve(), kept };
          // Committed: who reported each host (in memory); a mark raised or cleared is written to live state after,
          // on its own (never failing this commit).
          this.hostConflicts.fold(result.hostReporters, result.retiredHosts);
          // Projection and publish are queued in commit order; the next commit need not wait for the broker.
          const publishing = this.propagation.start(result, async () => {
            await this.boot.live.setHostMetrics(result.hostMetrics);
            await this.boot.live.setCheckMetrics(result.checkMetrics);
          });
          return { outcome: result, publishing, kept };
        }),
      {
        stopping: () => this.stopping,
        // A commit too large for the database is split by commitIsolating instead of retried as it is.
        treatAsTransient: (e) => isTransient(e) && !(isTooLarge(e) && active.length > 1),
        onRetry: (e, attempt, delayMs) =>
          this.logger.warn(
            { err: (e as Error).message, attempt, delayMs },
            'batch not committed: dependency unavailable, retrying',
          ),
      },
    );
    published.push(publishing);
    if (!outcome) return;
    // Backpressure: do not take more work while Redis is more than a couple of projections behind.
    await this.projections.roomAvailable();
    for (const m of kept) this.metrics.observations.inc({ type: m.type });
    this.metrics.duplicates.inc(outcome.duplicates);
    this.metrics.transitions.inc({ source: 'observation' }, outcome.events.length);
  }

  private claimOf(m: Active): string {
    return claimKey(this.laneOf.get(m) ?? 'legacy', this.epochOf.get(m));
  }

  /** The distinct (lane, epoch) claims of a chunk's observations: only their shards' epochs are share-locked. */
  private claimsOf(items: readonly Active[]): Array<{ lane: LaneKey; epoch: number | undefined }> {
    const claims = new Map<string, { lane: LaneKey; epoch: number | undefined }>();
    for (const m of items) {
      const lane = this.laneOf.get(m) ?? 'legacy';
      const epoch = this.epochOf.get(m);
      claims.set(claimKey(lane, epoch), { lane, epoch });
    }
    return [...claims.values()];
  }

  private async commit(tx: SqlTransaction, batch: Active[]): Promise<BatchOutcome> {
    const pick = <T extends Active['type']>(type: T) =>
      batch.filter((m): m is Extract<Active, { type: T }> => m.type === type);
    const fresh = new Set<string>();
    const add = (ids: Set<string>) => ids.forEach((id) => fresh.add(id.toLowerCase()));
    add(
      await this.history.insertStatusUpdates(
        tx,
        pick('status').map((m) => m.row),
      ),
    );
    add(
      await this.history.insertCheckResults(
        tx,
        pick('check').map((m) => m.row),
      ),
    );
    add(
      await this.history.insertHostMetrics(
        tx,
        pick('host').map((m) => m.row),
      ),
    );
    add(
      await this.history.insertHeartbeatPings(
        tx,
        pick('ping').map((m) => m.row),
      ),
    );
    add(
      await this.history.insertHostRetirements(
        tx,
        pick('retire').map((m) => m.row),
      ),
    );

    const ids = [...new Set(batch.map((m) => m.targetId))];
    const current = await this.states.lockMany(tx, ids);
    const fold = foldObservations(current, batch.map(toFoldItem), fresh, this.policy);
    const working = fold.targets;
    const hostMetrics = newestPerHost(
      batch.flatMap((m) =>
        // A host retired later in this commit keeps no figures (the projection drops what Redis holds).
        m.type === 'host' && fold.applied.has(m.messageId) && !isTombstone(working.get(m.targetId))
          ? [{ hostId: m.row.hostId, json: m.metrics.json, at: m.observation.at }]
          : [],
      ),
    );
    const hostReporters: ReporterSighting[] = [];
    for (const m of batch)
      if (m.type === 'host' && m.reporter && fold.applied.has(m.messageId))
        hostReporters.push({
          hostId: m.row.hostId,
          reporter: m.reporter.id,
          intervalMs: m.reporter.intervalMs,
          sampledAt: m.observation.at,
        });
    const retiredHosts: string[] = [];
    for (const m of batch) if (m.type === 'retire' && fold.applied.has(m.messageId)) retiredHosts.push(m.row.hostId);
    const checkMetrics: CheckMetricsWrite[] = [];
    for (const m of batch)
      if (m.type === 'check' && m.row.metrics && fold.applied.has(m.messageId))
        checkMetrics.push({
          targetId: m.targetId,
          location: m.row.location,
          at: m.row.occurredAt,
          json: JSON.stringify(m.row.metrics),
          ttlSeconds: checkMetricsTtl(m.origin.envelope.payload),
        });

    // A target's row is rewritten only when more than its locations changed (status, sequence, identity).
    const rewrite: TargetSnapshot[] = [];
    const locationsOnly: TargetSnapshot[] = [];
    for (const id of fold.changed) {
      const after = working.get(id) as TargetSnapshot;
      (rowChanged(current.get(id), after) ? rewrite : locationsOnly).push(after);
    }
    await this.states.saveMany(tx, rewrite, locationsOnly, current);
    await this.states.dropLocations(tx, fold.dropped);
    const stored = await this.events.insertMany(tx, fold.events);
    await this.history.insertHeartbeatRuns(tx, fold.runs);
    await this.history.touchHeartbeatMonitors(tx, fold.touches);

    // Redis is re-read for targets of redelivered messages: their last projection may not have happened.
    const previous = new Map<string, IndexedAs | null>();
    for (const id of fold.changed) {
      if (fold.resync.has(id)) continue;
      const c = current.get(id);
      previous.set(id, c ? { status: c.status, tags: c.tags, locations: Object.keys(c.locations) } : null);
    }
    const targets = [...new Set([...fold.changed, ...fold.resync])]
      .map((id) => working.get(id))
      .filter((t): t is TargetSnapshot => t !== undefined);
    return {
      targets,
      previous,
      events: stored,
      fresh: fresh.size,
      duplicates: fold.duplicates,
      hostMetrics,
      hostReporters,
      retiredHosts,
      checkMetrics,
    };
  }

  private get policy() {
    return { downQuorumPct: this.config.downQuorumPct };
  }
}

/** A check's latest figures stay three intervals (at least ten minutes) after its last result. */
function checkMetricsTtl(payload: unknown): number {
  const interval = (payload as { intervalSeconds?: unknown }).intervalSeconds;
  return Math.max(CHECK_METRICS_MIN_TTL_SECONDS, 3 * (typeof interval === 'number' && interval > 0 ? interval : 60));
}
