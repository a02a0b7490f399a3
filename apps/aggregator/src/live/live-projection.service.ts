import { Inject, Injectable } from '@nestjs/common';
import { OBSERVATION_SHARDS, TargetKind, type TargetStatus } from '@fleetwatch/contracts';
import { isTombstone, type TargetSnapshot } from '@fleetwatch/domain';
import {
  LiveStateStore,
  type CheckMetricsWrite,
  type DueDeadline,
  locationRecordsOf,
  type TargetWrite,
} from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { CheckMetricsHistoryRepository, TargetStatesRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { HostLiveState } from '../hosts/host-live-state.service';
import { errorText, isTransient } from '../status/outage-retry';

/** What Redis holds for a target before a write: its status and tags index entries to move. */
export interface IndexedAs {
  status: TargetStatus;
  tags: string[];
  /**
   * The locations it is indexed under. Given by the commit path (the state it projected
   * last, read from Postgres): only index entries that differ are then written. Read back
   * from Redis (absent here), every entry is written again, which repairs a partial one.
   */
  locations?: string[];
}

const REBUILD_PAGE = 500;
/** The shortest time a check's figures stay in live state after its last result (three intervals, at least this). */
export const CHECK_METRICS_MIN_TTL_SECONDS = 600;
const CHECK_METRICS_RESTORE_MS = CHECK_METRICS_MIN_TTL_SECONDS * 1000;

function toWrite(t: TargetSnapshot, previous: IndexedAs | null): TargetWrite {
  const locations = locationRecordsOf(t);
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    status: t.status,
    previousStatus: previous?.status ?? null,
    since: t.since,
    lastSeen: t.lastSeen ?? 0,
    lastLatencyMs: t.lastLatencyMs,
    lifecycle: t.lifecycle,
    instanceKind: t.instanceKind ?? null,
    tags: t.tags,
    previousTags: previous?.tags,
    labels: t.labels,
    seq: t.seq,
    locations,
    indexed: previous?.locations !== undefined,
    previousLocations: previous?.locations,
  };
}

/** Deadlines of a target's locations, as the sweeper's sorted set holds them. */
export function deadlinesOf(t: TargetSnapshot): DueDeadline[] {
  return Object.entries(t.locations)
    .filter(([, l]) => l.deadline !== null)
    .map(([location, l]) => ({ targetId: t.id, location, deadline: l.deadline?.at as number }));
}

/**
 * Projects committed target state (Postgres) into live state (Redis): target
 * summaries, per-location records, indexes and deadlines. Also rebuilds the
 * whole projection from Postgres when Redis is empty or behind.
 */
@Injectable()
export class LiveProjection {
  /** Targets whose last live-state write Redis refused for a reason of their own (see writeLive). */
  private readonly refused = new Set<string>();

  constructor(
    private readonly store: LiveStateStore,
    private readonly states: TargetStatesRepository,
    private readonly hosts: HostLiveState,
    private readonly checkMetrics: CheckMetricsHistoryRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Writes targets (the store moves index entries from what Redis holds and skips a write
   * older than what Redis holds); `previous` is what the writer last projected, a hint only.
   * A deleted check's tombstone is removed from live state instead (its index entries and
   * deadlines too, with the locations it had before as far as `previous` knows them); a retired
   * host's latest sample goes with it (HostLiveState.retire).
   */
  async project(targets: readonly TargetSnapshot[], previous: ReadonlyMap<string, IndexedAs | null>): Promise<void> {
    if (targets.length === 0) return;
    const live = targets.filter((t) => !isTombstone(t));
    if (live.length > 0) await this.writeLive(live, previous);
    if (live.length < targets.length) {
      const gone = targets.filter(isTombstone);
      await this.store.removeTargets(
        gone.map((t) => ({
          id: t.id,
          locations: previous.get(t.id)?.locations ?? [],
          // A removed instance may come back (newer than this); a deleted check never does.
          removedAt: t.kind === TargetKind.Check ? undefined : (t.deletedAt ?? undefined),
        })),
      );
      // A deleted target is no longer counted on either side (Postgres counts leave tombstones out).
      if (this.refused.size > 0) for (const t of gone) this.refused.delete(t.id);
      const hosts = gone.filter((t) => t.kind === TargetKind.Host);
      if (hosts.length > 0) await this.hosts.retire(hosts);
    }
  }

