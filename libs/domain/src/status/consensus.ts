import { TargetStatus } from '@fleetwatch/contracts';

export interface ConsensusPolicy {
  /**
   * Percentage of *reporting* locations that must be DOWN for the consensus to
   * be DOWN rather than PARTIAL. 100 = only when all are down (SPEC default).
   */
  downQuorumPct: number;
}

export const DEFAULT_CONSENSUS: ConsensusPolicy = { downQuorumPct: 100 };

export interface ConsensusOptions {
  /**
   * Count UNKNOWN locations as yet to vote: not "all down" beside them, and part of the quorum's whole. Given while the
   * target's consensus is UNKNOWN — nothing settled since its creation or a resume — so the first location to report
   * DOWN does not decide DOWN alone (PARTIAL until the others report, go STALE, or it reports again).
   */
  unknownPending?: boolean;
}

/**
 * A target's status across its locations (SPEC §1):
 * all up → UP, all down → DOWN, mixed → PARTIAL, and a quorum of down
 * locations may turn PARTIAL into DOWN. STALE locations count as not
 * reporting (UNKNOWN too, but see ConsensusOptions); PAUSED wins when every
 * location is paused.
 */
export function consensusOf(
  statuses: readonly TargetStatus[],
  policy: ConsensusPolicy = DEFAULT_CONSENSUS,
  options: ConsensusOptions = {},
): TargetStatus {
  if (statuses.length === 0) return TargetStatus.Unknown;
  if (statuses.every((s) => s === TargetStatus.Paused)) return TargetStatus.Paused;
  const active = statuses.filter((s) => s !== TargetStatus.Paused);
  if (active.every((s) => s === TargetStatus.Stale)) return TargetStatus.Stale;
  let up = 0;
  let down = 0;
  let partial = 0;
  let unknown = 0;
  for (const s of active) {
    if (s === TargetStatus.Up) up++;
    else if (s === TargetStatus.Down) down++;
    else if (s === TargetStatus.Partial) partial++;
    else if (s === TargetStatus.Unknown) unknown++;
  }
  const reporting = up + down + partial;
  if (reporting === 0) return TargetStatus.Unknown;
  const pending = options.unknownPending ? unknown : 0;
  if (down === reporting && pending === 0) return TargetStatus.Down;
  if (up === reporting) return TargetStatus.Up;
  // In integers: (down / whole) * 100 rounds below an exact quorum (29 of 100 → 28.999999999999996 < 29).
  if (down > 0 && down * 100 >= policy.downQuorumPct * (reporting + pending)) return TargetStatus.Down;
  return TargetStatus.Partial;
}
