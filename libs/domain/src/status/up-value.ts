import { TargetStatus } from '@fleetwatch/contracts';

/**
 * The value of `fleetwatch_target_up` for a status (SPEC §11: 1 up, 0 down). UP is 1;
 * DOWN, PARTIAL (down somewhere) and STALE (nothing heard within the deadline) are 0;
 * PAUSED and UNKNOWN say nothing either way, so they get no series: an alert on
 * `fleetwatch_target_up == 0` must not fire for a paused target or one never heard.
 */
export function upValueOf(status: TargetStatus): 0 | 1 | null {
  switch (status) {
    case TargetStatus.Up:
      return 1;
    case TargetStatus.Down:
    case TargetStatus.Partial:
    case TargetStatus.Stale:
      return 0;
    default:
      return null;
  }
}
