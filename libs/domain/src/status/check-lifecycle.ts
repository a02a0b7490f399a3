import { TargetKind, TargetStatus, type CheckLifecycleState } from '@fleetwatch/contracts';
import type { ConsensusPolicy } from './consensus';
import {
  AWAITING_FIRST_RESULT,
  configuredPingWindowOf,
  consensusOfLocations,
  emptyTarget,
  isAwaited,
  isTombstone,
  policyOf,
  runsAt,
  tombstoneOf,
  type Deadline,
  type FoldResult,
  type LocationSnapshot,
  type StatusEventDraft,
  type TargetSnapshot,
} from './target-state';
import {
  CHECK_INTERVAL_CHANGED,
  CHECK_STALE_SLACK_MS,
  checkIntervalOf,
  checkStaleReason,
  HEARTBEAT_LOCATION,
  pingWindowChangedReason,
  pingWindowOf,
} from './heartbeat';

// What the aggregator does when the configuration owner says a check was created or
// changed (active), paused, resumed (active again) or deleted (SPEC §1 PAUSED, §2: the
// owner decides, the aggregator follows). Messages carry the config version of the write;
// the target keeps the highest one applied, so a redelivered or reordered older message
// changes nothing.
//
// - paused: every location PAUSED, deadlines and heartbeat runs cleared, consensus PAUSED
//   (also with no location yet). The target keeps a `paused` flag rather than a pause time:
//   results are compared against the flag, so none flips the status back while paused —
//   not one started before the collector heard of the pause, and not one from a collector
//   that keeps running its last assignment without the bus (started after the pause).
// - active after paused (resume): every location UNKNOWN as of the resume, with a deadline
//   two intervals on (→ STALE if nothing comes; a push check's is period + grace on, → DOWN:
//   the mapper's resumeDeadline); consensus UNKNOWN until the first result.
//   A result started before the resume (spooled while paused) is older than that and only
//   moves lastSeen. Not a heartbeat monitor's (push check's): its location keeps the time it held while paused (its
//   last ping folded before the pause, or the pause's start if later), so its first ping after the resume counts
//   whatever its stamp says of the resume — a ping stamped by an ingest replica whose clock is behind the configuration
//   owner's, or a job's ping sent during the pause and folded after the resume (its latest run) — while one stamped
//   before the pause began, or before the last ping heard before the resume, never does (resumedPingTime). A fail ping
//   stamped 1 s before the resume left the monitor UNKNOWN, and no alert went out. UNKNOWN rather than PAUSED: the
//   check is running again, and what the person resuming it wants to know is that no result has come yet. A probed
//   check's locations are awaited (AWAITING_FIRST_RESULT on that deadline), as a new check's are (awaitingConfigured):
//   until its first result or its deadline none votes, and the consensus stays UNKNOWN while they
//   could still change it — the first location to report no longer decides alone (consensusOf).
// - active otherwise (created, changed): name, type and tags follow the configuration; a
//   check not heard of yet becomes a target UNKNOWN with no location, so it is listed from
//   its creation on.
// - deleted: a tombstone (no location, no live state, never folded into again; ids never
//   return). History stays for its retention window. Its locations and consensus go to UNKNOWN in
//   events, as a removed instance's do: the alert evaluator follows status.changed events, so without
//   them a check deleted while DOWN went on to fire its pending 'Target down' (and one firing never
//   resolved) until the evaluator's periodic re-read.

