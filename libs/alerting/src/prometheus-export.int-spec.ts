import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { DEFAULT_ALERT_RULES, TargetStatus } from '@fleetwatch/contracts';
import { exportPrometheusRules } from './prometheus-export';
import { HOST_CATALOGUE, ruleOf } from './testing/fixtures';

// The export checked by Prometheus' own tool: `promtool check rules` accepts the file, and
// `promtool test rules` evaluates it over synthetic /metrics series with Prometheus' engine, so the
// exported `for` behaves like ours (pending, then firing after `for`; a flap shorter than `for` never fires).
// promtool comes from Debian's `prometheus` package (.ci/run installs it).

const run = promisify(execFile);
const promtool = async (): Promise<boolean> =>
  run('promtool', ['--version']).then(
    () => true,
    () => false,
  );

const rules = [
  ...DEFAULT_ALERT_RULES,
  ruleOf('odd', {
    name: 'Odd "name" {{ x }} ünïcode',
    selector: { targetIds: ['check:a.b', 'check:(x)|y'], kinds: ['check'], locations: ['eu-west-1'] },
    condition: { type: 'status', statuses: [TargetStatus.Down, TargetStatus.Stale] },
    for: '1h30m',
    keepFiringFor: '5m',
    labels: { team: 'ops {{ $labels.x }}', quote: 'a"b\\c' },
    annotations: { summary: '{{ alert.name }} {{ target.id }} {{ labels.team }} {{ alert.value }}' },
  }),
  ruleOf('disk', {
    name: 'Disk',
    selector: { targetIds: ['host:h1'] },
    condition: { type: 'metric', metric: { kind: 'host_disk_pct', mount: '/' }, op: 'above', threshold: 90 },
    for: '2m',
  }),
];

