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

/**
 * A page of `components` × `perComponent` targets (`check:c<i>-t<j>`), each with 20 changes (UP, DOWN, PARTIAL, STALE)
 * spread over the 89 days before `now` (a fixed pseudo-random sequence: the same page every call), a tenth of them
 * covered by one of five one-off maintenance windows (by tag `w0`…`w4`, a few hours each on days 1–5 back). `data`:
 * what the repository answers (changesSince reads `data.changes` at each build: replace it to change the history);
 * `service({ windows: false })`: the same page with no maintenance window.
 */
export function largePage(components: number, perComponent: number, now: number) {
  const day = 86_400_000;
  let seed = 17;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const idsOf = (c: number) => Array.from({ length: perComponent }, (_, j) => `check:c${c}-t${j}`);
  const all = Array.from({ length: components }, (_, c) => idsOf(c)).flat();
  const statuses = ['UP', 'DOWN', 'PARTIAL', 'STALE', 'UP', 'UP'];
  const data = {
    changes: all.flatMap((targetId) =>
      Array.from({ length: 20 }, () => now - Math.floor(random() * 89 * day))
        .sort((a, b) => a - b)
        .map((at) => ({ targetId, at, to: statuses[Math.floor(random() * statuses.length)] })),
    ),
    changesSinceCalls: 0,
  };
  const rows = Array.from({ length: 5 }, (_, i) => ({
    id: `w${i}`,
    spec: {
      name: `w${i}`,
      createdBy: 'alice',
      scope: { tags: [`w${i}`] },
      schedule: {
        type: 'once',
        startsAt: new Date(now - (i + 1) * day).toISOString(),
        endsAt: new Date(now - (i + 1) * day + (i + 2) * 3_600_000).toISOString(),
      },
    },
  }));
  const repo = {
    findBySlug: async () => ({
      spec: {
        slug: 'big',
        title: 'Big',
        description: '',
        published: true,
        announcements: [],
        components: Array.from({ length: components }, (_, c) => ({
          name: `C${c}`,
          description: '',
          tags: [],
          targetIds: idsOf(c),
        })),
      },
    }),
    selectTargets: async (sel: { ids: string[] }) => ({
      sample: sel.ids.map((targetId, j) => ({ targetId, status: 'UP', tags: [`w${j % 50}`] })),
      statuses: ['UP'],
      covered: [],
    }),
    changesSince: async () => {
      data.changesSinceCalls++;
      return { initial: new Map(all.map((id) => [id, 'UP'])), changes: data.changes };
    },
  };
  return {
    data,
    service: ({
      windows = true,
      ...options
    }: Partial<Pick<PublicStatusOptions, 'sliceMs'>> & { now: () => number; windows?: boolean }) =>
      new PublicStatusService(
        repo as unknown as StatusPagesRepository,
        { all: async () => (windows ? rows : []) } as unknown as AlertConfigRepository,
        { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', ...options },
      ),
  };
}

/**
 * Runs `work` while counting the event loop's turns (setImmediate callbacks run before it settles) and the longest
 * wait between two of them (ms, from `work`'s start to its end).
 */
export async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number; longest: number }> {
  let turns = 0;
  let longest = 0;
  let last = performance.now();
  let done = false;
  const tick = () => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
    turns++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await work();
  done = true;
  longest = Math.max(longest, performance.now() - last);
  return { result, turns, longest };
}
