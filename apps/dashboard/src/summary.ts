import { TargetStatus, type TargetView } from '@fleetwatch/contracts';

/** Counts by status for the overview header; every status appears, zero or not. */
export function countByStatus(targets: readonly Pick<TargetView, 'status'>[]): Record<TargetStatus, number> {
  const counts = Object.fromEntries(Object.values(TargetStatus).map((s) => [s, 0])) as Record<TargetStatus, number>;
  for (const t of targets) counts[t.status]++;
  return counts;
}