describe('Prometheus rule export checked by promtool', () => {
  let dir: string;
  let available = false;
  beforeAll(async () => {
    available = await promtool();
    if (!available)
      // Visible in the test output: the check could not run here (Debian's `prometheus` package gives promtool).
      console.warn('SKIPPED: promtool is not on PATH (apt-get install -y prometheus): rule export not checked');
    dir = mkdtempSync(join(tmpdir(), 'fw-promrules-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('`promtool check rules` accepts the export', async () => {
    if (!available) return;
    const r = exportPrometheusRules(rules, { site: 'a', catalogue: HOST_CATALOGUE });
    expect(r.exported).toEqual([
      'default.target-down',
      'default.target-partial',
      'default.target-stale',
      'default.host-cpu-high',
      'default.host-disk-full',
      'default.gpu-temperature-high',
      'odd',
      'disk',
    ]);
    const file = join(dir, 'rules.yml');
    writeFileSync(file, r.yaml);
    const { stdout } = await run('promtool', ['check', 'rules', file]);
    expect(stdout).toMatch(/SUCCESS: 8 rules found/);
  });

  it('`promtool test rules`: the exported DOWN rule fires after `for`, a shorter outage never fires it', async () => {
    if (!available) return;
    const r = exportPrometheusRules(DEFAULT_ALERT_RULES, { site: 'a' });
    writeFileSync(join(dir, 'default.yml'), r.yaml);
    // One sample every 15 s. check:a is DOWN from 30 s on; check:b is DOWN for 45 s only (30 s – 75 s).
    const test = {
      rule_files: ['default.yml'],
      evaluation_interval: '15s',
      tests: [
        {
          interval: '15s',
          input_series: [
            { series: 'fleetwatch_target_status{target="check:a",status="DOWN"}', values: '0 0 1x20' },
            { series: 'fleetwatch_target_status{target="check:b",status="DOWN"}', values: '0 0 1 1 1 0x20' },
          ],
          alert_rule_test: [
            { eval_time: '75s', alertname: 'Target down', exp_alerts: [] },
            {
              eval_time: '90s',
              alertname: 'Target down',
              exp_alerts: [{ exp_labels: { target: 'check:a', severity: 'critical', rule_id: 'default.target-down' } }],
            },
            {
              eval_time: '4m',
              alertname: 'Target down',
              exp_alerts: [{ exp_labels: { target: 'check:a', severity: 'critical', rule_id: 'default.target-down' } }],
            },
          ],
        },
      ],
    };
    const file = join(dir, 'test.yml');
    writeFileSync(file, stringify(test));
    const { stdout } = await run('promtool', ['test', 'rules', file]);
    expect(stdout).toMatch(/SUCCESS/);
  });

  it("`promtool test rules`: the shipped disk rule fires over /metrics' used and total bytes, per mount, for hosts only, once over two gateways", async () => {
    if (!available) return;
    const cpuAt7 = ruleOf('cpu7', {
      name: 'CPU above 7',
      selector: { kinds: ['host'] },
      condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 7 },
    });
    const r = exportPrometheusRules([...DEFAULT_ALERT_RULES, cpuAt7], { site: 'a' });
    writeFileSync(join(dir, 'hosts.yml'), r.yaml);
    const test = {
      rule_files: ['hosts.yml'],
      evaluation_interval: '15s',
      tests: [
        {
          interval: '15s',
          // Scraped from two gateway replicas (the same figures, told apart by `instance`): one alert, not two. A
          // filesystem of size 0 (used 5) is no figure, as in the engine (5 / 0 = +Inf). A check named like a host
          // is not one.
          input_series: ['gw-a:3000', 'gw-b:3000'].flatMap((instance) => [
            { series: `fleetwatch_host_disk_used_bytes{instance="${instance}",host="h1",mount="/"}`, values: '95x10' },
            {
              series: `fleetwatch_host_disk_total_bytes{instance="${instance}",host="h1",mount="/"}`,
              values: '100x10',
            },
            {
              series: `fleetwatch_host_disk_used_bytes{instance="${instance}",host="h1",mount="/data"}`,
              values: '10x10',
            },
            {
              series: `fleetwatch_host_disk_total_bytes{instance="${instance}",host="h1",mount="/data"}`,
              values: '100x10',
            },
            {
              series: `fleetwatch_host_disk_used_bytes{instance="${instance}",host="h1",mount="/efi"}`,
              values: '5x10',
            },
            {
              series: `fleetwatch_host_disk_total_bytes{instance="${instance}",host="h1",mount="/efi"}`,
              values: '0x10',
            },
            { series: `fleetwatch_host_disk_used_bytes{instance="${instance}",host="c1",mount="/"}`, values: '99x10' },
            {
              series: `fleetwatch_host_disk_total_bytes{instance="${instance}",host="c1",mount="/"}`,
              values: '100x10',
            },
            {
              series: `fleetwatch_target_up{instance="${instance}",target="host:h1",location="all",kind="host"}`,
              values: '1x10',
            },
            {
              series: `fleetwatch_target_up{instance="${instance}",target="host:c1",location="all",kind="check"}`,
              values: '1x10',
            },
            // CPU at exactly a threshold of 7 % (0.07 × 100 = 7.000000000000001): not above it, as in the engine.
            { series: `fleetwatch_host_cpu_ratio{instance="${instance}",host="h1"}`, values: '0.07x10' },
          ]),
          alert_rule_test: [
            {
              eval_time: '1m',
              alertname: 'Host disk almost full',
              exp_alerts: [
                {
                  exp_labels: {
                    target: 'host:h1',
                    host: 'h1',
                    mount: '/',
                    severity: 'warning',
                    rule_id: 'default.host-disk-full',
                  },
                },
              ],
            },
            { eval_time: '1m', alertname: 'CPU above 7', exp_alerts: [] },
          ],
        },
      ],
    };
    const file = join(dir, 'hosts-test.yml');
    writeFileSync(file, stringify(test));
    const { stdout } = await run('promtool', ['test', 'rules', file]).catch(
      (e: { stdout?: string; stderr?: string }) => {
        throw new Error(`${e.stdout ?? ''}${e.stderr ?? ''}`);
      },
    );
    expect(stdout).toMatch(/SUCCESS/);
  });
});
