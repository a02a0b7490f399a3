import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AdvisoryLease,
  HistoryRepository,
  HostHistoryRepository,
  RETENTION_COLUMNS,
  type HostRollupKey,
  type RecomputeOptions,
  type RollupKey,
  ROLLUP_TABLES,
  type RetentionTable,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { AggregatorConfig } from '../config';
import { isTooLarge } from '../status/outage-retry';
import { AGGREGATOR_CONFIG, SWEEPER_LEASE } from '../tokens';

const DAY_MS = 86_400_000;
const ROLLUP_CHUNK = 1000;
/** Host minutes per rollup transaction (a minute of a host carries ~20–2000 series rows). */
const HOST_ROLLUP_CHUNK = 200;
/**
 * The minute in progress is recomputed at the next run while it has no rollup yet (its first samples show at once),
 * then only once its oldest unrolled change is this many rollup intervals old (30 s by default); a closed minute at
 * the next run. A target seen every few seconds otherwise has its open minute recomputed from its raw rows on every
 * run (six times a minute at 10 s), each time deleting and re-creating its mark. The cost: the open minute's rollup
 * lags its newest samples by up to ~40 s (was ~10 s) once it has its first one.
 */
export const OPEN_MINUTE_INTERVALS = 3;
/**
 * How soon a job first runs after boot, and how soon it looks again while another replica holds the lease (when
 * its interval is longer): retention every hour first ran an hour after boot, so an aggregator restarted more
 * often than that (a deploy a day is enough on some sites, a crash loop always) trimmed nothing, and a replica that
 * took over the lease waited up to an hour as well.
 */
export const JOB_FIRST_RUN_MS = 60_000;
/** Rows per retention DELETE, and DELETEs per table in one run: a run deletes at most 5 M rows of each table. */
export const RETENTION_BATCH = 5000;
export const RETENTION_MAX_BATCHES = 1000;
/** Chunks of marked minutes one rollup run recomputes, of targets and of hosts each (100,000 and 20,000 minutes). */
export const ROLLUP_MAX_CHUNKS = 100;
/**
 * How soon, at least, a job that stopped at its cap with work left (retention at RETENTION_MAX_BATCHES with rows still
 * past retention, rollups at ROLLUP_MAX_CHUNKS with minutes still marked) runs again — and not before it has paused as
 * long as that run took. At one run an interval, a site storing more than 5 M rows of a table an hour (~1,400 status
 * updates/s) fell further behind every hour and its history grew without bound; so did the rollup marks of a site
 * marking more than 100,000 minutes per run and interval.
 */
export const CATCH_UP_MIN_PAUSE_MS = 1_000;
/**
 * Clean rollup runs (no chunk cut by a statement timeout) after which a chunk halved by one grows back (×2, up to its
 * full size): about ten minutes at the default interval.
 */
export const ROLLUP_CHUNK_REGROW_RUNS = 60;
/**
 * How much younger than the raw retention cutoff a minute is still treated as one whose raw rows may be pruned (its
 * rollup only grows: see HistoryRepository.recomputeDirtyRollups' `rawCutoff`). Retention runs beside the rollup job
 * with its own clock reading (and, after a lease hand-over, another replica's clock): a rollup run taking its cutoff
 * once, at its start, recomputed a minute retention had meanwhile pruned past that cutoff from the rows left when a
 * late row marked it — a complete ~7-day-old rollup (count 20) overwritten by the late row alone (count 1), lost from
 * the 90-day history. The cutoff is now read per chunk, and this margin covers a chunk's run and clock skew.
 */
export const RAW_CUTOFF_MARGIN_MS = 3_600_000;
/**
 * How long a minute is set aside whose rollup alone (a chunk of one) is cut by the statement timeout (or runs out of
 * memory): its mark, and so its raw rows (RETENTION_KEEP_MARKED), are kept, and it is taken again after this long. As
 * the oldest marked minute it was taken first at every run, the run failed on it, and no later minute was rolled up
 * again — nor its raw rows trimmed. Kept in memory: a restart (or another lease holder) tries it again once (two
 * statement timeouts: its chunk, then the minute alone — see inChunks).
 */
