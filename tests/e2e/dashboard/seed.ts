import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import type { TargetWrite } from '@fleetwatch/live-state';

// Targets written straight into live state, as the aggregator would project them: enough
// of them (10,000) to show what the targets page does with a real fleet.

const CYCLE = [
  TargetStatus.Up,
  TargetStatus.Up,
  TargetStatus.Up,
  TargetStatus.Up,
  TargetStatus.Down,
  TargetStatus.Partial,
  TargetStatus.Stale,
  TargetStatus.Paused,
];

/** Rendered as text, never as markup: the page must show it literally and run nothing. */
export const HOSTILE_NAME = '<img src=x onerror="window.__fwXss=1">';

export const seedId = (i: number) => `instance:seed-${String(i).padStart(5, '0')}`;

export function seedTargets(n: number, now = Date.now()): TargetWrite[] {
  return Array.from({ length: n }, (_, i) => {
    const status = CYCLE[i % CYCLE.length];
    const locations: TargetWrite['locations'] = {};
    for (const loc of ['eu-west', 'us-east'].slice(0, 1 + (i % 2)))
      locations[loc] = {
        status,
        observedAt: now,
        lastSeen: now,
        latencyMs: 5 + (i % 90),
        detail: null,
        lifecycle: null,
      };
    return {
      id: seedId(i),
      kind: TargetKind.Instance,
      name: i === 0 ? HOSTILE_NAME : `web-${String(i).padStart(5, '0')}`,
      status,
      previousStatus: null,
      since: now - (i % 600) * 1000,
      lastSeen: now,
      lastLatencyMs: 5 + (i % 90),
      lifecycle: 'running',
      tags: [`team-${i % 20}`, i % 2 ? 'prod' : 'staging'],
      labels: { app: `app-${i % 50}` },
      seq: 1,
      locations,
    };
  });
}

export function countsOf(targets: readonly TargetWrite[]): Record<TargetStatus, number> & { all: number } {
  const counts = { all: targets.length } as Record<TargetStatus, number> & { all: number };
  for (const s of Object.values(TargetStatus)) counts[s] = 0;
  for (const t of targets) counts[t.status]++;
  return counts;
}
