import { InstanceKind, TargetKind, TargetStatus, type StatusChangedPayload } from '@fleetwatch/contracts';
import { compileSelector } from '@fleetwatch/alerting';
import { applyObservation, checkStaleReason, type Observation, type TargetSnapshot } from '@fleetwatch/domain';
import { mapHostSample } from '../../hosts/host-observation';
import { checkSeries } from './alert-metrics.reader';
import { TargetView } from './target-view';

const snap = (id: string, status: TargetStatus, seq: number, extra: Partial<TargetSnapshot> = {}): TargetSnapshot => ({
  id,
  kind: TargetKind.Instance,
  name: id,
  status,
  since: null,
  lastSeen: null,
  lastLatencyMs: null,
  lifecycle: null,
  tags: ['web'],
  labels: {},
  seq,
  locations: {},
  ...extra,
});

const ev = (
  targetId: string,
  to: TargetStatus,
  sequence: number,
  location: string | null = null,
): StatusChangedPayload => ({
  targetId,
  kind: TargetKind.Instance,
  location,
  from: TargetStatus.Unknown,
  to,
  reason: 'test',
  at: new Date(0).toISOString(),
  sequence,
});

describe('TargetView', () => {
  it.each<[string, StatusChangedPayload[], { changed: string[]; unknown: string[] }, TargetStatus, number]>([
    [
      'a newer consensus event moves the status',
      [ev('a', TargetStatus.Down, 6)],
      { changed: ['a'], unknown: [] },
      TargetStatus.Down,
      6,
    ],
    [
      'an older or equal sequence changes nothing',
      [ev('a', TargetStatus.Down, 5)],
      { changed: [], unknown: [] },
      TargetStatus.Up,
      5,
    ],
    [
      'a location event only advances the sequence',
      [ev('a', TargetStatus.Down, 6, 'eu')],
      { changed: [], unknown: [] },
      TargetStatus.Up,
      6,
    ],
    [
      'a location event then the consensus one',
      [ev('a', TargetStatus.Down, 6, 'eu'), ev('a', TargetStatus.Down, 7)],
      { changed: ['a'], unknown: [] },
      TargetStatus.Down,
      7,
    ],
    [
      'down and back up in one batch: changed, final status',
      [ev('a', TargetStatus.Down, 6), ev('a', TargetStatus.Up, 7)],
      { changed: ['a'], unknown: [] },
      TargetStatus.Up,
      7,
    ],
    [
      'an unknown target is reported for a read',
      [ev('b', TargetStatus.Down, 1)],
      { changed: [], unknown: ['b'] },
      TargetStatus.Up,
      5,
    ],
    [
      'a backlog older than the load is ignored',
      [ev('a', TargetStatus.Down, 3), ev('a', TargetStatus.Up, 4)],
      { changed: [], unknown: [] },
      TargetStatus.Up,
      5,
    ],
  ])('%s', (_name, events, expected, status, seq) => {
    const view = new TargetView('eu-site');
    view.putSnapshots([snap('a', TargetStatus.Up, 5)]);
    expect(view.applyEvents(events)).toEqual(expected);
    expect(view.get('a')).toMatchObject({ status, seq });
  });

  it('keeps the newer of a snapshot and what events said; drops tombstones; a full load removes the missing', () => {
    const view = new TargetView('eu-site');
    expect(view.putSnapshots([snap('a', TargetStatus.Up, 5), snap('b', TargetStatus.Up, 1)])).toEqual(['a', 'b']);
    view.applyEvents([ev('a', TargetStatus.Down, 8)]);
    expect(view.putSnapshots([snap('a', TargetStatus.Up, 7)])).toEqual([]); // read before the event committed
    expect(view.get('a')?.status).toBe(TargetStatus.Down);
    expect(view.putSnapshots([snap('b', TargetStatus.Down, 2, { deletedAt: 1 })])).toEqual(['b']);
    expect(view.get('b')).toBeUndefined();
    expect(view.replaceAll([snap('c', TargetStatus.Stale, 1)]).sort()).toEqual(['a', 'c']);
    expect(view.get('c')?.target).toEqual({
      id: 'c',
      kind: TargetKind.Instance,
      instanceKind: null,
      name: 'c',
      site: 'eu-site',
      tags: ['web'],
      locations: [],
    });
  });
});

