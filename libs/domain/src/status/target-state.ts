import { TargetKind, TargetStatus, type InstanceKind } from '@fleetwatch/contracts';
import { consensusOf, type ConsensusPolicy } from './consensus';
import { isNewer, transitionsFor } from './transitions';
import { CHECK_INTERVAL_CHANGED, checkIntervalOf } from './heartbeat';

/** What the sweeper does when a location's deadline passes. */
export interface Deadline {
  /** Epoch ms. */
  at: number;
  /** STALE for results and pushes; DOWN for heartbeat monitors (SPEC §6: a missed deadline is DOWN). */
  expireTo: TargetStatus;
  reason: string;
}

/** One target at one location, as the aggregator keeps it (epoch ms times). */
export interface LocationSnapshot {
  status: TargetStatus;
  /** Time of the observation that set `status`: older observations never move it back. */
  observedAt: number;
  lastSeen: number;
  latencyMs: number | null;
  detail: string | null;
  lifecycle: string | null;
  deadline: Deadline | null;
  /** Heartbeat monitors: a `start` seen without its finishing ping yet. */
  run: { startedAt: number; runId: string | null } | null;
}

export interface TargetSnapshot {
  id: string;
  kind: TargetKind;
  name: string;
  /** Consensus across locations. */
  status: TargetStatus;
  since: number | null;
  lastSeen: number | null;
  lastLatencyMs: number | null;
  lifecycle: string | null;
  /**
   * Pushed instances: what the instance is (`container`, `pod`, …), as its latest update said. Null/absent for checks
   * and hosts, and for an instance stored before the kind was kept (until its next update).
   */
  instanceKind?: InstanceKind | null;
  tags: string[];
  labels: Record<string, string>;
  /** Last event sequence issued for this target. */
  seq: number;
  locations: Record<string, LocationSnapshot>;
  /**
   * The target's own consensus quorum (a check's `downQuorumPct`); null/absent: the site's
   * (CONSENSUS_DOWN_QUORUM_PCT). Kept with the target so the sweeper judges it the same way.
   */
  downQuorumPct?: number | null;
  /**
   * Checks: paused in the configuration (check.lifecycle). While set, every location reads
   * PAUSED, no deadline runs and observations change nothing but lastSeen — whenever they
   * were started: a collector without the bus keeps running its last assignment.
   */
  paused?: boolean;
  /** Checks: the config version of the last lifecycle message applied (older ones change nothing). */
  configVersion?: number | null;
  /**
   * Checks: when the check was deleted (epoch ms). The target is then a tombstone: it has
   * no location, is in no live state, and nothing folds into it again (ids never return).
   */
  deletedAt?: number | null;
  /**
   * Checks: the locations configured to run it (check.lifecycle); null/absent or empty: every location. A result from
   * another location is history only (a collector that has not read its new assignment yet).
   */
  configuredLocations?: string[] | null;
  /**
   * Heartbeat monitors (push checks): their period + grace (ms) as configured by config version `pingWindowVersion`,
   * said by its check.lifecycle or, first, by a ping read at that version (pingWindowOfPing; see
   * configuredPingWindowOf); null/absent: not told (a target from before this was kept, or a check that is not a
   * heartbeat monitor).
   */
  pingWindowMs?: number | null;
  /** The config version that said `pingWindowMs`. */
  pingWindowVersion?: number | null;
}

/**
 * A heartbeat monitor's period + grace (ms) as its configuration says (check.lifecycle, or a ping read at a newer
 * config version than the last lifecycle applied: pingWindowOfPing), which its pings count with: each ping carries
 * the schedule its status-ingest replica had cached, and for a while after a change a replica not yet told sends the
 * old one (hourly → daily went DOWN an hour after each such ping). undefined when the target holds none, or holds one
 * said by an older config version than the last applied — a replica of the version before this field (a rolling
 * upgrade, a rollback) applies lifecycles without writing it, and that window is no longer the configured one: the
 * ping's own schedule counts then, as before.
 *
 * `pingConfigVersion`: the config version the ping's own schedule was read at (absent: a status-ingest from before it
 * was sent). A ping read at a newer version than the window held carries that version's schedule, which counts: the
 * lifecycle saying it may land after the old window has passed (relay stalled, aggregator behind), and a daily job's
 * ping counted with the hourly window held went DOWN an hour on. Not older or equal ones (a replica not yet told).
 */
