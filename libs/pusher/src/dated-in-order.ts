import type { StatusUpdateInput } from '@fleetwatch/contracts';

/**
 * The update dated strictly after `lastAt` (epoch ms), the last update a watcher sent for the same thing (a pod, a
 * container), where it is not already. A watcher sends one thing's updates in the order its source gave the states,
 * but dates them by different clocks: an event by its receipt here, or by the source's own time (a container
 * engine's, a kubelet's: whole seconds, possibly another host's clock); a state found by a relist or resync by when it
 * began there. A newer state dated before the one sent before it is taken by the aggregator, which keeps the newest
 * observation, for an old one and ignored: the thing shows its old state until its next change. Two updates dated
 * alike go by arrival order there, so a redelivered older one could also take a newer one's place.
 */
export function datedAfter(update: StatusUpdateInput, lastAt: number | undefined): StatusUpdateInput {
  if (lastAt === undefined || typeof update.occurredAt !== 'string') return update;
  return Date.parse(update.occurredAt) > lastAt
    ? update
    : { ...update, occurredAt: new Date(lastAt + 1).toISOString() };
}

/** When an update is dated (epoch ms); `fallback` when it carries no date. */
export function datedAtMs(update: StatusUpdateInput, fallback: number | undefined): number | undefined {
  return typeof update.occurredAt === 'string' ? Date.parse(update.occurredAt) : fallback;
}
