import { memberSnapshotSchema, type FlowPoint, type MemberPollRecord } from '@fleetwatch/contracts';
import type { FleetSiteRecord } from '@fleetwatch/persistence';
import { FleetLeaderService, memberView, ofSite, snapshotFreshness } from './fleet-leader.service';

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

describe('FleetLeaderService.flow: the last N minutes by time', () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 30);
  const pt = (ms: number, n: number, egress: number | null = null): FlowPoint => ({
    at: iso(ms),
    ingress: { count: n, bytes: n },
    egress: { count: egress, bytes: null },
    stored: { count: n, bytes: n },
    deleted: { count: null, bytes: null },
  });
  const minute = (m: number) => Date.UTC(2026, 11, 6, 12, m);
  const record = (ok: boolean, goodAt: number, points: FlowPoint[]): MemberPollRecord => ({
    attempt: { at: iso(now - 10_000), ok, error: ok ? null : 'ECONNREFUSED', durationMs: 1 },
    good: {
      at: iso(goodAt),
      report: null,
      flow: { site: 'x', minutes: 60, stepSeconds: 60, sources: {}, points },
      snapshot: null,
    },
  });
  function service(members: Array<[string, MemberPollRecord | null]>) {
    const svc = Object.create(FleetLeaderService.prototype) as FleetLeaderService;
    (svc as unknown as { all: () => Promise<unknown> }).all = () =>
      Promise.resolve(members.map(([name, poll]) => ({ site: { ...site, name, url: `http://${name}` }, poll })));
    return svc;
  }

  it('keeps only points of the window, leaves STALE members out of total, and keeps a figure null when none had it', async () => {
    // fresh: an hour of points that ends a minute ago (it answered 10 s ago); down: STALE for 3 hours.
    const fresh = Array.from({ length: 60 }, (_, i) => pt(minute(-1) - (59 - i) * 60_000, 1, i === 59 ? 4 : null));
    const down = [pt(minute(-182), 100, 7), pt(minute(-181), 100, 7)];
    // STALE since a minute ago: its points are recent, but listed only (flagged), not summed.
    const flaky = [pt(minute(-1), 1_000, 1_000)];
    const v = await service([
      ['fresh', record(true, now - 10_000, fresh)],
      ['down', record(false, minute(-180), down)],
      ['flaky', record(false, minute(-1), flaky)],
      ['never', null],
    ]).flow(5, now);

    const at = (ps: FlowPoint[] | null | undefined) => (ps ?? []).map((p) => p.at);
    // The newest is a minute old: the window (12:00 back 4 minutes) reaches a minute further (skew tolerance).
    expect(at(v.members.find((m) => m.name === 'fresh')?.points)).toEqual(
      [-5, -4, -3, -2, -1].map((m) => iso(minute(m))),
    );
    expect(v.members.find((m) => m.name === 'down')).toEqual({ name: 'down', stale: true, points: [] });
    expect(v.members.find((m) => m.name === 'flaky')).toMatchObject({ stale: true, points: flaky });
    expect(v.members.find((m) => m.name === 'never')).toEqual({ name: 'never', stale: true, points: null });
    expect(v.total.map((p) => [p.at, p.ingress.count, p.egress.count, p.deleted.count, p.deleted.bytes])).toEqual([
      [iso(minute(-5)), 1, null, null, null],
      [iso(minute(-4)), 1, null, null, null],
      [iso(minute(-3)), 1, null, null, null],
      [iso(minute(-2)), 1, null, null, null],
      [iso(minute(-1)), 1, 4, null, null],
    ]);
  });

  it('never more than N points, and a member clock a little behind still counts', async () => {
    const behind = Array.from({ length: 10 }, (_, i) => pt(minute(0) - 30_000 - (9 - i) * 60_000, 1));
    const v = await service([['behind', record(true, now - 10_000, behind)]]).flow(3, now);
    expect(v.members[0].points).toEqual(behind.slice(-3));
    expect(v.total).toHaveLength(3);
  });
});

describe('ofSite: a cached record read from another URL than the configured one', () => {
  const attempt = { at: iso(T), ok: false, error: 'ECONNREFUSED', durationMs: 1 };
  it('is not the member’s: NEVER, no report of the old site', () => {
    const poll: MemberPollRecord = { attempt, good: { ...good, url: 'http://old-eu.example:3000' } };
    expect(memberView(site, ofSite(site, poll), T)).toMatchObject({
      state: 'NEVER',
      report: null,
      lastSuccessAt: null,
    });
  });
  it('read from its URL, or a record from before the URL was kept: as it is', () => {
    for (const g of [{ ...good, url: site.url }, good]) {
      const poll: MemberPollRecord = { attempt, good: g };
      expect(ofSite(site, poll)).toBe(poll);
      expect(memberView(site, ofSite(site, poll), T).state).toBe('STALE');
    }
  });
});

