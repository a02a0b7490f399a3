import { subscriptionSpecSchema, TargetKind, TargetStatus, type StatusChangeDelivery } from '@fleetwatch/contracts';
import type { TargetSnapshot } from '@fleetwatch/domain';
import { deliveriesFor, parseSubscriptions, statusChangeOf, type StatusEventIn } from './subscription-enqueuer';

const sub = (id: string, input: Record<string, unknown> = {}) => ({
  id,
  spec: subscriptionSpecSchema.parse({ name: id, url: `https://hooks.example/${id}`, ...input }),
});

const snapshot = (id: string, tags: string[]): TargetSnapshot =>
  ({
    id,
    kind: TargetKind.Check,
    name: 'API health',
    status: TargetStatus.Down,
    since: null,
    lastSeen: null,
    lastLatencyMs: null,
    lifecycle: null,
    tags,
    labels: {},
    seq: 3,
    locations: { 'lab-1': {} },
  }) as unknown as TargetSnapshot;

const event = (
  targetId: string,
  over: Partial<StatusEventIn['payload']> = {},
  id = `ev-${targetId}`,
): StatusEventIn => ({
  id,
  payload: {
    targetId,
    kind: TargetKind.Check,
    location: null,
    from: TargetStatus.Up,
    to: TargetStatus.Down,
    reason: 'HTTP 503',
    at: '2026-12-02T10:00:00.000Z',
    sequence: 3,
    ...over,
  },
});

describe('deliveriesFor', () => {
  it('one row per matching (subscription, event), with the frozen body', () => {
    const targets = new Map([['check:api', snapshot('check:api', ['prod'])]]);
    const rows = deliveriesFor(
      [event('check:api'), event('check:web')],
      [sub('all'), sub('prod', { selector: { tags: ['prod'] } }), sub('up', { transitions: { to: ['UP'] } })],
      targets,
      'eu',
    );
    expect(rows.map((r) => `${r.subscriptionId}/${r.eventId}`)).toEqual([
      'all/ev-check:api',
      'prod/ev-check:api',
      'all/ev-check:web',
    ]);
    const body = JSON.parse(rows[1].body) as StatusChangeDelivery;
    expect(body).toEqual({
      version: '1',
      type: 'status.changed',
      eventId: 'ev-check:api',
      subscriptionId: 'prod',
      site: 'eu',
      targetId: 'check:api',
      kind: 'check',
      location: null,
      from: 'UP',
      to: 'DOWN',
      reason: 'HTTP 503',
      at: '2026-12-02T10:00:00.000Z',
      sequence: 3,
      target: { name: 'API health', tags: ['prod'] },
    });
    // A target no longer in target_states: no tags, no name.
    expect((JSON.parse(rows[2].body) as StatusChangeDelivery).target).toEqual({ name: null, tags: [] });
  });

  it('per-location changes only for subscriptions that ask, matched on the location that saw it', () => {
    const rows = deliveriesFor(
      [event('check:api', { location: 'lab-2' })],
      [
        sub('consensus'),
        sub('lab-1', { perLocation: true, selector: { locations: ['lab-1'] } }),
        sub('lab-2', { perLocation: true, selector: { locations: ['lab-2'] } }),
      ],
      new Map([['check:api', snapshot('check:api', [])]]),
      'eu',
    );
    expect(rows.map((r) => r.subscriptionId)).toEqual(['lab-2']);
  });
});

describe('parseSubscriptions / statusChangeOf', () => {
  it('skips a stored spec that no longer parses; refuses a payload that is not a status.changed', () => {
    const parsed = parseSubscriptions([
      { id: 'ok', spec: { name: 'ok', url: 'https://x.example/' }, version: 1, createdAt: '', updatedAt: '' },
      {
        id: 'bad',
        spec: { name: 'bad', url: 'https://x.example/', futureField: 1 },
        version: 1,
        createdAt: '',
        updatedAt: '',
      },
    ]);
    expect(parsed.map((s) => s.id)).toEqual(['ok']);
    expect(statusChangeOf({ targetId: 'x' })).toBeNull();
    expect(statusChangeOf(event('check:api').payload)).toMatchObject({ targetId: 'check:api', to: 'DOWN' });
  });
});
