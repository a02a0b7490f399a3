import type {
  ComponentsMatrixView,
  DriftCountsView,
  LeaderFlowView,
  LeaderMemberView,
  LeaderStatsView,
  MemberDriftView,
  MemberSnapshotView,
} from '@fleetwatch/contracts';
import { api, enc } from './client';
import { keys } from './queries';

// The leader endpoints (SPEC §8) the Fleet and Fleet config pages read. Query keys carry every
// input (the flow window, the member), under the same root as the other pages' keys.

export const fleetKeys = {
  all: () => [...keys.all, 'fleet'] as const,
  members: () => [...fleetKeys.all(), 'members'] as const,
  stats: () => [...fleetKeys.all(), 'stats'] as const,
  flow: (minutes: number) => [...fleetKeys.all(), 'flow', minutes] as const,
  components: () => [...fleetKeys.all(), 'components'] as const,
  drift: () => [...fleetKeys.all(), 'drift'] as const,
  driftOf: (member: string) => [...fleetKeys.all(), 'drift', member] as const,
  snapshot: (member: string) => [...fleetKeys.all(), 'snapshot', 'member', member] as const,
  // Not under 'member': a member may be named `own` (its snapshot is another request).
  ownSnapshot: () => [...fleetKeys.all(), 'snapshot', 'own'] as const,
};

/** A member's last good snapshot as the leader serves it: flagged when the member no longer answers. */
export type LeaderSnapshotView = MemberSnapshotView & { stale: boolean; ageSeconds: number | null };

export const fetchFleetMembers = (signal?: AbortSignal) =>
  api<{ items: LeaderMemberView[] }>('/api/v1/leader/members', { signal });

export const fetchFleetStats = (signal?: AbortSignal) => api<LeaderStatsView>('/api/v1/leader/stats', { signal });

export const fetchFleetFlow = (minutes: number, signal?: AbortSignal) =>
  api<LeaderFlowView>(`/api/v1/leader/flow-metrics?minutes=${minutes}`, { signal });

export const fetchComponentsMatrix = (signal?: AbortSignal) =>
  api<ComponentsMatrixView>('/api/v1/leader/config/components', { signal });

export const fetchDriftCounts = (signal?: AbortSignal) =>
  api<DriftCountsView>('/api/v1/leader/config/drift', { signal });

/** A member's drift from this site, side by side (and which of its properties are overridden). */
export const fetchMemberDrift = (member: string, signal?: AbortSignal) =>
  api<MemberDriftView>(`/api/v1/leader/config/drift/${enc(member)}`, { signal });

export const fetchMemberSnapshot = (member: string, signal?: AbortSignal) =>
  api<LeaderSnapshotView>(`/api/v1/leader/config/snapshot/${enc(member)}`, { signal });

/** This site's own current snapshot (what drift compares members with). */
export const fetchOwnSnapshot = (signal?: AbortSignal) =>
  api<MemberSnapshotView>('/api/v1/system/snapshot/current', { signal });
