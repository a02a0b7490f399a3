import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import type { TargetFilter, TargetRecord } from '@fleetwatch/live-state';
import { hostsSummary } from './member-report.service';

// The report's hosts part (GET /api/v1/status/report `hosts`, the fleet page's "Hosts up n / m"): `up` counts every
// UP host, as `count` counts every host — not only those of the first page the averages read.

function target(id: string, status: TargetStatus): TargetRecord {
  return { id: `host:${id}`, kind: TargetKind.Host, name: id, status, locations: {} } as unknown as TargetRecord;
}

function sample(hostId: string, cpuPct: number): string {
  const s: HostMetricsPayload = {
    hostId,
    location: 'lab',
    sampledAt: new Date(0).toISOString(),
    cpu: { usagePct: cpuPct, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 100, usedBytes: 50 },
    disks: [],
    network: [],
    gpus: [],
  };
  return JSON.stringify(s);
}

/** Live state's reads as the store answers them: filters over the kind and status indexes, ids in order, pages. */
function fakeLive(targets: TargetRecord[]) {
  const matching = (f: TargetFilter) =>
    targets
      .filter((t) => (!f.kind?.length || f.kind.includes(t.kind)) && (!f.status?.length || f.status.includes(t.status)))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    listTargets: (f: TargetFilter, limit: number) => {
      const all = matching(f);
      return Promise.resolve({
        items: all.slice(0, limit),
        nextCursor: all.length > limit ? all[limit - 1].id : null,
        total: all.length,
      });
    },
    listTargetIds: (f: TargetFilter) => Promise.resolve(matching(f).map((t) => t.id)),
    getHostMetricsMany: (ids: readonly string[]) =>
      Promise.resolve(new Map(ids.map((id) => [id, sample(id, 10)] as [string, string]))),
  };
}

describe('report: hosts', () => {
  it('counts every UP host, past the first page of samples the averages read', async () => {
    const pad = (i: number) => String(i).padStart(5, '0');
    // 1,500 hosts: the first 1,100 by id UP, then 300 STALE, then 100 UP again.
    const targets = Array.from({ length: 1500 }, (_, i) =>
      target(`h-${pad(i)}`, i >= 1100 && i < 1400 ? TargetStatus.Stale : TargetStatus.Up),
    );
    const summary = await hostsSummary(fakeLive(targets));
    expect(summary.count).toBe(1500);
    expect(summary.up).toBe(1200);
    expect(summary.cpuPct).toBe(10);
  });

  it('a small site: every host read, UP counted', async () => {
    const summary = await hostsSummary(
      fakeLive([target('a', TargetStatus.Up), target('b', TargetStatus.Stale), target('c', TargetStatus.Up)]),
    );
    expect(summary).toMatchObject({ count: 3, up: 2, cpuPct: 10, memoryUsedPct: 50 });
  });
});
