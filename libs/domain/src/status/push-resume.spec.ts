import fc from 'fast-check';
import { TargetStatus as S, type CheckLifecycleState } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { foldObservations, type FoldItem } from './fold';
import type { HeartbeatSignal } from './heartbeat';
import type { TargetSnapshot } from './target-state';
import { lifecycleOf } from './status.spec-helpers';

// A heartbeat monitor (push check) resumed: its first ping counts whatever its stamp says of the resume (an ingest
// replica whose clock is behind the configuration owner's, a job's ping sent during the pause and folded after the
// resume), as long as it was stamped after the pause began and after the last ping folded before it.

const policy = { downQuorumPct: 100 };
const ID = 'check:0191d7a2-0000-7000-8000-0000000000aa';
const lc = lifecycleOf(ID);
const WINDOW = 70_000;

/** A push check's lifecycle, as the aggregator's mapper makes it. */
const push = (state: CheckLifecycleState, version: number, at: number): CheckLifecycle =>
  lc(state, version, at, {
    checkType: 'push',
    name: 'nightly',
    pingWindowMs: WINDOW,
    resumeDeadline: { at: at + WINDOW, expireTo: S.Down, reason: 'no ping within period + grace (70s) of the resume' },
  });

let seq = 0;
/** A ping stamped `at` by its ingest replica, heard here at `heardAt` (default: when stamped). */
const ping = (signal: HeartbeatSignal, at: number, heardAt = at): FoldItem => ({
  type: 'ping',
  id: `ping-${++seq}`,
  targetId: ID,
  location: 'push',
  name: 'nightly',
  monitorId: null,
  ping: { signal, at, heardAt, runId: null, periodSeconds: 60, graceSeconds: 10, maxRuntimeSeconds: null },
});
const life = (l: CheckLifecycle): FoldItem => ({ type: 'lifecycle', id: `lc-${l.version}-${++seq}`, lifecycle: l });

function fold(items: FoldItem[], start?: TargetSnapshot) {
  const out = foldObservations(new Map(start ? [[ID, start]] : []), items, new Set(items.map((i) => i.id)), policy);
  return { target: out.targets.get(ID) as TargetSnapshot, events: out.events };
}

/** Created at 1000, pinged UP at 2000, paused at 10 000 (v2), resumed at 20 000 (v3). */
const resumed = (before: FoldItem[] = []) =>
  fold([
    life(push('active', 1, 1000)),
    ping('success', 2000),
    ...before,
    life(push('paused', 2, 10_000)),
    life(push('active', 3, 20_000)),
  ]).target;

