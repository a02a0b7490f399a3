import type { StatusChangedPayload, TargetStatus } from '@fleetwatch/contracts';
import type { AlertTarget } from '@fleetwatch/alerting';
import { isTombstone, reportIntervalOf, type TargetSnapshot } from '@fleetwatch/domain';

/** What the evaluator knows of one target: who it is (selection, labels) and its consensus status. */
export interface ViewedTarget {
  target: AlertTarget;
  status: TargetStatus;
  /** Last status event sequence applied: an older event (a backlog, a redelivery) changes nothing. */
  seq: number;
  /**
   * How often the target reports (ms; its STALE deadlines' interval, domain reportIntervalOf), null when not known: an
   * absent series' grace scales with it. As of the last snapshot read (a resync picks up an interval changed since).
   */
  reportIntervalMs: number | null;
}

/** The target as the engine selects it: the site is this site's (targets carry none of their own). */
export function alertTargetOf(t: TargetSnapshot, site: string): AlertTarget {
  return {
    id: t.id,
    kind: t.kind,
    instanceKind: t.instanceKind ?? null,
    name: t.name,
    site,
    tags: t.tags,
    locations: Object.keys(t.locations),
  };
}

/**
 * The evaluator's picture of the fleet: loaded whole from target_states when the lease is taken (and
 * periodically, to pick up new tags and anything missed), then kept current by status.changed events.
 * Only consensus events (location null) change a status; each is applied only if its sequence is newer.
 */
export class TargetView {
  private readonly targets = new Map<string, ViewedTarget>();

  constructor(private readonly site: string) {}

  get size(): number {
    return this.targets.size;
  }

  get(id: string): ViewedTarget | undefined {
    return this.targets.get(id);
  }

  values(): IterableIterator<ViewedTarget> {
    return this.targets.values();
  }

  clear(): void {
    this.targets.clear();
  }

  /**
   * Stores snapshots read from Postgres (a full load, or targets an event named that the view lacked).
   * A snapshot older than what the view holds (a concurrent event already moved it on) is ignored.
   * Tombstones are removed. Returns the ids whose status changed.
   */
  putSnapshots(snapshots: readonly TargetSnapshot[]): string[] {
    const changed: string[] = [];
    for (const s of snapshots) {
      const prev = this.targets.get(s.id);
      if (isTombstone(s)) {
        if (prev) {
          this.targets.delete(s.id);
          changed.push(s.id);
        }
        continue;
      }
      if (prev && prev.seq > s.seq) continue;
      this.targets.set(s.id, {
        target: alertTargetOf(s, this.site),
        status: s.status,
        seq: s.seq,
        reportIntervalMs: reportIntervalOf(s),
      });
      if (!prev || prev.status !== s.status) changed.push(s.id);
    }
    return changed;
  }

  ids(): IterableIterator<string> {
    return this.targets.keys();
  }

  /**
   * Replaces the whole view with a full load; returns the ids whose status changed or that left. Only
   * targets of `removable` (default: all) are removed for being absent from the load.
   */
  replaceAll(snapshots: readonly TargetSnapshot[], removable?: ReadonlySet<string>): string[] {
    const fresh = new Set(snapshots.map((s) => s.id));
    const gone: string[] = [];
    for (const id of this.targets.keys())
      if (!fresh.has(id) && (!removable || removable.has(id))) {
        this.targets.delete(id);
        gone.push(id);
      }
    return [...gone, ...this.putSnapshots(snapshots)];
  }

  /**
   * Applies status.changed events. Returns the ids whose status changed and those the view does not know
   * (the caller reads them from Postgres: a new target's identity is not in the event).
   */
  applyEvents(events: readonly StatusChangedPayload[]): { changed: string[]; unknown: string[] } {
    const changed = new Set<string>();
    const unknown = new Set<string>();
    for (const e of events) {
      const t = this.targets.get(e.targetId);
      if (!t) {
        unknown.add(e.targetId);
        continue;
      }
      if (e.sequence <= t.seq) continue;
      t.seq = e.sequence;
      if (e.location !== null || t.status === e.to) continue;
      t.status = e.to;
      changed.add(e.targetId);
    }
    return { changed: [...changed], unknown: [...unknown] };
  }
}
