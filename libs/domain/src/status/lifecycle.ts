import { LifecycleState, TargetStatus } from '@fleetwatch/contracts';

/**
 * How a pushed lifecycle state maps onto a status class (SPEC §1).
 * Transitional states (starting, restarting, pending) count as UP only
 * while they are transitional; the aggregator's staleness deadline catches
 * an instance stuck in them.
 */
const LIFECYCLE_STATUS: Record<LifecycleState, TargetStatus> = {
  running: TargetStatus.Up,
  healthy: TargetStatus.Up,
  up: TargetStatus.Up,
  ok: TargetStatus.Up,
  succeeded: TargetStatus.Up,
  completed: TargetStatus.Up,
  starting: TargetStatus.Up,
  pending: TargetStatus.Unknown,
  created: TargetStatus.Unknown,
  restarting: TargetStatus.Down,
  // Deliberately going away (a pod terminating, a container being removed): neither up nor an outage.
  stopping: TargetStatus.Unknown,
  degraded: TargetStatus.Partial,
  unhealthy: TargetStatus.Down,
  stopped: TargetStatus.Down,
  exited: TargetStatus.Down,
  failed: TargetStatus.Down,
  error: TargetStatus.Down,
  dead: TargetStatus.Down,
  down: TargetStatus.Down,
  crashloopbackoff: TargetStatus.Down,
  paused: TargetStatus.Paused,
  unknown: TargetStatus.Unknown,
  // Its history row keeps UNKNOWN; the fold retires the target (applyObservation).
  removed: TargetStatus.Unknown,
};

export function statusOfLifecycle(state: LifecycleState): TargetStatus {
  return LIFECYCLE_STATUS[state];
}
