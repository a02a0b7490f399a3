import {
  MAX_CHECK_LATENCY_MS,
  type CheckDefinition,
  type CheckResultPayload,
  type CheckType,
} from '@fleetwatch/contracts';
import type { TargetPolicy } from '@fleetwatch/domain';
import type { Probe, ProbeOutcome } from '../probe';
import type { SlotTiming } from '../scheduler/check-scheduler';
import { inlineConditions, type ConditionEvaluator } from './condition-sandbox';
import { resultMetadata, storable } from './result-metadata';

// One run of one check at this location: attempts through the type's probe, each bounded
// by the check's timeout; failed attempts (the probe's own verdict or a false condition)
// retried at once up to `retries` times; the last attempt becomes the result. A run ends
// before its next slot (runBudgetMs): a run still going then has that slot skipped, the
// next result comes an interval late, and the aggregator, which marks a check STALE two
// intervals after a result's start, flapped a DOWN target DOWN ↔ STALE each cycle — so a
// timeout about as long as the interval is cut to the budget, and a retry starts only if
// at least half its timeout is left (and gets what is left). A probe
// that throws is a bug, not a verdict about the target: it becomes a failed result that
// says so, logged once per check per quarter hour — the scheduler never sees an error.

export type RunOutcome = 'up' | 'down' | 'error';

export interface RunnerLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CheckRunnerDeps {
  probeFor(type: CheckType): Probe | undefined;
  policy: TargetPolicy;
  env: Readonly<Record<string, string | undefined>>;
  dnsServers?: readonly string[];
  location: string;
  /**
   * A result's time (its `startedAt`), taken when the run starts: the collector's stamps (stamps/stamp-clock.ts),
   * never before an earlier result's though the wall clock steps back. Default: the slot's start.
   */
  stamp?(): number;
  /** Where each result goes (the spool). */
  sink(result: CheckResultPayload): void;
  logger: RunnerLogger;
  onResult?(type: CheckType, outcome: RunOutcome): void;
  /** Where conditions are evaluated (the collector: a worker thread with a budget, condition-sandbox.ts); default inline. */
  conditions?: ConditionEvaluator;
}

/** How long past its timeout a probe that ignores its abort signal is waited for. */
export const PROBE_GRACE_MS = 1_000;

/** The time a run may take from its start: its interval less 10 % of it (at most 1 s), so it ends before the next slot. */
export function runBudgetMs(intervalSeconds: number): number {
  const intervalMs = intervalSeconds * 1000;
  return intervalMs - Math.min(1_000, intervalMs / 10);
}
const BUG_LOG_PERIOD_MS = 15 * 60_000;

interface Attempt {
  outcome: ProbeOutcome;
  /** The probe threw (a bug), or did not stop after its timeout. */
  error?: string;
  conditionFailed?: number;
  /** No retry: the conditions were not judged (stopped at their budget, or their thread failed). */
  final?: boolean;
  /** Nothing to say about the target (the condition thread failed: the collector's fault): no result is sent. */
  unjudged?: boolean;
}

/**
 * After a check's conditions ran past their budget twice in a row, how long they are not evaluated again (its runs
 * fail at once, saying so): each overrun holds the one condition thread for the budget, so a few such checks run every
 * interval would keep every other check's conditions waiting behind them. One overrun alone (a starved host) is not
 * held: the next run judges again.
 */
export const CONDITIONS_HELD_MS = 5 * 60_000;

export class CheckRunner {
  /** Set once shutdown aborted everything: the reason new attempts are aborted with at once. */
  private stopping: Error | undefined;
  /** Attempts in flight, for abortAll (one set rather than a listener per attempt on a shared signal). */
  private readonly inFlight = new Set<AbortController>();
  private readonly bugLogged = new Map<string, number>();
  /** Checks whose conditions ran past their budget: how often in a row, until when they are not evaluated, and why. */
  private readonly conditionsHeld = new Map<string, { overruns: number; until: number; reason: string }>();

  constructor(private readonly deps: CheckRunnerDeps) {}

  /** Aborts every attempt in flight (shutdown): each ends as a failed result at once, without retries. */
  abortAll(reason = 'collector shutting down'): void {
    this.stopping ??= new Error(reason);
    for (const c of this.inFlight) c.abort(this.stopping);
  }

