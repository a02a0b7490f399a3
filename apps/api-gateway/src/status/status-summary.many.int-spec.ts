import { TargetKind, TargetStatus as S, type StatusSummaryResponse } from '@fleetwatch/contracts';
import type { TargetWrite } from '@fleetwatch/live-state';
import { SUMMARY_STATUSES, summaryTarget } from '../targets/seed-targets.int-helpers';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// `GET /api/v1/status/summary` over a fleet of many targets in live state: the total and every count by status and
// by kind exact. Its timing with 10,000 targets (issue 17: p99 under 50 ms) is a benchmark, not a test:
// `npm run bench:status-summary` (tools/bench/targets, docs/benchmarks.md).

const TARGETS = 1_000;
const STATUSES = SUMMARY_STATUSES;

let gw: GatewayHarness;
let token: string;

const SEED = Array.from({ length: TARGETS }, (_, i) => summaryTarget(i, 'many'));
const tally = <K extends string>(keys: readonly K[], of: (t: TargetWrite) => K): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, SEED.filter((t) => of(t) === k).length])) as Record<K, number>;

beforeAll(async () => {
  gw = await startGateway(testing, 'summary-many');
  token = await gw.login('admin', ADMIN_PASSWORD);
  for (let i = 0; i < SEED.length; i += 500) await gw.live.writeTargets(SEED.slice(i, i + 500));
});
afterAll(() => gw?.close());

it(`GET /api/v1/status/summary with ${TARGETS} targets: the total and every count by status and kind`, async () => {
  const res = await gw.request<StatusSummaryResponse>('GET', '/api/v1/status/summary', { token });
  expect(res.status).toBe(200);
  expect(res.body.total).toBe(TARGETS);
  const byStatus = tally(Object.values(S), (t) => t.status as S);
  const byKind = tally(Object.values(TargetKind), (t) => t.kind);
  expect(byStatus[S.Up]).toBe((TARGETS / STATUSES.length) * 3);
  expect(res.body.byStatus).toEqual(byStatus);
  expect(res.body.byKind).toEqual(byKind);
});
