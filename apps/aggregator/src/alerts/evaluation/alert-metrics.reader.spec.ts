import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { compileAlertRule, type CompiledAlertRule } from '@fleetwatch/alerting';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { AlertEvaluationReaderRepository } from '@fleetwatch/persistence';
import { AlertMetricsReader } from './alert-metrics.reader';
import type { ViewedTarget } from './target-view';

// What metric conditions read of hosts: the latest sample live state holds. A host's sample stays there for the raw
// retention window (7 days) after the host stops reporting; a host that is STALE gives no figures, so its metric
// alerts resolve (as a Prometheus alert whose series went stale) instead of firing on, repeated with a days-old value.

const diskRule: CompiledAlertRule = compileAlertRule({
  id: 'disk',
  name: 'Disk',
  enabled: true,
  selector: { targetIds: [], tags: [], sites: [], locations: [], kinds: [TargetKind.Host] },
  condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
  for: '0s',
  severity: 'warning',
  labels: {},
  annotations: {},
  channels: [],
});

function sample(hostId: string, usedPct: number): string {
  const payload = {
    hostId,
    sampledAt: new Date(0).toISOString(),
    cpu: { usagePct: 5 },
    memory: { totalBytes: 100, usedBytes: 10 },
    disks: [{ mount: '/', totalBytes: 100, usedBytes: usedPct }],
    gpus: [],
  } as unknown as HostMetricsPayload;
  return JSON.stringify(payload);
}

function host(id: string, status: TargetStatus): ViewedTarget {
  return {
    target: { id: `host:${id}`, kind: TargetKind.Host, name: id, site: 's', tags: [], locations: ['eu'] },
    status,
    seq: 1,
    reportIntervalMs: null,
  };
}

function readerWith(samples: Record<string, string>): AlertMetricsReader {
  const store = {
    getHostMetricsMany: async (ids: readonly string[]) =>
      new Map(ids.filter((id) => id in samples).map((id) => [id, samples[id]] as const)),
    getCheckMetrics: async () => new Map(),
  } as unknown as LiveStateStore;
  const history = { latencyP95: async () => new Map() } as unknown as AlertEvaluationReaderRepository;
  return new AlertMetricsReader(store, history);
}

describe('AlertMetricsReader, hosts', () => {
  it('reads the latest sample of a host that reports', async () => {
    const reader = readerWith({ a: sample('a', 95) });
    const read = await reader.read([diskRule], [host('a', TargetStatus.Up)]);
    const disks = read.series.get('host:a')?.filter((s) => s.kind === 'host_disk_pct');
    expect(disks?.map((s) => [s.labels['mount'], s.value])).toEqual([['/', 95]]);
    expect(read.changed).toEqual(['host:a']);
  });

  it('gives no figures for a STALE host: its last sample is no measurement of now', async () => {
    const reader = readerWith({ a: sample('a', 95), b: sample('b', 97) });
    await reader.read([diskRule], [host('a', TargetStatus.Up), host('b', TargetStatus.Up)]);
    const read = await reader.read([diskRule], [host('a', TargetStatus.Up), host('b', TargetStatus.Stale)]);
    expect([...read.series.keys()]).toEqual(['host:a']);
    // Its figures went away: a change, so the evaluator looks at it again.
    expect(read.changed).toEqual(['host:b']);
    // Reporting again: read again.
    const back = await reader.read([diskRule], [host('a', TargetStatus.Up), host('b', TargetStatus.Up)]);
    expect([...back.series.keys()].sort()).toEqual(['host:a', 'host:b']);
  });
});