describe('a heartbeat monitor resumed: its first ping', () => {
  it('a fail ping stamped 1 s before the resume (a replica behind, or sent just before it landed) is DOWN', () => {
    const t = resumed();
    expect(t).toMatchObject({ status: S.Unknown, paused: false });
    const { target, events } = fold([ping('fail', 19_000, 20_100)], t);
    expect(target.status).toBe(S.Down);
    expect(target.locations.push).toMatchObject({ status: S.Down, observedAt: 19_000, detail: 'fail ping' });
    expect(events.map((e) => [e.location, e.from, e.to])).toEqual([
      ['push', S.Unknown, S.Down],
      [null, S.Unknown, S.Down],
    ]);
  });

  it('a success ping sent during the pause and folded after the resume is UP, due period + grace after it was heard', () => {
    const { target } = fold([ping('success', 15_000, 20_500)], resumed());
    expect(target.status).toBe(S.Up);
    expect(target.locations.push.deadline?.at).toBe(20_500 + WINDOW);
  });

  it('one stamped before the pause began does not count (only last seen moves), nor one older than the last ping folded before the pause', () => {
    const early = fold([ping('fail', 9_999, 20_100)], resumed()).target;
    expect(early.status).toBe(S.Unknown);
    expect(early.locations.push.lastSeen).toBe(9_999);
    // A ping folded before the pause but stamped after it (a replica ahead): later pings stamped before it do not count.
    const ahead = resumed([ping('success', 12_000)]);
    expect(fold([ping('fail', 11_000, 20_100)], ahead).target.status).toBe(S.Unknown);
    expect(fold([ping('fail', 12_500, 20_100)], ahead).target.status).toBe(S.Down);
  });

  it('once one counted, an older one (redelivered, out of order) never undoes it; a newer one does', () => {
    const down = fold([ping('fail', 19_000, 20_100)], resumed()).target;
    expect(fold([ping('success', 18_000, 20_200)], down).target.status).toBe(S.Down);
    expect(fold([ping('success', 19_500, 20_200)], down).target.status).toBe(S.Up);
  });

  it('a monitor with no location held at the resume (paused before an older version gave it one): from the pause on', () => {
    const paused = fold([life(push('active', 1, 1000)), life(push('paused', 2, 10_000))]).target;
    const bare = applyLifecycle({ ...paused, locations: {} }, push('active', 3, 20_000), policy).target;
    expect(bare.locations.push).toMatchObject({ status: S.Unknown, lastSeen: 0, deadline: { at: 20_000 + WINDOW } });
    expect(fold([ping('fail', 9_000, 20_100)], bare).target.status).toBe(S.Unknown);
    expect(fold([ping('fail', 19_000, 20_100)], bare).target.status).toBe(S.Down);
  });
  it('one older than a ping heard during the pause does not count: that one is the latest run (a fail superseded by a success paged at the resume)', () => {
    // The job failed at 12 000 and succeeded at 15 000, both during the pause; the success was heard then (ignored),
    // the fail only after the resume (a backlog).
    const t = resumed([]);
    const heardWhilePaused = fold([
      life(push('active', 1, 1000)),
      ping('success', 2000),
      life(push('paused', 2, 10_000)),
      ping('success', 15_000),
      life(push('active', 3, 20_000)),
    ]).target;
    expect(t.status).toBe(S.Unknown);
    const late = fold([ping('fail', 12_000, 20_100)], heardWhilePaused).target;
    expect(late.status).toBe(S.Unknown);
    expect(late.locations.push.lastSeen).toBe(15_000);
    // One after it still counts.
    expect(fold([ping('fail', 16_000, 20_100)], heardWhilePaused).target.status).toBe(S.Down);
    // Also with no location held at the resume: the target's last seen.
    const paused = fold([life(push('active', 1, 1000)), life(push('paused', 2, 10_000))]).target;
    const bare = applyLifecycle(
      { ...paused, locations: {}, lastSeen: 15_000 },
      push('active', 3, 20_000),
      policy,
    ).target;
    expect(fold([ping('fail', 12_000, 20_100)], bare).target.status).toBe(S.Unknown);
    expect(fold([ping('fail', 16_000, 20_100)], bare).target.status).toBe(S.Down);
    // One heard while paused stamped after the resume (a replica ahead) holds later pings off no longer than the resume.
    const ahead = fold([
      life(push('active', 1, 1000)),
      life(push('paused', 2, 10_000)),
      ping('success', 30_000, 15_000),
      life(push('active', 3, 20_000)),
    ]).target;
    expect(fold([ping('fail', 20_500)], ahead).target.status).toBe(S.Down);
    const bareAhead = applyLifecycle(
      { ...paused, locations: {}, lastSeen: 30_000 },
      push('active', 3, 20_000),
      policy,
    ).target;
    expect(fold([ping('fail', 20_500)], bareAhead).target.status).toBe(S.Down);
  });

  it('a long pause does not page at the resume: due period + grace after the resume, whatever the last ping', () => {
    // Last ping at 2000, paused for far longer than the window, resumed at 10 000 000.
    const t = fold([
      life(push('active', 1, 1000)),
      ping('success', 2000),
      life(push('paused', 2, 10_000)),
      life(push('active', 3, 10_000_000)),
    ]).target;
    expect(t.status).toBe(S.Unknown);
    expect(t.locations.push.deadline?.at).toBe(10_000_000 + WINDOW);
    // A schedule change while it waits keeps counting from the resume, not from the pause's time.
    const changed = applyLifecycle(t, { ...push('active', 4, 10_000_100), pingWindowMs: 2 * WINDOW }, policy).target;
    expect(changed.locations.push.deadline?.at).toBe(10_000_000 + 2 * WINDOW);
  });

  it("the pause's start is not moved by a pause sent again or a rename while paused", () => {
    const paused = fold([
      life(push('active', 1, 1000)),
      life(push('paused', 2, 10_000)),
      life(push('paused', 3, 12_000)),
      life({ ...push('paused', 4, 13_000), name: 'renamed' }),
    ]).target;
    expect(paused.since).toBe(10_000);
    const r = applyLifecycle({ ...paused, locations: {} }, push('active', 5, 20_000), policy).target;
    expect(fold([ping('fail', 11_000, 20_100)], r).target.status).toBe(S.Down);
  });
  // A probed check is unchanged: check-lifecycle.spec ('a result started before the resume … does not count').
});