  /**
   * Targets' summaries, locations, indexes and deadlines, in one script run and one ZADD. A refusal that is no outage
   * (a key of another type under one target's name, a script error on one target's data) is narrowed down to the
   * targets it comes from: the batch is written again one target at a time, and those still refused are skipped —
   * logged with their id and counted (`fleetwatch_aggregator_live_projection_skipped_total`), left as Redis holds them
   * (Postgres keeps their state; their next write or a rebuild tries again). One target's live state must not stop a
   * shard: a projection that throws asks for a reconcile, and a reconcile that throws holds every commit of the
   * shard. A refusal of every target of a batch of several is Redis's, not theirs (a wrong type at an index key, a
   * script gone wrong): thrown, as an outage (isTransient) is, for the caller to wait out and report.
   */
  private async writeLive(live: readonly TargetSnapshot[], previous: ReadonlyMap<string, IndexedAs | null>) {
    try {
      await this.store.writeTargets(live.map((t) => toWrite(t, previous.get(t.id) ?? null)));
      await this.store.setDeadlines(live.flatMap(deadlinesOf));
      if (this.refused.size > 0) for (const t of live) this.refused.delete(t.id);
      return;
    } catch (e) {
      if (isTransient(e)) throw e;
      if (live.length === 1) return this.skip(live[0], e);
    }
    const failures: Array<{ target: TargetSnapshot; error: unknown }> = [];
    for (const t of live) {
      try {
        await this.store.writeTargets([toWrite(t, previous.get(t.id) ?? null)]);
        await this.store.setDeadlines(deadlinesOf(t));
        this.refused.delete(t.id);
      } catch (e) {
        if (isTransient(e)) throw e;
        failures.push({ target: t, error: e });
      }
    }
    if (failures.length === live.length) throw failures[0].error;
    for (const f of failures) this.skip(f.target, f.error);
  }

  private skip(target: TargetSnapshot, error: unknown): void {
    this.refused.add(target.id);
    AggregatorMetrics.get().projectionsSkipped.inc();
    this.logger.error(
      { targetId: target.id, err: errorText(error) },
      "live state of a target not written: Redis refused it (not an outage); left as Redis holds it, Postgres keeps the target's state",
    );
  }

  /** Targets whose last write Redis refused (skipped): missing from live state by design, not lost by a flush. */
  get refusedTargets(): number {
    return this.refused.size;
  }

  async fanOut(messages: readonly string[]): Promise<void> {
    await this.store.publishStatusChanges(messages);
  }

  /** Hosts' latest samples a commit applied (host id → sample JSON and its time). */
  async setHostMetrics(samples: ReadonlyMap<string, { json: string; at: number }>): Promise<void> {
    await this.hosts.project(samples);
  }

  /** Checks' latest service-collector figures a commit applied (issue 16), per target and location. */
  async setCheckMetrics(writes: readonly CheckMetricsWrite[]): Promise<void> {
    await this.store.setCheckMetricsMany(writes);
  }

