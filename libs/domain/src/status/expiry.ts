import type { ConsensusPolicy } from './consensus';
import { applyExpiry, type StatusEventDraft, type TargetSnapshot } from './target-state';

/** A (target, location) whose deadline someone believes is due: from Postgres, or from a cache that may be stale. */
export interface DeadlineRef {
  targetId: string;
  location: string;
}

/** A heartbeat run that was still open when its location's deadline passed. */
export interface TimedOutRun {
  targetId: string;
  location: string;
  startedAt: number;
  runId: string | null;
  /** The deadline: when the run was given up on. */
  finishedAt: number;
}

/** What a deadline index should hold for one (target, location) after the sweep: its deadline now, or none. */
export interface DeadlineAfter extends DeadlineRef {
  at: number | null;
}

export interface ExpiryOutcome {
  /** Final state of every target that changed, in the order their first deadline passed. */
  changed: TargetSnapshot[];
  /** Status events (per location, then consensus), numbered on from each target's sequence. */
  events: StatusEventDraft[];
  timedOutRuns: TimedOutRun[];
  /** One entry per distinct (target, location) looked at, whether or not it expired. */
  deadlines: DeadlineAfter[];
}

const key = (r: DeadlineRef) => `${r.targetId}\u0000${r.location}`;

/**
 * The sweep over a set of candidate deadlines, against the targets' current
 * (locked) state: a location whose deadline is at or before `now` takes the
 * deadline's status (applyExpiry) and loses the deadline. Candidates are only
 * hints: one whose deadline a fresher observation moved, or that no longer
 * exists, changes nothing, and a repeated candidate expires once. Expiries are
 * applied in deadline order, so a target's events follow the order its
 * locations went quiet.
 */
export function expireDeadlines(
  current: ReadonlyMap<string, TargetSnapshot>,
  candidates: readonly DeadlineRef[],
  now: number,
  policy: ConsensusPolicy,
): ExpiryOutcome {
  const distinct = new Map<string, DeadlineRef>();
  for (const c of candidates)
    if (!distinct.has(key(c))) distinct.set(key(c), { targetId: c.targetId, location: c.location });

  const due = [...distinct.values()]
    .map((ref) => ({ ref, at: current.get(ref.targetId)?.locations[ref.location]?.deadline?.at ?? null }))
    .filter((d): d is { ref: DeadlineRef; at: number } => d.at !== null && d.at <= now)
    .sort(
      (a, b) =>
        a.at - b.at ||
        (a.ref.targetId < b.ref.targetId ? -1 : a.ref.targetId > b.ref.targetId ? 1 : 0) ||
        (a.ref.location < b.ref.location ? -1 : 1),
    );

  const working = new Map(current);
  const changedIds = new Set<string>();
  const events: StatusEventDraft[] = [];
  const timedOutRuns: TimedOutRun[] = [];
  for (const { ref, at } of due) {
    const target = working.get(ref.targetId) as TargetSnapshot;
    const r = applyExpiry(target, ref.location, now, policy);
    if (!r.applied) continue;
    working.set(ref.targetId, r.target);
    changedIds.add(ref.targetId);
    events.push(...r.events);
    if (r.timedOutRun)
      timedOutRuns.push({
        targetId: ref.targetId,
        location: ref.location,
        startedAt: r.timedOutRun.startedAt,
        runId: r.timedOutRun.runId,
        finishedAt: at,
      });
  }

  return {
    changed: [...changedIds].map((id) => working.get(id) as TargetSnapshot),
    events,
    timedOutRuns,
    deadlines: [...distinct.values()].map((ref) => ({
      ...ref,
      at: working.get(ref.targetId)?.locations[ref.location]?.deadline?.at ?? null,
    })),
  };
}
