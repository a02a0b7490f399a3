import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ReporterConflicts, type HostConflict } from '@fleetwatch/domain';
import { LiveStateStore, type HostConflictWrite } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { errorText } from '../status/outage-retry';

/** A host still conflicting is warned about again after this long. */
export const CONFLICT_WARN_EVERY_MS = 15 * 60_000;
/** How often hosts gone quiet are forgotten (their marks cleared) and the marks held are written again. */
export const CONFLICT_SWEEP_EVERY_MS = 60_000;
/** A mark in live state expires this long after its owner last wrote it (an aggregator gone for good). */
export const CONFLICT_MARK_TTL_MS = 5 * 60_000;

/** One applied sample that names its reporter. */
export interface ReporterSighting {
  hostId: string;
  reporter: string;
  intervalMs: number;
  /** The sample's time (the collector's stamp, as the aggregator takes it). */
  sampledAt: number;
}

/**
 * Hosts two collectors report at once (libs/domain reporter-conflict): each applied sample that names its reporter is
 * folded after its commit (a map lookup and a few comparisons), in memory: after a restart (or a shard taken over from
 * another replica: a host's samples all go to the one replica holding its shard) a conflict is found again within a
 * few intervals.
 *
 * The marks go to live state as a key family of their own (`host:{hostId}:conflict`, libs/live-state), which the
 * hosts API serves: written when a mark is raised, changes (reporters) or clears, removed when the host is retired —
 * never with the samples, so a rebuild of live state from Postgres, a STALE host or a sample keep no mark that is no
 * longer true. Each mark names this instance as its owner: a replica clears only its own (a host whose shard moved to
 * another replica, which raised it again there, keeps that one's), and writes its own again every
 * CONFLICT_SWEEP_EVERY_MS unless another owner's is held (back after a flush; at once after a rebuild this replica
 * ran). A mark expires CONFLICT_MARK_TTL_MS after its last write: the one of an instance gone for good. The writes
 * never fail a commit: they are queued, written after it, one pipeline at a time, and kept for the next try when
 * Redis refuses them.
 *
 * A warning is logged when a host is marked (then every CONFLICT_WARN_EVERY_MS while it stays marked) and when the
 * mark clears; `fleetwatch_aggregator_host_conflicts` counts the hosts this replica marked.
 */
