import { TargetStatus as S, type StatusSummaryResponse } from '@fleetwatch/contracts';
import { SUMMARY_STATUSES, summaryTarget } from '../../../apps/api-gateway/src/targets/seed-targets.int-helpers';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../../../apps/api-gateway/src/int-spec.helpers';

// Benchmark (issue 17): with 10,000 targets in live state, `GET /api/v1/status/summary` p99 under 50 ms, beside
// GET /api/v1/auth/me (the same authenticated round trip without the summary's work). Prints the figures; the goal
// is asserted with FW_BENCH=1 (a quiet machine). Client and gateway share this process, so the figures include the
// client's own HTTP work. Not part of `npm test` (apps/api-gateway/src/status/status-summary.many.int-spec.ts holds
// the counts over many targets); run it with `npm run bench:status-summary` (docs/benchmarks.md).

const TARGETS = 10_000;
const REQUESTS = Number(process.env.FW_BENCH_REQUESTS ?? 300);
const STRICT = process.env.FW_BENCH === '1';
const GOAL_P99_MS = 50;
const STATUSES = SUMMARY_STATUSES;

let gw: GatewayHarness;
let token: string;

async function measure(path: string): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 20; i++) await gw.request('GET', path, { token });
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    times.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  }
  times.sort((a, b) => a - b);
  const p = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)];
  return { p50: p(0.5), p99: p(0.99) };
}

beforeAll(async () => {
  gw = await startGateway(testing, 'summary-bench');
  token = await gw.login('admin', ADMIN_PASSWORD);
  const all = Array.from({ length: TARGETS }, (_, i) => summaryTarget(i, 'bench'));
  for (let i = 0; i < all.length; i += 500) await gw.live.writeTargets(all.slice(i, i + 500));
}, 120_000);
afterAll(() => gw?.close());

it(`GET /api/v1/status/summary with ${TARGETS} targets: right counts, p99 under ${GOAL_P99_MS} ms`, async () => {
  const first = await gw.request<StatusSummaryResponse>('GET', '/api/v1/status/summary', { token });
  expect(first.body.total).toBe(TARGETS);
  expect(first.body.byStatus[S.Up]).toBe((TARGETS / STATUSES.length) * 3);
  expect(Object.values(first.body.byKind).reduce((a, b) => a + b, 0)).toBe(TARGETS);

  // The same authenticated round trip without the summary's work: what the box costs anyway.
  const baseline = await measure('/api/v1/auth/me');
  const summary = await measure('/api/v1/status/summary');
  process.stdout.write(
    `\nstatus summary benchmark (${TARGETS} targets, ${REQUESTS} sequential requests, ${STRICT ? 'strict' : 'loose'}): ` +
      `summary p50 ${summary.p50.toFixed(1)} ms, p99 ${summary.p99.toFixed(1)} ms; ` +
      `GET /auth/me (auth only) p50 ${baseline.p50.toFixed(1)} ms, p99 ${baseline.p99.toFixed(1)} ms\n`,
  );
  // Held to the goal only on a quiet machine (FW_BENCH=1).
  if (STRICT) expect(summary.p99).toBeLessThan(GOAL_P99_MS);
}, 120_000);