  /** Runs `check` and hands its result to the sink. Never rejects. */
  async run(check: CheckDefinition, slot: SlotTiming): Promise<void> {
    if (check.paused) return;
    const { result, outcome, unjudged } = await this.perform(check, slot);
    // A run cut short by shutdown says nothing about the target: no result rather than a false DOWN — and not
    // counted as a finished run either (the runs counter would count results that never existed).
    if (!result.ok && this.stopping) return;
    this.deps.onResult?.(check.type, outcome);
    // Conditions not judged for the collector's own fault (their thread failed): nothing is known of the target, so no
    // result (a DOWN would page for the collector's fault); a fault that lasts reads STALE.
    if (unjudged) return;
    this.deps.sink(result);
  }

  /** The result of one run of `check` (attempts and retries included), not handed to the sink nor counted. */
  async execute(check: CheckDefinition, slot: SlotTiming): Promise<CheckResultPayload> {
    return (await this.perform(check, slot)).result;
  }

  private async perform(
    check: CheckDefinition,
    slot: SlotTiming,
  ): Promise<{ result: CheckResultPayload; outcome: RunOutcome; unjudged?: boolean }> {
    const startedAt = this.deps.stamp?.() ?? slot.startedAt;
    const attempts = check.retries + 1;
    const timeoutMs = Math.round(check.timeoutSeconds * 1000);
    // From the run's actual start, not its planned one: a slot started late (a busy collector) keeps its whole timeout.
    // On the monotonic clock: a step of the wall clock during the run (NTP) neither dropped its retries (forward: the
    // budget seemed spent) nor let them run on past the next slot (back: the step added to the budget).
    const budgetEnd = performance.now() + runBudgetMs(check.intervalSeconds) - Math.max(0, Date.now() - slot.startedAt);
    let last!: Attempt;
    let n = 0;
    while (n < attempts) {
      const left = budgetEnd - performance.now();
      // A retry runs while at least half its timeout is left, cut to what is left.
      if (n > 0 && left < timeoutMs / 2) break;
      n++;
      last = await this.attempt(check, Math.max(1, Math.min(timeoutMs, Math.round(left))));
      if ((last.outcome.ok && last.conditionFailed === undefined) || this.stopping || last.final) break;
    }
    const ok = last.outcome.ok && last.conditionFailed === undefined && last.error === undefined;
    const outcome: RunOutcome = last.error ? 'error' : ok ? 'up' : 'down';
    const reason = ok ? undefined : last.outcome.failureReason || last.error || 'failed';
    const result: CheckResultPayload = {
      checkId: check.id,
      targetId: check.targetId,
      location: this.deps.location,
      ok,
      latencyMs: storableLatency(last.outcome.latencyMs),
      attempt: n,
      startedAt: new Date(startedAt).toISOString(),
      intervalSeconds: check.intervalSeconds,
      checkName: storable(check.name, 256),
      checkType: check.type,
      tags: check.tags,
      retries: check.retries,
      timeoutSeconds: check.timeoutSeconds,
      metadata: resultMetadata(last.outcome.facts, last.conditionFailed),
    };
    if (reason !== undefined) result.failureReason = storable(reason, 2048);
    if (check.downQuorumPct !== undefined) result.downQuorumPct = check.downQuorumPct;
    // Service collectors' figures (issue 16): bounded and valid at the source (probes/service-metrics.ts).
    if (last.outcome.metrics !== undefined) result.metrics = last.outcome.metrics;
    return { result, outcome, unjudged: last.unjudged };
  }