describe("TargetView and a pushed instance 'removed'", () => {
  // The evaluator learns of status changes from status.changed events only (target_states is read again every
  // resyncMs, 5 min by default). A container stopped, then removed (compose down), is reported 'stopped' (DOWN), then
  // 'removed': if the removal says nothing, the view keeps it DOWN and 'Target down' (for: 1m) fires for it.
  const policy = { downQuorumPct: 100 };
  const pod = (lifecycle: string, status: TargetStatus, at: number): Observation => ({
    targetId: 'instance:default/web-0',
    kind: TargetKind.Instance,
    name: 'default/web-0',
    location: 'cluster',
    at,
    status,
    reason: lifecycle,
    lifecycle,
  });
  const payloads = (events: ReturnType<typeof applyObservation>['events']): StatusChangedPayload[] =>
    events.map((e) => ({ ...e, at: new Date(e.at).toISOString() }));

  it('a pod terminating (DOWN) then deleted is no longer DOWN in the view once the removal is folded', () => {
    const running = applyObservation(undefined, pod('running', TargetStatus.Up, 1000), policy).target;
    const terminating = applyObservation(running, pod('stopped', TargetStatus.Down, 2000), policy).target;
    const view = new TargetView('eu-site');
    view.putSnapshots([terminating]);
    expect(view.get(terminating.id)?.status).toBe(TargetStatus.Down);
    const removed = applyObservation(terminating, pod('removed', TargetStatus.Unknown, 3000), policy);
    expect(removed.target.deletedAt).toBe(3000);
    view.applyEvents(payloads(removed.events));
    expect(view.get(terminating.id)?.status).not.toBe(TargetStatus.Down);
    // Re-created under its name: its new life's events follow on from the removal's.
    const back = applyObservation(removed.target, pod('running', TargetStatus.Up, 4000), policy);
    expect(view.applyEvents(payloads(back.events))).toEqual({ changed: [terminating.id], unknown: [] });
    expect(view.get(terminating.id)).toMatchObject({ status: TargetStatus.Up, seq: back.target.seq });
  });
});

describe('TargetView: how often a target reports (the absent grace scales with it)', () => {
  const policy = { downQuorumPct: 100 };
  it("is a check's interval, a host's sampling interval, as their STALE deadlines say; null for a pushed instance", () => {
    const check = applyObservation(
      undefined,
      {
        targetId: 'check:db',
        kind: TargetKind.Check,
        name: 'db',
        location: 'eu',
        at: 1000,
        status: TargetStatus.Up,
        reason: 'check ok',
        deadline: { at: 1_201_000, expireTo: TargetStatus.Stale, reason: checkStaleReason(600) },
      },
      policy,
    ).target;
    const sample = mapHostSample(
      {
        hostId: 'box',
        location: 'lab',
        sampledAt: new Date(1000).toISOString(),
        intervalSeconds: 15,
        cpu: { usagePct: 5, cores: 4, load1: 0.1, load5: 0.1, load15: 0.1 },
        memory: { totalBytes: 8e9, usedBytes: 2e9, swapTotalBytes: 0, swapUsedBytes: 0 },
        disks: [],
        network: [],
        gpus: [],
        uptimeSeconds: 3600,
        system: { hostname: 'box', platform: 'linux', arch: 'x64', collectorVersion: '0.1.0' },
      },
      'm-1',
      90,
    );
    const host = applyObservation(undefined, sample.observation, policy).target;
    const view = new TargetView('eu-site');
    view.putSnapshots([check, host, snap('instance:web-1', TargetStatus.Up, 1)]);
    expect(view.get('check:db')?.reportIntervalMs).toBe(600_000);
    expect(view.get('host:box')?.reportIntervalMs).toBe(15_000);
    expect(view.get('instance:web-1')?.reportIntervalMs).toBeNull();
  });
});

