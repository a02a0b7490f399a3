import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AdvisoryLease,
  HistoryRepository,
  HostHistoryRepository,
  RETENTION_COLUMNS,
  ROLLUP_TABLES,
  type RetentionTable,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { AggregatorConfig } from '../config';
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

/**
 * History upkeep, run by the replica holding the sweeper lease (taken by the
 * sweeper): 1-minute rollups recomputed from raw rows for the buckets marked
 * dirty by batches (every AGGREGATOR_ROLLUP_INTERVAL_MS; the minute in progress
 * once its mark is OPEN_MINUTE_INTERVALS of them old), and retention — raw
 * rows past HISTORY_RAW_RETENTION_DAYS, rollups past HISTORY_ROLLUP_RETENTION_DAYS
 * — deleted in small batches (every AGGREGATOR_RETENTION_INTERVAL_MS, the first time a minute after boot or after
 * the lease is taken: JOB_FIRST_RUN_MS). Each job has
 * its own timer so a long retention never delays the staleness sweep.
 */
@Injectable()
export class HistoryMaintenance implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    private readonly history: HistoryRepository,
    private readonly hosts: HostHistoryRepository,
    @Inject(SWEEPER_LEASE) private readonly lease: AdvisoryLease,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.every('rollups', this.config.rollupIntervalMs, () => this.rollUp());
    this.every('retention', this.config.retentionIntervalMs, () => this.applyRetention());
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.running]);
  }

  /** Recomputes every dirty bucket of targets (chunks of 1000) and hosts (chunks of 200). Returns the buckets recomputed. */
  async rollUp(): Promise<number> {
    let total = 0;
    // A minute older than the raw window is never re-rolled (its raw rows are pruned: a late result would shrink it).
    const now = Date.now();
    const rawCutoff = now - this.config.retention.rawDays * DAY_MS;
    for (let i = 0; i < 100 && !this.stopped; i++) {
      const n = await this.history.recomputeDirtyRollups(
        ROLLUP_CHUNK,
        OPEN_MINUTE_INTERVALS * this.config.rollupIntervalMs,
        rawCutoff,
      );
      total += n;
      if (n < ROLLUP_CHUNK) break;
    }
    // Host minutes (issue 16): their own marks and table, same chunking and the same rule for late samples.
    for (let i = 0; i < 100 && !this.stopped; i++) {
      const n = await this.hosts.recomputeDirtyRollups(HOST_ROLLUP_CHUNK, now, rawCutoff);
      total += n;
      if (n < HOST_ROLLUP_CHUNK) break;
    }
    this.metrics.rollupBuckets.inc(total);
    return total;
  }

  /** Deletes history past its retention; returns rows deleted per table. */
  async applyRetention(now = Date.now()): Promise<Record<string, number>> {
    const rawCutoff = new Date(now - this.config.retention.rawDays * DAY_MS);
    const rollupCutoff = new Date(now - this.config.retention.rollupDays * DAY_MS);
    const deleted: Record<string, number> = {};
    for (const table of Object.keys(RETENTION_COLUMNS) as RetentionTable[]) {
      if (this.stopped) break;
      const n = await this.history.deleteOlderThan(table, ROLLUP_TABLES.has(table) ? rollupCutoff : rawCutoff);
      deleted[table] = n;
      if (n > 0) this.metrics.retentionDeleted.inc({ table }, n);
    }
    if (Object.values(deleted).some((n) => n > 0)) this.logger.info({ deleted }, 'retention trimmed history');
    return deleted;
  }

  private every(name: string, intervalMs: number, job: () => Promise<unknown>): void {
    const soon = Math.min(intervalMs, JOB_FIRST_RUN_MS);
    const run = () => {
      if (this.stopped) return;
      const held = this.lease.isHeld;
      const task = (held ? job() : Promise.resolve())
        .catch((e: unknown) =>
          this.logger.warn({ err: (e as Error).message, job: name }, 'history job failed; retrying next interval'),
        )
        .finally(() => {
          this.running.delete(task);
          schedule(held ? intervalMs : soon);
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
