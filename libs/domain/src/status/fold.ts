import { TargetKind } from '@fleetwatch/contracts';
import type { ConsensusPolicy } from './consensus';
import { heartbeatStep, type FinishedRun, type HeartbeatPing } from './heartbeat';
import { applyLifecycle, withPingWindow, type CheckLifecycle } from './check-lifecycle';
import {
  applyObservation,
  configuredPingWindowOf,
  isTombstone,
  keepOneLocation,
  pingWindowOfPing,
  retireTarget,
  runsAt,
  type FoldResult,
  type Observation,
  type StatusEventDraft,
  type TargetSnapshot,
} from './target-state';

/** One observation to fold, with the id that makes it idempotent (its message id). */
export type FoldItem =
  | { type: 'observation'; id: string; observation: Observation }
  /** A check's lifecycle from the configuration owner: idempotent by its config version, not by `id`. */
  | { type: 'lifecycle'; id: string; lifecycle: CheckLifecycle }
  /**
   * A target retired on request (a host: `host.retire`), as of `at` (epoch ms): a tombstone until an observation newer
   * than that brings it back (retireTarget). Idempotent by `id`, like an observation (its history row says it is new).
   */
  | { type: 'retire'; id: string; targetId: string; at: number; reason: string }
  | {
      type: 'ping';
      id: string;
      targetId: string;
      location: string;
      name: string;
      ping: HeartbeatPing;
      /** The heartbeat monitor whose runs and ping times are recorded; null records none (not a stored monitor). */
      monitorId: string | null;
    };

/** Ping times to record on a heartbeat monitor (only ever moved forward). */
export interface MonitorPings {
  monitorId: string;
  lastPingAt: number | null;
  lastStartAt: number | null;
}

export interface FoldOutcome {
  /** Every target after the fold (the ones given, plus new ones). */
  targets: Map<string, TargetSnapshot>;
  /** Targets an observation was folded into, in first-touched order. */
  changed: Set<string>;
  /** Targets of duplicates: already stored, so only their live state may need repairing. */
  resync: Set<string>;
  events: StatusEventDraft[];
  /** Heartbeat runs a ping finished. */
  runs: Array<FinishedRun & { monitorId: string; targetId: string }>;
  touches: MonitorPings[];
  /** Locations a fold dropped (a heartbeat monitor's others: it has one): their stored state is to be deleted. */
  dropped: Array<{ targetId: string; location: string }>;
  /** Ids of the items that changed state (not duplicates, not older than what is known). */
  applied: Set<string>;
  /** Items skipped: seen before (not in `fresh`) or twice in this fold. */
  duplicates: number;
}

/**
 * Folds observations, in delivery order, into the targets' state: each fresh
 * item once (idempotent by id: `fresh` holds the ids seen for the first time,
 * as the history insert reported them), heartbeat pings through their run rules,
 * everything through `applyObservation` (per-location status, consensus, ordered
 * events). Pure: the caller reads the targets before and stores the outcome.
 */
