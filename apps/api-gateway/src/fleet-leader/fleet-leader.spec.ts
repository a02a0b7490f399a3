import type { MemberPollRecord } from '@fleetwatch/contracts';
import type { FleetSiteRecord } from '@fleetwatch/persistence';
import { memberView, snapshotFreshness } from './fleet-leader.service';

const site: FleetSiteRecord = {
  name: 'eu',
  url: 'http://eu.example:3000',
  tags: [],
  failoverOrder: null,
  propertyOverrides: {},
  source: 'config',
  lastAttemptAt: null,
  lastSuccessAt: null,
  lastError: null,
  consecutiveFailures: 0,
};
const T = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const good = { at: iso(T), report: null, flow: null, snapshot: null };

describe('memberView: OK, STALE, NEVER', () => {
  it('the last poll succeeded and the next is not overdue: OK', () => {
    const poll: MemberPollRecord = {
      attempt: { at: iso(T), ok: true, error: null, durationMs: 5, nextBy: iso(T + 80_000) },
      good,
    };
    expect(memberView(site, poll, T + 80_000)).toMatchObject({ state: 'OK', stale: false, error: null });
  });

  it('the next poll is overdue (nobody polls): STALE with its age, and says why', () => {
    const poll: MemberPollRecord = {
      attempt: { at: iso(T), ok: true, error: null, durationMs: 5, nextBy: iso(T + 80_000) },
      good,
    };
    const view = memberView(site, poll, T + 6 * 3_600_000);
    expect(view).toMatchObject({ state: 'STALE', stale: true, ageSeconds: 6 * 3600 });
    expect(view.error).toMatch(
      /^no poll since 2026-01-01T12:00:00.000Z \(two cycles missed\): the leader's poller is not running/,
    );
    // Never reached, and nobody polls: still NEVER, with the reason and the last error.
    const never = memberView(
      site,
      { attempt: { at: iso(T), ok: false, error: 'refused', durationMs: 5, nextBy: iso(T + 80_000) }, good: null },
      T + 100_000,
    );
    expect(never).toMatchObject({ state: 'NEVER', stale: true });
    expect(never.error).toMatch(/poller is not running.*; last error: refused$/);
  });

  it('a record of a poller before nextBy is never overdue; a failed poll is STALE', () => {
    const old: MemberPollRecord = { attempt: { at: iso(T), ok: true, error: null, durationMs: 5 }, good };
    expect(memberView(site, old, T + 6 * 3_600_000)).toMatchObject({ state: 'OK', stale: false });
    const failed: MemberPollRecord = {
      attempt: { at: iso(T), ok: false, error: 'GET /api/v1/status/report: answered 500', durationMs: 5 },
      good,
    };
    expect(memberView(site, failed, T)).toMatchObject({
      state: 'STALE',
      error: 'GET /api/v1/status/report: answered 500',
    });
    expect(memberView(site, null, T)).toMatchObject({ state: 'NEVER', stale: true, ageSeconds: null });
  });
});

describe("snapshotFreshness: a member's snapshot not read at its last good poll", () => {
  const attempt = { at: iso(T), ok: true, error: 'snapshot not read (the last one kept): too large', durationMs: 5 };
  it('is stale, aged from when it was read, though the member is OK', () => {
    const poll: MemberPollRecord = {
      attempt: { ...attempt, nextBy: iso(T + 80_000) },
      good: { ...good, snapshotAt: iso(T - 3_600_000), flowAt: iso(T) },
    };
    expect(memberView(site, poll, T + 10_000)).toMatchObject({ state: 'OK', stale: false });
    expect(snapshotFreshness(site, poll, T + 10_000)).toEqual({ stale: true, ageSeconds: 3610 });
  });

  it('read at that poll (or a record from before snapshotAt): as the member', () => {
    const fresh: MemberPollRecord = {
      attempt: { ...attempt, error: null, nextBy: iso(T + 80_000) },
      good: { ...good, snapshotAt: iso(T) },
    };
    expect(snapshotFreshness(site, fresh, T + 10_000)).toEqual({ stale: false, ageSeconds: 10 });
    const older: MemberPollRecord = { ...fresh, good };
    expect(snapshotFreshness(site, older, T + 10_000)).toEqual({ stale: false, ageSeconds: 10 });
  });
});
