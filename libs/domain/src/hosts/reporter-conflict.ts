/**
 * Two collectors reporting one host id (VMs cloned from one image, one COLLECTOR_HOST_ID configured twice, a DaemonSet
 * misconfigured): each host.metrics sample names its reporter (the collector installation and the kernel boot id), and
 * this decides, per host, whether two reporters are interleaving their samples. Pure: no I/O, no clock (times are
 * passed in); the state is a small object per host, updated in place, so a sample costs a map lookup and a walk over
 * the host's few reporters.
 *
 * A reporter's samples span [first, last] in sample time (the collector's stamps). Two reporters conflict when their
 * spans strictly overlap — each sent a sample after the other's first one, i.e. A B A B in sample time, not just
 * A … B. A restart under a new identity (a reboot changes the boot id) is one switch: the collector's stamps never go
 * back across its restarts (stamp file), so the old identity's span ends before the new one's begins, in whatever
 * order its samples arrive (spool drain, redelivery). A reporter counts until it has sent no new sample for
 * `windowIntervals` sampling intervals (aggregator time) while the others sent as many each; an overlap first noticed is confirmed only when two of the
 * overlapping reporters each send new samples after it spanning `windowIntervals` intervals more (so a burst of late
 * samples cannot raise it alone, nor a collector replaced with an overlap of a few samples: a rolling update with
 * surge). The mark
 * clears after `clearIntervals` intervals without an overlap.
 */

export interface ReporterConflictPolicy {
  /** A reporter takes part while its latest new sample arrived within this many intervals. */
  windowIntervals: number;
  /** A conflict clears after this many intervals without two overlapping reporters. */
  clearIntervals: number;
  /** Reporters held per host (the one heard longest ago goes first). */
  maxReporters: number;
}

export const DEFAULT_REPORTER_CONFLICT_POLICY: ReporterConflictPolicy = {
  windowIntervals: 3,
  clearIntervals: 10,
  maxReporters: 8,
};

/** One sample as the decision sees it. */
export interface ReporterSample {
  /** The reporter's identity (installation and boot id). */
  reporter: string;
  /** The sample's time (epoch ms, the collector's stamp). */
  sampledAt: number;
  /** When it was folded (epoch ms, the aggregator's clock). */
  heardAt: number;
  /** The host's sampling interval (ms). */
  intervalMs: number;
}

/** A host two or more reporters claim. */
export interface HostConflict {
  /** How many reporters are interleaving now. */
  reporters: number;
  /** When the overlap was first noticed (epoch ms, aggregator clock). */
  since: number;
}

interface Reporter {
  first: number;
  last: number;
  /** Aggregator time of its latest new sample (one extending `last`). */
  heardAt: number;
  /** The host's sample counter at its latest new sample. */
  seq: number;
}

/** One host's reporters and mark. */
export interface HostReporters {
  readonly reporters: Map<string, Reporter>;
  /** Counts new samples (ones that extend a reporter's span). */
  seq: number;
  /** An overlap noticed, not confirmed yet: the counter and time then, and each reporter's `last` then. */
  pending: { seq: number; at: number; lasts: Map<Reporter, number> } | null;
  conflict: { reporters: number; since: number; evidenceAt: number } | null;
  intervalMs: number;
  lastHeardAt: number;
}

export type ReporterConflictChange = 'raised' | 'cleared' | undefined;

export function newHostReporters(): HostReporters {
  return { reporters: new Map(), seq: 0, pending: null, conflict: null, intervalMs: 0, lastHeardAt: 0 };
}

/**
 * Folds one sample into its host's state: 'raised' when the host turned conflicting with it, 'cleared' when the mark
 * went, else undefined. The same sample twice (at-least-once delivery) changes nothing the second time.
 */