  private async attempt(check: CheckDefinition, timeoutMs: number): Promise<Attempt> {
    const probe = this.deps.probeFor(check.type);
    if (!probe) return this.bug(check, `no probe for check type "${check.type}" in this collector`);
    const controller = new AbortController();
    // One timer per attempt: at the timeout it aborts the probe. A probe that ignores its signal is given up on
    // PROBE_GRACE_MS after the abort — the timeout's or shutdown's (abortAll) — so it holds neither the check, nor
    // a concurrency slot, nor the collector's stop until its own timeout (up to 300 s).
    let giveUp!: (v: 'stuck') => void;
    const stuck = new Promise<'stuck'>((resolve) => (giveUp = resolve));
    let timer = setTimeout(
      () => controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    controller.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        timer = setTimeout(() => giveUp('stuck'), PROBE_GRACE_MS);
      },
      { once: true },
    );
    this.inFlight.add(controller);
    if (this.stopping) controller.abort(this.stopping);
    try {
      const running = probe(check, {
        signal: controller.signal,
        timeoutMs,
        policy: this.deps.policy,
        env: this.deps.env,
        dnsServers: this.deps.dnsServers,
      });
      const outcome = await Promise.race([running, stuck]);
      if (outcome === 'stuck') {
        running.catch(() => undefined);
        const why = (controller.signal.reason as Error | undefined)?.message ?? 'aborted';
        return this.bug(check, `probe did not stop within ${PROBE_GRACE_MS} ms after its abort (${why})`);
      }
      if (!outcome.ok || check.conditions.length === 0) return { outcome };
      const heldKey = `${check.id}\u0000${check.conditions.join('\u0000')}`;
      const held = this.conditionsHeld.get(heldKey);
      if (held && Date.now() < held.until) {
        const until = new Date(held.until).toISOString();
        return {
          outcome: { ...outcome, ok: false, failureReason: `${held.reason}; not evaluated until ${until}` },
          final: true,
        };
      }
      const verdict = await (this.deps.conditions ?? inlineConditions).evaluate(
        check.conditions,
        { ...outcome.facts, ok: outcome.ok, latencyMs: outcome.latencyMs },
        { key: heldKey },
      );
      if (verdict.stopped !== undefined) {
        const reason = verdict.failed?.reason ?? 'conditions not evaluated';
        if (verdict.stopped === 'budget') {
          // Held from the second overrun in a row on (one alone may be a starved host).
          const overruns = (held?.overruns ?? 0) + 1;
          if (this.conditionsHeld.size > 10_000) this.conditionsHeld.clear();
          this.conditionsHeld.set(heldKey, {
            overruns,
            until: overruns >= 2 ? Date.now() + CONDITIONS_HELD_MS : 0,
            reason,
          });
          return { outcome: { ...outcome, ok: false, failureReason: reason }, final: true };
        }
        // The collector's fault, not the target's: counted as an error (the thread's failure is logged there), no result.
        return {
          outcome: { ...outcome, ok: false, failureReason: reason },
          error: reason,
          final: true,
          unjudged: true,
        };
      }
      if (held) this.conditionsHeld.delete(heldKey);
      if (verdict.ok) return { outcome };
      return {
        outcome: { ...outcome, ok: true, failureReason: verdict.failed?.reason },
        conditionFailed: verdict.failed?.index ?? 0,
      };
    } catch (e) {
      return this.bug(check, `probe error: ${e instanceof Error ? e.message : String(e)}`, e);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  private bug(check: CheckDefinition, reason: string, error?: unknown): Attempt {
    const now = Date.now();
    const last = this.bugLogged.get(check.id);
    if (last === undefined || now - last >= BUG_LOG_PERIOD_MS) {
      if (this.bugLogged.size > 50_000) this.bugLogged.clear();
      this.bugLogged.set(check.id, now);
      this.deps.logger.error(
        { checkId: check.id, type: check.type, reason, stack: error instanceof Error ? error.stack : undefined },
        'check probe failed unexpectedly (a bug, not the target); reported as a failed result',
      );
    }
    return { outcome: { ok: false, latencyMs: null, failureReason: reason, facts: {} }, error: reason };
  }
}

/**
 * A latency the contract carries, else unknown (null). A probe's figure past the contract's bound is none it measured
 * (ping reports the RTT from the timestamp the target echoes back: one that zeroes it read 1.8e12 ms), and one the
 * contract refuses took the whole result with it — discarded from the spool as unpublishable, the check silent.
 */
function storableLatency(ms: number | null): number | null {
  return ms !== null && Number.isFinite(ms) && ms >= 0 && ms <= MAX_CHECK_LATENCY_MS ? ms : null;
}