export function configuredPingWindowOf(
  target: Pick<TargetSnapshot, 'pingWindowMs' | 'pingWindowVersion' | 'configVersion'> | undefined,
  pingConfigVersion?: number,
): number | undefined {
  if (target === undefined) return undefined;
  const { pingWindowMs, pingWindowVersion, configVersion } = target;
  if (pingWindowMs === undefined || pingWindowMs === null || pingWindowMs <= 0) return undefined;
  // Said by the last lifecycle applied, or by a ping of a version after it (not a stale one: see above).
  if (pingWindowVersion === undefined || pingWindowVersion === null || pingWindowVersion < (configVersion ?? 0))
    return undefined;
  if (pingConfigVersion !== undefined && pingConfigVersion > pingWindowVersion) return undefined;
  return pingWindowMs;
}

/**
 * `target` holding the window a ping carries when the ping was read at a config version newer than both the last
 * lifecycle applied and the window held (see configuredPingWindowOf): the version's schedule, as status-ingest read the
 * monitor with it. Later pings of older versions (a replica not yet told: the old schedule) count with it, not with
 * the window before — a job's `start` through a replica told and its success through one not told went DOWN an hour
 * on when the lifecycle was late. The lifecycle of that version, when it lands, says the same window; an older one
 * landing after leaves it (applyLifecycle). Anything else: `target` as it is.
 */
export function pingWindowOfPing(
  target: TargetSnapshot,
  ping: { configVersion?: number; periodSeconds: number; graceSeconds: number },
): TargetSnapshot {
  const version = ping.configVersion;
  if (version === undefined || version <= (target.configVersion ?? 0) || version <= (target.pingWindowVersion ?? 0))
    return target;
  return { ...target, pingWindowMs: (ping.periodSeconds + ping.graceSeconds) * 1000, pingWindowVersion: version };
}

/** Whether a result from `location` moves `target`'s status: a check's configuration may leave that location out. */
export function runsAt(target: Pick<TargetSnapshot, 'configuredLocations'>, location: string): boolean {
  const configured = target.configuredLocations;
  return configured === null || configured === undefined || configured.length === 0 || configured.includes(location);
}

/**
 * Appended to the STALE deadline reason of a location a probed check's lifecycle awaits the first result of (the
 * check created, or resumed: check-lifecycle). Kept in the reason, which is stored with the deadline
 * (target_location_states.expire_reason, and from there in the live state), so the mark lasts exactly as long as the
 * wait: the location's first result brings its own deadline (unmarked), its deadline passing (the sweeper: STALE)
 * clears it, and so does a pause. No column: a row written by an aggregator from before has no mark (not awaited,
 * the consensus as it was), and a rebuild of the live state from Postgres carries it with the deadline.
 */
export const AWAITING_FIRST_RESULT = ' (first result awaited)';

/**
 * Whether the check awaits `l`'s first result (see AWAITING_FIRST_RESULT): it does not vote in the consensus, and holds
 * the decision back while it could change it (consensusOf), never past its deadline.
 */
export function isAwaited(l: LocationSnapshot): boolean {
  return (
    l.status === TargetStatus.Unknown &&
    l.deadline !== null &&
    l.deadline.expireTo === TargetStatus.Stale &&
    l.deadline.reason.includes(AWAITING_FIRST_RESULT)
  );
}

/**
 * Put before AWAITING_FIRST_RESULT on the deadline of an awaited location once another location has reported (see
 * boundAwaited): the STALE event then says why it came before two intervals.
 */
export const ANOTHER_LOCATION_REPORTED = ' (another location has reported this run)';

/**
 * `locations` with each awaited one other than `reporting` due by `dueBy` at the latest (its mark kept): every
 * collector runs a check at the same instants, so once one location's result is in, the others' of the same run are
 * due within its attempts, a healthy location's lateness and missed slot, and the slack (peerResultGraceMs), not
 * within the two intervals of the creation's or resume's deadline. Without it a daily check resumed with one
 * location's collector down was held UNKNOWN up to two days while every other location said DOWN. When the bound passes the sweeper ends the wait (STALE) and the others
 * decide; a location that reports later is heard as any STALE one is. The same object when nothing moves.
 */
