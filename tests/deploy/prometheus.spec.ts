import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { exportPrometheusRules } from '@fleetwatch/alerting';
import { SERVICE_PORTS } from '@fleetwatch/config';
import { DEFAULT_ALERT_RULES } from '@fleetwatch/contracts';

// SPEC §10: deploy/ holds a Prometheus scrape config and the exported alert rules. Kept honest against the code: every
// service scraped on its SPEC §11 port, the rule file exactly what the site exports for its shipped rules, and both
// accepted by promtool.
const root = join(__dirname, '../..');
const dir = join(root, 'deploy/prometheus');
const read = (file: string) => readFileSync(join(dir, file), 'utf8');

describe('deploy/prometheus', () => {
  it('scrapes /metrics of the five services on their ports', () => {
    const config = parse(read('prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: { metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = config.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    expect(targets.sort()).toEqual(
      Object.entries(SERVICE_PORTS)
        .map(([name, { port }]) => `${name}:${port}`)
        .sort(),
    );
    expect(config.scrape_configs.every((s) => (s.metrics_path ?? '/metrics') === '/metrics')).toBe(true);
    expect(config.rule_files).toEqual(['fleetwatch.rules.yml']);
  });

  it('holds the shipped alert rules as the site exports them', () => {
    const exported = exportPrometheusRules(DEFAULT_ALERT_RULES, { site: 'local' }).yaml;
    const file = read('fleetwatch.rules.yml').replace(/^(#.*\n)+/, '');
    expect(file).toBe(exported);
  });

  it('passes promtool check config (with its rule file)', () => {
    const check = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (check.error)
      throw new Error('promtool is not installed (apt-get install -y --no-install-recommends prometheus)');
    expect({ status: check.status, output: `${check.stdout}${check.stderr}` }).toMatchObject({ status: 0 });
  });
});
