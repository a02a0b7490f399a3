import { TargetStatus } from '@fleetwatch/contracts';

export interface ConsensusPolicy {
  /**
   * Percentage of *reporting* locations that must be DOWN for the consensus to
   * be DOWN rather than PARTIAL. 100 = only when all are down (SPEC default).
   */
  downQuorumPct: number;
}

export const DEFAULT_CONSENSUS: ConsensusPolicy = { downQuorumPct: 100 };

/**
 * A target's status across its locations (SPEC §1):
 * all up → UP, all down → DOWN, mixed → PARTIAL, and a quorum of down
 * locations may turn PARTIAL into DOWN. STALE locations count as not
 * reporting; PAUSED wins when every location is paused.
 */
export function consensusOf(
  statuses: readonly TargetStatus[],
  policy: ConsensusPolicy = DEFAULT_CONSENSUS,
): TargetStatus {
  if (statuses.length === 0) return TargetStatus.Unknown;
  if (statuses.every((s) => s === TargetStatus.Paused)) return TargetStatus.Paused;
  const active = statuses.filter((s) => s !== TargetStatus.Paused);
  if (active.every((s) => s === TargetStatus.Stale)) return TargetStatus.Stale;
  let up = 0;
  let down = 0;
  let partial = 0;
  for (const s of active) {
    if (s === TargetStatus.Up) up++;
    else if (s === TargetStatus.Down) down++;
    else if (s === TargetStatus.Partial) partial++;
  }
  const reporting = up + down + partial;
  if (reporting === 0) return TargetStatus.Unknown;
  if (down === reporting) return TargetStatus.Down;
  if (up === reporting) return TargetStatus.Up;
  // In integers: (down / reporting) * 100 rounds below an exact quorum (29 of 100 → 28.999999999999996 < 29).
  if (down > 0 && down * 100 >= policy.downQuorumPct * reporting) return TargetStatus.Down;
  return TargetStatus.Partial;
}
