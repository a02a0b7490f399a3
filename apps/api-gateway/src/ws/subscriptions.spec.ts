import {
  TargetKind as K,
  TargetStatus as S,
  WS_MAX_SUBSCRIPTIONS,
  type StatusChangedPayload,
  type WsStatusFilter,
} from '@fleetwatch/contracts';
import { SocketSubscriptions, statusMatches } from './subscriptions';

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
  it.each<[string, WsStatusFilter, Partial<StatusChangedPayload>, string[] | null, boolean]>([
    ['empty filter', {}, {}, null, true],
    ['kind in', { kind: [K.Check, K.Host] }, {}, null, true],
    ['kind out', { kind: [K.Instance] }, {}, null, false],
    ['new status in', { status: [S.Down] }, {}, null, true],
    ['old status does not count', { status: [S.Up] }, {}, null, false],
    ['location same', { location: 'eu-west-1' }, {}, null, true],
    ['location other', { location: 'lab-2' }, {}, null, false],
    ['consensus change reaches every location', { location: 'lab-2' }, { location: null }, null, true],
    ['target listed', { targetIds: ['check:abc'] }, {}, null, true],
    ['target not listed', { targetIds: ['check:zzz'] }, {}, null, false],
    ['tag present', { tag: 'prod' }, {}, ['prod', 'web'], true],
    ['tag absent', { tag: 'prod' }, {}, ['web'], false],
    ['tags unknown', { tag: 'prod' }, {}, null, false],
    ['all together', { kind: [K.Check], status: [S.Down], tag: 'prod', location: 'eu-west-1' }, {}, ['prod'], true],
  ])('%s', (_name, filter, change, tags, expected) => {
    expect(statusMatches(filter, { ...event, ...change }, tags)).toBe(expected);
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
    expect(s.needsTags()).toBe(false);
    expect(s.remove('down')).toBe(true);
    expect(s.matchStatus(event, null)).toEqual(['t']);
  });

  it(`holds at most ${WS_MAX_SUBSCRIPTIONS}, but an id may be replaced`, () => {
    const s = new SocketSubscriptions();
    for (let i = 0; i < WS_MAX_SUBSCRIPTIONS; i++)
      expect(s.add({ type: 'subscribe', id: `s${i}`, topic: 'status', filter: {} })).toBeNull();
    expect(s.add({ type: 'subscribe', id: 'one-more', topic: 'status', filter: {} })).toMatch(/at most/);
    expect(s.add({ type: 'subscribe', id: 's0', topic: 'status', filter: { tag: 'x' } })).toBeNull();
    expect(s.needsTags()).toBe(true);
  });
});