function boundAwaited(
  locations: Record<string, LocationSnapshot>,
  reporting: string,
  dueBy: number,
): Record<string, LocationSnapshot> {
  let bounded: Record<string, LocationSnapshot> | undefined;
  for (const [name, l] of Object.entries(locations)) {
    if (name === reporting || !isAwaited(l) || l.deadline === null || l.deadline.at <= dueBy) continue;
    const reason = l.deadline.reason.includes(ANOTHER_LOCATION_REPORTED)
      ? l.deadline.reason
      : l.deadline.reason.replace(AWAITING_FIRST_RESULT, ANOTHER_LOCATION_REPORTED + AWAITING_FIRST_RESULT);
    bounded ??= { ...locations };
    bounded[name] = { ...l, deadline: { ...l.deadline, at: dueBy, reason } };
  }
  return bounded ?? locations;
}

/**
 * `deadline` no longer marked as awaiting a first result (see AWAITING_FIRST_RESULT), nor as bounded by another
 * location's result (ANOTHER_LOCATION_REPORTED: a held deadline a longer interval moved keeps its reason otherwise).
 */
export function notAwaiting(deadline: Deadline | null): Deadline | null {
  if (deadline === null || !deadline.reason.includes(AWAITING_FIRST_RESULT)) return deadline;
  return {
    ...deadline,
    reason: deadline.reason
      .replace(ANOTHER_LOCATION_REPORTED + AWAITING_FIRST_RESULT, '')
      .replace(AWAITING_FIRST_RESULT, ''),
  };
}

/**
 * Whether a check's location has never been heard from: the configuration put it there (a location added, a heartbeat
 * monitor's first ping awaited) and nothing came since — UNKNOWN, nothing observed (observedAt 0) nor seen (lastSeen 0).
 * Not one a resume set (observedAt the resume's), nor one a version before set observedAt on (the edit's time): an
 * older result moves lastSeen alone, with no consensus judged again (applyObservation), so it turned such a location
 * from not voting to voting under a stored consensus — a STALE check whose consensus then read UNKNOWN, a quorum edit
 * later turning it so. With observedAt 0 every result is newer: the location votes from its first one, judged then.
 */
function neverHeard(l: LocationSnapshot): boolean {
  return l.status === TargetStatus.Unknown && l.observedAt === 0 && l.lastSeen === 0;
}

/**
 * The consensus over `locations` (consensusOf): a check's awaited locations (isAwaited) do not vote and hold the
 * decision back, and one never heard from that is not awaited (a location added to a check already going by results)
 * does not vote either — it held the consensus UNKNOWN once every other location had gone STALE (the check read
 * UNKNOWN, not STALE, until its own deadline passed). Any other target's locations all count as they always have.
 */
export function consensusOfLocations(
  target: Pick<TargetSnapshot, 'kind' | 'downQuorumPct'>,
  locations: Record<string, LocationSnapshot>,
  site: ConsensusPolicy,
): TargetStatus {
  const policy = policyOf(target, site);
  const all = Object.values(locations);
  if (target.kind !== TargetKind.Check)
    return consensusOf(
      all.map((l) => l.status),
      policy,
    );
  const awaited = all.filter(isAwaited).length;
  const voting = all.filter((l) => !isAwaited(l) && !neverHeard(l));
  return consensusOf(
    voting.map((l) => l.status),
    policy,
    awaited,
  );
}

/**
 * Whether two location states are the same in every stored field (a location a commit did not touch need not be
 * written again). Absent (`undefined`) equals nothing.
 */
export function sameLocation(a: LocationSnapshot | undefined, b: LocationSnapshot | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (a === b) return true;
  return (
    a.status === b.status &&
    a.observedAt === b.observedAt &&
    a.lastSeen === b.lastSeen &&
    a.latencyMs === b.latencyMs &&
    a.detail === b.detail &&
    a.lifecycle === b.lifecycle &&
    (a.deadline === b.deadline ||
      (a.deadline !== null &&
        b.deadline !== null &&
        a.deadline.at === b.deadline.at &&
        a.deadline.expireTo === b.deadline.expireTo &&
        a.deadline.reason === b.deadline.reason)) &&
    (a.run === b.run ||
      (a.run !== null && b.run !== null && a.run.startedAt === b.run.startedAt && a.run.runId === b.run.runId))
  );
}

