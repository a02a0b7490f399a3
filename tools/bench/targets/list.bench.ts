import { TargetListResponse } from '@fleetwatch/contracts';
import { fleetTarget } from '../../../apps/api-gateway/src/targets/seed-targets.int-helpers';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../../../apps/api-gateway/src/int-spec.helpers';
import * as testing from '@fleetwatch/testing';

// Benchmark (issue 10): with 10,000 targets in live state, `GET /api/v1/targets` (the summary list, first page
// of 100) p99 under 50 ms. Prints a table of figures; the 50 ms goal is asserted with FW_BENCH=1 (a quiet
// machine). Client and gateway share this process, so the figures include the client's own HTTP and JSON work
// (they overstate the server's). Not part of `npm test` (apps/api-gateway/src/targets/targets-list.many.int-spec.ts
// holds the list's behaviour over many targets); run it with `npm run bench:targets-list` (docs/benchmarks.md).

const TARGETS = 10_000;
const REQUESTS = Number(process.env.FW_BENCH_REQUESTS ?? 200);
const STRICT = process.env.FW_BENCH === '1';
const GOAL_P99_MS = 50;

let gw: GatewayHarness;
let token: string;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function measure(
  path: string,
  concurrency: number,
): Promise<{ p50: number; p99: number; max: number; rps: number }> {
  for (let i = 0; i < 20; i++) await gw.request('GET', path, { token }); // warm-up
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < REQUESTS) {
        next++;
        const t0 = performance.now();
        const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        times.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      }
    }),
  );
  const elapsed = performance.now() - started;
  times.sort((a, b) => a - b);
  return {
    p50: pct(times, 50),
    p99: pct(times, 99),
    max: times[times.length - 1],
    rps: (times.length / elapsed) * 1000,
  };
}

beforeAll(async () => {
  gw = await startGateway(testing, 'bench-targets');
  token = await gw.login('admin', ADMIN_PASSWORD);
  const all = Array.from({ length: TARGETS }, (_, i) => fleetTarget(i, 'bench'));
  for (let i = 0; i < all.length; i += 500) await gw.live.writeTargets(all.slice(i, i + 500));
});
afterAll(() => gw?.close());

describe(`GET /api/v1/targets with ${TARGETS} targets in live state`, () => {
  const rows: string[] = [];
  afterAll(() => {
    process.stdout.write(
      `\napi-gateway targets list benchmark (${TARGETS} targets, ${REQUESTS} requests per row, session-token auth, in-process gateway, ${STRICT ? 'strict' : 'loose'} mode)\n` +
        `| request | concurrency | p50 ms | p99 ms | max ms | req/s |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\n`,
    );
  });

  // [path, concurrency, held to the goal]: the goal is the summary list; the rest are recorded.
  it.each([
    ['/api/v1/targets', 1, true],
    ['/api/v1/targets', 8, false],
    ['/api/v1/targets?status=UP', 1, false],
    ['/api/v1/targets?kind=instance&tag=prod', 1, false],
  ])(
    '%s (concurrency %d)',
    async (path, concurrency, goal) => {
      const total = (await gw.request<TargetListResponse>('GET', path, { token })).body.total;
      expect(total).toBeGreaterThan(1000);
      const r = await measure(path, concurrency);
      rows.push(
        `| GET ${path} (total ${total}) | ${concurrency} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.rps.toFixed(0)} |`,
      );
      // Held to the goal only on a quiet machine (FW_BENCH=1).
      if (goal && STRICT) expect(r.p99).toBeLessThan(GOAL_P99_MS);
    },
    60_000,
  );
});
