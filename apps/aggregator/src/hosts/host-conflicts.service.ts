import { Inject, Injectable } from '@nestjs/common';
import { ReporterConflicts } from '@fleetwatch/domain';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';

/** A host still conflicting is warned about again after this long. */
export const CONFLICT_WARN_EVERY_MS = 15 * 60_000;
/** How often hosts gone quiet are forgotten (their marks cleared). */
const SWEEP_EVERY_MS = 60_000;

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
 * folded after its commit (a map lookup and a few comparisons; nothing written anywhere), and a host marked
 * conflicting gets `conflict: {reporters, since}` in the sample projected to live state — the write the commit does
 * anyway — which the hosts API serves. In memory: after a restart (or a shard taken over from another replica: a
 * host's samples all go to the one replica holding its shard) a conflict is found again within a few intervals. A
 * warning is logged when a host is marked (then every CONFLICT_WARN_EVERY_MS while it stays marked) and when the mark
 * clears; `fleetwatch_aggregator_host_conflicts` counts the marked hosts.
 */
@Injectable()
export class HostConflicts {
  private readonly conflicts = new ReporterConflicts();
  private readonly warnedAt = new Map<string, number>();
  private sweptAt = 0;

  constructor(@Inject(FLEETWATCH_LOGGER) private readonly logger: Logger) {
    // Swept when read too: a replica that commits nothing any more (its shards moved to another, its hosts' collectors
    // stopped) would otherwise count the hosts it marked for ever.
    AggregatorMetrics.get().trackHostConflicts(() => {
      const now = Date.now();
      if (now - this.sweptAt >= SWEEP_EVERY_MS) this.sweep(now);
      return this.conflicts.conflicts;
    });
  }

  /** Hosts marked now. */
  get count(): number {
    return this.conflicts.conflicts;
  }

  /**
   * Folds one commit's applied samples (in delivery order) and retirements, then marks the samples it projects (newest
   * per host) of hosts in conflict. A host retired is forgotten: its collectors were taken out of service (a sample
   * after the retirement starts a new life, whose reporters are counted afresh).
   */
  fold(
    sightings: readonly ReporterSighting[],
    projected: Map<string, { json: string; at: number }>,
    retired: readonly string[] = [],
    now = Date.now(),
  ) {
    for (const s of sightings) {
      const change = this.conflicts.observe(s.hostId, {
        reporter: s.reporter,
        sampledAt: s.sampledAt,
        heardAt: now,
        intervalMs: s.intervalMs,
      });
      if (change === 'raised') this.warn(s.hostId, now);
      else if (change === 'cleared') this.cleared(s.hostId);
    }
    for (const hostId of retired) {
      if (this.conflicts.forget(hostId)) this.cleared(hostId);
      this.warnedAt.delete(hostId);
    }
    if (now - this.sweptAt >= SWEEP_EVERY_MS) this.sweep(now);
    if (this.conflicts.conflicts === 0) return;
    for (const [hostId, m] of projected) {
      const conflict = this.conflicts.conflictOf(hostId);
      if (conflict) projected.set(hostId, { ...m, json: withConflict(m.json, conflict) });
    }
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const hostId of this.conflicts.sweep(now)) this.cleared(hostId);
    for (const [hostId, at] of this.warnedAt)
      if (this.conflicts.conflictOf(hostId)) this.warn(hostId, now);
      else if (now - at >= CONFLICT_WARN_EVERY_MS) this.warnedAt.delete(hostId);
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

/** The stored sample's JSON with the mark (`since` as an ISO time) added. */
export function withConflict(json: string, conflict: { reporters: number; since: number }): string {
  const mark = JSON.stringify({ reporters: conflict.reporters, since: new Date(conflict.since).toISOString() });
  return `${json.slice(0, json.lastIndexOf('}'))},"conflict":${mark}}`;
}