export function foldObservations(
  current: ReadonlyMap<string, TargetSnapshot>,
  items: readonly FoldItem[],
  fresh: ReadonlySet<string>,
  policy: ConsensusPolicy,
): FoldOutcome {
  const targets = new Map(current);
  const changed = new Set<string>();
  const resync = new Set<string>();
  const events: StatusEventDraft[] = [];
  const runs: FoldOutcome['runs'] = [];
  const touches = new Map<string, MonitorPings>();
  const dropped: FoldOutcome['dropped'] = [];
  const applied = new Set<string>();
  const folded = new Set<string>();
  let duplicates = 0;

  for (const item of items) {
    const targetId =
      item.type === 'ping' || item.type === 'retire'
        ? item.targetId
        : item.type === 'lifecycle'
          ? item.lifecycle.targetId
          : item.observation.targetId;
    if (item.type === 'lifecycle') {
      // No history row says whether it is new: its version against the target's does.
      const result = applyLifecycle(targets.get(targetId), item.lifecycle, policy);
      if (!result.applied) {
        // Not newer than what the target holds (redelivered, or overtaken by a newer version): a
        // redelivery may follow a crash before the live state it caused was written, so re-project.
        resync.add(targetId);
        duplicates++;
        continue;
      }
      applied.add(item.id);
      targets.set(targetId, result.target);
      changed.add(targetId);
      events.push(...result.events);
      for (const location of result.dropped) dropped.push({ targetId, location });
      continue;
    }
    if (!fresh.has(item.id) || folded.has(item.id)) {
      duplicates++;
      resync.add(targetId);
      continue;
    }
    folded.add(item.id);
    const before = targets.get(targetId);
    // A deleted check's late result or ping: stored in history by the caller, nothing else. (A removed instance's
    // update goes on to applyObservation: a newer one brings it back.)
    if (isTombstone(before) && before?.kind === TargetKind.Check) continue;
    // A result from a location the check's configuration no longer runs (a collector that has not read its new
    // assignment yet, a spool): history only. Folded, it brought the dropped location back, to read STALE for ever.
    // One the target holds is folded whatever the list says: a replica of the version before (a rolling upgrade, a
    // rollback) applies lifecycles without writing the list, which may then lag the check's configuration.
    if (
      item.type === 'observation' &&
      before?.kind === TargetKind.Check &&
      !runsAt(before, item.observation.location) &&
      before.locations[item.observation.location] === undefined
    )
      continue;
    let result: FoldResult;
    if (item.type === 'retire') {
      // A target never heard of is not made up to be retired; one retired already stays as it is.
      if (before === undefined) continue;
      result = retireTarget(before, item.at, item.reason);
      if (!result.applied) continue;
    } else if (item.type === 'ping') {
      // One location per monitor (its ping URL), wherever the ping arrived: a state kept at other locations (before
      // pings had one) is carried into it and dropped. Split across ingest replicas, a run started through one never
      // ended through another, and each location went DOWN when the pings went through the other replicas.
      const one = before ? keepOneLocation(before, item.location, item.ping.at, policy) : null;
      if (one !== null && one.dropped.length > 0) {
        for (const location of one.dropped) dropped.push({ targetId, location });
        events.push(...one.events);
      }
      const base = one?.target ?? before;
      // Counted with the window the monitor's configuration says when the target holds it, not the ping's own: the
      // receiving replica's, which may not have heard of a change yet — unless the ping was read at a newer config
      // version than that window (the lifecycle not folded yet): its own, which the target then holds.
      const step = heartbeatStep(
        base?.locations[item.location],
        item.ping,
        configuredPingWindowOf(base, item.ping.configVersion),
      );
      result = applyObservation(
        base,
        {
          targetId,
          kind: base?.kind ?? TargetKind.Check,
          name: item.name,
          location: item.location,
          at: item.ping.at,
          status: step.status,
          reason: step.reason,
          // What the job said when it failed stays shown on the location until a success; a start keeps it.
          ...(item.ping.signal === 'fail'
            ? { detail: step.reason }
            : item.ping.signal === 'success'
              ? { detail: null }
              : {}),
          deadline: step.deadline,
          run: step.run,
        },
        policy,
      );
      // Read at a config version the target has not heard of: the target holds its window from now on (also when the
      // ping itself changed nothing — a late one: it still says what that version configured), and a deadline an older
      // window set (a later-stamped ping of an older version, this one not counted) moves to it, as that version's
      // lifecycle will move it: left, a job that stopped was due by the older window until the lifecycle landed.
      const held = pingWindowOfPing(result.target, item.ping);
      if (held !== result.target) result = { ...result, target: withPingWindow(held, held.pingWindowMs ?? undefined) };
      if (item.monitorId !== null) {
        if (result.applied && step.finished) runs.push({ ...step.finished, monitorId: item.monitorId, targetId });
        const touch = touches.get(item.monitorId) ?? { monitorId: item.monitorId, lastPingAt: null, lastStartAt: null };
        touch.lastPingAt = Math.max(touch.lastPingAt ?? 0, item.ping.at);
        if (item.ping.signal === 'start') touch.lastStartAt = Math.max(touch.lastStartAt ?? 0, item.ping.at);
        touches.set(item.monitorId, touch);
      }
    } else {
      result = applyObservation(before, item.observation, policy);
    }
    if (result.applied) applied.add(item.id);
    targets.set(targetId, result.target);
    changed.add(targetId);
    events.push(...result.events);
  }
  // A location dropped and brought back within this fold (a lifecycle leaving it out, a later one running it again
  // and its result) is stored, not deleted.
  const gone = dropped.filter((d) => targets.get(d.targetId)?.locations[d.location] === undefined);
  return { targets, changed, resync, events, runs, touches: [...touches.values()], dropped: gone, applied, duplicates };
}
