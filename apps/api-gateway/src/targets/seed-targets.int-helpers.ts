import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import type { TargetWrite } from '@fleetwatch/live-state';

// Targets written straight into live state for the specs and benchmarks that need many of them
// (targets-list.many.int-spec, status-summary.many.int-spec and their benchmarks under tools/bench/targets).

const LIST_STATUSES = [S.Up, S.Up, S.Up, S.Up, S.Down, S.Partial, S.Stale, S.Paused];

/**
 * The i-th target of a varied fleet (`{kind}:{name}-{i, 5 digits}`): one host in ten, one check in three of the
 * rest, instances otherwise; 1–3 locations, 20 teams, prod/staging, 50 apps; statuses UP ×4, DOWN, PARTIAL, STALE,
 * PAUSED in turn.
 */
export function fleetTarget(i: number, name: string): TargetWrite {
  const status = LIST_STATUSES[i % LIST_STATUSES.length];
  const kind = i % 10 === 0 ? TargetKind.Host : i % 3 === 0 ? TargetKind.Check : TargetKind.Instance;
  const id = `${kind}:${name}-${String(i).padStart(5, '0')}`;
  const locations: TargetWrite['locations'] = {};
  for (const loc of ['eu-west-1', 'us-east-1', 'ap-south-1'].slice(0, 1 + (i % 3))) {
    locations[loc] = {
      status,
      observedAt: Date.now(),
      lastSeen: Date.now(),
      latencyMs: 10 + (i % 90),
      detail: null,
      lifecycle: null,
    };
  }
  return {
    id,
    kind,
    name: id,
    status,
    previousStatus: null,
    since: Date.now() - 60_000,
    lastSeen: Date.now(),
    lastLatencyMs: 10 + (i % 90),
    lifecycle: kind === TargetKind.Instance ? 'running' : null,
    tags: [`team-${i % 20}`, i % 2 ? 'prod' : 'staging'],
    labels: { app: `app-${i % 50}` },
    seq: 1,
    locations,
  };
}

/** The statuses `summaryTarget` cycles through (the summary's counts follow from them), as it does the kinds. */
export const SUMMARY_STATUSES = [S.Up, S.Up, S.Up, S.Down, S.Partial, S.Stale, S.Paused, S.Unknown];
const SUMMARY_KINDS = [TargetKind.Check, TargetKind.Host, TargetKind.Instance];

/** The i-th target of a fleet for the status summary (`{kind}:{name}-{i}`), one location. */
export function summaryTarget(i: number, name: string): TargetWrite {
  const status = SUMMARY_STATUSES[i % SUMMARY_STATUSES.length];
  const kind = SUMMARY_KINDS[i % SUMMARY_KINDS.length];
  const now = Date.now();
  return {
    id: `${kind}:${name}-${i}`,
    kind,
    name: `${name}-${i}`,
    status,
    previousStatus: null,
    since: now - 60_000,
    lastSeen: now,
    lastLatencyMs: 10,
    lifecycle: null,
    tags: [`team-${i % 20}`],
    labels: {},
    seq: 1,
    locations: {
      'eu-west-1': { status, observedAt: now, lastSeen: now, latencyMs: 10, detail: null, lifecycle: null },
    },
  };
}
