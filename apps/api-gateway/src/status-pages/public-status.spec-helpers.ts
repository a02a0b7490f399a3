// Shared by the public status page's unit specs (public-status.*.spec.ts): a PublicStatusService over a page of
// one component, `A`, drawn from one target, `check:a`, with the maintenance window rows it is given.
import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { PublicStatusService, type PublicStatusOptions } from './public-status.service';

/** A change of `check:a`'s status, as StatusPagesRepository.changesSince reads it. */
export type TargetChange = { targetId: string; at: number; to: string };

/**
 * The service over a published page whose one component `A` is `check:a`: the target reads `target` now (its status
 * and tags, the page's statuses and those read covered by a window open now), was UP when its history starts and
 * went through `changes()` since (called at each build); `rows` are the maintenance window rows.
 */
export function oneTargetPage(
  target: { status: string; tags: string[]; statuses: string[]; covered: string[] },
  changes: () => TargetChange[],
  rows: unknown[],
  now: () => number,
  options: Partial<Pick<PublicStatusOptions, 'maintenanceStepsPerBuild'>> = {},
): PublicStatusService {
  const repo = {
    findBySlug: async () => ({
      spec: {
        published: true,
        announcements: [],
        components: [{ name: 'A', description: '', tags: [], targetIds: ['check:a'] }],
      },
    }),
    selectTargets: async () => ({
      sample: [{ targetId: 'check:a', status: target.status, tags: target.tags }],
      statuses: target.statuses,
      covered: target.covered,
    }),
    changesSince: async () => ({ initial: new Map([['check:a', 'UP']]), changes: changes() }),
  };
  return new PublicStatusService(
    repo as unknown as StatusPagesRepository,
    { all: async () => rows } as unknown as AlertConfigRepository,
    { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now, ...options },
  );
}
