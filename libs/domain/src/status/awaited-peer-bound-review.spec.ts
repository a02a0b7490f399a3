import { TargetStatus as S } from '@fleetwatch/contracts';
import { expireDeadlines } from './expiry';
import { peerResultGraceMs } from './heartbeat';
import { ANOTHER_LOCATION_REPORTED, isAwaited, type Observation } from './target-state';
import { applierOf, checkResult, lifecycleOf, resumedCheck } from './status.spec-helpers';

// Found in review of the peer bound (boundAwaited / peerResultGraceMs): it assumed every location runs the resumed
// check's first slot within its attempts' time of the first one heard. A location whose collector runs the slot later
// — it read the resume on its assignment refresh (config.changed missed), a full concurrency queue, a catch-up after a
// restart, a spool or broker delay at its site, the clock's jitter — is healthy, yet went STALE, and the consensus was
// decided by the first location alone: DOWN, then PARTIAL when the healthy one reported. The grace now allows for that
// lateness (PEER_LATENESS_MS).

const ID = 'check:0191d7a2-0000-7000-8000-0000000000cc';
const DAY = 86_400;
const lc = lifecycleOf(ID);
const policy = { downQuorumPct: 100 };
const G = peerResultGraceMs({ intervalSeconds: DAY, timeoutSeconds: 10, retries: 0 });
const result = (location: string, ok: boolean, at: number): Observation => ({
  ...checkResult(ID, location, ok, at),
  deadline: { at: at + 2 * DAY * 1000 + 5000, expireTo: S.Stale, reason: `no result within 2 × ${DAY}s` },
  peersDueBy: at + G,
});
const apply = applierOf(policy);
const verdicts = (events: readonly { location: string | null; from: S; to: S }[]) =>
  events.filter((e) => e.location === null).map((e) => `${e.from}>${e.to}`);
describe('peer bound: a healthy location whose first run after the resume comes later than the first one heard', () => {
  const RESUMED = 3000;
  const SLOT = 3_600_000;
  const resumedDaily = () => resumedCheck(apply, lc, ['a', 'b'], DAY, RESUMED, result);

  it('30 s late (a run of its timeout and more): counted, UNKNOWN>PARTIAL — no DOWN on the way', () => {
    let t = resumedDaily();
    const consensus: string[] = [];
    // a's network is broken (DOWN at a only); b's collector runs the same slot 30 s later (read the resume late, or
    // its real-time phase is 30 s off) and finds the target UP. The sweeper runs every second meanwhile.
    let r = apply(t, result('a', false, SLOT));
    consensus.push(...verdicts(r.events));
    t = r.target;
    for (let now = SLOT + 1000; now < SLOT + 30_000; now += 1000) {
      const swept = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], now, policy);
      consensus.push(...verdicts(swept.events));
      t = swept.changed[0] ?? t;
    }
    expect(t.locations.b.status).toBe(S.Unknown);
    r = apply(t, result('b', true, SLOT + 30_000));
    consensus.push(...verdicts(r.events));
    // As without the bound: held UNKNOWN until b's result, then PARTIAL — never DOWN.
    expect(consensus).toEqual([`${S.Unknown}>${S.Partial}`]);
  });

  it('as late as the grace allows, still counted; b silent past it: STALE, and a decides', () => {
    let t = apply(resumedDaily(), result('a', false, SLOT)).target;
    // The grace of a daily check with a 10 s timeout: its run, a minute's lateness, a missed slot (capped at 15 min),
    // the slack.
    expect(G).toBe(976_000);
    expect(t.locations.b.deadline?.at).toBe(SLOT + G);
    const held = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], SLOT + G - 1, policy);
    expect(held.changed).toEqual([]);
    expect(apply(t, result('b', true, SLOT + G - 1)).target.status).toBe(S.Partial);
    const swept = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], SLOT + G, policy);
    t = swept.changed[0];
    expect(t.locations.b.status).toBe(S.Stale);
    expect(t.status).toBe(S.Down);
  });
});

