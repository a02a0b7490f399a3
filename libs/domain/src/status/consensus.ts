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
 *
 * `awaited`: how many more locations the check's lifecycle awaits the first result of (created or resumed: see
 * isAwaited), besides the ones whose `statuses` are given. They do not vote, and hold the decision back: the
 * consensus is the one the given statuses decide whatever the awaited ones bring (UP, DOWN, PARTIAL, nothing, STALE),
 * and UNKNOWN while they could still change it — one location reporting DOWN first after a resume no longer makes
 * the target DOWN on its own before the others it awaits have said otherwise.
 */
export function consensusOf(
  statuses: readonly TargetStatus[],
  policy: ConsensusPolicy = DEFAULT_CONSENSUS,
  awaited = 0,
): TargetStatus {
  const c: Counts = { paused: 0, stale: 0, up: 0, down: 0, partial: 0, other: 0 };
  for (const s of statuses) {
    if (s === TargetStatus.Paused) c.paused++;
    else if (s === TargetStatus.Stale) c.stale++;
    else if (s === TargetStatus.Up) c.up++;
    else if (s === TargetStatus.Down) c.down++;
    else if (s === TargetStatus.Partial) c.partial++;
    else c.other++;
  }
  return awaited > 0 ? heldBack(c, policy, awaited) : verdictOf(c, policy);
}

/** How many locations hold each status (`other`: UNKNOWN). */
interface Counts {
  paused: number;
  stale: number;
  up: number;
  down: number;
  partial: number;
  other: number;
}

function verdictOf(c: Counts, policy: ConsensusPolicy): TargetStatus {
  const active = c.stale + c.up + c.down + c.partial + c.other;
  if (active === 0) return c.paused > 0 ? TargetStatus.Paused : TargetStatus.Unknown;
  if (c.stale === active) return TargetStatus.Stale;
  const reporting = c.up + c.down + c.partial;
  if (reporting === 0) return TargetStatus.Unknown;
  if (c.down === reporting) return TargetStatus.Down;
  if (c.up === reporting) return TargetStatus.Up;
  // In integers: (down / reporting) * 100 rounds below an exact quorum (29 of 100 → 28.999999999999996 < 29).
  if (c.down > 0 && c.down * 100 >= policy.downQuorumPct * reporting) return TargetStatus.Down;
  return TargetStatus.Partial;
}

/**
 * What the awaited locations hold back (see consensusOf): the verdict every outcome of theirs agrees on — each one UP,
 * DOWN, PARTIAL, or nothing — or UNKNOWN. Nothing covers a result that says nothing and a deadline passing alike: a
 * verdict needs a location that reports besides them (all UP and all DOWN disagree otherwise), and beside one, STALE
 * and UNKNOWN both count as not reporting. Counts only: at most 64 locations (a check's), some 48,000 cheap steps.
 */
function heldBack(c: Counts, policy: ConsensusPolicy, awaited: number): TargetStatus {
  let verdict: TargetStatus | undefined;
  for (let up = 0; up <= awaited; up++)
    for (let down = 0; up + down <= awaited; down++)
      for (let partial = 0; up + down + partial <= awaited; partial++) {
        const other = c.other + awaited - up - down - partial;
        const v = verdictOf({ ...c, up: c.up + up, down: c.down + down, partial: c.partial + partial, other }, policy);
        if (verdict === undefined) verdict = v;
        else if (v !== verdict) return TargetStatus.Unknown;
      }
  return verdict ?? TargetStatus.Unknown;
}
