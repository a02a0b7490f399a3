import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import {
  applyChanges,
  compileAlertRule,
  evaluateFleet,
  type AlertSeriesState,
  type CompiledAlertRule,
} from '@fleetwatch/alerting';
import { applyObservation, CHECK_STALE_SLACK_MS, checkStaleReason } from '@fleetwatch/domain';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { AlertEvaluationReaderRepository } from '@fleetwatch/persistence';
import { AlertMetricsReader, latencyWindowMs } from './alert-metrics.reader';
import { TargetView, type ViewedTarget } from './target-view';

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

  it('reads hosts for a gpus_missing rule (GPUs the collector saw and misses now): the count, from the sample', async () => {
    const lostRule = compileAlertRule({
      ...diskRule.rule,
      id: 'gpu-lost',
      condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
    });
    const withMissing = JSON.stringify({
      ...(JSON.parse(sample('a', 10)) as object),
      missingGpus: [{ index: 3, uuid: 'GPU-x', since: new Date(0).toISOString() }],
    });
    const read = await readerWith({ a: withMissing }).read([lostRule], [host('a', TargetStatus.Up)]);
    expect(read.series.get('host:a')?.filter((s) => s.kind === 'gpus_missing')).toEqual([
      { kind: 'gpus_missing', labels: {}, value: 1 },
    ]);
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

// `latency_p95_ms` is the p95 of a check's results over a window back from now (check_results). A window of a fixed
// 5 min held a check run hourly (or every 10 min) for 5 min after each result only: the series was absent the rest of
// the time, so "latency p95 > 300 ms for 10m" on such a check could not fire in 10 min (pending, then absent for an
// hour, firing only when the next result brought the series back — or, its interval not known, dropped as absent).
// The window scales with how often the check reports (its STALE deadline's interval): 5 min at least, else two of its
// intervals plus the STALE slack — while the check is not STALE its newest result is in it.
describe('AlertMetricsReader, latency_p95_ms over a window scaled to the check interval', () => {
  const T0 = 1_800_000_000_000;
  const MIN = 60_000;
  const latencyRule = (forSpec: string): CompiledAlertRule =>
    compileAlertRule({
      id: 'slow',
      name: 'Slow',
      enabled: true,
      selector: { targetIds: [], tags: [], sites: [], locations: [], kinds: [TargetKind.Check] },
      condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
      for: forSpec,
      severity: 'warning',
      labels: {},
      annotations: {},
      channels: [],
    });

  let clock = T0;
  beforeEach(() => {
    clock = T0;
    jest.spyOn(Date, 'now').mockImplementation(() => clock);
  });
  afterEach(() => jest.restoreAllMocks());

  /** check_results of one check, and the history read over them as Postgres answers it (continuous p95). */
  function resultsStore() {
    const rows: { at: number; latencyMs: number }[] = [];
    const asked: { ids: readonly string[]; since: number | readonly number[] }[] = [];
    const p95Since = (since: number): number | undefined => {
      const xs = rows
        .filter((r) => r.at >= since && r.at <= clock)
        .map((r) => r.latencyMs)
        .sort((a, b) => a - b);
      if (!xs.length) return undefined;
      const pos = 0.95 * (xs.length - 1);
      const lo = Math.floor(pos);
      return xs[lo] + (pos - lo) * ((xs[lo + 1] ?? xs[lo]) - xs[lo]);
    };
    const history = {
      latencyP95: async (ids: readonly string[], since: number | readonly number[]) => {
        asked.push({ ids, since });
        const out = new Map<string, number>();
        ids.forEach((id, i) => {
          const v = p95Since(typeof since === 'number' ? since : since[i]);
          if (v !== undefined) out.set(id, v);
        });
        return out;
      },
    } as unknown as AlertEvaluationReaderRepository;
    const store = { getHostMetricsMany: async () => new Map(), getCheckMetrics: async () => new Map() };
    const reader = new AlertMetricsReader(store as unknown as LiveStateStore, history);
    return { rows, asked, reader };
  }

  /** The check as the evaluator's view holds it: its interval is what its STALE deadline says (reportIntervalOf). */
  function viewOf(intervalSeconds: number, seq = 1): TargetView {
    const check = applyObservation(
      undefined,
      {
        targetId: 'check:api',
        kind: TargetKind.Check,
        name: 'api',
        location: 'eu',
        at: T0,
        status: TargetStatus.Up,
        reason: 'check ok',
        deadline: {
          at: T0 + 2 * intervalSeconds * 1000 + CHECK_STALE_SLACK_MS,
          expireTo: TargetStatus.Stale,
          reason: checkStaleReason(intervalSeconds),
        },
      },
      { downQuorumPct: 100 },
    ).target;
    const view = new TargetView('s');
    view.putSnapshots([{ ...check, seq }]);
    return view;
  }

  const latencyOf = async (reader: AlertMetricsReader, rule: CompiledAlertRule, view: TargetView) =>
    (await reader.read([rule], view.values())).series.get('check:api')?.find((s) => s.kind === 'latency_p95_ms')?.value;

  it('is 5 min at least, else two intervals plus the STALE slack (interval not known: 5 min)', () => {
    expect(latencyWindowMs(null)).toBe(5 * MIN);
    expect(latencyWindowMs(30_000)).toBe(5 * MIN);
    expect(latencyWindowMs(150_000)).toBe(5 * MIN + CHECK_STALE_SLACK_MS);
    expect(latencyWindowMs(600_000)).toBe(20 * MIN + CHECK_STALE_SLACK_MS);
    expect(latencyWindowMs(3_600_000)).toBe(120 * MIN + CHECK_STALE_SLACK_MS);
  });

  it('a check run hourly: "p95 > 300 ms for 10m" fires 10 min after a slow result, its series there all along', async () => {
    const rule = latencyRule('10m');
    const view = viewOf(3600);
    const { rows, reader } = resultsStore();
    let states = new Map<string, AlertSeriesState>();
    let firedAt: number | null = null;
    const absentAt: number[] = [];
    // Slow results on the hour; evaluated every 15 s (the reader recomputes every 15 s) for 70 min.
    for (clock = T0; clock <= T0 + 70 * MIN; clock += 15_000) {
      if ((clock - T0) % (60 * MIN) === 0) rows.push({ at: clock, latencyMs: 500 });
      const read = await reader.read([rule], view.values());
      if (!read.series.has('check:api')) absentAt.push(clock);
      const observed = [...view.values()].map((t) => ({
        target: t.target,
        observation: { status: t.status, metrics: read.series.get(t.target.id), reportIntervalMs: t.reportIntervalMs },
      }));
      const r = evaluateFleet({ rules: [rule], states, now: clock }, observed);
      states = new Map(states);
      applyChanges(states, r.changed);
      if (firedAt === null && r.transitions.some((t) => t.to === 'firing')) firedAt = clock;
    }
    expect(view.get('check:api')?.reportIntervalMs).toBe(3_600_000);
    expect(firedAt).toBe(T0 + 10 * MIN);
    expect(absentAt).toEqual([]);
  });

  it('a check run every 30 s keeps the 5-minute window', async () => {
    const rule = latencyRule('0s');
    const view = viewOf(30);
    const { rows, asked, reader } = resultsStore();
    rows.push({ at: T0, latencyMs: 900 });
    for (let t = T0 + 30_000; t <= T0 + 6 * MIN; t += 30_000) rows.push({ at: t, latencyMs: 100 });
    clock = T0 + 5 * MIN;
    expect(await latencyOf(reader, rule, view)).toBeGreaterThan(300); // the slow one is 5 min old: in
    expect(asked.at(-1)?.since).toEqual([clock - 5 * MIN]);
    clock += 15_000;
    expect(await latencyOf(reader, rule, view)).toBe(100); // out
    expect(asked.at(-1)?.since).toEqual([clock - 5 * MIN]);
  });

  it('follows two checks trading intervals at the next read (the windows differ, their sum does not)', async () => {
    const rule = latencyRule('0s');
    const { rows, asked, reader } = resultsStore();
    const viewOfTwo = (first: number, last: number, seq: number) => {
      const two = new TargetView('s');
      for (const [id, seconds] of [
        ['check:a', first],
        ['check:b', last],
      ] as const) {
        const snapshot = applyObservation(
          undefined,
          {
            targetId: id,
            kind: TargetKind.Check,
            name: id,
            location: 'eu',
            at: T0,
            status: TargetStatus.Up,
            reason: 'check ok',
            deadline: {
              at: T0 + 2 * seconds * 1000 + CHECK_STALE_SLACK_MS,
              expireTo: TargetStatus.Stale,
              reason: checkStaleReason(seconds),
            },
          },
          { downQuorumPct: 100 },
        ).target;
        two.putSnapshots([{ ...snapshot, seq }]);
        expect(two.get(id)?.reportIntervalMs).toBe(seconds * 1000);
      }
      return two;
    };
    rows.push({ at: T0, latencyMs: 900 });
    clock = T0 + 20 * MIN;
    await reader.read([rule], viewOfTwo(3600, 30, 1).values());
    expect(asked.at(-1)?.since).toEqual([clock - 120 * MIN - CHECK_STALE_SLACK_MS, clock - 5 * MIN]);
    // a now runs every 30 s, b hourly: read again at once, not up to 15 s later with each other's windows.
    clock += 1000;
    await reader.read([rule], viewOfTwo(30, 3600, 2).values());
    expect(asked.at(-1)?.since).toEqual([clock - 5 * MIN, clock - 120 * MIN - CHECK_STALE_SLACK_MS]);
  });

  it('follows an interval change at the next read (hourly → every 30 s → hourly)', async () => {
    const rule = latencyRule('0s');
    const { rows, reader } = resultsStore();
    rows.push({ at: T0, latencyMs: 900 });
    for (let t = T0 + 15 * MIN; t <= T0 + 20 * MIN; t += 30_000) rows.push({ at: t, latencyMs: 100 });
    clock = T0 + 20 * MIN;
    const hourly = viewOf(3600);
    expect(await latencyOf(reader, rule, hourly)).toBeGreaterThan(300); // 20 min old, in two hours
    // The check now runs every 30 s (a snapshot read with the new deadline): without waiting for the 15 s refresh, the
    // window is 5 min and the 20-minute-old result is out.
    clock += 1000;
    const fast = viewOf(30, 2);
    expect(await latencyOf(reader, rule, fast)).toBe(100);
    clock += 1000;
    expect(await latencyOf(reader, rule, viewOf(3600, 3))).toBeGreaterThan(300);
  });
});