/** One `check.lifecycle`, mapped (epoch ms). */
export interface CheckLifecycle {
  targetId: string;
  state: CheckLifecycleState;
  version: number;
  at: number;
  name?: string;
  checkType?: string;
  tags?: string[];
  /** Resume: the deadline each location gets (nothing heard by then → STALE); null: none. */
  resumeDeadline?: Deadline | null;
  /**
   * A heartbeat monitor's (push check's) period + grace as configured by this version. A change moves the deadline of
   * a location waiting for its next ping to its last ping + this: the one set by the last ping used the period then,
   * and a period cut from a week to an hour went DOWN only a week after the last ping (a longer one, too early). The
   * target keeps it (TargetSnapshot.pingWindowMs) and every later ping counts with it, whatever schedule the ping
   * carries (a status-ingest replica not yet told of the change sends the old one).
   */
  pingWindowMs?: number;
  /**
   * A probed check's interval (s) as configured by this version. A longer one moves each location's STALE deadline (set
   * by its last result with the interval then) to two new intervals after that result, and never before two new
   * intervals after the change: the collector's next run is on the new schedule, up to one new interval away, so a
   * longer interval read STALE (and notified) before its first run. A shorter one leaves it, unless a longer one had
   * moved it (see withCheckInterval).
   */
  checkIntervalSeconds?: number;
  /**
   * The locations that run it as of this version (empty: every location; absent: not said, what is held stays). A
   * location held but left out is dropped: to UNKNOWN in an event, its stored state deleted, the consensus over the
   * rest — it stayed in the consensus and read STALE for ever, and 'Target stale' notified for a location nobody runs.
   */
  locations?: string[];
  /**
   * The check's own consensus quorum as configured by this version; null: none, the site's (CONSENSUS_DOWN_QUORUM_PCT,
   * resolved at each fold, so a change of it applies to every check that follows it); absent: not said (a sender from
   * before), what is held stays. Once told (configVersion set) the quorum is the configuration's alone: results carry
   * the one of the assignment their collector ran, and after an edit those of collectors not yet on the new assignment
   * set it back with every result — the consensus flapped DOWN ↔ PARTIAL each interval (see applyObservation).
   */
  downQuorumPct?: number | null;
}

/**
 * `target` with every location that waits for its next ping (no run open) due `windowMs` after its last one (as heard),
 * and every run open with no max runtime (its deadline a window's) due `windowMs` after its start: a start folded
 * before this lifecycle was counted with the window held then, whatever schedule it carried (a status-ingest replica
 * reads the monitor from Postgres and may send the new one first) — a daily job's run went DOWN an hour on.
 */
export function withPingWindow(target: TargetSnapshot, windowMs: number | undefined): TargetSnapshot {
  if (windowMs === undefined) return target;
  let locations: Record<string, LocationSnapshot> | undefined;
  for (const [name, l] of Object.entries(target.locations)) {
    const waiting =
      l.deadline !== null &&
      l.deadline.expireTo === TargetStatus.Down &&
      (l.run === null
        ? l.status === TargetStatus.Up || l.status === TargetStatus.Unknown
        : pingWindowOf(l.deadline.reason) !== undefined);
    if (!waiting || l.deadline === null) continue;
    // Moved by the change of window: it keeps counting from where it did (a ping heard later than its stamp counts
    // from when it was heard); one whose window does not read, from the last ping.
    const before = pingWindowOf(l.deadline.reason);
    const at = before === undefined ? l.observedAt + windowMs : l.deadline.at - before + windowMs;
    if (at === l.deadline.at) continue;
    locations ??= { ...target.locations };
    locations[name] = {
      ...l,
      deadline: {
        at,
        expireTo: TargetStatus.Down,
        reason: pingWindowChangedReason(windowMs),
      },
    };
  }
  return locations ? { ...target, locations } : target;
}

/** `target` with its STALE deadlines set for a probed check's new interval (see CheckLifecycle.checkIntervalSeconds). */
function withCheckInterval(target: TargetSnapshot, seconds: number | undefined, at: number): TargetSnapshot {
  if (seconds === undefined) return target;
  const windowMs = 2 * seconds * 1000;
  let locations: Record<string, LocationSnapshot> | undefined;
  for (const [name, l] of Object.entries(target.locations)) {
    if (l.deadline === null || l.deadline.expireTo !== TargetStatus.Stale) continue;
    const before = checkIntervalOf(l.deadline.reason);
    if (before === undefined || seconds * 1000 === before) continue;
    // A shorter interval keeps the deadline its last result set: a collector that missed config.changed runs on the
    // old schedule until it reads its assignment again (within a minute), and its next result sets the new one.
    // Not one a longer interval moved (marked): results run with a shorter one never pull that back (deadlineAfter),
    // so after a lengthening undone (60 s → 3600 s → 60 s) a location that went quiet read UP for up to two long
    // intervals instead of STALE. That one is counted again with the new interval, never later than it was.
    // A location still awaited (isAwaited: its deadline the creation's or resume's, no result since) has no result to
    // keep the deadline of: it is counted again as one this lifecycle adds would be. Kept, it held the whole check
    // back (UNKNOWN) for two of the old intervals — two days after a daily check shortened to 30 s.
    const shorter = seconds * 1000 < before;
    if (shorter && !l.deadline.reason.includes(CHECK_INTERVAL_CHANGED) && !isAwaited(l)) continue;
    const counted = Math.max(l.deadline.at - 2 * before + windowMs, at + windowMs + CHECK_STALE_SLACK_MS);
    const moved = shorter ? Math.min(l.deadline.at, counted) : counted;
    locations ??= { ...target.locations };
    locations[name] = {
      ...l,
      deadline: {
        at: moved,
        expireTo: TargetStatus.Stale,
        reason:
          l.deadline.reason.replace(/^no result within 2 × \d+s/, checkStaleReason(seconds)) +
          (l.deadline.reason.includes(CHECK_INTERVAL_CHANGED) || shorter ? '' : CHECK_INTERVAL_CHANGED),
      },
    };
  }
  return locations ? { ...target, locations } : target;
}

