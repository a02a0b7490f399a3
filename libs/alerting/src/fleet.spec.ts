import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { applyChanges, evaluateFleet, evaluateTarget, type ObservedTarget } from './fleet';
import { compileAlertRule } from './rule';
import { selectorMatches } from './selector';
import { hostMetricSeries, sampleCondition, thresholdHolds, type MetricSeries } from './series';
import type { AlertSeriesState } from './engine';
import { MIN, SEC, T0, ruleOf, targetOf } from './testing/fixtures';

describe('selectors', () => {
  const web = targetOf('check:web', {
    tags: ['prod', 'web'],
    site: 'a',
    locations: ['eu', 'us'],
    kind: TargetKind.Check,
  });
  it.each([
    [{}, true],
    [{ targetIds: ['check:web'] }, true],
    [{ targetIds: ['check:db'] }, false],
    [{ tags: ['prod'] }, true],
    [{ tags: ['prod', 'web'] }, true],
    [{ tags: ['prod', 'db'] }, false],
    [{ sites: ['a', 'b'] }, true],
    [{ sites: ['b'] }, false],
    [{ locations: ['us'] }, true],
    [{ locations: ['ap'] }, false],
    [{ kinds: ['host', 'check'] }, true],
    [{ kinds: ['host'] }, false],
    [{ tags: ['prod'], kinds: ['host'] }, false],
  ])('%j matches: %s', (selector, expected) => {
    const rule = ruleOf('r', { name: 'x', selector, condition: { type: 'status', statuses: [TargetStatus.Down] } });
    expect(selectorMatches(rule.selector, web)).toBe(expected);
  });
});

describe('metric thresholds', () => {
  it.each([
    ['above', 90, 90.5, true],
    ['above', 90, 90, false],
    ['below', 10, 9, true],
    ['below', 10, 10, false],
    ['above', 90, NaN, false],
    ['below', 90, NaN, false],
    ['above', 90, null, false],
    ['below', 90, undefined, false],
    ['above', -5, -4, true],
  ] as const)('%s %d with value %s holds: %s', (op, threshold, value, expected) => {
    expect(thresholdHolds(op, threshold, value)).toBe(expected);
  });

  const disk = ruleOf('disk', {
    name: 'Disk',
    condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
  });
  const series: MetricSeries[] = [
    { kind: 'host_disk_pct', labels: { mount: '/' }, value: 95 },
    { kind: 'host_disk_pct', labels: { mount: '/data' }, value: 50 },
    { kind: 'host_disk_pct', labels: { mount: '/nan' }, value: NaN },
    { kind: 'host_cpu_pct', labels: {}, value: 99 },
  ];

  it('one sample per matching series; NaN is no value and never holds; other kinds are ignored', () => {
    expect(sampleCondition(disk.condition, { status: TargetStatus.Up, metrics: series })).toEqual([
      { seriesLabels: { mount: '/' }, active: true, value: 95 },
      { seriesLabels: { mount: '/data' }, active: false, value: 50 },
      { seriesLabels: { mount: '/nan' }, active: false, value: null },
    ]);
    expect(sampleCondition(disk.condition, { status: TargetStatus.Up })).toEqual([]);
  });

  it('reads host samples as percentages, skips unknown GPU figures', () => {
    const sample = {
      cpu: { usagePct: 42 },
      memory: { totalBytes: 1000, usedBytes: 900, availableBytes: 250 },
      disks: [
        { mount: '/', totalBytes: 200, usedBytes: 190 },
        { mount: '/empty', totalBytes: 0, usedBytes: 0 },
      ],
      gpus: [
        { index: 0, utilizationPct: 80, temperatureC: 86 },
        { index: 1, utilizationPct: null, temperatureC: null },
      ],
    } as unknown as HostMetricsPayload;
    expect(hostMetricSeries(sample)).toEqual([
      { kind: 'host_cpu_pct', labels: {}, value: 42 },
      { kind: 'host_memory_pct', labels: {}, value: 75 },
      { kind: 'host_disk_pct', labels: { mount: '/' }, value: 95 },
      { kind: 'gpu_utilization_pct', labels: { device: '0' }, value: 80 },
      { kind: 'gpu_temperature_c', labels: { device: '0' }, value: 86 },
    ]);
  });
});

