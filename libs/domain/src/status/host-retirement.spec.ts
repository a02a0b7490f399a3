import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { foldObservations, type FoldItem } from './fold';
import { applyExpiry, applyObservation, retireTarget, type Observation, type TargetSnapshot } from './target-state';

// A host taken out of service (DELETE /api/v1/hosts/{id}): retired as a removed instance is — a tombstone out of live
// state, its locations and consensus to UNKNOWN in events (the alert evaluator follows those: 'Target stale' resolves),
// history kept — and back as a new life with a sample stamped after the retirement.

const policy = { downQuorumPct: 100 };
const HOST = 'host:gpu-1';

/** A host sample as mapHostSample folds it: UP at the collector's location, STALE two intervals (+5 s) on. */
const sample = (at: number, location = 'lab'): Observation => ({
  targetId: HOST,
  kind: TargetKind.Host,
  name: 'gpu-1',
  location,
  at,
  status: S.Up,
  reason: 'metrics received',
  deadline: { at: at + 15_000, expireTo: S.Stale, reason: 'no metrics within 2 × 5s' },
});

function fold(observations: Observation[], start?: TargetSnapshot): TargetSnapshot {
  let target = start;
  for (const o of observations) target = applyObservation(target, o, policy).target;
  return target as TargetSnapshot;
}

/** A host that reported at 1000 and 2000, then went quiet: STALE at its deadline. */
function staleHost(): TargetSnapshot {
  const expired = applyExpiry(fold([sample(1000), sample(2000)]), 'lab', 20_000, policy);
  expect(expired.target.status).toBe(S.Stale);
  return expired.target;
}

describe('retireTarget: a host taken out of service', () => {
  it('becomes a tombstone: no location, no deadline, UNKNOWN; its location and consensus say so in events', () => {
    const stale = staleHost();
    const r = retireTarget(stale, 60_000, 'retired by admin');
    expect(r.applied).toBe(true);
    expect(r.events.map((e) => [e.targetId, e.location, e.from, e.to, e.sequence, e.at, e.reason])).toEqual([
      [HOST, 'lab', S.Stale, S.Unknown, stale.seq + 1, 60_000, 'retired by admin'],
      [HOST, null, S.Stale, S.Unknown, stale.seq + 2, 60_000, 'retired by admin'],
    ]);
    expect(r.target).toMatchObject({
      id: HOST,
      kind: TargetKind.Host,
      deletedAt: 60_000,
      locations: {},
      status: S.Unknown,
      since: 60_000,
      // Last heard from is still its last sample: the retirement is no sign of life.
      lastSeen: 2000,
      seq: stale.seq + 2,
    });
    // Nothing can expire, so it never turns STALE again.
    expect(applyExpiry(r.target, 'lab', 10_000_000, policy).applied).toBe(false);
  });

  it('every location goes, whoever reports it, each with its event, the consensus last', () => {
    const two = fold([sample(1000, 'lab'), sample(1500, 'eu')]);
    const r = retireTarget(two, 9000, 'retired');
    expect(r.target.locations).toEqual({});
    expect(r.events.map((e) => [e.location, e.from, e.to])).toEqual([
      ['eu', S.Up, S.Unknown],
      ['lab', S.Up, S.Unknown],
      [null, S.Up, S.Unknown],
    ]);
  });

  it('a sample stamped at or before the retirement does not bring it back; a later one does, as a new life', () => {
    const retired = retireTarget(staleHost(), 60_000, 'retired').target;
    for (const at of [2000, 30_000, 60_000]) {
      const late = applyObservation(retired, sample(at), policy);
      expect(late).toEqual({ target: retired, events: [], applied: false });
    }
    const back = applyObservation(retired, sample(61_000), policy);
    expect(back.applied).toBe(true);
    expect(back.target.deletedAt ?? null).toBeNull();
    expect(back.target).toMatchObject({ status: S.Up, since: 61_000, lastSeen: 61_000 });
    expect(back.target.locations['lab']?.deadline?.at).toBe(76_000);
    // Its events follow on from the retirement's: UNKNOWN → UP.
    expect(back.events.map((e) => [e.location, e.from, e.to, e.sequence])).toEqual([
      ['lab', S.Unknown, S.Up, retired.seq + 1],
      [null, S.Unknown, S.Up, retired.seq + 2],
    ]);
  });

  it('a host already retired stays as it is', () => {
    const retired = retireTarget(staleHost(), 60_000, 'retired').target;
    expect(retireTarget(retired, 90_000, 'retired again')).toEqual({ target: retired, events: [], applied: false });
  });

  it('covers what was folded before it, even stamped later (a collector clock ahead): only a newer sample revives', () => {
    const ahead = fold([sample(1000), sample(70_000)]);
    const r = retireTarget(ahead, 60_000, 'retired');
    expect(r.target).toMatchObject({ deletedAt: 70_000, locations: {}, status: S.Unknown });
    expect(applyObservation(r.target, sample(70_000), policy).applied).toBe(false);
    expect(applyObservation(r.target, sample(70_001), policy).applied).toBe(true);
  });
});

describe('foldObservations: a retirement among host samples', () => {
  const retire = (id: string, at: number): FoldItem => ({ type: 'retire', id, targetId: HOST, at, reason: 'retired' });
  const obsItem = (id: string, o: Observation): FoldItem => ({ type: 'observation', id, observation: o });

  it('folds in delivery order: samples before it are retired with the host, a later one revives it', () => {
    const items = [obsItem('s1', sample(1000)), retire('r1', 5000), obsItem('s2', sample(4000))];
    const out = foldObservations(new Map(), items, new Set(['s1', 'r1', 's2']), policy);
    const t = out.targets.get(HOST) as TargetSnapshot;
    expect(t).toMatchObject({ deletedAt: 5000, locations: {}, status: S.Unknown });
    expect(out.applied).toEqual(new Set(['s1', 'r1']));
    expect(out.events.map((e) => [e.location, e.to])).toEqual([
      ['lab', S.Up],
      [null, S.Up],
      ['lab', S.Unknown],
      [null, S.Unknown],
    ]);
    const later = foldObservations(out.targets, [obsItem('s3', sample(6000))], new Set(['s3']), policy);
    expect(later.targets.get(HOST)).toMatchObject({ status: S.Up });
    expect(later.targets.get(HOST)?.deletedAt ?? null).toBeNull();
  });

  it('is idempotent by message id: a redelivered retirement after the revival changes nothing', () => {
    const first = foldObservations(
      new Map(),
      [obsItem('s1', sample(1000)), retire('r1', 5000), obsItem('s2', sample(6000))],
      new Set(['s1', 'r1', 's2']),
      policy,
    );
    expect(first.targets.get(HOST)?.status).toBe(S.Up);
    // r1 again: its history row was there already (not fresh), so only its target's live state is re-projected.
    const again = foldObservations(first.targets, [retire('r1', 5000)], new Set(), policy);
    expect(again.targets.get(HOST)).toBe(first.targets.get(HOST));
    expect(again.events).toEqual([]);
    expect(again.duplicates).toBe(1);
    expect(again.resync).toEqual(new Set([HOST]));
  });

  it('a host never heard of is not made up: nothing is stored for it', () => {
    const out = foldObservations(new Map(), [retire('r1', 5000)], new Set(['r1']), policy);
    expect(out.targets.size).toBe(0);
    expect(out.changed.size).toBe(0);
    expect(out.applied.size).toBe(0);
  });
});
