import { TargetStatus } from '@fleetwatch/contracts';
import type { Deadline, LocationSnapshot, TargetSnapshot } from './target-state';

export type HeartbeatSignal = 'success' | 'start' | 'fail';

/**
 * The one location of every heartbeat monitor. A ping URL is one monitor: which ingest replica (and so which
 * FLEETWATCH_LOCATION) receives a ping says nothing of the job, and split across locations a run started through
 * one replica never finished through another.
 */
export const HEARTBEAT_LOCATION = 'push';

export interface HeartbeatPing {
  signal: HeartbeatSignal;
  /** Epoch ms the edge received the ping. */
  at: number;
  /**
   * Epoch ms it was heard here (the folding aggregator's clock when it arrived). Its deadline counts from the later of
   * this and `at`: stamped by an ingest replica whose clock is behind (or drained from a backlog), a ping counted from
   * its own time alone came with its deadline passed, and the monitor went DOWN at the next sweep on every ping.
   */
  heardAt?: number;
  runId: string | null;
  periodSeconds: number;
  graceSeconds: number;
  /**
   * The config version the schedule (period, grace) was read at: the check's, read with the monitor in one statement.
   * Absent from a status-ingest of before it was sent. See configuredPingWindowOf.
   */
  configVersion?: number;
  maxRuntimeSeconds: number | null;
  /** The body the job sent with it (its output), if any. */
  output?: string | null;
  /** The exit code the job sent as `/ping/{token}/{code}` (0–255), if any: a fail ping's reason names it. */
  exitCode?: number | null;
}

/** Characters of a fail ping's output shown in its reason (the location's detail and its status event). */
export const FAIL_OUTPUT_CHARS = 200;

/**
 * A fail ping's reason: `fail ping`, its exit code when the job sent one (`/ping/{token}/3`: `fail ping (exit code 3)`),
 * and the first line of what the job sent with it (`fail ping: disk full`, `fail ping (exit code 3): disk full`), so the
 * operator reads why where the status shows, not only in the stored ping.
 */