/** The pushed lifecycle state that retires an instance (see applyObservation). */
const REMOVED = 'removed';

/** Whether the target is a deleted check's tombstone, or a removed instance's. */
export function isTombstone(t: Pick<TargetSnapshot, 'deletedAt'> | undefined): boolean {
  return t?.deletedAt !== undefined && t.deletedAt !== null;
}

/** One observation of one target at one location, already mapped onto a status class. */
export interface Observation {
  targetId: string;
  kind: TargetKind;
  name: string;
  location: string;
  /** Epoch ms of the observation (occurredAt, startedAt, receivedAt…). */
  at: number;
  /** null: the observation proves life but does not set a status (a heartbeat `start`). */
  status: TargetStatus | null;
  reason: string;
  latencyMs?: number | null;
  detail?: string | null;
  lifecycle?: string | null;
  /** A pushed update's instance kind (`container`, `pod`, …); undefined keeps the target's. */
  instanceKind?: InstanceKind;
  /** Replace the target's tags/labels (pushed instances); undefined keeps them. */
  tags?: string[];
  labels?: Record<string, string>;
  /** undefined keeps the location's deadline; null clears it. */
  deadline?: Deadline | null;
  /** undefined keeps the run in progress; null ends it. */
  run?: LocationSnapshot['run'];
  /** The target's own quorum (checks); null: back to the site's; undefined keeps what the target has. */
  downQuorumPct?: number | null;
  /**
   * A check result's: by when (epoch ms, the aggregator's clock) the same run's results from the other locations are
   * due (heard + peerResultGraceMs). A location still awaited then (AWAITING_FIRST_RESULT) is awaited no longer than
   * that (boundAwaited). undefined: no bound (the awaited keep their deadline).
   */
  peersDueBy?: number;
}

/** A status transition with its place in the target's sequence. */
export interface StatusEventDraft {
  targetId: string;
  kind: TargetKind;
  location: string | null;
  from: TargetStatus;
  to: TargetStatus;
  reason: string;
  at: number;
  sequence: number;
}

export interface FoldResult {
  target: TargetSnapshot;
  events: StatusEventDraft[];
  /** False when the observation was older than the location's state (only lastSeen moved). */
  applied: boolean;
}

export function emptyTarget(id: string, kind: TargetKind, name: string): TargetSnapshot {
  return {
    id,
    kind,
    name,
    status: TargetStatus.Unknown,
    since: null,
    lastSeen: null,
    lastLatencyMs: null,
    lifecycle: null,
    tags: [],
    labels: {},
    seq: 0,
    locations: {},
  };
}

function withLocation(
  target: TargetSnapshot,
  location: string,
  next: LocationSnapshot,
  reason: string,
  at: number,
  policy: ConsensusPolicy,
): { target: TargetSnapshot; events: StatusEventDraft[] } {
  const previous = target.locations[location];
  const locations = { ...target.locations, [location]: next };
  const consensus = target.paused ? TargetStatus.Paused : consensusOfLocations(target, locations, policy);
  const transitions = transitionsFor(location, previous?.status, next.status, target.status, consensus, reason);
  let seq = target.seq;
  const events = transitions.map((t) => ({
    targetId: target.id,
    kind: target.kind,
    location: t.location,
    from: t.from,
    to: t.to,
    reason: t.reason,
    at,
    sequence: ++seq,
  }));
  const changed = consensus !== target.status;
  return {
    target: { ...target, locations, status: consensus, since: changed ? at : (target.since ?? at), seq },
    events,
  };
}

/**
 * Keeps one of a target's locations, `location`, and drops the others: the freshest of them all (by last seen;
 * `location` on a tie) becomes `location`'s state, and the consensus follows (an event when it changed). For
 * heartbeat monitors, which have one location however many ingest replicas receive their pings.
 */