export const ROLLUP_SET_ASIDE_MS = 3_600_000;

/**
 * History upkeep, run by the replica holding the sweeper lease (taken by the
 * sweeper): 1-minute rollups recomputed from raw rows for the buckets marked
 * dirty by batches (every AGGREGATOR_ROLLUP_INTERVAL_MS; the minute in progress
 * once its mark is OPEN_MINUTE_INTERVALS of them old), and retention — raw
 * rows past HISTORY_RAW_RETENTION_DAYS, rollups past HISTORY_ROLLUP_RETENTION_DAYS
 * — deleted in small batches (every AGGREGATOR_RETENTION_INTERVAL_MS, the first time a minute after boot or after
 * the lease is taken: JOB_FIRST_RUN_MS). Either job, after a run that stopped at its cap with work left, runs again
 * after a pause as long as that run (CATCH_UP_MIN_PAUSE_MS at least); a shutdown, or for retention the lease lost,
 * stops a run between its statements; a job that failed runs again within JOB_FIRST_RUN_MS. Each job has
 * its own timer so a long retention never delays the staleness sweep.
 */
@Injectable()
export class HistoryMaintenance implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;
  private readonly metrics = AggregatorMetrics.get();
  /**
   * Minutes per rollup transaction now, of targets and of hosts: halved when a chunk is cut by the statement timeout
   * (or runs out of memory), grown back after ROLLUP_CHUNK_REGROW_RUNS clean runs. At a fixed size, a chunk of heavy
   * minutes (a spool replayed after an outage; hosts with ~2000 series a minute) that took longer than the timeout was
   * rolled back whole and taken again, whole, at every run: the job failed for ever, and retention kept every raw row
   * of the marked minutes.
   */
  private readonly chunk = {
    targets: { kind: 'targets', size: ROLLUP_CHUNK, max: ROLLUP_CHUNK, cleanRuns: 0 },
    hosts: { kind: 'hosts', size: HOST_ROLLUP_CHUNK, max: HOST_ROLLUP_CHUNK, cleanRuns: 0 },
  };
  /** Minutes set aside (ROLLUP_SET_ASIDE_MS), of targets and of hosts: key → the minute and when it is taken again. */
  private readonly setAside = {
    targets: new Map<string, { key: RollupKey; until: number }>(),
    hosts: new Map<string, { key: HostRollupKey; until: number }>(),
  };

  constructor(
    private readonly history: HistoryRepository,
    private readonly hosts: HostHistoryRepository,
    @Inject(SWEEPER_LEASE) private readonly lease: AdvisoryLease,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.every('rollups', this.config.rollupIntervalMs, () => this.roll());
    // A run stops between its DELETEs once this replica no longer holds the lease (the new holder trims).
    this.every('retention', this.config.retentionIntervalMs, () =>
      this.trim(Date.now(), () => this.stopped || !this.lease.isHeld),
    );
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.running]);
  }

  /** Recomputes every dirty bucket of targets (chunks of 1000) and hosts (chunks of 200). Returns the buckets recomputed. */
  async rollUp(): Promise<number> {
    return (await this.roll()).total;
  }

  /** One rollup run; `behind`: a kind of bucket had more marked than a run takes (ROLLUP_MAX_CHUNKS chunks). */
  private async roll(): Promise<{ total: number; behind: boolean }> {
    // A minute older than the raw window (less RAW_CUTOFF_MARGIN_MS) is re-rolled only where its raw rows count more
    // than its rollup (its raw rows may be pruned: a late result alone would shrink it). Read at each chunk: a run
    // may take long, and retention goes on meanwhile.
    const rawCutoff = (now: number) => now - this.config.retention.rawDays * DAY_MS + RAW_CUTOFF_MARGIN_MS;
    const targets = await this.inChunks(this.chunk.targets, this.setAside.targets, (limit, options) =>
      this.history.recomputeDirtyRollups(
        limit,
        OPEN_MINUTE_INTERVALS * this.config.rollupIntervalMs,
        rawCutoff(Date.now()),
        options,
      ),
    );
    // Host minutes (issue 16): their own marks and table, same chunking and the same rule for late samples.
    const hosts = await this.inChunks(this.chunk.hosts, this.setAside.hosts, (limit, options) => {
      const now = Date.now();
      return this.hosts.recomputeDirtyRollups(limit, now, rawCutoff(now), options);
    });
    const total = targets.total + hosts.total;
    const behind = targets.capped || hosts.capped;
    this.metrics.rollupBuckets.inc(total);
    if (behind)
      this.logger.warn(
        { buckets: total },
        'rollups behind: more minutes marked than one run recomputes; running again after a pause as long as this run',
      );
    return { total, behind };
  }

  /**
   * Chunks of `chunk.size` minutes until one comes back short, at most ROLLUP_MAX_CHUNKS (`capped`: stopped there). A
   * chunk cut by the statement timeout (rolled back, its marks kept) is followed by its oldest minute alone: cut too,
   * that minute is set aside (ROLLUP_SET_ASIDE_MS: left out of the picks till then, logged, counted) and the run goes
   * on past it; rolled up, the chunk is taken again at half the size, down to one minute, and the size stays halved
   * for the next runs (see `chunk`). The picks take the oldest minutes first, so a minute too heavy for a statement is
   * soon the oldest of its chunk: it costs two statement timeouts, not one per halving (ten from a full chunk).
   */
  private async inChunks<K>(
    chunk: { kind: string; size: number; max: number; cleanRuns: number },
    setAside: Map<string, { key: K; until: number }>,
    recompute: (limit: number, options: RecomputeOptions<K>) => Promise<number>,
  ): Promise<{ total: number; capped: boolean }> {
    let total = 0;
    let cut = false;
    let failed = false;
    // After a cut chunk: its oldest minute alone, before the chunk is halved.
    let probe = false;
    try {
      for (let i = 0; i < ROLLUP_MAX_CHUNKS; i++) {
        if (this.stopped) return { total, capped: false };
        let n: number;
        let picked: K[] = [];
        const limit = probe ? 1 : chunk.size;
        try {
          const now = Date.now();
          for (const [id, entry] of setAside) if (entry.until <= now) setAside.delete(id);
          const exclude = [...setAside.values()].map((entry) => entry.key);
          n = await recompute(limit, { exclude, picked: (keys) => (picked = keys) });
        } catch (e) {
          if (!isTooLarge(e)) throw e;
          const [key] = picked;
          probe = false;
          if (limit <= 1) {
            // Rolled back (its mark kept): not even this one minute fits in a statement.
            if (picked.length !== 1 || key === undefined) throw e;
            cut = true;
            const until = Date.now() + ROLLUP_SET_ASIDE_MS;
            setAside.set(JSON.stringify(key), { key, until });
            this.metrics.rollupMinutesSetAside.inc({ kind: chunk.kind });
            this.logger.error(
              { err: (e as Error).message, kind: chunk.kind, minute: key, retryAt: new Date(until).toISOString() },
              'rollup of one minute cut by the statement timeout; set aside (its mark and raw rows kept), taken again later',
            );
            // Counted as a chunk: a run of many such minutes (a statement timeout each) still stops at the cap.
            continue;
          }
          cut = true;
          probe = true;
          i--;
          continue;
        }
        total += n;
        if (probe) {
          // The oldest minute fitted: the chunk was too large as a whole.
          probe = false;
          chunk.size = Math.max(1, Math.floor(chunk.size / 2));
          this.logger.warn({ minutes: chunk.size }, 'rollup chunk cut by the statement timeout; taking smaller chunks');
          i--;
          continue;
        }
        if (n < limit) return { total, capped: false };
      }
      return { total, capped: true };
    } catch (e) {
      // A failed run is no clean one: an outage of ten minutes would otherwise grow the size back.
      failed = true;
      throw e;
    } finally {
      if (cut) chunk.cleanRuns = 0;
      else if (!failed) chunk.cleanRuns++;
      if (chunk.size < chunk.max && chunk.cleanRuns >= ROLLUP_CHUNK_REGROW_RUNS) {
        chunk.size = Math.min(chunk.max, chunk.size * 2);
        chunk.cleanRuns = 0;
      }
    }
  }

  /** Deletes history past its retention; returns rows deleted per table. */
  async applyRetention(now = Date.now()): Promise<Record<string, number>> {
    return (await this.trim(now, () => this.stopped)).deleted;
  }

  /** One retention run; `behind`: a table had more past retention than a run deletes (run again soon). */
  private async trim(now: number, stop: () => boolean): Promise<{ deleted: Record<string, number>; behind: boolean }> {
    const rawCutoff = new Date(now - this.config.retention.rawDays * DAY_MS);
    const rollupCutoff = new Date(now - this.config.retention.rollupDays * DAY_MS);
    const deleted: Record<string, number> = {};
    let behind = false;
    // Stopped by `stop` at some point (a table left unfinished): behind too, unless the aggregator is stopping. A
    // replica that lost the lease for a moment and took it back goes on soon, not an interval later.
    let interrupted = false;
    const halt = () => {
      if (stop()) interrupted = true;
      return interrupted;
    };
    for (const table of Object.keys(RETENTION_COLUMNS) as RetentionTable[]) {
      if (halt()) break;
      const n = await this.history.deleteOlderThan(
        table,
        ROLLUP_TABLES.has(table) ? rollupCutoff : rawCutoff,
        RETENTION_BATCH,
        RETENTION_MAX_BATCHES,
        halt,
      );
      deleted[table] = n;
      if (n > 0) this.metrics.retentionDeleted.inc({ table }, n);
      if (n >= RETENTION_BATCH * RETENTION_MAX_BATCHES) behind = true;
    }
    if (behind)
      this.logger.warn(
        { deleted },
        'retention behind: more history past retention than one run deletes; running again after a pause as long as this run',
      );
    else if (Object.values(deleted).some((n) => n > 0)) this.logger.info({ deleted }, 'retention trimmed history');
    return { deleted, behind: (behind || interrupted) && !this.stopped };
  }

  /**
   * Runs `job` while this replica holds the lease, every `intervalMs`; a run that says it is `behind` (stopped at its
   * cap with work left) is followed by the next after a pause as long as it took (CATCH_UP_MIN_PAUSE_MS at least).
   */
  private every(name: string, intervalMs: number, job: () => Promise<{ behind: boolean }>): void {
    const soon = Math.min(intervalMs, JOB_FIRST_RUN_MS);
    const run = () => {
      if (this.stopped) return;
      const held = this.lease.isHeld;
      const started = performance.now();
      let next = held ? intervalMs : soon;
      const task = (held ? job() : Promise.resolve({ behind: false }))
        .then(({ behind }) => {
          if (behind) next = Math.min(next, Math.max(CATCH_UP_MIN_PAUSE_MS, performance.now() - started));
        })
        .catch((e: unknown) => {
          // Within a minute, not a whole interval (an hour for retention) later — after a pause as long as the run.
          next = Math.max(soon, performance.now() - started);
          this.logger.warn({ err: (e as Error).message, job: name, againInMs: next }, 'history job failed; retrying');
        })
        .finally(() => {
          this.running.delete(task);
          // The lease gone meanwhile: looked at again soon (taken back, the job goes on then).
          schedule(this.lease.isHeld ? next : soon);
        });
      this.running.add(task);
    };
    const schedule = (delayMs: number) => {
      if (this.stopped) return;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        run();
      }, delayMs);
      timer.unref();
      this.timers.add(timer);
    };
    schedule(soon);
  }
}
