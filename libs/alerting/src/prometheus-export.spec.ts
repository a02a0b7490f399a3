import { parse } from 'yaml';
import { DEFAULT_ALERT_RULES, TargetStatus, type AlertRuleInput } from '@fleetwatch/contracts';
import { exportPrometheusRules } from './prometheus-export';
import { HOST_CATALOGUE, ruleOf } from './testing/fixtures';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>;
}
const rulesOf = (yaml: string) => (parse(yaml) as RuleFile).groups[0].rules;
const status = (over: Partial<AlertRuleInput> = {}) =>
  ruleOf('r', { name: 'Down', condition: { type: 'status', statuses: [TargetStatus.Down] }, ...over });

describe('Prometheus rule export', () => {
  it("exports the shipped rules: status ones over fleetwatch_target_status, host ones over /metrics' host series", () => {
    const r = exportPrometheusRules(DEFAULT_ALERT_RULES, { site: 'a' });
    expect(r.exported).toEqual([
      'default.target-down',
      'default.target-partial',
      'default.target-stale',
      'default.host-cpu-high',
      'default.host-disk-full',
      'default.gpu-temperature-high',
    ]);
    // The GPU-lost rule's count is the evaluator's own figure: no /metrics series says it.
    expect(r.skipped).toEqual([
      {
        ruleId: 'default.gpus-missing',
        name: 'GPU fallen off the bus',
        reason: expect.stringMatching(/^\/metrics has no series for gpus_missing: /) as string,
      },
    ]);
    const hostOnly = ' and on (target) fleetwatch_target_up{location="all",kind="host"}';
    expect(
      rulesOf(r.yaml)
        .slice(3)
        .map((x) => x['expr']),
    ).toEqual([
      '(max by (target, host) (label_replace(fleetwatch_host_cpu_ratio, "target", "host:$1", "host", "(.*)")) > 0.9) * 100' +
        hostOnly,
      'max by (target, host, mount) (label_replace(fleetwatch_host_disk_used_bytes / (fleetwatch_host_disk_total_bytes > 0), "target", "host:$1", "host", "(.*)")) * 100 > 90' +
        hostOnly,
      'max by (target, host, device) (label_replace(fleetwatch_host_gpu_temperature_celsius, "target", "host:$1", "host", "(.*)")) > 85' +
        hostOnly,
    ]);
    expect(rulesOf(r.yaml)[0]).toEqual({
      alert: 'Target down',
      expr: 'max by (target) (fleetwatch_target_status{status="DOWN"}) == 1',
      for: '1m',
      labels: { severity: 'critical', rule_id: 'default.target-down' },
    });
    // target.name is not on /metrics: the annotation is left out, with a note.
    expect(r.notes).toContainEqual({
      ruleId: 'default.target-down',
      annotation: 'summary',
      reason: '"{{ target.name }}" has no Prometheus equivalent',
    });
  });

  it.each([
    [
      { selector: { targetIds: ['check:a'] } },
      'max by (target) (fleetwatch_target_status{status="DOWN",target="check:a"}) == 1',
    ],
    [
      { selector: { targetIds: ['check:a.b', 'check:(x)'] } },
      'max by (target) (fleetwatch_target_status{status="DOWN",target=~"check:a\\\\.b|check:\\\\(x\\\\)"}) == 1',
    ],
    [
      { condition: { type: 'status', statuses: ['DOWN', 'STALE'] }, selector: { kinds: ['check'], locations: ['eu'] } },
      'max by (target) (fleetwatch_target_status{status=~"DOWN|STALE"}) == 1' +
        ' and on (target) fleetwatch_target_up{location="all",kind="check"}' +
        ' and on (target) fleetwatch_target_up{location="eu"}',
    ],
    [{ selector: { sites: ['a', 'b'] } }, 'max by (target) (fleetwatch_target_status{status="DOWN"}) == 1'],
  ] as Array<[Partial<AlertRuleInput>, string]>)('%j → %s', (over, expr) => {
    const r = exportPrometheusRules([status(over)], { site: 'a' });
    expect(rulesOf(r.yaml)[0]['expr']).toBe(expr);
  });

  it.each([
    [{ selector: { tags: ['prod'] } }, 'selects by tag, and tags are not labels of /metrics series'],
    [{ selector: { sites: ['b'] } }, 'selects sites b only; this export is of site a'],
    [{ enabled: false }, 'disabled'],
  ] as Array<[Partial<AlertRuleInput>, string]>)('skips %j: %s', (over, reason) => {
    const r = exportPrometheusRules([status(over)], { site: 'a' });
    expect(r.skipped).toEqual([{ ruleId: 'r', name: 'Down', reason }]);
    expect(rulesOf(r.yaml)).toEqual([]);
  });

  it('translates what Go templates can say, keeps literal text literal, and carries for/keep_firing_for/labels', () => {
    const r = exportPrometheusRules(
      [
        status({
          for: '5m',
          keepFiringFor: '2m',
          labels: { team: 'ops {{ not a template }}' },
          annotations: {
            summary: '{{ alert.name }} on {{ target.id }} ({{ labels.team }}): {{ alert.value }}',
            unknown: 'at {{literal}}',
            looped: '{% for x in (1..2) %}{% endfor %}',
          },
        }),
      ],
      { site: 'a' },
    );
    expect(rulesOf(r.yaml)[0]).toMatchObject({
      for: '5m',
      keep_firing_for: '2m',
      labels: { team: 'ops {{ "{{" }} not a template }}', severity: 'warning', rule_id: 'r' },
      annotations: {
        summary: 'Down on {{ $labels.target }} ({{ $labels.team }}): {{ $value }}',
      },
    });
    expect(r.notes).toEqual([
      { ruleId: 'r', annotation: 'unknown', reason: '"{{ literal }}" has no Prometheus equivalent' },
      { ruleId: 'r', annotation: 'looped', reason: 'uses Liquid tags' },
    ]);
  });

  it("leaves out a rule selecting pushed instances' own kinds: no /metrics series carries them", () => {
    const containers = ruleOf('ct', {
      name: 'Containers down',
      selector: { kinds: ['instance', 'container', 'pod'] },
      condition: { type: 'status', statuses: ['DOWN'] },
    });
    const r = exportPrometheusRules([containers], { site: 'a' });
    expect(r.exported).toEqual([]);
    expect(r.skipped).toEqual([
      {
        ruleId: 'ct',
        name: 'Containers down',
        reason:
          "selects instance kinds (container, pod), and a pushed instance's own kind is not a label of /metrics series",
      },
    ]);
  });

  it("leaves out latency_p95_ms: the evaluator's p95 over a window scaled to the check's interval has no /metrics series", () => {
    const slow = ruleOf('slow', {
      name: 'API slow',
      selector: { kinds: ['check'] },
      condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
    });
    const r = exportPrometheusRules([slow], { site: 'a' });
    expect(r.exported).toEqual([]);
    expect(rulesOf(r.yaml)).toEqual([]);
    expect(r.skipped).toEqual([
      {
        ruleId: 'slow',
        name: 'API slow',
        reason:
          "/metrics has no series for latency_p95_ms: the evaluator computes it from the check's results over a window that scales with its interval (5 min, or two intervals when longer)",
      },
    ]);
  });

  it('leaves out gpus_missing: /metrics has no series of it (a lost GPU only drops out of the GPU series)', () => {
    const lost = ruleOf('lost', {
      name: 'GPU lost',
      selector: { kinds: ['host'] },
      condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
    });
    const r = exportPrometheusRules([lost], { site: 'a' });
    expect(r.exported).toEqual([]);
    expect(rulesOf(r.yaml)).toEqual([]);
    expect(r.skipped).toEqual([
      {
        ruleId: 'lost',
        name: 'GPU lost',
        reason: expect.stringMatching(/^\/metrics has no series for gpus_missing: /) as string,
      },
    ]);
  });

  it("metric conditions over /metrics' series: scaled, a ratio of two series, target label mapped, filters as matchers", () => {
    const cpu = ruleOf('cpu', {
      name: 'CPU',
      selector: { kinds: ['host'], targetIds: ['host:h1', 'check:x'] },
      condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 90 },
    });
    const disk = ruleOf('disk', {
      name: 'Disk',
      condition: { type: 'metric', metric: { kind: 'host_disk_pct', mount: '/' }, op: 'above', threshold: 90 },
    });
    const onChecks = ruleOf('c', {
      name: 'C',
      selector: { kinds: ['check'] },
      condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 90 },
    });
    const r = exportPrometheusRules([cpu, disk, onChecks], { site: 'a', catalogue: HOST_CATALOGUE });
    expect(rulesOf(r.yaml).map((x) => x['expr'])).toEqual([
      '(max by (target, host) (label_replace(fleetwatch_host_cpu_ratio{host="h1"}, "target", "host:$1", "host", "(.*)")) > 0.9) * 100' +
        ' and on (target) fleetwatch_target_up{location="all",kind="host"}',
      'max by (target, host, mount) (label_replace(fleetwatch_host_disk_used_bytes{mount="/"} / (fleetwatch_host_disk_total_bytes{mount="/"} > 0), "target", "host:$1", "host", "(.*)")) * 100 > 90',
    ]);
    expect(r.skipped).toEqual([
      {
        ruleId: 'c',
        name: 'C',
        reason: 'fleetwatch_host_cpu_ratio covers host targets only, and the rule selects none',
      },
    ]);
  });
});
