import { register } from 'prom-client';

/**
 * prom-client's default metrics include three gauges named `*_total`, which
 * `promtool check metrics` flags ("non-counter metrics should not have _total suffix",
 * exit 3). The same counts stay available, by type, as nodejs_active_handles,
 * nodejs_active_requests and nodejs_active_resources, so every service's /metrics —
 * the gateway's must pass promtool (SPEC §11) — drops these three at boot.
 */
export const LINT_FAILING_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function dropLintFailingDefaultMetrics(): void {
  for (const name of LINT_FAILING_DEFAULT_METRICS)
    if (register.getSingleMetric(name)) register.removeSingleMetric(name);
}
