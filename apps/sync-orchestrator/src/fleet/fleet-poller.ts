import type { MemberPollRecord } from '@fleetwatch/contracts';
import type { FleetCache } from '@fleetwatch/live-state';
import type { FleetPollOutcome, FleetSitesRepository } from '@fleetwatch/persistence';
import type { LeaderMember } from './leader-config';
import { pollMember, type MemberPoll } from './member-client';

// One poll cycle of a leader (SPEC §8): every member in parallel, at most `concurrency` at a
// time, the whole cycle cut at `timeoutMs` (requests still open are aborted, members not
// started yet are failed) so that it always ends before the next one is due. Each member's
// last good data is kept in Redis with the new attempt; a failed member keeps it, flagged.

export interface PollCycleOptions {
  concurrency: number;
  timeoutMs: number;
  /** One member's limit (default: half the overall timeout, at most 5 s), so hanging members cannot hold every worker. */
  memberTimeoutMs?: number;
  flowMinutes?: number;
}

export interface PollCycleResult {
  durationMs: number;
  ok: number;
  failed: number;
  /** Members not started before the overall timeout. */
  notStarted: number;
}

export type PollOne = (member: LeaderMember, signal: AbortSignal) => Promise<MemberPoll>;

export class FleetPoller {
  constructor(
    private readonly cache: FleetCache,
    private readonly sites: FleetSitesRepository,
    private readonly options: PollCycleOptions,
    private readonly pollOne: PollOne = (m, s) => pollMember(m, s, options.flowMinutes ?? 60),
  ) {}

  async cycle(members: readonly LeaderMember[], now: () => number = Date.now): Promise<PollCycleResult> {
    const started = now();
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error(`overall poll timeout (${this.options.timeoutMs} ms) reached`)),
      this.options.timeoutMs,
    );
    const results = new Map<string, { at: number; durationMs: number; poll?: MemberPoll; error?: string }>();
    const memberTimeoutMs = this.options.memberTimeoutMs ?? Math.min(5_000, Math.ceil(this.options.timeoutMs / 2));
    let next = 0;
    const worker = async () => {
      while (next < members.length && !abort.signal.aborted) {
        const member = members[next++];
        const t0 = now();
        // One signal per member: its requests' listeners go with it, and a member that hangs
        // gives its worker back after memberTimeoutMs instead of holding it to the overall timeout.
        const own = new AbortController();
        const onOverall = () => own.abort(abort.signal.reason);
        abort.signal.addEventListener('abort', onOverall, { once: true });
        const timer = setTimeout(
          () => own.abort(new Error(`no answer within ${memberTimeoutMs} ms (member timeout)`)),
          memberTimeoutMs,
        );
        try {
          const poll = await this.pollOne(member, own.signal);
          results.set(member.name, { at: now(), durationMs: now() - t0, poll });
        } catch (err) {
          results.set(member.name, { at: now(), durationMs: now() - t0, error: messageOf(err) });
        } finally {
          clearTimeout(timer);
          abort.signal.removeEventListener('abort', onOverall);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, members.length) }, worker));
    } finally {
      clearTimeout(timer);
    }
    let notStarted = 0;
    for (const m of members)
      if (!results.has(m.name)) {
        notStarted++;
        results.set(m.name, {
          at: now(),
          durationMs: 0,
          error: `not polled: overall poll timeout (${this.options.timeoutMs} ms) reached first`,
        });
      }

    const previous = await this.cache.getMany(members.map((m) => m.name)).catch(() => new Map());
    const records = new Map<string, MemberPollRecord>();
    const outcomes: FleetPollOutcome[] = [];
    let ok = 0;
    for (const m of members) {
      const r = results.get(m.name) ?? { at: now(), durationMs: 0, error: 'not polled' };
      const at = new Date(r.at).toISOString();
      const good: MemberPollRecord['good'] = r.poll
        ? { at, report: r.poll.report, flow: r.poll.flow, snapshot: r.poll.snapshot }
        : ((previous.get(m.name) as MemberPollRecord | undefined)?.good ?? null);
      if (r.poll) ok++;
      records.set(m.name, {
        attempt: { at, ok: r.poll !== undefined, error: r.error ?? null, durationMs: r.durationMs },
        good,
      });
      outcomes.push({ name: m.name, at: new Date(r.at), ok: r.poll !== undefined, error: r.error ?? null });
    }
    await this.cache.setMany(records);
    await this.sites.recordPolls(outcomes);
    return { durationMs: now() - started, ok, failed: members.length - ok, notStarted };
  }
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}
