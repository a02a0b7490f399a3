import {
  TargetStatus,
  type ApiKeyView,
  type CreateApiKeyRequest,
  type CreateApiKeyResponse,
  type CreateUserRequest,
  type InstanceListResponse,
  type InstanceView,
  type UserAdminView,
  type UserRole,
  type UserView,
} from '@fleetwatch/contracts';
import { api, enc } from './client';
import { keys } from './queries';
import { instanceApiQuery, type InstanceFilter } from '../pages/instances/instance-filter';

// Pushed instances, API keys and users (issue 17). Keys carry every input, as in queries.ts; the
// instances list sits beside the targets' lists, so that the live socket's invalidations reach it.

export const adminKeys = {
  instances: (f: InstanceFilter) =>
    [...keys.all, 'instances', { status: f.status, kind: f.kind, tag: f.tag, location: f.location }] as const,
  allInstances: () => [...keys.all, 'instances'] as const,
  instanceCounts: () => [...keys.all, 'instances', 'counts'] as const,
  apiKeys: () => [...keys.all, 'api-keys'] as const,
  users: () => [...keys.all, 'users'] as const,
};

const PAGE = 1000;

/** Every pushed instance matching the server-side filters, page by page (`GET /api/v1/instances`). */
export async function fetchAllInstances(
  f: InstanceFilter,
  signal?: AbortSignal,
): Promise<{ items: InstanceView[]; total: number }> {
  const items: InstanceView[] = [];
  let cursor: string | null = null;
  let total = 0;
  do {
    const q = instanceApiQuery(f);
    q.set('limit', String(PAGE));
    if (cursor) q.set('cursor', cursor);
    const page: InstanceListResponse = await api<InstanceListResponse>(`/api/v1/instances?${q}`, { signal });
    items.push(...page.items);
    total = page.total;
    cursor = page.nextCursor;
  } while (cursor);
  return { items, total };
}

export const fetchApiKeys = (signal?: AbortSignal) => api<ApiKeyView[]>('/api/v1/api-keys', { signal });

export const createApiKey = (body: CreateApiKeyRequest) =>
  api<CreateApiKeyResponse>('/api/v1/api-keys', { method: 'POST', body });

export const revokeApiKey = (id: string) => api<void>(`/api/v1/api-keys/${enc(id)}`, { method: 'DELETE' });

export const fetchUsers = (signal?: AbortSignal) => api<UserAdminView[]>('/api/v1/users', { signal });

export const createUser = (body: CreateUserRequest) => api<UserView>('/api/v1/users', { method: 'POST', body });

export const changeUserRole = (id: string, role: UserRole) =>
  api<UserView>(`/api/v1/users/${enc(id)}/role`, { method: 'PUT', body: { role } });

export const setUserPassword = (id: string, password: string) =>
  api<void>(`/api/v1/users/${enc(id)}/password`, { method: 'PUT', body: { password } });

export const setUserDisabled = (id: string, disabled: boolean) =>
  api<UserAdminView>(`/api/v1/users/${enc(id)}/disabled`, { method: 'PUT', body: { disabled } });

export const deleteUser = (id: string) => api<void>(`/api/v1/users/${enc(id)}`, { method: 'DELETE' });

export type InstanceCounts = Record<TargetStatus, number> & { all: number };

/**
 * Pushed instances by status over the whole set, whatever filter the page shows: each the
 * `total` of a one-item page (seven small answers, not a download).
 */
export async function fetchInstanceCounts(signal?: AbortSignal): Promise<InstanceCounts> {
  const total = async (status?: TargetStatus) =>
    (await api<InstanceListResponse>(`/api/v1/instances?limit=1${status ? `&status=${status}` : ''}`, { signal }))
      .total;
  const statuses = Object.values(TargetStatus);
  const [all, ...each] = await Promise.all([total(), ...statuses.map((s) => total(s))]);
  const counts = { all } as InstanceCounts;
  statuses.forEach((s, i) => (counts[s] = each[i]));
  return counts;
}

/**
 * The removal of a pushed instance (operator), by its target id (`instance:{id}`): `DELETE /api/v1/instances/{id}`,
 * 202 once the broker has it; it leaves the lists when the aggregator has folded it, and an update it pushes later
 * brings it back. Null for any other target (a host is retired from its own page; a check is deleted).
 */
export function instanceRemovalPath(targetId: string): string | null {
  const prefix = 'instance:';
  return targetId.startsWith(prefix) ? `/api/v1/instances/${enc(targetId.slice(prefix.length))}` : null;
}

export const removeInstance = (path: string) => api<unknown>(path, { method: 'DELETE' });
