import { TargetStatus } from '@fleetwatch/contracts';

export interface LocationState {
  status: TargetStatus;
  /** Epoch ms of the observation that set it. */
  observedAt: number;
}

export interface Transition {
  location: string | null;
  from: TargetStatus;
  to: TargetStatus;
  reason: string;
}

/**
 * Whether an observation may replace the stored state: observations older
 * than what we already hold (late redeliveries, spooled results) never move
 * live state backwards in time.
 */
export function isNewer(current: LocationState | undefined, observedAt: number): boolean {
  return current === undefined || observedAt >= current.observedAt;
}

/** The transitions (per location and consensus) caused by one new status at one location. */
export function transitionsFor(
  location: string,
  previous: TargetStatus | undefined,
  next: TargetStatus,
  consensusBefore: TargetStatus,
  consensusAfter: TargetStatus,
  reason: string,
): Transition[] {
  const out: Transition[] = [];
  const from = previous ?? TargetStatus.Unknown;
  if (from !== next) out.push({ location, from, to: next, reason });
  if (consensusBefore !== consensusAfter)
    out.push({ location: null, from: consensusBefore, to: consensusAfter, reason: `location ${location}: ${reason}` });
  return out;
}