export function failReasonOf(output: string | null | undefined, exitCode?: number | null): string {
  const head = exitCode === undefined || exitCode === null ? 'fail ping' : `fail ping (exit code ${exitCode})`;
  const line = (output ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  if (!line) return head;
  const chars = Array.from(line);
  return `${head}: ${chars.length > FAIL_OUTPUT_CHARS ? `${chars.slice(0, FAIL_OUTPUT_CHARS - 1).join('')}…` : line}`;
}

export interface FinishedRun {
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  outcome: 'ok' | 'fail';
}

export interface HeartbeatStep {
  /** null: `start` keeps the status (a run in progress is neither up nor down yet). */
  status: TargetStatus | null;
  reason: string;
  deadline: Deadline | null;
  run: LocationSnapshot['run'];
  /** A start → success/fail pair completed by this ping. */
  finished: FinishedRun | null;
}

/**
 * Heartbeat monitors (SPEC §6, cron-monitor style): `success` is UP and expects
 * the next ping within period + grace; `fail` is DOWN at once; `start` opens a
 * run that must finish within maxRuntime (else within period + grace). Missing
 * a deadline is DOWN. A finishing ping matches the open run when the run ids
 * agree (or either has none, and it is not from before the run's start). A start
 * from before the open run's (delivered late) leaves the open run alone.
 *
 * `configuredWindowMs`: the monitor's period + grace as its configuration says (configuredPingWindowOf), which wins
 * over the schedule the ping carries — the receiving replica's, cached until it heard of a change. Counted with the
 * old one, a job moved from hourly to daily went DOWN an hour on, one moved from weekly to hourly that then stopped
 * only a week on; and every ping through a replica not yet told did so again (a `start`, a finish of a run open at the
 * change, a ping after one through a replica told). undefined: the ping's own (a target told of none, or a ping read
 * at a newer config version than the window held).
 */
export function heartbeatStep(
  current: LocationSnapshot | undefined,
  ping: HeartbeatPing,
  configuredWindowMs?: number,
): HeartbeatStep {
  const heard = Math.max(ping.at, ping.heardAt ?? ping.at);
  const open = current?.run ?? null;
  if (ping.signal === 'start') {
    // A start received before the open run's, delivered after it (a client's retry, another replica's slow confirm, a
    // redelivery): that run began earlier and is not the one in progress. Replacing the open run with it gave the run
    // in progress an earlier deadline (DOWN before its max runtime) and a later success the wrong start.
    if (open !== null && ping.at < open.startedAt)
      return { status: null, reason: 'late run start', deadline: current?.deadline ?? null, run: open, finished: null };
    return {
      status: null,
      reason: 'run started',
      deadline: runDeadlineOf(heard, ping, configuredWindowMs),
      run: { startedAt: ping.at, runId: ping.runId },
      finished: null,
    };
  }
  // The run's own id names it whatever the times say: each ingest replica stamps pings with its own clock, and a
  // run started through one that is ahead and finished soon after through another had a finish before its start —
  // left open, it timed out (DOWN) at its max runtime though the job had finished. Without ids, a finishing ping from
  // before the run's start is another run's.
  const sameRun = open !== null && open.runId !== null && open.runId === ping.runId;
  const matches =
    open !== null &&
    (sameRun ||
      ((open.runId === null || ping.runId === null || open.runId === ping.runId) && ping.at >= open.startedAt));
  const finishedAt = open !== null ? Math.max(ping.at, open.startedAt) : ping.at;
  const finished: FinishedRun | null = matches
    ? {
        startedAt: open.startedAt,
        finishedAt,
        durationMs: finishedAt - open.startedAt,
        outcome: ping.signal === 'success' ? 'ok' : 'fail',
      }
    : null;
  // A ping that finishes another run (its id differs) leaves the open run open, and with it the run's deadline (its
  // max runtime): replaced by this ping's, the run timed out only when that later one passed (a period on), or never.
  // Worked out from the run itself: the location's stored deadline may be an earlier ping's by now.
  const runDeadline = !matches && open !== null ? runDeadlineOf(open.startedAt, ping, configuredWindowMs) : null;
  if (ping.signal === 'fail') {
    return {
      status: TargetStatus.Down,
      reason: failReasonOf(ping.output, ping.exitCode),
      deadline: runDeadline,
      run: matches ? null : open,
      finished,
    };
  }
  const next = windowDeadlineOf(heard, ping, configuredWindowMs);
  return {
    status: TargetStatus.Up,
    reason: 'ping',
    deadline: runDeadline !== null && runDeadline.at < next.at ? runDeadline : next,
    run: matches ? null : open,
    finished,
  };
}

/**
 * The next ping due period + grace after `from`: the configured window (`configuredWindowMs`) when the target holds
 * one that differs from the ping's, said as a schedule change says it (pingWindowChangedReason), else the ping's own.
 */
function windowDeadlineOf(from: number, ping: HeartbeatPing, configuredWindowMs: number | undefined): Deadline {
  const own = (ping.periodSeconds + ping.graceSeconds) * 1000;
  return configuredWindowMs !== undefined && configuredWindowMs !== own
    ? {
        at: from + configuredWindowMs,
        expireTo: TargetStatus.Down,
        reason: pingWindowChangedReason(configuredWindowMs),
      }
    : { at: from + own, expireTo: TargetStatus.Down, reason: pingWindowReason(ping.periodSeconds, ping.graceSeconds) };
}

/** When a run started at `startedAt` must have finished: its max runtime, else within period + grace. */
function runDeadlineOf(startedAt: number, ping: HeartbeatPing, configuredWindowMs: number | undefined): Deadline {
  const limit = ping.maxRuntimeSeconds;
  return limit !== null
    ? {
        at: startedAt + limit * 1000,
        expireTo: TargetStatus.Down,
        reason: `run not finished within max runtime ${limit}s`,
      }
    : windowDeadlineOf(startedAt, ping, configuredWindowMs);
}

/** Checks turn STALE after two missed intervals plus this slack (collector scheduling jitter, timeouts). */
export const CHECK_STALE_SLACK_MS = 5_000;

/** How long past its timeout the collector waits for a probe that ignores its abort (the collector's PROBE_GRACE_MS). */
const PROBE_OVERRUN_MS = 1_000;
/** The longest timeout a check may have (check-fields): what a result that does not say its own is counted with. */
const MAX_CHECK_TIMEOUT_SECONDS = 300;
/**
 * How much later than the first location a healthy one may start the same run: a collector that missed the
 * config.changed of a creation or resume reads it on its next assignment refresh (COLLECTOR_ASSIGNMENT_REFRESH_SECONDS,
 * 60 s by default), and a full concurrency queue, a catch-up after a restart, a spool or broker delay at one site or
 * the clock's jitter (NTP) each make a run's result come late by less.
 */
export const PEER_LATENESS_MS = 60_000;

/**
 * The longest interval whose next slot a healthy location is still waited for (ms): a collector that missed the
 * config.changed of a creation or resume reads the check on its assignment refresh (PEER_LATENESS_MS), and when the
 * check's first slot fell before that it runs the check at the next slot, one interval after the others. Up to 15 min
 * intervals the others wait for that slot; beyond, a location silent that long is DOWN within about 16 minutes
 * (rather than held UNKNOWN up to two intervals), and one that reports at its next slot is heard as any STALE one is
 * (DOWN, then PARTIAL). The creation's or resume's own deadline (two intervals) still bounds the wait: the bound only
 * ever brings a deadline forward (boundAwaited).
 */
export const MISSED_SLOT_CAP_MS = 15 * 60_000;

/**
 * How long after one location's result of a run the same run's result from every other location that runs the check
 * is due (ms, from when the first was heard): its attempts (retries + 1), each its timeout and the probe's overrun
 * (never more than the interval: a run ends before its next slot), the lateness a healthy location may run the slot
 * with (PEER_LATENESS_MS), one missed slot (the interval, up to MISSED_SLOT_CAP_MS) and the staleness slack
 * (scheduling jitter, transport). Every collector runs a check at the same instants (collector scheduler/phase.ts: a
 * grid anchored at the epoch, the phase a hash of the check id; a collector whose wall clock stepped re-plans on it),
 * so a location that reports nothing by then has not run it — its collector is down, or does not know the check yet.
 * A result that does not say its timeout (a collector from before it was sent) is counted with the longest a check may
 * have; one that does not say its retries, with none. For a daily check with a 10 s timeout: 16 min 16 s (the one
 * location silent is DOWN about a quarter of an hour after the others agree, not two days on); for a 5-min one, 6 min
 * 16 s; for a 60 s one, 136 s — past the creation's or resume's own deadline (2 × 60 s + 5 s), which then stands.
 */
export function peerResultGraceMs(run: { intervalSeconds: number; timeoutSeconds?: number; retries?: number }): number {
  const attempts = (run.retries ?? 0) + 1;
  const intervalMs = run.intervalSeconds * 1000;
  const timeoutMs = (run.timeoutSeconds ?? MAX_CHECK_TIMEOUT_SECONDS) * 1000;
  return (
    Math.min(intervalMs, attempts * (timeoutMs + PROBE_OVERRUN_MS)) +
    PEER_LATENESS_MS +
    Math.min(intervalMs, MISSED_SLOT_CAP_MS) +
    CHECK_STALE_SLACK_MS
  );
}

/** The reason of a probed check's STALE deadline, naming the interval it was set with (checkIntervalOf reads it). */
export function checkStaleReason(intervalSeconds: number): string {
  return `no result within 2 × ${intervalSeconds}s`;
}

/**
 * Appended to a probed check's STALE deadline reason when a longer interval moved it (check.lifecycle): until a result
 * run with that interval comes, a result run with the old, shorter one does not pull it back (target-state
 * deadlineAfter).
 */
export const CHECK_INTERVAL_CHANGED = ' (the interval was changed)';

/**
 * The interval (ms) a probed check's STALE deadline was set with, read from its reason (checkStaleReason, a result's or
 * a resume's); undefined for any other deadline.
 */
export function checkIntervalOf(reason: string): number | undefined {
  const m = /^no result within 2 × (\d+)s/.exec(reason);
  return m ? Number(m[1]) * 1000 : undefined;
}

/** The reason of a host's STALE deadline, naming its sampling interval (hostIntervalOf reads it). */
export function hostStaleReason(intervalSeconds: number): string {
  return `no metrics within 2 × ${intervalSeconds}s`;
}

/** The sampling interval (ms) a host's STALE deadline was set with (hostStaleReason); undefined for any other. */
export function hostIntervalOf(reason: string): number | undefined {
  const m = /^no metrics within 2 × (\d+)s/.exec(reason);
  return m ? Number(m[1]) * 1000 : undefined;
}

/**
 * How often a target is expected to report (ms): the longest interval its locations' STALE deadlines were set with —
 * a probed check's interval (checkIntervalOf), a host's sampling interval (hostIntervalOf). Null when none says
 * (pushed instances, heartbeat monitors, a collector that does not send its interval, no deadline running).
 */
export function reportIntervalOf(target: Pick<TargetSnapshot, 'locations'>): number | null {
  let longest: number | null = null;
  for (const l of Object.values(target.locations)) {
    if (l.deadline === null || l.deadline.expireTo !== TargetStatus.Stale) continue;
    const ms = checkIntervalOf(l.deadline.reason) ?? hostIntervalOf(l.deadline.reason);
    if (ms !== undefined && (longest === null || ms > longest)) longest = ms;
  }
  return longest;
}

/** The reason of a deadline that waits for the next ping, naming the schedule it was set with (pingWindowOf reads it). */
export function pingWindowReason(periodSeconds: number, graceSeconds: number): string {
  return `no ping within period ${periodSeconds}s + grace ${graceSeconds}s`;
}

/**
 * The reason of a deadline that waits for the next ping within a window the configuration set (check.lifecycle): a
 * schedule change's, a creation's or resume's (with ` of …` appended), or a ping's counted with the configured window
 * rather than its own (heartbeatStep). pingWindowOf reads it.
 */
export function pingWindowChangedReason(windowMs: number): string {
  return `no ping within period + grace (${windowMs / 1000}s)`;
}

/**
 * The period + grace (ms) a deadline waiting for the next ping was set with, read from its reason: a ping's
 * (pingWindowReason), or one the configuration's window set (pingWindowChangedReason: a push check's creation, resume
 * or schedule change, a ping counted with the configured window; `no ping within period + grace (Ns)…`). undefined
 * for any other deadline. A schedule change moves such a deadline by the difference, so whatever it counted from (the
 * ping's time, or when it was heard when that was later) is kept.
 */
export function pingWindowOf(reason: string): number | undefined {
  const split = /^no ping within period (\d+)s \+ grace (\d+)s$/.exec(reason);
  if (split) return (Number(split[1]) + Number(split[2])) * 1000;
  const whole = /^no ping within period \+ grace \((\d+)s\)/.exec(reason);
  return whole ? Number(whole[1]) * 1000 : undefined;
}
