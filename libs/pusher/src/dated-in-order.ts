import type { StatusUpdateInput } from '@fleetwatch/contracts';

/**
 * How far past this host's clock an update may be moved (datedAfter): the ingest refuses a date more than its
 * allowance ahead (INGEST_MAX_FUTURE_SKEW_SECONDS, 300 s by default), and a refused update is dropped. A minute is
 * left for this host's clock being ahead of the ingest's.
 */
export const MAX_DATED_AHEAD_MS = 240_000;

/**
 * The update dated strictly after `lastAt` (epoch ms), the last update a watcher sent for the same thing (a pod, a
 * container), where it is not already. A watcher sends one thing's updates in the order its source gave the states,
 * but dates them by different clocks: an event by its receipt here, or by the source's own time (a container
 * engine's, a kubelet's: whole seconds, possibly another host's clock); a state found by a relist or resync by when it
 * began there. A newer state dated before the one sent before it is taken by the aggregator, which keeps the newest
 * observation, for an old one and ignored: the thing shows its old state until its next change. Two updates dated
 * alike go by arrival order there, so a redelivered older one could also take a newer one's place.
 *
 * Never moved more than MAX_DATED_AHEAD_MS past `now` (this host's clock): a `lastAt` further ahead is from before
 * this clock was stepped back (or a state file written then), and moving past it would date every later update of the
 * thing beyond what the ingest accepts — each refused and dropped until the clock caught up. Such an update keeps its
 * own date (which the ingest takes).
 */
export function datedAfter(
  update: StatusUpdateInput,
  lastAt: number | undefined,
  now: number = Date.now(),
): StatusUpdateInput {
  if (lastAt === undefined || typeof update.occurredAt !== 'string') return update;
  if (Date.parse(update.occurredAt) > lastAt || lastAt + 1 > now + MAX_DATED_AHEAD_MS) return update;
  return { ...update, occurredAt: new Date(lastAt + 1).toISOString() };
}

/** When an update is dated (epoch ms); `fallback` when it carries no date. */
export function datedAtMs(update: StatusUpdateInput, fallback: number | undefined): number | undefined {
  return typeof update.occurredAt === 'string' ? Date.parse(update.occurredAt) : fallback;
}

/** Floors kept by an InstanceFloors at most (a few megabytes of state file): see there. */
export const MAX_INSTANCE_FLOORS = 50_000;

/** The later of two floors (epoch ms); undefined when neither is known. */
export function laterFloor(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/**
 * When the last update sent for each pushed instance (its `instanceId`: a container's name, a pod's namespace/name) was
 * dated, whatever container or pod it was about. A watcher's own floor is kept per container id or pod uid, and a
 * container recreated under its name (compose up: a new id) or a StatefulSet's pod recreated (a new uid) starts with
 * none: its first update, dated by its engine's or kubelet's clock behind this host's, or by when its state began, came
 * before the old one's last update (dated here) for the same instance, and the aggregator — which keeps the newest
 * observation — ignored it: the instance showed the old one's exited or failed while the new one ran. Taken with the
 * container's or pod's own floor (laterFloor) for datedAfter, so MAX_DATED_AHEAD_MS holds as before.
 *
 * Bounded by age: an update is never dated more than `horizonMs` (the watcher's maxAgeMs) before this clock, so a floor
 * older than that can date nothing after it and is forgotten. And by count (`maxFloors`): the horizon is a day by
 * default (up to six), and names that live a few minutes each (a Kubernetes Job's or CronJob's pods, a CI runner's
 * containers) filled the map — and the state file, written whole — with a floor per name ever seen in it. Past
 * `maxFloors` the floor raised longest ago goes first (a live instance's is raised at each of its refreshes).
 */
/** How often floors raised by refreshes alone are written to a watcher's state file at most (InstanceFloors.persistDue). */
export const FLOORS_PERSIST_EVERY_MS = 30_000;

export class InstanceFloors {
  /** In the order each floor was last raised (re-inserted when raised): the first is the one raised longest ago. */
  private readonly floors = new Map<string, number>();
  private sinceSweep = 0;
  private persistedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly horizonMs: number,
    private readonly maxFloors: number = MAX_INSTANCE_FLOORS,
  ) {}

  /** The date of the instance's last update sent (epoch ms), if kept. */
  get(instanceId: string): number | undefined {
    return this.floors.get(instanceId);
  }

  /** An update of the instance was sent dated `at`: the later of it and the one kept. True when that changed it. */
  sent(instanceId: string, at: number | undefined, now: number = Date.now()): boolean {
    if (at === undefined || !Number.isFinite(at)) return false;
    const before = this.floors.get(instanceId);
    if (before !== undefined && before >= at) return false;
    this.floors.delete(instanceId);
    this.floors.set(instanceId, at);
    if (++this.sinceSweep >= 1024) this.prune(now);
    while (this.floors.size > this.maxFloors) this.floors.delete(this.floors.keys().next().value as string);
    return true;
  }

  /**
   * Whether floors raised by refreshes alone are to be written to the state file now: at most once a
   * FLOORS_PERSIST_EVERY_MS. A refresh is dated now, so each one raises its instance's floor: written at every refresh
   * (every 5 s) a fleet where nothing changes rewrote and synced the whole file all day (flash wear on edge hosts). A
   * crash loses at most that much of the refreshes' floors; a real change, the stop, and the next due write keep them.
   */
  persistDue(now: number = Date.now()): boolean {
    if (now - this.persistedAt < FLOORS_PERSIST_EVERY_MS && now >= this.persistedAt) return false;
    this.persistedAt = now;
    return true;
  }

  /** Forgets the floors that can date nothing any more (older than the horizon). */
  prune(now: number = Date.now()): void {
    this.sinceSweep = 0;
    const oldest = now - this.horizonMs;
    for (const [id, at] of this.floors) if (at < oldest) this.floors.delete(id);
  }

  /** What a state file keeps: the floors still of use, by instance id. */
  toRecord(now: number = Date.now()): Record<string, number> {
    this.prune(now);
    return Object.fromEntries(this.floors);
  }

  /** Takes the floors a state file kept (the later of each and one already known). */
  load(record: Record<string, number> | undefined, now: number = Date.now()): void {
    for (const [id, at] of Object.entries(record ?? {})) this.sent(id, at, now);
    this.prune(now);
  }

  get size(): number {
    return this.floors.size;
  }
}