describe('FleetLeaderService.drift: an older member without an area', () => {
  it('reports that area as not compared, not as every leader item missing', async () => {
    const hash = 'a'.repeat(64);
    const leader = {
      schemaVersion: 1,
      site: 'leader',
      generatedAt: iso(T),
      hash: 'b'.repeat(64),
      configVersion: 1,
      areas: {
        checks: [],
        alertRules: [],
        channels: [],
        properties: [{ key: 'p1', value: 1 }],
        statusPages: [],
        usersAndRoles: [],
        componentVersions: [{ key: 'api-gateway', version: '1.2.0' }],
      },
    };
    const snapshot = memberSnapshotSchema.parse({
      ...leader,
      hash,
      areas: { checks: [], alertRules: [], channels: [], statusPages: [], usersAndRoles: [] },
    });
    const poll: MemberPollRecord = {
      attempt: { at: iso(T), ok: true, error: null, durationMs: 1 },
      good: { ...good, snapshot },
    };
    const svc = Object.create(FleetLeaderService.prototype) as FleetLeaderService;
    Object.assign(svc, {
      snapshots: { current: () => Promise.resolve(leader) },
      all: () => Promise.resolve([{ site, poll }]),
      one: () => Promise.resolve({ site, poll }),
    });
    expect((await svc.drift()).members[0]).toMatchObject({
      count: 0,
      notCompared: ['properties', 'componentVersions'],
      areas: { properties: 0, componentVersions: 0 },
    });
    expect(await svc.driftOf('eu')).toMatchObject({ count: 0, notCompared: ['properties', 'componentVersions'] });
  });
});

describe('FleetLeaderService.drift: a cached snapshot drift cannot read, and a stale one', () => {
  const leader = {
    schemaVersion: 1,
    site: 'leader',
    generatedAt: iso(T),
    hash: 'b'.repeat(64),
    configVersion: 1,
    areas: {
      checks: [{ key: 'c1', type: 'http' }],
      alertRules: [],
      channels: [],
      properties: [],
      statusPages: [],
      usersAndRoles: [],
      componentVersions: [],
    },
  };
  const record = (snapshot: unknown, ok = true): MemberPollRecord =>
    ({
      attempt: { at: iso(T + 3_600_000), ok, error: ok ? null : 'ECONNREFUSED', durationMs: 1 },
      good: { ...good, snapshot },
    }) as MemberPollRecord;
  function service(members: Array<[string, MemberPollRecord]>) {
    const svc = Object.create(FleetLeaderService.prototype) as FleetLeaderService;
    const of = (name: string, poll: MemberPollRecord) => ({ site: { ...site, name, url: site.url }, poll });
    Object.assign(svc, {
      snapshots: { current: () => Promise.resolve(leader) },
      all: () => Promise.resolve(members.map(([n, p]) => of(n, p))),
      one: (name: string) => Promise.resolve(of(name, new Map(members).get(name) as MemberPollRecord)),
    });
    return svc;
  }

  it("one member's damaged snapshot is no snapshot: the others' drift is still served", async () => {
    const svc = service([
      ['good', record({ ...leader, hash: 'a'.repeat(64) })],
      ['noareas', record({ hash: 'c'.repeat(64) })],
      ['notalist', record({ ...leader, areas: { ...leader.areas, checks: { c1: {} } } })],
      ['nullitem', record({ ...leader, areas: { ...leader.areas, checks: [null] } })],
    ]);
    const drift = await svc.drift();
    expect(drift.members.map((m) => [m.name, m.count])).toEqual([
      ['good', 0],
      ['noareas', null],
      ['notalist', null],
      ['nullitem', null],
    ]);
    await expect(svc.driftOf('noareas')).rejects.toThrow(/no snapshot of member "noareas"/);
    await expect(svc.driftOf('good')).resolves.toMatchObject({ count: 0 });
  });

  it('a STALE member is compared on its last good snapshot, shown with its age', async () => {
    const svc = service([['eu', record({ ...leader, hash: 'a'.repeat(64) }, false)]]);
    const now = Date.now();
    const age = Math.round((now - T) / 1000);
    const [m] = (await svc.drift()).members;
    expect(m).toMatchObject({ stale: true, count: 0 });
    expect(Math.abs((m.ageSeconds ?? 0) - age)).toBeLessThan(60);
    const one = await svc.driftOf('eu');
    expect(one.stale).toBe(true);
    expect(Math.abs((one.ageSeconds ?? 0) - age)).toBeLessThan(60);
  });
});