type Op =
  | { kind: 'pause' | 'resume'; step: number }
  | { kind: 'old-lifecycle'; step: number }
  | { kind: 'ping'; signal: HeartbeatSignal; skew: number; step: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('pause' as const, 'resume' as const), step: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ kind: fc.constant('old-lifecycle' as const), step: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({
    kind: fc.constant('ping' as const),
    signal: fc.constantFrom<HeartbeatSignal>('success', 'fail', 'start'),
    // The ingest replica's clock against the configuration owner's, and redeliveries / spools (far behind).
    skew: fc.oneof(fc.integer({ min: -5000, max: 5000 }), fc.integer({ min: -60_000, max: 0 })),
    step: fc.integer({ min: 0, max: 5000 }),
  }),
);

describe('property: pause/resume interleaved with pings stamped by skewed clocks', () => {
  it('the status (after every step) is that of the newest ping folded after the last pause began (stamped after it and after every ping folded before it), UNKNOWN if none; PAUSED while paused', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        let now = 100_000;
        let version = 1;
        const sent: CheckLifecycle[] = [push('active', 1, now)];
        let target = fold([life(sent[0])]).target;
        // The model: what was folded, and when.
        let paused = false;
        let pauseAt = 0;
        const activeBeforePause: number[] = [0];
        let folded: Array<{ stamp: number; status: S }> = [];
        // Every ping heard (any signal, paused or not): its last seen. One heard while paused is the job's latest run.
        const heard: number[] = [];
        let sincePause: Array<{ stamp: number; status: S }> = [];
        /** What the model says the monitor reads now. */
        const expected = (): S => {
          if (paused) return S.Paused;
          // Counted: pings folded since the resume stamped no earlier than the pause's start or any ping heard before
          // the resume (while paused too: the latest run). Of those, the newest by stamp (the later folded on a tie).
          const bar = Math.max(...activeBeforePause);
          let newest: { stamp: number; status: S } | undefined;
          for (const f of sincePause)
            if (f.stamp >= bar && (newest === undefined || f.stamp >= newest.stamp)) newest = f;
          return newest?.status ?? S.Unknown;
        };
        for (const o of ops) {
          now += o.step;
          if (o.kind === 'ping') {
            const at = now + o.skew;
            target = fold([ping(o.signal, at, now)], target).target;
            heard.push(at);
            if (o.signal !== 'start' && !paused) {
              const f = { stamp: at, status: o.signal === 'fail' ? S.Down : S.Up };
              folded = [...folded, f];
              sincePause = [...sincePause, f];
            }
          } else if (o.kind === 'old-lifecycle') {
            // A redelivered older lifecycle changes nothing.
            const before = target;
            target = fold([life(sent[o.step % sent.length])], target).target;
            expect(target).toEqual(before);
          } else {
            const l = push(o.kind === 'pause' ? 'paused' : 'active', ++version, now);
            sent.push(l);
            target = fold([life(l)], target).target;
            if (o.kind === 'pause' && !paused) {
              paused = true;
              pauseAt = now;
              activeBeforePause.push(...folded.map((f) => f.stamp));
              folded = [];
            } else if (o.kind === 'resume' && paused) {
              paused = false;
              sincePause = [];
              // A ping heard stamped after the resume (a replica ahead) holds later ones off no longer than the resume.
              activeBeforePause.push(pauseAt, ...heard.map((h) => Math.min(h, now)));
            }
          }
          // After every step, not only the last: the interleavings that end just after a resume are the telling ones.
          expect(target.status).toBe(expected());
        }
      }),
      { numRuns: 500 },
    );
  });
});