describe('fleet evaluation', () => {
  const down = compileAlertRule(
    ruleOf('down', {
      name: 'Down',
      for: '1m',
      condition: { type: 'status', statuses: [TargetStatus.Down] },
      channels: ['c'],
    }),
  );
  const disk = compileAlertRule(
    ruleOf('disk', {
      name: 'Disk',
      selector: { kinds: ['host'] },
      condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
    }),
  );
  const host = (id: string, diskPct: Record<string, number>): ObservedTarget => ({
    target: targetOf(id, { kind: TargetKind.Host }),
    observation: {
      status: TargetStatus.Up,
      metrics: Object.entries(diskPct).map(([mount, value]) => ({ kind: 'host_disk_pct', labels: { mount }, value })),
    },
  });
  const check = (id: string, status: TargetStatus): ObservedTarget => ({
    target: targetOf(id),
    observation: { status },
  });

  it('one alert per (rule, target, series); only changes are returned', () => {
    const states = new Map<string, AlertSeriesState>();
    const t1 = evaluateFleet({ rules: [down, disk], states, now: T0 }, [
      check('check:a', TargetStatus.Down),
      check('check:b', TargetStatus.Up),
      host('host:h', { '/': 95, '/data': 92, '/tmp': 10 }),
    ]);
    expect([...t1.changed.values()].map((s) => [s?.labels['target'], s?.labels['mount'], s?.state])).toEqual([
      ['check:a', undefined, 'pending'],
      ['host:h', '/', 'firing'],
      ['host:h', '/data', 'firing'],
    ]);
    expect(t1.notifications.map((n) => `${n.kind} ${n.labels['alertname']} ${n.labels['mount']}`)).toEqual([
      'firing Disk /',
      'firing Disk /data',
    ]);
    applyChanges(states, t1.changed);
    const t2 = evaluateFleet({ rules: [down, disk], states, now: T0 + MIN }, [
      check('check:a', TargetStatus.Down),
      check('check:b', TargetStatus.Up),
      host('host:h', { '/': 96, '/data': 92, '/tmp': 10 }),
    ]);
    expect(t2.notifications.map((n) => `${n.kind} ${n.labels['alertname']}`)).toEqual(['firing Down']);
    // '/data' did not change at all: not in the changes.
    expect([...t2.changed.keys()].some((k) => k.includes('/data'))).toBe(false);
  });

  it('alerts whose series vanished resolve: a disk unmounted after the grace, as "series_absent"; a target deleted at once; of a deleted rule, they are dropped', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
    const missing = evaluateFleet({ rules: [disk], states, now: T0 + MIN }, [host('host:h', {})]);
    expect(missing.notifications).toEqual([]);
    expect([...missing.changed.values()][0]).toMatchObject({ state: 'firing', absentSince: T0 + MIN });
    applyChanges(states, missing.changed);
    const still = evaluateFleet({ rules: [disk], states, now: T0 + 6 * MIN - 1 }, [host('host:h', {})]);
    expect(still.changed.size).toBe(0);
    const gone = evaluateFleet({ rules: [disk], states, now: T0 + 6 * MIN }, [host('host:h', {})]);
    expect(gone.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
      ['resolved', 'series_absent', T0 + MIN],
    ]);
    expect([...gone.changed.values()][0]?.state).toBe('resolved');
    expect(gone.transitions.map((t) => `${t.from}>${t.to} ${t.reason}`)).toEqual(['firing>resolved series_absent']);
    // The target deleted (no longer observed): at once, as target_gone.
    const deletedTarget = evaluateFleet({ rules: [disk], states, now: T0 + MIN }, []);
    expect(deletedTarget.notifications.map((n) => [n.kind, n.endReason])).toEqual([['resolved', 'target_gone']]);
    expect(deletedTarget.transitions.map((t) => t.reason)).toEqual(['target_gone']);
    const deleted = evaluateFleet({ rules: [], states, now: T0 + MIN }, []);
    expect([...deleted.changed.values()]).toEqual([null]);
    expect(deleted.notifications.map((n) => [n.kind, n.endReason])).toEqual([['resolved', 'rule_deleted']]);
    expect(deleted.transitions.map((t) => `${t.targetId} ${t.from}>${t.to} ${t.reason}`)).toEqual([
      'host:h firing>resolved rule_deleted',
    ]);
  });

  it("a series missing from a target that reports every 10 min keeps its alert for two intervals (the target's grace)", () => {
    const lag = compileAlertRule(
      ruleOf('lag', {
        name: 'Lag',
        condition: {
          type: 'metric',
          metric: { kind: 'check_metric', name: 'lag', labels: {} },
          op: 'above',
          threshold: 30,
        },
      }),
    );
    const every10 = (lagSeconds: number | null): ObservedTarget => ({
      target: targetOf('check:db'),
      observation: {
        status: TargetStatus.Up,
        metrics: lagSeconds === null ? [] : [{ kind: 'check_metric', name: 'lag', labels: {}, value: lagSeconds }],
        reportIntervalMs: 10 * MIN,
      },
    });
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [lag], states, now: T0 }, [every10(120)]).changed);
    applyChanges(states, evaluateFleet({ rules: [lag], states, now: T0 + 10 * MIN }, [every10(null)]).changed);
    // Five minutes, nineteen: one run missed, not its data gone — no RESOLVED (then a new FIRING).
    for (const after of [5 * MIN, 20 * MIN - 1]) {
      const kept = evaluateFleet({ rules: [lag], states, now: T0 + 10 * MIN + after }, [every10(null)]);
      expect([kept.changed.size, kept.notifications, kept.transitions]).toEqual([0, [], []]);
    }
    const gone = evaluateFleet({ rules: [lag], states, now: T0 + 30 * MIN }, [every10(null)]);
    expect(gone.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
      ['resolved', 'series_absent', T0 + 10 * MIN],
    ]);
    expect(gone.transitions.map((t) => [`${t.from}>${t.to}`, t.reason, t.absentSince])).toEqual([
      ['firing>resolved', 'series_absent', T0 + 10 * MIN],
    ]);
  });

  it("a deleted rule's alerts end in the history: firing → resolved, pending → inactive; a resolved one says nothing", () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(
      states,
      evaluateFleet({ rules: [down, disk], states, now: T0 }, [
        check('check:a', TargetStatus.Down),
        host('host:h', { '/': 95, '/data': 95 }),
      ]).changed,
    );
    // '/data' resolves, then both rules are deleted.
    applyChanges(
      states,
      evaluateFleet({ rules: [down, disk], states, now: T0 + 1 }, [
        check('check:a', TargetStatus.Down),
        host('host:h', { '/': 95, '/data': 10 }),
      ]).changed,
    );
    expect([...states.values()].map((s) => s.state).sort()).toEqual(['firing', 'pending', 'resolved']);
    const deleted = evaluateFleet({ rules: [], states, now: T0 + MIN }, []);
    expect(deleted.transitions.map((t) => `${t.ruleId} ${t.targetId} ${t.from}>${t.to}`).sort()).toEqual([
      'disk host:h firing>resolved',
      'down check:a pending>inactive',
    ]);
    expect(deleted.transitions.every((t) => t.at === T0 + MIN)).toBe(true);
  });

  it('alerts of a rule this evaluator cannot read are left alone: not resolved, not dropped', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
    expect([...states.values()].map((a) => a.state)).toEqual(['firing']);
    // A newer version stored the rule with something this one cannot parse (the loader skipped it).
    const unreadable = evaluateFleet({ rules: [], states, now: T0 + MIN, unreadableRuleIds: new Set([disk.id]) }, [
      host('host:h', { '/': 95 }),
    ]);
    expect(unreadable.changed.size).toBe(0);
    expect(unreadable.notifications).toEqual([]);
  });

  it('muting is asked only when a notification is due, with the alert labels', () => {
    const asked: string[] = [];
    const r = evaluateTarget(
      {
        rules: [disk],
        states: new Map(),
        now: T0,
        isMuted: (labels, targetId) => {
          asked.push(`${targetId} ${labels['mount']}`);
          return labels['mount'] === '/';
        },
      },
      host('host:h', { '/': 95, '/data': 99, '/tmp': 1 }),
    );
    expect(asked).toEqual(['host:h /', 'host:h /data']);
    expect(r.notifications.map((n) => n.labels['mount'])).toEqual(['/data']);
  });

  it('a series missing from one evaluation (a late sample, a missed scrape) is no recovery: no resolve + re-fire', () => {
    const states = new Map<string, AlertSeriesState>();
    const seen: string[] = [];
    const at = (t: number, h: ObservedTarget) => {
      const r = evaluateFleet({ rules: [disk], states, now: t }, [h]);
      seen.push(...r.notifications.map((x) => x.kind));
      applyChanges(states, r.changed);
    };
    at(T0, host('host:h', { '/': 95 }));
    const fired = [...states.values()][0];
    at(T0 + MIN, host('host:h', {})); // '/' missing from this evaluation
    expect([...states.values()].map((s) => s.state)).toEqual(['firing']);
    at(T0 + 2 * MIN, host('host:h', { '/': 96 }));
    expect(seen).toEqual(['firing']);
    const now = [...states.values()][0];
    expect([now.state, now.activeAt, now.firedAt]).toEqual(['firing', fired.activeAt, fired.firedAt]);
  });

  it('a series missing while its target reports STALE, PAUSED or UNKNOWN (retired), or no longer selected: resolves at once, saying why', () => {
    for (const [status, reason] of [
      [TargetStatus.Stale, 'target_stale'],
      [TargetStatus.Paused, 'target_paused'],
      [TargetStatus.Unknown, 'target_unknown'],
    ] as const) {
      const states = new Map<string, AlertSeriesState>();
      applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
      const h = host('host:h', {});
      const r = evaluateFleet({ rules: [disk], states, now: T0 + MIN }, [{ ...h, observation: { status } }]);
      expect([status, r.notifications.map((n) => `${n.kind} ${n.endReason}`)]).toEqual([
        status,
        [`resolved ${reason}`],
      ]);
      expect(r.transitions.map((t) => t.reason)).toEqual([reason]);
    }
    for (const status of [TargetStatus.Down, TargetStatus.Partial]) {
      const states = new Map<string, AlertSeriesState>();
      applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
      const r = evaluateFleet({ rules: [disk], states, now: T0 + MIN }, [
        { ...host('host:h', {}), observation: { status } },
      ]);
      expect([status, [...r.changed.values()].map((s) => s?.state), r.notifications]).toEqual([status, ['firing'], []]);
    }
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
    const checksOnly = compileAlertRule({
      ...disk.rule,
      selector: { ...disk.rule.selector, kinds: [TargetKind.Check] },
    });
    const r = evaluateFleet({ rules: [checksOnly], states, now: T0 + MIN }, [host('host:h', { '/': 95 })]);
    expect(r.notifications.map((n) => `${n.kind} ${n.endReason}`)).toEqual(['resolved not_selected']);
  });

  it('a rule edited to read another series ends its old alerts at once (no grace, no repeats of the old figure)', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
    // The same rule id now reads CPU (a host without a CPU figure in this sample): the disk alert is no gap in data.
    const cpu = compileAlertRule({
      ...disk.rule,
      condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 10 },
    });
    const r = evaluateFleet({ rules: [cpu], states, now: T0 + MIN }, [host('host:h', { '/': 95 })]);
    expect(r.notifications.map((n) => `${n.kind} ${n.endReason}`)).toEqual(['resolved rule_changed']);
    expect(r.transitions.map((t) => t.reason)).toEqual(['rule_changed']);
    // Its threshold edited, the same series: a missing figure is still a gap.
    const states2 = new Map<string, AlertSeriesState>();
    applyChanges(
      states2,
      evaluateFleet({ rules: [disk], states: states2, now: T0 }, [host('host:h', { '/': 95 })]).changed,
    );
    const higher = compileAlertRule({
      ...disk.rule,
      condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 92 },
    });
    const r2 = evaluateFleet({ rules: [higher], states: states2, now: T0 + MIN }, [host('host:h', {})]);
    expect([...r2.changed.values()].map((x) => x?.state)).toEqual(['firing']);
    expect(r2.notifications).toEqual([]);
  });

  it('the incremental evaluation of one target sees a missing series the same way (the evaluator runs it on a change)', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(
      states,
      evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95, '/data': 97 })]).changed,
    );
    // Only '/data' is in this sample: '/' is missing, '/data' still fires.
    const r = evaluateFleet({ rules: [disk], states, now: T0 + 5 * SEC }, [host('host:h', { '/data': 97 })]);
    expect(r.notifications).toEqual([]);
    expect(r.transitions).toEqual([]);
  });

  it('disabled rules evaluate nothing, and their alerts resolve', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(states, evaluateFleet({ rules: [disk], states, now: T0 }, [host('host:h', { '/': 95 })]).changed);
    const off = compileAlertRule({ ...disk.rule, enabled: false });
    const r = evaluateFleet({ rules: [off], states, now: T0 + MIN }, [host('host:h', { '/': 95 })]);
    expect(r.notifications.map((n) => `${n.kind} ${n.endReason}`)).toEqual(['resolved rule_disabled']);
  });

  it('every end says why: a figure back under the threshold or a status back is condition_cleared, so is a pending one dropped', () => {
    const states = new Map<string, AlertSeriesState>();
    applyChanges(
      states,
      evaluateFleet({ rules: [down, disk], states, now: T0 }, [
        check('check:a', TargetStatus.Down),
        host('host:h', { '/': 95 }),
      ]).changed,
    );
    const r = evaluateFleet({ rules: [down, disk], states, now: T0 + SEC }, [
      check('check:a', TargetStatus.Up),
      host('host:h', { '/': 40 }),
    ]);
    expect(r.transitions.map((t) => `${t.ruleId} ${t.from}>${t.to} ${t.reason}`)).toEqual([
      'down pending>inactive condition_cleared',
      'disk firing>resolved condition_cleared',
    ]);
    expect(r.notifications.map((n) => `${n.kind} ${n.endReason}`)).toEqual(['resolved condition_cleared']);
    // Other changes carry none.
    const again = evaluateFleet({ rules: [down, disk], states: new Map(), now: T0 }, [
      check('check:a', TargetStatus.Down),
    ]);
    expect(again.transitions.map((t) => t.reason)).toEqual([undefined]);
    // A state stored before states recorded their series (the grace cannot tell a gap): ends at once, as series_absent.
    const legacy = new Map<string, AlertSeriesState>();
    applyChanges(
      legacy,
      evaluateFleet({ rules: [disk], states: legacy, now: T0 }, [host('host:h', { '/': 95 })]).changed,
    );
    for (const [k, v] of legacy) {
      const { series: _series, ...old } = v;
      legacy.set(k, old);
    }
    const ended = evaluateFleet({ rules: [disk], states: legacy, now: T0 + MIN }, [host('host:h', {})]);
    expect(ended.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
      ['resolved', 'series_absent', undefined],
    ]);
  });

  it('a status alert ended by its target no longer reporting (paused, STALE, retired) says so, not condition_cleared', () => {
    for (const [status, reason] of [
      [TargetStatus.Paused, 'target_paused'],
      [TargetStatus.Stale, 'target_stale'],
      [TargetStatus.Unknown, 'target_unknown'],
      [TargetStatus.Up, 'condition_cleared'],
    ] as const) {
      const states = new Map<string, AlertSeriesState>();
      const fire = (now: number) =>
        applyChanges(
          states,
          evaluateFleet({ rules: [down], states, now }, [check('check:a', TargetStatus.Down)]).changed,
        );
      fire(T0);
      fire(T0 + MIN);
      expect([...states.values()].map((s) => s.state)).toEqual(['firing']);
      const r = evaluateFleet({ rules: [down], states, now: T0 + 2 * MIN }, [check('check:a', status)]);
      expect([status, r.transitions.map((t) => `${t.from}>${t.to} ${t.reason}`)]).toEqual([
        status,
        [`firing>resolved ${reason}`],
      ]);
      expect([status, r.notifications.map((n) => `${n.kind} ${n.endReason}`)]).toEqual([
        status,
        [`resolved ${reason}`],
      ]);
    }
  });
});