@Injectable()
export class HostConflicts implements OnApplicationBootstrap, OnModuleDestroy {
  /** This instance, as the owner of the marks it writes. */
  readonly owner = randomUUID();
  private readonly conflicts = new ReporterConflicts();
  private readonly warnedAt = new Map<string, number>();
  /** The marks this instance holds in live state (written, or queued to be). */
  private readonly held = new Map<string, HostConflict>();
  /** Changes to write, the latest per host. */
  private readonly queued = new Map<string, HostConflictWrite>();
  private flushing: Promise<void> | null = null;
  private failing = false;
  private sweptAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly live: LiveStateStore,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {
    // Swept when read too: a replica that commits nothing any more (its shards moved to another, its hosts' collectors
    // stopped) would otherwise count the hosts it marked for ever.
    AggregatorMetrics.get().trackHostConflicts(() => {
      const now = Date.now();
      if (now - this.sweptAt >= CONFLICT_SWEEP_EVERY_MS) this.sweep(now);
      return this.conflicts.conflicts;
    });
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.tick(), CONFLICT_SWEEP_EVERY_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Hosts marked now. */
  get count(): number {
    return this.conflicts.conflicts;
  }

  /**
   * Folds one commit's applied samples (in delivery order) and retirements, then queues the changes of marks to live
   * state (written after, never failing the commit). A host retired is forgotten, its mark removed whoever wrote it:
   * its collectors were taken out of service (a sample after the retirement starts a new life, whose reporters are
   * counted afresh).
   */
  fold(sightings: readonly ReporterSighting[], retired: readonly string[] = [], now = Date.now()): void {
    const touched = new Set<string>();
    for (const s of sightings) {
      touched.add(s.hostId);
      const change = this.conflicts.observe(s.hostId, {
        reporter: s.reporter,
        sampledAt: s.sampledAt,
        heardAt: now,
        intervalMs: s.intervalMs,
      });
      if (change === 'raised') this.warn(s.hostId, now);
      else if (change === 'cleared') this.cleared(s.hostId);
    }
    for (const hostId of touched) this.reconcile(hostId);
    for (const hostId of retired) {
      if (this.conflicts.forget(hostId)) this.cleared(hostId);
      this.warnedAt.delete(hostId);
      this.held.delete(hostId);
      this.queued.set(hostId, { hostId, op: 'drop' });
    }
    if (now - this.sweptAt >= CONFLICT_SWEEP_EVERY_MS) this.sweep(now);
    if (this.queued.size > 0) void this.flush();
  }

  /** Writes every mark held again (unless another owner's is there): live state was just rebuilt from Postgres. */
  republish(): Promise<void> {
    this.queueRefresh();
    return this.flush();
  }

  /**
   * Writes the queued changes (one pipeline), one flush at a time. Never rejects: changes Redis refused stay queued
   * for the next try (the next commit, or the next sweep).
   */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
      // Queued between the drain's last look and here (a commit resolved by the same reply): not left for the next
      // commit or sweep. Not after a refusal: those wait for the next try.
      if (this.queued.size > 0 && !this.failing) void this.flush();
    });
    return this.flushing;
  }

  /** The periodic sweep: hosts gone quiet are forgotten, the marks held written again. */
  tick(now = Date.now()): Promise<void> {
    this.sweep(now);
    this.queueRefresh();
    return this.flush();
  }

  private async drain(): Promise<void> {
    while (this.queued.size > 0) {
      const writes = [...this.queued.values()];
      this.queued.clear();
      try {
        await this.live.writeHostConflicts(writes, this.owner, CONFLICT_MARK_TTL_MS);
        if (this.failing) this.logger.info('host id conflict marks written to live state again');
        this.failing = false;
      } catch (e) {
        // Kept unless a later change of the host was queued meanwhile — a renewal queued since (the sweep) keeps the
        // raise it follows: a raise takes over another owner's mark (the shard moved here), a renewal does not.
        for (const w of writes) {
          const later = this.queued.get(w.hostId);
          if (later === undefined) this.queued.set(w.hostId, w);
          else if (w.op === 'raise' && later.op === 'refresh') this.queued.set(w.hostId, { ...later, op: 'raise' });
        }
        if (!this.failing)
          this.logger.warn(
            { err: errorText(e), changes: writes.length },
            'host id conflict marks not written to live state; retrying at the next commit or sweep',
          );
        this.failing = true;
        return;
      }
    }
  }

  /** Queues the change of a host's mark in live state, if its mark in memory differs from the one held. */
  private reconcile(hostId: string): void {
    const mark = this.conflicts.conflictOf(hostId);
    const held = this.held.get(hostId);
    if (mark) {
      if (held?.reporters === mark.reporters && held.since === mark.since) return;
      this.held.set(hostId, mark);
      this.queued.set(hostId, { hostId, op: 'raise', mark });
    } else if (held) {
      this.held.delete(hostId);
      this.queued.set(hostId, { hostId, op: 'clear' });
    }
  }

  private queueRefresh(): void {
    for (const [hostId, mark] of this.held)
      if (!this.queued.has(hostId)) this.queued.set(hostId, { hostId, op: 'refresh', mark });
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const hostId of this.conflicts.sweep(now)) {
      this.cleared(hostId);
      this.reconcile(hostId);
    }
    for (const [hostId, at] of this.warnedAt)
      if (this.conflicts.conflictOf(hostId)) this.warn(hostId, now);
      else if (now - at >= CONFLICT_WARN_EVERY_MS) this.warnedAt.delete(hostId);
    if (this.queued.size > 0) void this.flush();
  }

  private warn(hostId: string, now: number): void {
    const last = this.warnedAt.get(hostId);
    if (last !== undefined && now - last < CONFLICT_WARN_EVERY_MS) return;
    this.warnedAt.set(hostId, now);
    const conflict = this.conflicts.conflictOf(hostId);
    this.logger.warn(
      { hostId, reporters: conflict?.reporters, since: conflict ? new Date(conflict.since).toISOString() : undefined },
      'host id reported by more than one collector at once (cloned machine, or one COLLECTOR_HOST_ID configured twice): its samples interleave — see docs/runbooks (host id conflict)',
    );
  }

  /** Said once per mark (the warning's rate limit stays: a host flapping is not warned about at each return). */
  private cleared(hostId: string): void {
    this.logger.info({ hostId }, 'host id conflict cleared: one collector reports it again');
  }
}
