import type { TargetStatus, TargetView } from '@fleetwatch/contracts';

/** The fields of a `status.changed` event the page applies at once (before the refetch that follows). */
export interface StatusEvent {
  targetId: string;
  /** null: the target's own (consensus) status; else one location's. */
  location: string | null;
  to: TargetStatus;
  at: string;
}

/** The target as the event leaves it; other targets unchanged (same object, so React skips them). */
export function patchTarget(t: TargetView, e: StatusEvent): TargetView {
  if (t.id !== e.targetId) return t;
  if (e.location === null) return { ...t, status: e.to, consensus: e.to, since: e.at };
  return { ...t, locations: t.locations.map((l) => (l.location === e.location ? { ...l, status: e.to } : l)) };
}