describe('checkSeries', () => {
  it.each<[string, Map<string, { at: number; metrics: unknown[] }>, unknown[]]>([
    ['nothing stored', new Map(), []],
    [
      'each series from the freshest location reporting it, queue depth from the queue collector',
      new Map([
        [
          'eu',
          {
            at: 1,
            metrics: [
              { name: 'x', value: 1 },
              { name: 'rabbitmq_queue_messages', labels: { queue: 'jobs' }, value: 7 },
            ],
          },
        ],
        [
          'us',
          {
            at: 2,
            metrics: [
              { name: 'rabbitmq_queue_messages', labels: { queue: 'jobs' }, value: 42 },
              { name: 'bad', value: 'NaN' },
              null,
            ],
          },
        ],
      ]),
      [
        { kind: 'check_metric', name: 'rabbitmq_queue_messages', labels: { queue: 'jobs' }, value: 42 },
        { kind: 'queue_depth', labels: { queue: 'jobs' }, value: 42 },
        { kind: 'check_metric', name: 'x', labels: {}, value: 1 },
      ],
    ],
    [
      // A location that cannot reach the management API reports no figures: the other's still count, whichever
      // reported last (they dropped whenever it did: the alert never fired).
      'a failing location reporting last hides nothing',
      new Map([
        ['eu', { at: 1000, metrics: [{ name: 'rabbitmq_queue_messages', labels: { queue: 'q' }, value: 5e4 }] }],
        ['lab', { at: 2000, metrics: [] }],
      ]),
      [
        { kind: 'check_metric', name: 'rabbitmq_queue_messages', labels: { queue: 'q' }, value: 5e4 },
        { kind: 'queue_depth', labels: { queue: 'q' }, value: 5e4 },
      ],
    ],
    [
      'a location far behind the newest report (stopped reporting) does not count',
      new Map([
        ['eu', { at: 0, metrics: [{ name: 'x', value: 1 }] }],
        ['us', { at: 15 * 60_000 + 1, metrics: [] }],
      ]),
      [],
    ],
    [
      'one series listed twice (labels in any order) is one series, the first',
      new Map([
        [
          'eu',
          {
            at: 1,
            metrics: [
              { name: 'y', labels: { a: '1', b: '2' }, value: 5000 },
              { name: 'y', labels: { b: '2', a: '1' }, value: 10 },
            ],
          },
        ],
      ]),
      [{ kind: 'check_metric', name: 'y', labels: { a: '1', b: '2' }, value: 5000 }],
    ],
  ])('%s', (_name, stored, expected) => {
    expect(checkSeries(stored)).toEqual(expected);
  });

  it("keeps a pushed instance's own kind, so a rule selecting containers picks it and not a pod", () => {
    const view = new TargetView('eu-site');
    view.putSnapshots([
      snap('instance:web-1', TargetStatus.Down, 1, { instanceKind: InstanceKind.Container }),
      snap('instance:api-1', TargetStatus.Down, 1, { instanceKind: InstanceKind.Pod }),
      snap('instance:old-1', TargetStatus.Down, 1), // stored before the kind was kept
    ]);
    expect(view.get('instance:web-1')?.target.instanceKind).toBe(InstanceKind.Container);
    const containers = compileSelector({
      targetIds: [],
      tags: [],
      sites: [],
      locations: [],
      kinds: [InstanceKind.Container],
    });
    expect([...view.values()].filter((t) => containers.matches(t.target)).map((t) => t.target.id)).toEqual([
      'instance:web-1',
    ]);
  });
});