export function observeReporter(
  s: HostReporters,
  x: ReporterSample,
  policy: ReporterConflictPolicy = DEFAULT_REPORTER_CONFLICT_POLICY,
): ReporterConflictChange {
  const intervalMs = Math.max(1, x.intervalMs);
  const windowMs = policy.windowIntervals * intervalMs;
  s.intervalMs = intervalMs;
  s.lastHeardAt = Math.max(s.lastHeardAt, x.heardAt);
  // Gone quiet: no new sample for `windowIntervals` intervals, while the others sent that many each — both, so that a
  // backlog drained after an outage of the aggregator (every sample heard at once) does not make one look gone.
  const quietSeq = policy.windowIntervals * s.reporters.size;
  for (const [id, r] of s.reporters)
    if (x.heardAt - r.heardAt > windowMs && s.seq - r.seq > quietSeq) s.reporters.delete(id);

  const r = s.reporters.get(x.reporter);
  if (r === undefined) {
    if (s.reporters.size >= policy.maxReporters) dropLongestSilent(s.reporters);
    s.reporters.set(x.reporter, { first: x.sampledAt, last: x.sampledAt, heardAt: x.heardAt, seq: ++s.seq });
  } else if (x.sampledAt > r.last) {
    r.last = x.sampledAt;
    r.heardAt = Math.max(r.heardAt, x.heardAt);
    r.seq = ++s.seq;
  } else if (x.sampledAt < r.first) r.first = x.sampledAt;

  const overlapping = overlappingReporters(s.reporters);
  if (overlapping.length >= 2) {
    if (s.conflict) {
      s.conflict.reporters = overlapping.length;
      s.conflict.evidenceAt = Math.max(s.conflict.evidenceAt, x.heardAt);
      return undefined;
    }
    if (s.pending === null) {
      s.pending = { seq: s.seq, at: x.heardAt, lasts: new Map(overlapping.map((o) => [o, o.last])) };
      return undefined;
    }
    // Confirmed once two of them went on for `windowIntervals` intervals more (their own stamps) after it was noticed:
    // a collector replaced with an overlap (a rolling update with surge: the new pod sends before the old one stops)
    // overlaps for a few samples and stops.
    const pending = s.pending;
    const sustained = overlapping.filter(
      (o) => o.seq > pending.seq && o.last - (pending.lasts.get(o) ?? o.first) >= windowMs,
    );
    if (sustained.length < 2) return undefined;
    s.conflict = { reporters: overlapping.length, since: pending.at, evidenceAt: x.heardAt };
    return 'raised';
  }
  if (s.conflict === null) {
    s.pending = null;
    return undefined;
  }
  if (x.heardAt - s.conflict.evidenceAt <= policy.clearIntervals * intervalMs) return undefined;
  s.conflict = null;
  s.pending = null;
  return 'cleared';
}

/** The host's mark (null: one reporter, or none known). */
export function hostConflictOf(s: HostReporters | undefined): HostConflict | null {
  return s?.conflict ? { reporters: s.conflict.reporters, since: s.conflict.since } : null;
}

/** Reporters whose spans strictly overlap another's. */
function overlappingReporters(reporters: ReadonlyMap<string, Reporter>): Reporter[] {
  if (reporters.size < 2) return [];
  const all = [...reporters.values()];
  return all.filter((a) => all.some((b) => a !== b && Math.max(a.first, b.first) < Math.min(a.last, b.last)));
}

function dropLongestSilent(reporters: Map<string, Reporter>): void {
  let oldest: string | undefined;
  let at = Infinity;
  for (const [id, r] of reporters)
    if (r.heardAt < at) {
      at = r.heardAt;
      oldest = id;
    }
  if (oldest !== undefined) reporters.delete(oldest);
}

/**
 * The marks of every host (one object per host that names its reporter). In memory: rebuilt by the samples themselves
 * within a few intervals after a restart, never written anywhere.
 */
export class ReporterConflicts {
  private readonly hosts = new Map<string, HostReporters>();
  private conflicted = 0;

  constructor(private readonly policy: ReporterConflictPolicy = DEFAULT_REPORTER_CONFLICT_POLICY) {}

  observe(hostId: string, sample: ReporterSample): ReporterConflictChange {
    let s = this.hosts.get(hostId);
    if (s === undefined) this.hosts.set(hostId, (s = newHostReporters()));
    const change = observeReporter(s, sample, this.policy);
    if (change === 'raised') this.conflicted++;
    else if (change === 'cleared') this.conflicted--;
    return change;
  }

  conflictOf(hostId: string): HostConflict | null {
    return hostConflictOf(this.hosts.get(hostId));
  }

  /** Hosts marked now. */
  get conflicts(): number {
    return this.conflicted;
  }

  get size(): number {
    return this.hosts.size;
  }

  /**
   * Forgets hosts with no new sample for `clearIntervals` intervals (gone, retired, sharded elsewhere): their marks
   * clear. Returns the ids of hosts whose mark cleared.
   */
  sweep(now: number): string[] {
    const cleared: string[] = [];
    for (const [hostId, s] of this.hosts)
      if (now - s.lastHeardAt > this.policy.clearIntervals * s.intervalMs) {
        if (s.conflict) {
          this.conflicted--;
          cleared.push(hostId);
        }
        this.hosts.delete(hostId);
      }
    return cleared;
  }

  /** Forgets one host (retired). True when it was marked. */
  forget(hostId: string): boolean {
    const s = this.hosts.get(hostId);
    this.hosts.delete(hostId);
    if (!s?.conflict) return false;
    this.conflicted--;
    return true;
  }
}
