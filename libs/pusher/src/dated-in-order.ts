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