  /**
   * Rewrites live state from Postgres, page by page (all targets, or those changed
   * since `updatedSince`). Index entries Redis already holds are moved, not duplicated.
   */
  async rebuild(updatedSince?: Date, shard?: number): Promise<number> {
    let after: string | null = null;
    let total = 0;
    // A whole rebuild (a flush, an upgrade to a new layout) starts from no leftovers of layout 2.
    const legacy = !updatedSince && shard === undefined ? await this.store.removeLegacyLocationHashes() : 0;
    if (legacy > 0) this.logger.info({ keys: legacy }, 'removed live state of an older layout (t:{target}:loc)');
    for (;;) {
      const page = await this.states.page(
        after,
        REBUILD_PAGE,
        updatedSince,
        shard === undefined ? undefined : { shard, of: OBSERVATION_SHARDS },
      );
      if (page.length === 0) break;
      await this.project(page, new Map());
      total += page.length;
      after = page[page.length - 1].id;
      if (page.length < REBUILD_PAGE) break;
    }
    // Hosts' latest samples are live state too (issue 16): restored from their latest raw rows.
    const hosts = await this.hosts.restore(
      updatedSince,
      shard === undefined ? undefined : { shard, of: OBSERVATION_SHARDS },
    );
    // Figures only on a whole rebuild (Redis lost live state): a shard's reconcile must not shorten what Redis
    // holds (the restore's TTL is what is left of 10 minutes, live use keeps them three intervals).
    const checks = !updatedSince && shard === undefined ? await this.restoreCheckMetrics() : 0;
    if (!updatedSince && shard === undefined) await this.store.markBuilt();
    if (total > 0 || !updatedSince)
      this.logger.info(
        { targets: total, hosts, checks, since: updatedSince?.toISOString() ?? null, shard: shard ?? null },
        'live state rebuilt from Postgres',
      );
    return total;
  }

  /**
   * Service collectors' latest figures (`cm:{target}`, issue 16) come back from check_results.metrics: results of
   * the last CHECK_METRICS_RESTORE_MS — the shortest time figures stay after a check's last result — each for
   * what is left of that time. (A check with a long interval keeps its figures for three intervals in live use;
   * after a rebuild they are back with its next result.) Returns how many check locations were restored.
   */
  private async restoreCheckMetrics(): Promise<number> {
    const now = Date.now();
    const since = now - CHECK_METRICS_RESTORE_MS;
    let after: { targetId: string; location: string } | undefined;
    let total = 0;
    for (;;) {
      const page = await this.checkMetrics.latestSince(since, { after, limit: REBUILD_PAGE });
      if (page.length === 0) break;
      const writes: CheckMetricsWrite[] = [];
      for (const m of page) {
        const left = Math.floor((m.at + CHECK_METRICS_RESTORE_MS - now) / 1000);
        if (left > 0)
          writes.push({ targetId: m.targetId, location: m.location, at: m.at, json: m.json, ttlSeconds: left });
      }
      await this.store.setCheckMetricsMany(writes);
      total += writes.length;
      const last = page[page.length - 1];
      after = { targetId: last.targetId, location: last.location };
      if (page.length < REBUILD_PAGE) break;
    }
    return total;
  }

  /**
   * Redis lost live state (flushed, or a fresh Redis): the mark a whole rebuild leaves is gone. Not "the target
   * index is empty": after a flush a projection or the sweeper may write a target before this look, and the rest
   * would then wait for the thorough count (30 s). A Redis found without the mark but full (an upgrade) is rebuilt
   * once — harmless, a rebuild never moves a target back.
   */
  async isBehind(): Promise<boolean> {
    if (await this.store.isBuilt()) return false;
    if ((await this.states.count()) > 0) return true;
    // Nothing to rebuild: whatever lands from now on is projected as it comes.
    await this.store.markBuilt();
    return false;
  }

  /**
   * The thorough form of isBehind (counts both sides); run less often. Targets this replica's writes were refused for
   * (skipped, logged) count as present: a whole rebuild would skip them again, and rebuilding every 30 s for them
   * would hold every shard's lane. (The rebuild job runs on the lease holder, whose rebuild saw every target.)
   */
  async isMissingTargets(): Promise<boolean> {
    const counts = await this.store.countByStatus();
    const inRedis = Object.values(counts).reduce((a, b) => a + b, 0);
    return inRedis + this.refused.size < (await this.states.count());
  }
}