/**
 * Whether `target` holds a window a ping of a later config version than `lc` said (pingWindowOfPing): the lifecycle of
 * that version is still to come, and this one's window is older. It neither replaces the window nor moves deadlines
 * with its own: a ping read at v3 (daily) set its deadline a day on, and v2's lifecycle (hourly) landing after it
 * brought that back to an hour.
 */
function heldNewer(target: TargetSnapshot, lc: CheckLifecycle): boolean {
  return configuredPingWindowOf(target) !== undefined && (target.pingWindowVersion ?? 0) > lc.version;
}

/**
 * `lc` as it applies to a target holding a later version's window (heldNewer): without its own window, and a resume's
 * deadline (a push check's, period + grace after the resume) counted with the window held. With its own, v2's resume
 * (hourly) made a job that v3 (whose ping set the window) made daily DOWN an hour after the resume.
 */
function underHeldWindow(target: TargetSnapshot, lc: CheckLifecycle): CheckLifecycle {
  const windowMs = configuredPingWindowOf(target);
  const resume = lc.resumeDeadline;
  if (windowMs === undefined || !resume || resume.expireTo !== TargetStatus.Down)
    return { ...lc, pingWindowMs: undefined };
  return {
    ...lc,
    pingWindowMs: undefined,
    resumeDeadline: {
      at: lc.at + windowMs,
      expireTo: TargetStatus.Down,
      reason: `${pingWindowChangedReason(windowMs)} of the resume`,
    },
  };
}

function identity(target: TargetSnapshot, lc: CheckLifecycle): TargetSnapshot {
  return {
    ...target,
    name: lc.name ?? target.name,
    tags: lc.tags ?? target.tags,
    labels: lc.checkType ? { type: lc.checkType } : target.labels,
    configVersion: lc.version,
    configuredLocations: lc.locations ?? target.configuredLocations ?? null,
    downQuorumPct: lc.downQuorumPct !== undefined ? lc.downQuorumPct : (target.downQuorumPct ?? null),
    // A heartbeat monitor's window as of this version; one not said (not a heartbeat monitor, a sender from before) is
    // no longer known: pings count with their own again (configuredPingWindowOf). One a ping of a later version said
    // (pingWindowOfPing) stays: this lifecycle, delivered late, says an older schedule.
    ...(heldNewer(target, lc)
      ? {}
      : lc.pingWindowMs !== undefined
        ? { pingWindowMs: lc.pingWindowMs, pingWindowVersion: lc.version }
        : target.pingWindowMs !== undefined && target.pingWindowMs !== null
          ? { pingWindowMs: null, pingWindowVersion: null }
          : {}),
  };
}

/**
 * `target` with its consensus judged again after its quorum changed (`before`: the quorum it had), in an event dated by
 * the configuration write when it moves: an edit takes effect at once, not with the next result (which, from a
 * collector still on its old assignment, might be an interval or a spool flush away). Not while paused (PAUSED).
 */
function withQuorum(
  target: TargetSnapshot,
  before: number | null | undefined,
  at: number,
  reason: string,
  policy: ConsensusPolicy,
): { target: TargetSnapshot; events: StatusEventDraft[] } {
  if (
    target.paused ||
    policyOf(target, policy).downQuorumPct === policyOf({ downQuorumPct: before }, policy).downQuorumPct
  )
    return { target, events: [] };
  const consensus = consensusOfLocations(target, target.locations, policy);
  if (consensus === target.status) return { target, events: [] };
  const seq = target.seq + 1;
  return {
    target: { ...target, status: consensus, since: at, seq },
    events: [
      {
        targetId: target.id,
        kind: target.kind,
        location: null,
        from: target.status,
        to: consensus,
        reason,
        at,
        sequence: seq,
      },
    ],
  };
}