describe('peer bound: the mark it puts in the reason lasts no longer than the wait', () => {
  it('a bounded location lengthened, then its first result (run with the old interval): no "another location" left', () => {
    const H = 3600;
    const hourly = (location: string, ok: boolean, at: number, seconds = H): Observation => ({
      ...checkResult(ID, location, ok, at),
      deadline: { at: at + 2 * seconds * 1000 + 5000, expireTo: S.Stale, reason: `no result within 2 × ${seconds}s` },
      peersDueBy: at + 16_000,
    });
    let t = apply(undefined, lc('active', 1, 0, { locations: ['a', 'b'], checkIntervalSeconds: H })).target;
    t = apply(t, hourly('a', true, 1000)).target; // b bounded: marked 'another location has reported this run'
    t = apply(t, lc('active', 2, 2000, { locations: ['a', 'b'], checkIntervalSeconds: 2 * H })).target;
    // b's collector still on the hourly assignment: the moved (later) deadline is kept, and b is awaited no longer.
    t = apply(t, hourly('b', true, 5000)).target;
    expect(isAwaited(t.locations.b)).toBe(false);
    expect(t.locations.b.deadline?.reason).not.toContain(ANOTHER_LOCATION_REPORTED);
  });
});

describe('peer bound: a healthy location that read the resume on its assignment refresh, after the first slot', () => {
  // Found in review: a 5-min check, quorum 100 %, resumed at [a, b]. b's collector missed the resume's config.changed
  // and read the check on its assignment refresh (60 s on); the check's first slot fell before that, so b runs it at
  // the next slot, one interval after a. a's network is broken (DOWN at a only); b finds the target UP. Bounded by a
  // grace without the missed slot (76 s), b went STALE and the check DOWN ('Target down' paged after its 1 m `for`),
  // then PARTIAL when b reported. The grace now covers one missed slot for intervals up to 15 min.
  const FIVE_MIN = 300;
  const I = FIVE_MIN * 1000;
  const G5 = peerResultGraceMs({ intervalSeconds: FIVE_MIN, timeoutSeconds: 10, retries: 0 });
  const RESUMED = 3000;
  const SLOT = RESUMED + 40_000; // the first slot, before b's refresh at RESUMED + 60 s
  const fiveMin = (location: string, ok: boolean, at: number): Observation => ({
    ...checkResult(ID, location, ok, at),
    deadline: { at: at + 2 * I + 5000, expireTo: S.Stale, reason: `no result within 2 × ${FIVE_MIN}s` },
    peersDueBy: at + G5,
  });
  const resumedFiveMin = () => resumedCheck(apply, lc, ['a', 'b'], FIVE_MIN, RESUMED, fiveMin);

  it('the grace of a 5-min check with a 10 s timeout: 6 min 16 s', () => {
    expect(G5).toBe(6 * 60_000 + 16_000);
  });

  it('b reports one interval late (its full timeout, the transport slack): UNKNOWN>PARTIAL, no DOWN on the way', () => {
    let t = resumedFiveMin();
    const consensus: string[] = [];
    // a fails fast (connection refused) and is heard at once; b runs the next slot for its whole timeout.
    let r = apply(t, fiveMin('a', false, SLOT + 10));
    consensus.push(...verdicts(r.events));
    t = r.target;
    const bHeard = SLOT + I + 11_000 + 4_999;
    for (let now = SLOT + 1000; now < bHeard; now += 1000) {
      const swept = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], now, policy);
      consensus.push(...verdicts(swept.events));
      t = swept.changed[0] ?? t;
    }
    expect(t.locations.b.status).toBe(S.Unknown);
    expect(t.status).toBe(S.Unknown);
    r = apply(t, fiveMin('b', true, bHeard));
    consensus.push(...verdicts(r.events));
    expect(consensus).toEqual([`${S.Unknown}>${S.Partial}`]);
  });

  it('b silent: STALE once the grace passes, and a decides (DOWN)', () => {
    let t = apply(resumedFiveMin(), fiveMin('a', false, SLOT + 10)).target;
    expect(t.locations.b.deadline?.at).toBe(SLOT + 10 + G5);
    const held = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], SLOT + 10 + G5 - 1, policy);
    expect(held.changed).toEqual([]);
    const swept = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], SLOT + 10 + G5, policy);
    t = swept.changed[0];
    expect(t.locations.b.status).toBe(S.Stale);
    expect(t.status).toBe(S.Down);
    // Sooner than the resume's own deadline (two intervals and the slack).
    expect(SLOT + 10 + G5).toBeLessThan(RESUMED + 2 * I + 5000);
  });
});
