import {
  InstanceKind as I,
  TargetKind as K,
  TargetStatus as S,
  WS_MAX_SUBSCRIPTIONS,
  type StatusChangedPayload,
  type WsStatusFilter,
} from '@fleetwatch/contracts';
import { SocketSubscriptions, statusMatches, type SeenTarget } from './subscriptions';

const event: StatusChangedPayload = {
  targetId: 'check:abc',
  kind: K.Check,
  location: 'eu-west-1',
  from: S.Up,
  to: S.Down,
  reason: 'timeout',
  at: '2026-01-01T00:00:00.000Z',
  sequence: 3,
};

describe('statusMatches', () => {
  const tagged = (...tags: string[]): SeenTarget => ({ tags, instanceKind: null });
  // A status change says the target kind only; the instance kind is live state's (the `seen` column).
  const instance = (): Partial<StatusChangedPayload> => ({ targetId: 'instance:web-1', kind: K.Instance });
  const container: SeenTarget = { tags: [], instanceKind: I.Container };
  it.each<[string, WsStatusFilter, Partial<StatusChangedPayload>, SeenTarget | null, boolean]>([
    ['empty filter', {}, {}, null, true],
    ['kind in', { kind: [K.Check, K.Host] }, {}, null, true],
    ['kind out', { kind: [K.Instance] }, {}, null, false],
    ['instance kind of a container', { kind: [I.Container] }, instance(), container, true],
    ['instance kind of another', { kind: [I.Pod, I.Job] }, instance(), container, false],
    ['instance kind unknown (live state unavailable)', { kind: [I.Container] }, instance(), null, false],
    [
      'an instance with no kind kept matches instance only',
      { kind: [I.Container, K.Instance] },
      instance(),
      tagged(),
      true,
    ],
    ['a check is no container', { kind: [I.Container] }, {}, tagged(), false],
    ['target kind or instance kind', { kind: [K.Check, I.Container] }, instance(), container, true],
    ['new status in', { status: [S.Down] }, {}, null, true],
    ['old status does not count', { status: [S.Up] }, {}, null, false],
    ['location same', { location: 'eu-west-1' }, {}, null, true],
    ['location other', { location: 'lab-2' }, {}, null, false],
    ['consensus change reaches every location', { location: 'lab-2' }, { location: null }, null, true],
    ['target listed', { targetIds: ['check:abc'] }, {}, null, true],
    ['target not listed', { targetIds: ['check:zzz'] }, {}, null, false],
    ['tag present', { tag: 'prod' }, {}, tagged('prod', 'web'), true],
    ['tag absent', { tag: 'prod' }, {}, tagged('web'), false],
    ['tags unknown', { tag: 'prod' }, {}, null, false],
    [
      'all together',
      { kind: [K.Check], status: [S.Down], tag: 'prod', location: 'eu-west-1' },
      {},
      tagged('prod'),
      true,
    ],
  ])('%s', (_name, filter, change, seen, expected) => {
    expect(statusMatches(filter, { ...event, ...change }, seen)).toBe(expected);
  });
});

describe('SocketSubscriptions', () => {
  it('matches status filters and the target subscription, by id, and forgets removed ones', () => {
    const s = new SocketSubscriptions();
    s.add({ type: 'subscribe', id: 'down', topic: 'status', filter: { status: [S.Down] } });
    s.add({ type: 'subscribe', id: 'up', topic: 'status', filter: { status: [S.Up] } });
    s.add({ type: 'subscribe', id: 't', topic: 'target', targetId: 'check:abc' });
    s.add({ type: 'subscribe', id: 'h', topic: 'host-metrics', hostIds: ['gpu-1', 'gpu-2'] });
    expect(s.matchStatus(event, null)).toEqual(['down', 't']);
    expect(s.targetIds()).toEqual(['check:abc']);
    expect(s.subscriptionsOfHost('gpu-2')).toEqual(['h']);
    expect(s.needsTarget()).toBe(false);
    expect(s.remove('down')).toBe(true);
    expect(s.matchStatus(event, null)).toEqual(['t']);
  });

  it(`holds at most ${WS_MAX_SUBSCRIPTIONS}, but an id may be replaced`, () => {
    const s = new SocketSubscriptions();
    for (let i = 0; i < WS_MAX_SUBSCRIPTIONS; i++)
      expect(s.add({ type: 'subscribe', id: `s${i}`, topic: 'status', filter: {} })).toBeNull();
    expect(s.add({ type: 'subscribe', id: 'one-more', topic: 'status', filter: {} })).toMatch(/at most/);
    expect(s.add({ type: 'subscribe', id: 's0', topic: 'status', filter: { tag: 'x' } })).toBeNull();
    expect(s.needsTarget()).toBe(true);
  });

  it('reads the target from live state only for a filter naming a tag or an instance kind', () => {
    const s = new SocketSubscriptions();
    s.add({ type: 'subscribe', id: 'kinds', topic: 'status', filter: { kind: [K.Check, K.Instance] } });
    expect(s.needsTarget()).toBe(false);
    s.add({ type: 'subscribe', id: 'pods', topic: 'status', filter: { kind: [I.Pod] } });
    expect(s.needsTarget()).toBe(true);
  });
});
