import { TargetKind, TargetStatus, type TargetView } from '@fleetwatch/contracts';

/** Counts by status of the given targets; every status appears, zero or not. */
export function countByStatus(targets: readonly Pick<TargetView, 'status'>[]): Record<TargetStatus, number> {
  const counts = Object.fromEntries(Object.values(TargetStatus).map((s) => [s, 0])) as Record<TargetStatus, number>;
  for (const t of targets) counts[t.status]++;
  return counts;
}

/** Counts by kind; every kind appears. */
export function countByKind(targets: readonly Pick<TargetView, 'kind'>[]): Record<TargetKind, number> {
  const counts = Object.fromEntries(Object.values(TargetKind).map((k) => [k, 0])) as Record<TargetKind, number>;
  for (const t of targets) counts[t.kind]++;
  return counts;
}
