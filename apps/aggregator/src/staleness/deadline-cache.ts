import { Inject, Injectable } from '@nestjs/common';
import type { DeadlineAfter, DeadlineRef } from '@fleetwatch/domain';
import { LiveStateStore, type DueDeadline } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { TargetStatesRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';

/** How often the cache's size is compared with Postgres (at once when the set is gone). */
export const DEADLINE_RECONCILE_INTERVAL_MS = 30_000;
const REFILL_PAGE = 1000;
/** A cache read slower than this is given up: Postgres alone decides that sweep. */
const CACHE_READ_TIMEOUT_MS = 500;

const key = (r: DeadlineRef) => `${r.targetId}\u0000${r.location}`;

/**
 * Redis's deadline sorted set, kept as a cache of `target_location_states.deadline_at`
 * (SPEC §4 lists it in live state). The sweeper expires what Postgres says is
 * due, so a flushed, evicted or partly lost set delays nothing; this class
 * keeps the copy in line: entries looked at by a sweep are settled, and a set
 * smaller than Postgres's count is refilled from it. Every write is safe to
 * race with projections: a stale score only makes the sweeper look at an
 * entry early (and settle it), never expire it early.
 */
@Injectable()
export class DeadlineCache {
  private lastReconcile = Number.NEGATIVE_INFINITY;
  private unreachable = false;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    private readonly store: LiveStateStore,
    private readonly states: TargetStatesRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  /** What the cache holds as due; empty while Redis is away (Postgres alone then decides). */
  async due(now: number, limit: number): Promise<DueDeadline[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${CACHE_READ_TIMEOUT_MS} ms`)),
        CACHE_READ_TIMEOUT_MS,
      );
    });
    try {
      if (!this.store.connected) throw new Error('Redis not connected');
      const due = await Promise.race([this.store.dueDeadlines(now, limit), timeout]);
      this.unreachable = false;
      return due;
    } catch (e) {
      if (!this.unreachable)
        this.logger.warn({ err: (e as Error).message }, 'deadline cache unreadable; sweeping from Postgres alone');
      this.unreachable = true;
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counts due deadlines the cache did not list (it was flushed, evicted or lost them). */
  noteMisses(durable: readonly DeadlineRef[], cached: readonly DueDeadline[], limit: number): number {
    // A full page from the cache may simply stop before them.
    if (this.unreachable || cached.length >= limit) return 0;
    const held = new Set(cached.map(key));
    const missing = durable.filter((d) => !held.has(key(d))).length;
    if (missing > 0) this.metrics.deadlineCacheMisses.inc(missing);
    return missing;
  }

  /**
   * After a sweep's projection: each entry looked at takes its deadline from
   * Postgres — removed when it has none (only if no fresher observation moved it
   * meanwhile), re-scored when it moved.
   */
  async settle(after: readonly DeadlineAfter[], seen: readonly DueDeadline[]): Promise<void> {
    const held = new Map(seen.map((d) => [key(d), d.deadline]));
    const moved: DueDeadline[] = [];
    for (const d of after) {
      const score = held.get(key(d));
      if (d.at === null) {
        if (score !== undefined)
          await this.store.clearDeadlineIfUnchanged({ targetId: d.targetId, location: d.location, deadline: score });
      } else if (d.at !== score) {
        moved.push({ targetId: d.targetId, location: d.location, deadline: d.at });
      }
    }
    await this.store.setDeadlines(moved);
  }

  /**
   * Every DEADLINE_RECONCILE_INTERVAL_MS, or at once when the set is empty:
   * when it holds fewer entries than Postgres, writes every Postgres deadline
   * into it (not while Redis is away). Returns how many were written.
   */
  async reconcile(now: number): Promise<number> {
    if (this.unreachable || !this.store.connected) return 0;
    const cached = await this.store.countDeadlines();
    if (cached > 0 && now - this.lastReconcile < DEADLINE_RECONCILE_INTERVAL_MS) return 0;
    this.lastReconcile = now;
    const durable = await this.states.countDeadlines();
    if (cached >= durable) return 0;
    let written = 0;
    let after: { targetId: string; location: string } | null = null;
    for (;;) {
      const page = await this.states.deadlinesPage(after, REFILL_PAGE);
      await this.store.setDeadlines(page.map((d) => ({ targetId: d.targetId, location: d.location, deadline: d.at })));
      written += page.length;
      if (page.length < REFILL_PAGE) break;
      after = page[page.length - 1];
    }
    this.metrics.deadlineCacheRefills.inc();
    this.logger.warn(
      { cached, durable, written },
      'deadline cache had fewer entries than Postgres (flushed or evicted?): refilled',
    );
    return written;
  }
}