export function keepOneLocation(
  current: TargetSnapshot,
  location: string,
  at: number,
  policy: ConsensusPolicy,
): { target: TargetSnapshot; events: StatusEventDraft[]; dropped: string[] } {
  const dropped = Object.keys(current.locations).filter((name) => name !== location);
  if (dropped.length === 0) return { target: current, events: [], dropped };
  let kept: LocationSnapshot | undefined = current.locations[location];
  for (const name of dropped) {
    const l = current.locations[name];
    if (kept === undefined || l.lastSeen > kept.lastSeen) kept = l;
  }
  const one = kept as LocationSnapshot;
  const folded = withLocation(
    { ...current, locations: { [location]: one } },
    location,
    one,
    `one location for a heartbeat monitor (was also ${dropped.join(', ')})`,
    at,
    policy,
  );
  return { ...folded, dropped };
}

/**
 * Folds one observation into a target's state: the location's status (unless
 * the observation is older than what is held), the consensus, and the events
 * (location first, then consensus) numbered from the target's sequence.
 */
export function applyObservation(
  current: TargetSnapshot | undefined,
  obs: Observation,
  policy: ConsensusPolicy,
): FoldResult {
  let held = current;
  if (held && isTombstone(held)) {
    // A deleted check's late result (a spool, an offline collector's old assignment) never revives it; a removed
    // instance comes back with an observation newer than its removal (a pod re-created under its name).
    if (held.kind === TargetKind.Check || obs.at <= (held.deletedAt as number))
      return { target: held, events: [], applied: false };
    held = { ...emptyTarget(held.id, held.kind, obs.name || held.name), seq: held.seq };
  }
  if (obs.lifecycle === REMOVED && obs.kind !== TargetKind.Check) {
    const elsewhere = held ? Object.keys(held.locations).filter((name) => name !== obs.location) : [];
    if (held && elsewhere.length > 0) return removeLocation(held, obs, policy);
    // Gone for good: out of live state (no location, no deadline, so no STALE), history kept. A removal older than
    // the newest state held is an earlier life's, late: it changes nothing.
    const newest = Math.max(-Infinity, ...Object.values(held?.locations ?? {}).map((l) => l.observedAt));
    if (held && obs.at < newest) return { target: held, events: [], applied: false };
    const base = held ?? emptyTarget(obs.targetId, obs.kind, obs.name);
    // Its locations and its consensus go to UNKNOWN, in events: the alert evaluator follows status.changed events
    // (and reads target_states only every few minutes), so without them it kept the instance at its last status —
    // a pod terminating is DOWN — and 'Target down' fired for a pod that is gone. A new life's events follow on.
    return tombstoneOf(base, {
      at: obs.at,
      deletedAt: obs.at,
      lastSeen: Math.max(base.lastSeen ?? obs.at, obs.at),
      reason: obs.reason,
      consensusReason: `location ${obs.location}: ${obs.reason}`,
    });
  }
  const fresh = held ?? emptyTarget(obs.targetId, obs.kind, obs.name);
  if (fresh.paused) {
    // Stored in history by the caller; here it only proves life. A location first heard while
    // paused is left out: it appears with its first result after the resume.
    const prev = fresh.locations[obs.location];
    const lastSeen = Math.max(fresh.lastSeen ?? obs.at, obs.at);
    const locations = prev
      ? { ...fresh.locations, [obs.location]: { ...prev, lastSeen: Math.max(prev.lastSeen, obs.at) } }
      : fresh.locations;
    return { target: { ...fresh, lastSeen, locations }, events: [], applied: false };
  }
  // A check the configuration owner has told of (check.lifecycle) takes its quorum from there alone (as its name and
  // tags, below): a result carries the quorum of the assignment its collector ran, so after an edit the results of
  // collectors on the new and the old assignment set it in turn, and the consensus flapped DOWN ↔ PARTIAL every
  // interval until each had read it (for ever while the configuration owner was away).
  const ownQuorum =
    obs.downQuorumPct !== undefined && !(fresh.kind === TargetKind.Check && fresh.configVersion != null);
  const base = ownQuorum ? { ...fresh, downQuorumPct: obs.downQuorumPct } : fresh;
  const prev = base.locations[obs.location];
  const lastSeen = Math.max(base.lastSeen ?? obs.at, obs.at);
  if (prev && !isNewer(prev, obs.at)) {
    const location = {
      ...prev,
      lastSeen: Math.max(prev.lastSeen, obs.at),
      deadline: heldDeadlineAfter(prev, obs),
    };
    return {
      // An older observation moves lastSeen only, and the STALE deadline when it agrees with the held status (its
      // quorum is not newer either).
      target: { ...fresh, lastSeen, locations: { ...fresh.locations, [obs.location]: location } },
      events: [],
      applied: false,
    };
  }
  const status = obs.status ?? prev?.status ?? TargetStatus.Unknown;
  const deadline =
    obs.deadline !== undefined ? deadlineAfter(prev?.deadline ?? null, obs.deadline) : (prev?.deadline ?? null);
  // A location's first result ends the wait for it (AWAITING_FIRST_RESULT), whatever deadline it keeps: one without a
  // deadline of its own (no interval), or a held one a longer interval moved (deadlineAfter).
  const next: LocationSnapshot = {
    status,
    // A status-less observation (heartbeat start) proves life but keeps the status's own time.
    observedAt: obs.status === null && prev ? prev.observedAt : obs.at,
    lastSeen: Math.max(prev?.lastSeen ?? obs.at, obs.at),
    latencyMs: obs.latencyMs !== undefined ? obs.latencyMs : (prev?.latencyMs ?? null),
    detail: obs.detail !== undefined ? obs.detail : (prev?.detail ?? null),
    lifecycle: obs.lifecycle !== undefined ? obs.lifecycle : (prev?.lifecycle ?? null),
    deadline: obs.status !== null ? notAwaiting(deadline) : deadline,
    run: obs.run !== undefined ? obs.run : (prev?.run ?? null),
  };
  // A check's result bounds the wait for the other locations awaited (boundAwaited): they run it at the same instant.
  const peers =
    base.kind === TargetKind.Check && obs.status !== null && obs.peersDueBy !== undefined && runsAt(base, obs.location)
      ? boundAwaited(base.locations, obs.location, obs.peersDueBy)
      : base.locations;
  const folded = withLocation({ ...base, locations: peers }, obs.location, next, obs.reason, obs.at, policy);
  // A check the configuration owner has told of (check.lifecycle) is named, tagged and typed by it alone: a result
  // run with an older assignment (in flight, spooled, a collector behind) put the old name and tags back after a
  // rename or retag, and selectors by tag stopped or started matching until the next result.
  const configured = base.kind === TargetKind.Check && base.configVersion != null;
  const target: TargetSnapshot = {
    ...folded.target,
    name: configured ? folded.target.name : obs.name || folded.target.name,
    lastSeen,
    lastLatencyMs: obs.latencyMs !== undefined && obs.latencyMs !== null ? obs.latencyMs : folded.target.lastLatencyMs,
    lifecycle: obs.lifecycle !== undefined ? obs.lifecycle : folded.target.lifecycle,
    tags: configured ? folded.target.tags : (obs.tags ?? folded.target.tags),
    labels: configured ? folded.target.labels : (obs.labels ?? folded.target.labels),
  };
  const instanceKind = instanceKindAfter(base, obs);
  if (instanceKind !== undefined) target.instanceKind = instanceKind;
  return { target, events: folded.events, applied: true };
}

