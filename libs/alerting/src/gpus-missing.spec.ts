import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import type { AlertSeriesState } from './engine';
import { applyChanges, evaluateFleet, type ObservedTarget } from './fleet';
import { compileAlertRule } from './rule';
import { hostMetricSeries, sampleCondition } from './series';
import { MIN, T0, ruleOf, targetOf } from './testing/fixtures';

// A GPU that falls off the bus (Xid 79) leaves the host's samples: its own series go, and an alert on them ends as
// `series_absent` — the worst failure of a GPU node read as "resolved". The collector lists the GPUs it saw and misses
// (host.metrics `missingGpus`); `gpus_missing` counts them, so `gpus_missing above 0` fires on exactly that.

const gpusMissing = compileAlertRule(
  ruleOf('gpu-lost', {
    name: 'GPU lost',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
  }),
);
const gpuHot = compileAlertRule(
  ruleOf('gpu-hot', {
    name: 'GPU hot',
    selector: { kinds: ['host'] },
    condition: { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'above', threshold: 80 },
  }),
);

const LOST = { index: 1, uuid: 'GPU-b', name: 'NVIDIA H100', busId: '00000000:3B:00.0' };

function sample(gpus: number[], missing: HostMetricsPayload['missingGpus'], at = T0): HostMetricsPayload {
  return {
    hostId: 'gpu-1',
    location: 'lab',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 60,
    cpu: { usagePct: 1, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 100, usedBytes: 1 },
    disks: [],
    network: [],
    gpus: gpus.map((index) => ({
      index,
      name: 'NVIDIA H100',
      utilizationPct: 90,
      memoryUsedBytes: null,
      memoryTotalBytes: null,
      temperatureC: 90,
      powerW: null,
    })),
    ...(missing !== undefined ? { missingGpus: missing } : {}),
  };
}

const host = (s: HostMetricsPayload): ObservedTarget => ({
  target: targetOf('host:gpu-1', { kind: TargetKind.Host }),
  observation: { status: TargetStatus.Up, metrics: hostMetricSeries(s), reportIntervalMs: 60_000 },
});

describe('gpus_missing', () => {
  it('is the count of missing GPUs, 0 when none; no series from a sample without the list (no GPU ever, or an older collector)', () => {
    const values = (s: HostMetricsPayload) =>
      hostMetricSeries(s)
        .filter((m) => m.kind === 'gpus_missing')
        .map((m) => [m.labels, m.value]);
    expect(values(sample([0, 1], []))).toEqual([[{}, 0]]);
    expect(values(sample([0], [{ ...LOST, since: new Date(T0).toISOString() }]))).toEqual([[{}, 1]]);
    expect(values(sample([0, 1], undefined))).toEqual([]);
    expect(sampleCondition(gpusMissing.rule.condition, host(sample([0, 1], [])).observation)).toEqual([
      { seriesLabels: {}, active: false, value: 0 },
    ]);
  });

  it('a GPU falling off the bus: `gpus_missing above 0` fires while its temperature alert ends as series_absent; it resolves when the GPU is back', () => {
    const states = new Map<string, AlertSeriesState>();
    const log: string[] = [];
    const evaluate = (s: HostMetricsPayload, at: number) => {
      const r = evaluateFleet({ rules: [gpusMissing, gpuHot], states, now: at }, [host(s)]);
      for (const t of r.transitions)
        log.push(`${(at - T0) / MIN}m ${t.ruleId} ${t.from}>${t.to}${t.reason ? ` ${t.reason}` : ''}`);
      applyChanges(states, r.changed);
    };
    // Both GPUs hot and present: the temperature alerts fire, nothing missing.
    evaluate(sample([0, 1], []), T0);
    // GPU 1 is lost: it is no longer in the samples, and listed missing.
    for (let m = 1; m <= 7; m++)
      evaluate(sample([0], [{ ...LOST, since: new Date(T0 + MIN).toISOString() }], T0 + m * MIN), T0 + m * MIN);
    // Back (after a reset): the list is empty again.
    evaluate(sample([0, 1], [], T0 + 8 * MIN), T0 + 8 * MIN);
    expect(log).toEqual([
      '0m gpu-hot inactive>firing',
      '0m gpu-hot inactive>firing',
      '1m gpu-lost inactive>firing',
      // The lost GPU's own alert: resolved once its series was absent for the grace — the reason the new rule exists.
      '6m gpu-hot firing>resolved series_absent',
      '8m gpu-lost firing>resolved condition_cleared',
      '8m gpu-hot resolved>firing',
    ]);
    expect([...states.values()].find((s) => s.ruleId === 'gpu-lost')?.state).toBe('resolved');
  });
});