/**
 * `target` without the locations its configuration no longer runs (see CheckLifecycle.locations): each one dropped to
 * UNKNOWN in an event (in name order), then the consensus over the rest (PAUSED while paused), dated by the
 * configuration write as a pause is.
 */
function withoutUnconfigured(
  target: TargetSnapshot,
  at: number,
  reason: string,
  policy: ConsensusPolicy,
): { target: TargetSnapshot; events: StatusEventDraft[]; dropped: string[] } {
  const dropped = Object.keys(target.locations)
    .filter((name) => !runsAt(target, name))
    .sort();
  if (dropped.length === 0) return { target, events: [], dropped };
  const locations = { ...target.locations };
  for (const name of dropped) delete locations[name];
  const consensus = target.paused ? TargetStatus.Paused : consensusOfLocations(target, locations, policy);
  let seq = target.seq;
  const events: StatusEventDraft[] = [];
  const event = (location: string | null, from: TargetStatus, to: TargetStatus): void => {
    events.push({ targetId: target.id, kind: target.kind, location, from, to, reason, at, sequence: ++seq });
  };
  for (const name of dropped) {
    const from = target.locations[name].status;
    if (from !== TargetStatus.Unknown) event(name, from, TargetStatus.Unknown);
  }
  const changed = consensus !== target.status;
  if (changed) event(null, target.status, consensus);
  return {
    target: { ...target, locations, status: consensus, since: changed ? at : target.since, seq },
    events,
    dropped,
  };
}

/**
 * Moves every location to `status` as of `at` (observedAt never goes back, so an older
 * result stays older), with the events: each location that changed (in name order), then
 * the consensus.
 */
function allLocations(
  target: TargetSnapshot,
  status: TargetStatus,
  consensus: TargetStatus,
  at: number,
  deadline: Deadline | null,
  reason: string,
  observedAt: (l: LocationSnapshot) => number = (l) => Math.max(l.observedAt, at),
): { target: TargetSnapshot; events: StatusEventDraft[] } {
  const locations: Record<string, LocationSnapshot> = {};
  const events: StatusEventDraft[] = [];
  let seq = target.seq;
  const event = (location: string | null, from: TargetStatus, to: TargetStatus): StatusEventDraft => ({
    targetId: target.id,
    kind: target.kind,
    location,
    from,
    to,
    reason,
    at,
    sequence: ++seq,
  });
  for (const name of Object.keys(target.locations).sort()) {
    const l = target.locations[name];
    locations[name] = { ...l, status, observedAt: observedAt(l), deadline, run: null };
    if (l.status !== status) events.push(event(name, l.status, status));
  }
  if (target.status !== consensus) events.push(event(null, target.status, consensus));
  const changed = target.status !== consensus;
  return {
    target: { ...target, locations, status: consensus, since: changed ? at : (target.since ?? at), seq },
    events,
  };
}

/** What applyLifecycle did: a fold's result, and the locations whose stored state is to be deleted. */
export interface LifecycleResult extends FoldResult {
  dropped: string[];
}

/** Folds one lifecycle message into a check's target (see above). */
export function applyLifecycle(
  current: TargetSnapshot | undefined,
  lc: CheckLifecycle,
  policy: ConsensusPolicy,
): LifecycleResult {
  if (current && (isTombstone(current) || (current.configVersion ?? 0) >= lc.version))
    return { target: current, events: [], applied: false, dropped: [] };
  const version = `config version ${lc.version}`;
  const held = identity(current ?? emptyTarget(lc.targetId, TargetKind.Check, lc.name ?? lc.targetId), lc);
  if (lc.state === 'deleted') return { ...deleted(held, lc, version), dropped: [] };
  const cut = withoutUnconfigured(held, lc.at, `location no longer runs this check (${version})`, policy);
  // A pause moves the consensus to PAUSED anyway: judged again only for a check that stays active.
  const quorum =
    lc.state === 'active'
      ? withQuorum(cut.target, current?.downQuorumPct, lc.at, quorumReason(cut.target, version), policy)
      : { target: cut.target, events: [] };
  // A window a later version's ping said stays, and so do the deadlines it set (heldNewer); a resume's counts with it.
  const told = current !== undefined && heldNewer(current, lc) ? underHeldWindow(current, lc) : lc;
  const r = applyState(awaitingConfigured(quorum.target, told), told, version);
  return { ...r, events: [...cut.events, ...quorum.events, ...r.events], dropped: cut.dropped };
}