/**
 * The STALE deadline a newer result sets — unless the held one was moved by a longer interval (check.lifecycle:
 * CHECK_INTERVAL_CHANGED) and the result was run with a shorter one: a run in flight (or spooled) when the interval
 * was lengthened carries the old one, and its deadline undid the moved one (STALE before the first run on the new
 * schedule). The later of the two then. Any other result sets its own — one run with a newly shortened interval too
 * (keeping the long deadline there left a collector that died after the change UP for two old intervals).
 */
function deadlineAfter(held: Deadline | null, next: Deadline | null): Deadline | null {
  if (held === null || next === null || held.expireTo !== TargetStatus.Stale || next.expireTo !== TargetStatus.Stale)
    return next;
  if (!held.reason.includes(CHECK_INTERVAL_CHANGED)) return next;
  const heldInterval = checkIntervalOf(held.reason);
  const nextInterval = checkIntervalOf(next.reason);
  if (heldInterval === undefined || nextInterval === undefined || nextInterval >= heldInterval) return next;
  return held.at > next.at ? held : next;
}

/**
 * Appended to a location's STALE deadline reason when an observation stamped before its state says another status:
 * from then on older observations no longer move that deadline, whatever they say (see heldDeadlineAfter). Kept in
 * the reason, which is stored with the deadline (target_location_states.expire_reason), so the mark lasts as long
 * as the deadline does — a newer observation brings its own, unmarked — and the STALE event says why.
 */
