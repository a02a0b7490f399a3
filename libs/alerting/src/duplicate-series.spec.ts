import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { applyChanges, evaluateFleet, type ObservedTarget } from './fleet';
import { compileAlertRule } from './rule';
import { hostMetricSeries, sampleCondition } from './series';
import type { AlertSeriesState } from './engine';
import { MIN, T0, ruleOf, targetOf } from './testing/fixtures';

// A host sample the host.metrics contract accepts may name one mount twice (two disks whose long mount paths share
// their first 512 characters, a platform that lists a mount twice) or one GPU index twice. Both are the same alert
// series (rule, target, labels): it must be one alert, holding when either figure holds — not two alerts under one
// key, the second undoing the first at every evaluation (pending → firing and → inactive together: a 'firing'
// notification every other evaluation, the stored state inactive).

const disk = compileAlertRule(
  ruleOf('disk', {
    name: 'Disk',
    selector: { kinds: ['host'] },
    for: '1m',
    condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
  }),
);

function hostWith(disks: Array<[string, number]>, gpus: Array<[number, number]> = []): ObservedTarget {
  const sample = {
    hostId: 'h',
    location: 'lab',
    sampledAt: new Date(T0).toISOString(),
    cpu: { usagePct: 1, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 100, usedBytes: 1 },
    disks: disks.map(([mount, pct]) => ({ mount, totalBytes: 100, usedBytes: pct })),
    network: [],
    gpus: gpus.map(([index, temperatureC]) => ({
      index,
      name: `GPU ${index}`,
      utilizationPct: null,
      memoryUsedBytes: null,
      memoryTotalBytes: null,
      temperatureC,
      powerW: null,
    })),
  } satisfies HostMetricsPayload;
  return {
    target: targetOf('host:h', { kind: TargetKind.Host }),
    observation: { status: TargetStatus.Up, metrics: hostMetricSeries(sample) },
  };
}

describe('one alert per label set, whatever the sample repeats', () => {
  it.each([
    [
      'the full disk first',
      [
        ['/data', 95],
        ['/data', 50],
      ] as Array<[string, number]>,
    ],
    [
      'the full disk last',
      [
        ['/data', 50],
        ['/data', 95],
      ] as Array<[string, number]>,
    ],
  ])('a mount reported twice (%s): pending, then firing once, and it stays firing', (_, disks) => {
    const states = new Map<string, AlertSeriesState>();
    const transitions: string[] = [];
    let notifications = 0;
    for (let i = 0; i < 6; i++) {
      const r = evaluateFleet({ rules: [disk], states, now: T0 + i * MIN }, [hostWith(disks)]);
      transitions.push(...r.transitions.map((t) => `${t.from}->${t.to}`));
      notifications += r.notifications.length;
      applyChanges(states, r.changed);
    }
    expect(transitions).toEqual(['inactive->pending', 'pending->firing']);
    expect(notifications).toBe(1);
    expect([...states.values()].map((s) => [s.state, s.value])).toEqual([['firing', 95]]);
  });

  it.each([
    ['the fuller disk first', 97, 92],
    ['the fuller disk last', 92, 97],
  ])('both figures holding (%s): the alert and its notification say the fuller disk', (_, a, b) => {
    const states = new Map<string, AlertSeriesState>();
    const fired: Array<number | null> = [];
    for (let i = 0; i < 3; i++) {
      const r = evaluateFleet({ rules: [disk], states, now: T0 + i * MIN }, [
        hostWith([
          ['/data', a],
          ['/data', b],
        ]),
      ]);
      fired.push(...r.notifications.map((n) => n.value));
      applyChanges(states, r.changed);
    }
    expect(fired).toEqual([97]);
    expect([...states.values()].map((s) => [s.state, s.value])).toEqual([['firing', 97]]);
  });

  it('one sample per label set: holding when any of its figures holds; the worse figure, in whatever order', () => {
    const gpuHot = compileAlertRule(
      ruleOf('gpu', {
        name: 'GPU hot',
        condition: { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'above', threshold: 80 },
      }),
    );
    const obs = hostWith(
      [
        ['/', 20],
        ['/', 10],
        ['/', 30],
      ],
      [
        [0, 50],
        [1, 60],
        [0, 85],
        [0, 95],
        [0, 90],
      ],
    ).observation;
    // Neither holding: the figure nearest the threshold (not the first, which would depend on the order).
    expect(sampleCondition(disk.rule.condition, obs)).toEqual([
      { seriesLabels: { mount: '/' }, active: false, value: 30 },
    ]);
    expect(sampleCondition(gpuHot.rule.condition, obs)).toEqual([
      { seriesLabels: { device: '0' }, active: true, value: 95 },
      { seriesLabels: { device: '1' }, active: false, value: 60 },
    ]);
    // `below`: the lower figure is the worse.
    const gpuCold = compileAlertRule(
      ruleOf('cold', {
        name: 'GPU cold',
        condition: { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'below', threshold: 70 },
      }),
    );
    expect(sampleCondition(gpuCold.rule.condition, obs)).toEqual([
      { seriesLabels: { device: '0' }, active: true, value: 50 },
      { seriesLabels: { device: '1' }, active: true, value: 60 },
    ]);
    const coldObs = hostWith(
      [],
      [
        [0, 40],
        [0, 30],
        [0, 35],
      ],
    ).observation;
    expect(sampleCondition(gpuCold.rule.condition, coldObs)).toEqual([
      { seriesLabels: { device: '0' }, active: true, value: 30 },
    ]);
  });
});
