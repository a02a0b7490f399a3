import { InstanceKind, TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { applyObservation, type Observation, type TargetSnapshot } from './target-state';

// What a pushed instance is (`container`, `pod`, …) travels with its state (GET /api/v1/targets?kind=container): the
// latest update's kind wins.

const policy = { downQuorumPct: 100 };
const update = (location: string, at: number, instanceKind?: InstanceKind, extra: Partial<Observation> = {}) =>
  ({
    targetId: 'instance:web-1',
    kind: TargetKind.Instance,
    name: 'web-1',
    location,
    at,
    status: S.Up,
    reason: 'running',
    lifecycle: 'running',
    instanceKind,
    ...extra,
  }) satisfies Observation;

function fold(observations: Observation[], start?: TargetSnapshot): TargetSnapshot {
  let target = start;
  for (const o of observations) target = applyObservation(target, o, policy).target;
  return target as TargetSnapshot;
}

describe('a pushed instance’s kind', () => {
  it('is kept from its first update', () => {
    expect(fold([update('eu', 1000, InstanceKind.Container)]).instanceKind).toBe(InstanceKind.Container);
  });

  it('follows the latest update: re-created as a pod after being a container, it is a pod', () => {
    const t = fold([update('eu', 1000, InstanceKind.Container), update('eu', 2000, InstanceKind.Pod)]);
    expect(t.instanceKind).toBe(InstanceKind.Pod);
  });

  it('an older update (out of order) does not take it back', () => {
    const t = fold([update('eu', 2000, InstanceKind.Pod), update('eu', 1000, InstanceKind.Container)]);
    expect(t.instanceKind).toBe(InstanceKind.Pod);
  });

  it('a lagging location’s update, older than another location’s state, does not take it back', () => {
    const t = fold([
      update('eu', 1000, InstanceKind.Container),
      update('us', 3000, InstanceKind.Pod),
      update('eu', 2000, InstanceKind.Container),
    ]);
    expect(t.instanceKind).toBe(InstanceKind.Pod);
    expect(t.locations.eu.observedAt).toBe(2000);
  });

  it('an observation without one (a stored instance before kinds were kept; not a push) keeps what the target has', () => {
    const t = fold([update('eu', 1000, InstanceKind.Job), update('eu', 2000, undefined)]);
    expect(t.instanceKind).toBe(InstanceKind.Job);
    const stored = fold([update('eu', 1000, undefined)]);
    expect(stored.instanceKind ?? null).toBeNull();
    expect(fold([update('eu', 2000, InstanceKind.Service)], stored).instanceKind).toBe(InstanceKind.Service);
  });

  it('a removed instance that comes back as something else is that', () => {
    const t = fold([
      update('eu', 1000, InstanceKind.Container),
      update('eu', 2000, InstanceKind.Container, { lifecycle: 'removed', status: S.Unknown }),
      update('eu', 3000, InstanceKind.Pod),
    ]);
    expect(t.deletedAt ?? null).toBeNull();
    expect(t.instanceKind).toBe(InstanceKind.Pod);
  });

  it('checks and hosts have none', () => {
    const check = fold([update('eu', 1000, undefined, { targetId: 'check:c1', kind: TargetKind.Check })]);
    expect(check.instanceKind ?? null).toBeNull();
  });
});