function quorumReason(target: TargetSnapshot, version: string): string {
  const own = target.downQuorumPct;
  return `consensus quorum changed to ${own ? `${own} %` : "the site's"} (${version})`;
}

/**
 * Each configured location the check does not hold waits for its first result UNKNOWN, due two intervals on (→ STALE),
 * as after a resume: a location added (`[a]` → `[a, b]`) or moved to (`[a]` → `[b]`), and each location of a new check
 * (or of one paused before its first result, PAUSED until the resume gives it its deadline). Without it a location
 * that never reports (its collector down, its name mistyped: locations are not checked against the collectors) never
 * appeared and never went STALE, and a new check that no collector ran stayed UNKNOWN for ever. Only a probed check's
 * listed locations: an empty list is every location, and which locations have a collector is not known here (a push
 * check waits for its first ping instead: awaitingFirstPing). A location held already (waiting or heard) is left as it
 * is, so another write listing it again does not push its deadline back.
 */
function awaitingConfigured(target: TargetSnapshot, lc: CheckLifecycle): TargetSnapshot {
  const seconds = lc.checkIntervalSeconds;
  if (seconds === undefined || !lc.locations?.length) return target;
  const missing = lc.locations.filter((name) => target.locations[name] === undefined);
  if (missing.length === 0) return target;
  // Paused by this message or staying so: PAUSED with nothing due (a resume gives each held location its deadline).
  const pausing = lc.state === 'paused';
  // A check that has no result to go by yet (just created, or every location it holds awaited still) awaits these
  // too: none decides the consensus alone before the others have had their interval (isAwaited). One already going by
  // results does not: the location added neither votes nor holds anything back until it reports, as before.
  const awaiting = Object.values(target.locations).every(isAwaited);
  const locations = { ...target.locations };
  for (const name of missing)
    locations[name] = {
      status: pausing ? TargetStatus.Paused : TargetStatus.Unknown,
      // Nothing observed: its first result is newer whatever the clocks (one from a collector whose clock is behind
      // the configuration owner's was taken for older, and the location read UNKNOWN, then STALE, while it reported).
      observedAt: 0,
      // Never heard: 0 reads as no time at all (lastSeen null in the API).
      lastSeen: 0,
      latencyMs: null,
      detail: `location now runs this check (config version ${lc.version}): waiting for its first result`,
      lifecycle: null,
      deadline: pausing
        ? null
        : {
            at: lc.at + 2 * seconds * 1000 + CHECK_STALE_SLACK_MS,
            expireTo: TargetStatus.Stale,
            reason: checkStaleReason(seconds) + (awaiting ? AWAITING_FIRST_RESULT : ''),
          },
      run: null,
    };
  return { ...target, locations };
}

function deleted(base: TargetSnapshot, lc: CheckLifecycle, version: string): FoldResult {
  // Dated by the configuration owner's clock, but never before what the target holds (a result stamped after it by
  // a collector ahead): the events to UNKNOWN come after the target's newest, as a retirement's (retireTarget).
  const at = Math.max(
    lc.at,
    base.lastSeen ?? lc.at,
    ...Object.values(base.locations).map((l) => Math.max(l.observedAt, l.lastSeen)),
  );
  return tombstoneOf(base, {
    at,
    deletedAt: at,
    lastSeen: base.lastSeen,
    reason: `check deleted (${version})`,
    consensusReason: `check deleted (${version})`,
  });
}