export const CONTRADICTED_BY_OLDER = ' (observations stamped before the held state say another status)';

/**
 * The deadline a location keeps when an observation older than its state arrives (ordered out of the status: a late
 * redelivery, a spool flushed out of order — or a sender whose clock stepped back, which stamps everything it sends
 * before what it sent last). Such an observation still proves its location is reporting, and its STALE deadline
 * counts from when it was heard (observation.mapper `heardAt`): when it says the status the location holds, that
 * deadline moves the held one later, never earlier. Without it a collector whose clock stepped back 10 minutes had
 * its host and checks go STALE after one window, and stay STALE, for 10 minutes while its samples and results kept
 * arriving. One that says another status does not, and marks the deadline (CONTRADICTED_BY_OLDER): later agreeing
 * ones no longer move it either, so the location goes STALE one window after the last agreeing one before it rather
 * than keep a status its newest results contradict — a target failing 19 runs in 20 was held UP by the twentieth
 * for as long as the step lasted. A newer observation sets the status and its own deadline (unmarked). An expired
 * deadline (STALE) is not revived, nor is a heartbeat's (DOWN: a ping's deadline counts from the ping, a run's from
 * its start).
 */
function heldDeadlineAfter(prev: LocationSnapshot, obs: Observation): Deadline | null {
  const held = prev.deadline;
  const offered = obs.deadline;
  if (held === null || offered === undefined || offered === null) return held;
  if (held.expireTo !== TargetStatus.Stale || offered.expireTo !== TargetStatus.Stale) return held;
  const contradicted = held.reason.endsWith(CONTRADICTED_BY_OLDER);
  if (obs.status !== prev.status) {
    if (obs.status === null || contradicted) return held;
    return { ...held, reason: held.reason + CONTRADICTED_BY_OLDER };
  }
  if (contradicted || offered.at <= held.at) return held;
  return { ...held, at: offered.at };
}

/**
 * The instance kind after an applied observation: the latest update's wins — the observation's, unless another
 * location holds a newer state (an update from a location that lagged behind, applied there, does not take back a
 * kind a newer update set: an instance re-created as a pod after being a container stays a pod). undefined: the
 * target's, unchanged.
 */
function instanceKindAfter(held: TargetSnapshot, obs: Observation): InstanceKind | undefined {
  if (obs.instanceKind === undefined || obs.instanceKind === held.instanceKind) return undefined;
  if (held.instanceKind === undefined || held.instanceKind === null) return obs.instanceKind;
  for (const name in held.locations)
    if (name !== obs.location && held.locations[name].observedAt > obs.at) return undefined;
  return obs.instanceKind;
}

/**
 * The target as a tombstone: no location, no status, no deadline (out of live state, never STALE), its history kept;
 * each location and the consensus that were not UNKNOWN go there in events (dated `at`, numbered on), so the alert
 * evaluator — which follows status.changed events — sees it leave its last status (its alerts resolve).
 */
export function tombstoneOf(
  base: TargetSnapshot,
  r: { at: number; deletedAt: number; lastSeen: number | null; reason: string; consensusReason: string },
): FoldResult {
  let seq = base.seq;
  const event = (location: string | null, from: TargetStatus, reason: string): StatusEventDraft => ({
    targetId: base.id,
    kind: base.kind,
    location,
    from,
    to: TargetStatus.Unknown,
    reason,
    at: r.at,
    sequence: ++seq,
  });
  const events: StatusEventDraft[] = [];
  for (const name of Object.keys(base.locations).sort())
    if (base.locations[name].status !== TargetStatus.Unknown)
      events.push(event(name, base.locations[name].status, r.reason));
  const changed = base.status !== TargetStatus.Unknown;
  if (changed) events.push(event(null, base.status, r.consensusReason));
  return {
    target: {
      ...base,
      locations: {},
      paused: false,
      deletedAt: r.deletedAt,
      lastSeen: r.lastSeen,
      status: TargetStatus.Unknown,
      since: changed ? r.at : base.since,
      seq,
    },
    events,
    applied: true,
  };
}

