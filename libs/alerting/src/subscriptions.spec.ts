import {
  InstanceKind,
  subscriptionSpecSchema,
  TargetKind,
  TargetStatus,
  type SubscriptionInput,
} from '@fleetwatch/contracts';
import type { AlertTarget } from './selector';
import { signedStatusChangeHeaders, subscriptionMatches, type StatusChange } from './subscriptions';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from './channels/webhook';

const { Up, Down, Partial, Stale, Paused } = TargetStatus;
const sub = (input: Partial<SubscriptionInput> = {}) =>
  subscriptionSpecSchema.parse({ name: 's', url: 'https://hooks.example/x', ...input });
const target: AlertTarget = {
  id: 'check:api',
  kind: TargetKind.Check,
  name: 'API',
  site: 'eu',
  tags: ['prod', 'team-a'],
  locations: ['lab-1', 'lab-2'],
};
const change = (over: Partial<StatusChange> = {}): StatusChange => ({
  targetId: 'check:api',
  kind: TargetKind.Check,
  location: null,
  from: Up,
  to: Down,
  ...over,
});

describe('subscriptionMatches', () => {
  it.each<[string, Partial<SubscriptionInput>, Partial<StatusChange>, Partial<AlertTarget>, boolean]>([
    ['empty selector: every consensus change', {}, {}, {}, true],
    ['disabled: nothing', { enabled: false }, {}, {}, false],
    ['a non-change (same status): nothing', {}, { from: Down, to: Down }, {}, false],
    ['by id: that target', { selector: { targetIds: ['check:api'] } }, {}, {}, true],
    ['by id: another target', { selector: { targetIds: ['check:web'] } }, {}, {}, false],
    ['tags: all present', { selector: { tags: ['prod', 'team-a'] } }, {}, {}, true],
    ['tags: one missing', { selector: { tags: ['prod', 'team-b'] } }, {}, {}, false],
    ['site: this one', { selector: { sites: ['eu'] } }, {}, {}, true],
    ['site: another', { selector: { sites: ['us'] } }, {}, {}, false],
    ['kind: of the event', { selector: { kinds: [TargetKind.Check] } }, {}, {}, true],
    ['kind: another', { selector: { kinds: [TargetKind.Host] } }, {}, {}, false],
    [
      "instance kind: a container's change",
      { selector: { kinds: [InstanceKind.Container] } },
      { targetId: 'instance:web-1', kind: TargetKind.Instance },
      { id: 'instance:web-1', kind: TargetKind.Instance, instanceKind: InstanceKind.Container },
      true,
    ],
    [
      "instance kind: a pod's is not a container's",
      { selector: { kinds: [InstanceKind.Container] } },
      { targetId: 'instance:web-1', kind: TargetKind.Instance },
      { id: 'instance:web-1', kind: TargetKind.Instance, instanceKind: InstanceKind.Pod },
      false,
    ],
    [
      'instance kind: an instance whose kind is not known yet is not a container',
      { selector: { kinds: [InstanceKind.Container] } },
      { targetId: 'instance:web-1', kind: TargetKind.Instance },
      { id: 'instance:web-1', kind: TargetKind.Instance, instanceKind: null },
      false,
    ],
    ['instance kind: a check is none', { selector: { kinds: [InstanceKind.Container] } }, {}, {}, false],
    ['location: a consensus change of a target watched from it', { selector: { locations: ['lab-2'] } }, {}, {}, true],
    ['location: not watched from it', { selector: { locations: ['lab-9'] } }, {}, {}, false],
    ['to DOWN only: UP→DOWN', { transitions: { to: [Down] } }, {}, {}, true],
    ['to DOWN only: DOWN→UP', { transitions: { to: [Down] } }, { from: Down, to: Up }, {}, false],
    ['from DOWN (recoveries)', { transitions: { from: [Down], to: [Up] } }, { from: Down, to: Up }, {}, true],
    ['from DOWN: PARTIAL→UP is not one', { transitions: { from: [Down] } }, { from: Partial, to: Up }, {}, false],
    ['to STALE or PAUSED', { transitions: { to: [Stale, Paused] } }, { to: Paused }, {}, true],
    ['a per-location change: not sent by default', {}, { location: 'lab-1' }, {}, false],
    ['a per-location change with perLocation', { perLocation: true }, { location: 'lab-1' }, {}, true],
    [
      'perLocation + location selector: only what that location saw',
      { perLocation: true, selector: { locations: ['lab-2'] } },
      { location: 'lab-1' },
      {},
      false,
    ],
    [
      'perLocation + location selector: the location that saw it',
      { perLocation: true, selector: { locations: ['lab-1'] } },
      { location: 'lab-1' },
      {},
      true,
    ],
    ['an unknown target (no tags) and a tag selector', { selector: { tags: ['prod'] } }, {}, { tags: [] }, false],
  ])('%s', (_name, input, ch, t, expected) => {
    expect(subscriptionMatches(sub(input), change(ch), { ...target, ...t })).toBe(expected);
  });
});

describe('signedStatusChangeHeaders', () => {
  it('signs like the webhook channel: the receiver verifies it; another body or secret fails', () => {
    const body = JSON.stringify({ eventId: 'e1', to: 'DOWN' });
    const now = Date.now();
    const h = signedStatusChangeHeaders('a long signing secret', body, 'sub:e1', now);
    const v = (secret: string, b: string) =>
      verifyWebhookSignature({
        secret,
        body: b,
        timestamp: h[WEBHOOK_TIMESTAMP_HEADER],
        signature: h[WEBHOOK_SIGNATURE_HEADER],
        now,
      });
    expect(v('a long signing secret', body)).toBe(true);
    expect(v('another signing secret', body)).toBe(false);
    expect(v('a long signing secret', body.replace('DOWN', 'UP'))).toBe(false);
    expect(h['x-fleetwatch-delivery']).toBe('sub:e1');
  });
});