/** Active or paused (see above), once the locations it no longer runs are gone. */
function applyState(base: TargetSnapshot, lc: CheckLifecycle, version: string): FoldResult {
  if (lc.state === 'paused') {
    if (base.paused) return { target: base, events: [], applied: true };
    const r = allLocations(
      { ...base, paused: true },
      TargetStatus.Paused,
      TargetStatus.Paused,
      lc.at,
      null,
      `check paused (${version})`,
    );
    return { ...r, applied: true };
  }

  if (!base.paused)
    return {
      target: {
        ...withCheckInterval(
          withPingWindow(awaitingFirstPing(base, lc, 'its creation'), lc.pingWindowMs),
          lc.checkIntervalSeconds,
          lc.at,
        ),
        since: base.since ?? lc.at,
      },
      events: [],
      applied: true,
    };
  // Every location UNKNOWN: no location reports, so the consensus is UNKNOWN too. A probed check's (a STALE deadline)
  // are awaited: each holds the consensus back until its first result or its deadline (isAwaited), so the first
  // location to report does not decide alone.
  const resume = lc.resumeDeadline ?? null;
  const pushed = isHeartbeatMonitor(base, lc);
  // When the pause began: the consensus went PAUSED then (nothing moves it while paused).
  const pauseBegan = base.since ?? 0;
  const r = allLocations(
    { ...base, paused: false },
    TargetStatus.Unknown,
    TargetStatus.Unknown,
    lc.at,
    resume !== null && resume.expireTo === TargetStatus.Stale
      ? { ...resume, reason: resume.reason + AWAITING_FIRST_RESULT }
      : resume,
    `check resumed (${version}): waiting for its first result`,
    pushed ? (l) => resumedPingTime(l, pauseBegan, lc.at) : undefined,
  );
  return {
    target: awaitingFirstPing(
      r.target,
      lc,
      'the resume',
      pushed ? Math.max(pauseBegan, Math.min(base.lastSeen ?? 0, lc.at)) : 0,
    ),
    events: r.events,
    applied: true,
  };
}

/** Whether `lc` is a heartbeat monitor's (push check's): its type says so, or it carries a ping window. */
function isHeartbeatMonitor(target: TargetSnapshot, lc: CheckLifecycle): boolean {
  return lc.checkType === 'push' || target.labels.type === 'push' || lc.pingWindowMs !== undefined;
}

/**
 * The time a heartbeat monitor's location holds as of a resume (its observedAt; see the top of this file): the one it
 * held while paused — its last ping folded before the pause, the pause's start or the last ping heard while paused
 * (lastSeen; the target's when it held no location) when later — never the resume's. A ping
 * is compared with it (isNewer): one stamped after the pause began counts, the resume's stamp notwithstanding (ingest
 * replicas stamp with their own clocks; a job's ping sent during the pause describes its latest run), one stamped
 * before it does not (superseded, or already ignored before the pause), nor one older than a ping heard while paused:
 * that one is the job's latest run (a fail superseded by a success during the pause, the fail heard only after the
 * resume, paged at once) — never later than the resume for that one (stamped by a replica ahead, it held every ping
 * after the resume off until the replica's time). Once a ping counted, older ones never undo it.
 */
function resumedPingTime(l: LocationSnapshot, pauseBegan: number, resumedAt: number): number {
  return Math.max(l.observedAt, pauseBegan, Math.min(l.lastSeen, resumedAt));
}

/**
 * A heartbeat monitor (push check) never pinged: its one location, UNKNOWN, waits for the first ping due period + grace
 * after `lc` (its creation, a change or a resume) — missed, it is DOWN like any other missed ping. Without it a monitor
 * whose job never ran (its URL mistyped, the crontab never installed) had no location, so nothing was due: UNKNOWN for
 * ever, also after a resume, and never alerted on. A monitor that holds its location already is left as it is.
 */
function awaitingFirstPing(target: TargetSnapshot, lc: CheckLifecycle, since: string, observedAt = 0): TargetSnapshot {
  const windowMs = lc.pingWindowMs;
  if (windowMs === undefined || target.paused || target.locations[HEARTBEAT_LOCATION] !== undefined) return target;
  return {
    ...target,
    locations: {
      ...target.locations,
      [HEARTBEAT_LOCATION]: {
        status: TargetStatus.Unknown,
        // Nothing observed: any first ping is newer, whatever the clocks (one stamped by a status-ingest whose clock is
        // behind the configuration owner's was taken for older and ignored — the monitor went DOWN though pinged). At a
        // resume, the pause's start: a ping stamped before it does not count (resumedPingTime).
        observedAt,
        // Never heard: 0 reads as no time at all (lastSeen null in the API).
        lastSeen: 0,
        latencyMs: null,
        detail: `waiting for the first ping (config version ${lc.version})`,
        lifecycle: null,
        deadline: {
          at: lc.at + windowMs,
          expireTo: TargetStatus.Down,
          reason: `${pingWindowChangedReason(windowMs)} of ${since}`,
        },
        run: null,
      },
    },
  };
}
