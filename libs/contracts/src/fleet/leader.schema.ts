import { z } from 'zod';
import type { DriftArea, MemberSnapshotView } from './snapshot.schema';
import type { FlowMetrics, FlowPoint, MemberReport } from './report.schema';

// What a leader serves about its members (SPEC §8 leader endpoints). The poller
// (sync-orchestrator) keeps each member's last good report, flow and snapshot in Redis with
// the last attempt; the gateway reads them. A member whose last poll failed is STALE: its
// last good data is still served, with its age and the error.

/** One poll of one member, as cached. Endpoints a member does not have (404) leave their part null. */
export interface MemberPollRecord {
  /**
   * Last attempt: when it ended, whether it succeeded, the error when not. `nextBy`: when a next attempt is to have
   * ended at the latest (two whole cycles later: the poller's fixed delay and its overall timeout, twice); past it
   * with no newer attempt, nobody polls (sync-orchestrator down, no replica holding the fleet-poll lease, or its
   * writes failing) and the data is STALE. Absent in records of pollers before it: never overdue.
   */
  attempt: { at: string; ok: boolean; error: string | null; durationMs: number; nextBy?: string };
  /** Last successful poll (null: never reached). */
  good: {
    at: string;
    report: MemberReport | null;
    flow: FlowMetrics | null;
    snapshot: MemberSnapshotView | null;
    /** When the flow was last read (a good poll may have failed to read it: MemberPoll.partial); absent: `at`. */
    flowAt?: string;
    /** When the snapshot was last read or confirmed unchanged (as flowAt); absent: `at`. */
    snapshotAt?: string;
    /**
     * The member URL this data was read from. A record whose URL is not the member's configured one now (its URL
     * changed, or its name reused for another site) is another site's: not shown, and dropped by the poller. Absent
     * in records of pollers before it: taken as the member's.
     */
    url?: string;
  } | null;
}

export const leaderFlowQuerySchema = z.strictObject({
  minutes: z.coerce.number().int().min(1).max(60).default(60),
});
export type LeaderFlowQuery = z.infer<typeof leaderFlowQuerySchema>;

export type MemberState = 'OK' | 'STALE' | 'NEVER';

export interface LeaderMemberView {
  name: string;
  url: string;
  tags: string[];
  failoverOrder: number | null;
  /**
   * OK: the last poll succeeded; STALE: it failed, or the next is overdue (data below is the last good); NEVER: not
   * reached yet.
   */
  state: MemberState;
  stale: boolean;
  /** Age of the last good data, seconds (null: none). */
  ageSeconds: number | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  error: string | null;
  report: MemberReport | null;
  snapshotHash: string | null;
}

export interface LeaderStatsView {
  members: { total: number; ok: number; stale: number; never: number };
  /** Sums over members with a last good report (stale ones included, flagged above). */
  status: Record<string, number>;
  errors: { down: number; failedResults15m: number; deadLettered: number };
  inFlight: number;
  queued: number;
  hosts: number;
}

export interface LeaderFlowView {
  minutes: number;
  /** Each member's points of the last `minutes` minutes by time (a STALE member's too, flagged; null: no flow endpoint). */
  members: Array<{ name: string; stale: boolean; points: FlowPoint[] | null }>;
  /**
   * Per minute, summed over the members that are OK (STALE ones are left out: their points are the last good poll's).
   * A figure is null when no member summed reported it for that minute, else the sum of those that did.
   */
  total: FlowPoint[];
}

export interface ComponentsMatrixView {
  components: string[];
  members: Array<{ name: string; stale: boolean; versions: Record<string, string | null> }>;
  /** Components whose version is not the same on every member that reported one. */
  differing: string[];
}

export interface DriftCountsView {
  leaderHash: string;
  members: Array<{
    name: string;
    stale: boolean;
    /** Seconds since the snapshot compared was read (a STALE member's is its last good one); null: none, or unknown. */
    ageSeconds: number | null;
    /** null: no snapshot of this member yet. */
    snapshotHash: string | null;
    /** Over the areas compared (those of `notCompared` left out). */
    count: number | null;
    /** Per area of DRIFT_AREAS (0 for an area of `notCompared`). */
    areas: Record<DriftArea, number> | null;
    /**
     * Areas not compared: the member's snapshot does not have them (an older member). Null: no snapshot yet. Absent
     * from leaders before it.
     */
    notCompared: DriftArea[] | null;
  }>;
}

export type { MemberSnapshotView };
