import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import type { TargetFilter, TargetRecord } from '@fleetwatch/live-state';
import { hostsSummary } from './member-report.service';

// The report's hosts part (GET /api/v1/status/report `hosts`, the fleet page's "Hosts up n / m"): `up` counts every
// UP host, as `count` counts every host — not only those of the first page the averages read. The averages and the
// GPU count are of UP hosts' samples: a STALE host's last sample stays in live state but is not current (/metrics and
// the alert rules leave it out too).

function target(id: string, status: TargetStatus): TargetRecord {
  return { id: `host:${id}`, kind: TargetKind.Host, name: id, status, locations: {} } as unknown as TargetRecord;
}

/** A sample; a STALE host's (its last, hours old) reads 90 % everywhere and has a GPU. */
function sample(hostId: string, stale: boolean): string {
  const pct = stale ? 90 : 10;
  const s: HostMetricsPayload = {
    hostId,
    location: 'lab',
    sampledAt: new Date(0).toISOString(),
    cpu: { usagePct: pct, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 100, usedBytes: stale ? 90 : 50 },
    disks: [{ mount: '/', totalBytes: 100, usedBytes: pct }],
    network: [],
    gpus: stale
      ? [
          {
            index: 0,
            name: 'GPU 0',
            utilizationPct: 90,
            memoryUsedBytes: null,
            memoryTotalBytes: null,
            temperatureC: null,
            powerW: null,
          },
        ]
      : [],
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
        ids: all.slice(0, limit).map((t) => t.id),
        unreadable: [],
      });
    },
    listTargetIds: (f: TargetFilter) => Promise.resolve(matching(f).map((t) => t.id)),
    getHostMetricsMany: (ids: readonly string[]) =>
      Promise.resolve(
        new Map(
          ids.map((id) => {
            const stale = targets.find((t) => t.id === `host:${id}`)?.status === TargetStatus.Stale;
            return [id, sample(id, stale)] as [string, string];
          }),
        ),
      ),
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
    expect(summary).toMatchObject({ cpuPct: 10, memoryUsedPct: 50, diskUsedPct: 10, gpuCount: 0, gpuUtilPct: null });
  });

  it("averages only UP hosts' samples: a STALE host's last figures are not current", async () => {
    const summary = await hostsSummary(
      fakeLive([target('a', TargetStatus.Stale), target('b', TargetStatus.Up), target('c', TargetStatus.Stale)]),
    );
    expect(summary).toEqual({
      count: 3,
      up: 1,
      cpuPct: 10,
      memoryUsedPct: 50,
      diskUsedPct: 10,
      gpuCount: 0,
      gpuUtilPct: null,
    });
  });

  it("no host UP: no averages, not the STALE hosts' old ones", async () => {
    const summary = await hostsSummary(fakeLive([target('a', TargetStatus.Stale)]));
    expect(summary).toEqual({
      count: 1,
      up: 0,
      cpuPct: null,
      memoryUsedPct: null,
      diskUsedPct: null,
      gpuCount: 0,
      gpuUtilPct: null,
    });
  });

  it('a small site: every host read, UP counted', async () => {
    const summary = await hostsSummary(
      fakeLive([target('a', TargetStatus.Up), target('b', TargetStatus.Stale), target('c', TargetStatus.Up)]),
    );
    expect(summary).toMatchObject({ count: 3, up: 2, cpuPct: 10, memoryUsedPct: 50 });
  });
});
