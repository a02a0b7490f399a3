import { collectDefaultMetrics, register } from 'prom-client';
import { dropLintFailingDefaultMetrics, LINT_FAILING_DEFAULT_METRICS } from './promtool-lint';

// prom-client types `type` as a numeric enum; at run time it is the name ('counter', 'gauge', …).

describe('dropLintFailingDefaultMetrics', () => {
  beforeAll(() => collectDefaultMetrics());
  afterAll(() => register.clear());

  it('finds the _total gauges in the default metrics, then removes exactly them', async () => {
    const before = (await register.getMetricsAsJSON()).map((m) => m.name);
    // If prom-client stops emitting one, this list (and the boot-time drop) can shrink.
    for (const name of LINT_FAILING_DEFAULT_METRICS) expect(before).toContain(name);

    dropLintFailingDefaultMetrics();
    const after = (await register.getMetricsAsJSON()).map((m) => m.name);
    expect(after).toEqual(before.filter((n) => !LINT_FAILING_DEFAULT_METRICS.includes(n)));
  });

  it('leaves no non-counter named *_total, and the per-type replacements stay', async () => {
    dropLintFailingDefaultMetrics();
    const metrics = await register.getMetricsAsJSON();
    const offending = metrics
      .filter((m) => String(m.type) !== 'counter' && m.name.endsWith('_total'))
      .map((m) => m.name);
    expect(offending).toEqual([]);
    const names = metrics.map((m) => m.name);
    for (const kept of ['nodejs_active_handles', 'nodejs_active_requests', 'nodejs_active_resources'])
      expect(names).toContain(kept);
  });

  it('is safe to call twice', () => {
    expect(() => {
      dropLintFailingDefaultMetrics();
      dropLintFailingDefaultMetrics();
    }).not.toThrow();
  });

  it('exposes only promtool-valid names, every counter ending in _total', async () => {
    dropLintFailingDefaultMetrics();
    for (const m of await register.getMetricsAsJSON()) {
      expect(m.name).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      if (String(m.type) === 'counter') expect(m.name).toMatch(/_total$/);
    }
  });
});