/**
 * Retires a whole target on request (a host taken out of service: `DELETE /api/v1/hosts/{id}`), as a removed
 * instance is retired: a tombstone (see tombstoneOf), its history kept. It comes back as a new life with an
 * observation newer than the retirement (its events numbered on). The retirement covers everything folded before
 * it, whatever the time each carried: it is dated at `at`, or at the target's newest time when that is later (a
 * collector whose clock runs ahead), so that only an observation stamped after both brings the target back. A target
 * already retired (a tombstone) stays as it is (applied false). Every location goes, whoever reports it.
 */
export function retireTarget(current: TargetSnapshot, at: number, reason: string): FoldResult {
  if (isTombstone(current)) return { target: current, events: [], applied: false };
  const retiredAt = Math.max(
    at,
    current.lastSeen ?? at,
    ...Object.values(current.locations).map((l) => Math.max(l.observedAt, l.lastSeen)),
  );
  return tombstoneOf(current, {
    at: retiredAt,
    deletedAt: retiredAt,
    lastSeen: current.lastSeen,
    reason,
    consensusReason: reason,
  });
}

/**
 * A removal (`removed`) of an instance still reported from other locations (the same instance id from two watchers):
 * only its state at the removal's location goes — an event to UNKNOWN there, the consensus of the others — not the
 * target. A removal older than that location's state, or from a location it does not report from, changes nothing.
 */
function removeLocation(held: TargetSnapshot, obs: Observation, policy: ConsensusPolicy): FoldResult {
  const prev = held.locations[obs.location];
  if (prev === undefined || obs.at < prev.observedAt) return { target: held, events: [], applied: false };
  const locations = { ...held.locations };
  delete locations[obs.location];
  const consensus = consensusOfLocations(held, locations, policy);
  const transitions = transitionsFor(
    obs.location,
    prev.status,
    TargetStatus.Unknown,
    held.status,
    consensus,
    obs.reason,
  );
  let seq = held.seq;
  const events = transitions.map((t) => ({
    targetId: held.id,
    kind: held.kind,
    location: t.location,
    from: t.from,
    to: t.to,
    reason: t.reason,
    at: obs.at,
    sequence: ++seq,
  }));
  const changed = consensus !== held.status;
  return {
    target: {
      ...held,
      locations,
      status: consensus,
      since: changed ? obs.at : held.since,
      seq,
      lastSeen: Math.max(held.lastSeen ?? obs.at, obs.at),
    },
    events,
    applied: true,
  };
}

export interface ExpiryResult extends FoldResult {
  /** The heartbeat run that was in progress when a max-runtime deadline passed. */
  timedOutRun: { startedAt: number; runId: string | null } | null;
}

/**
 * The sweeper's rule: when the location's deadline is at or before `now`, the
 * location takes the deadline's status (STALE, or DOWN for heartbeats) and the
 * deadline is cleared. A deadline moved by a fresher observation is not due and
 * changes nothing. The observation time is kept, so any newer observation
 * revives the location.
 */
export function applyExpiry(
  current: TargetSnapshot,
  location: string,
  now: number,
  policy: ConsensusPolicy,
): ExpiryResult {
  const prev = current.locations[location];
  // A pause clears every deadline; a tombstone has no location. Guarded anyway: nothing expires there.
  if (current.paused || isTombstone(current) || !prev || prev.deadline === null || prev.deadline.at > now)
    return { target: current, events: [], applied: false, timedOutRun: null };
  const { deadline } = prev;
  const next: LocationSnapshot = { ...prev, status: deadline.expireTo, deadline: null, run: null };
  const folded = withLocation(current, location, next, deadline.reason, deadline.at, policy);
  return { target: folded.target, events: folded.events, applied: true, timedOutRun: prev.run };
}

/** The consensus rule for one target: its own quorum when it has one, else the site's. */
export function policyOf(target: Pick<TargetSnapshot, 'downQuorumPct'>, site: ConsensusPolicy): ConsensusPolicy {
  return target.downQuorumPct ? { ...site, downQuorumPct: target.downQuorumPct } : site;
}

/** Tags of a pushed instance: its labels as `key=value`, sorted. */
export function tagsOfLabels(labels: Record<string, string> | undefined): string[] | undefined {
  if (!labels) return undefined;
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}
