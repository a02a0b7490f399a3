import type { ApiErrorBody, LoginResponse, TargetListResponse } from '@fleetwatch/contracts';

const TOKEN_KEY = 'fleetwatch.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function storedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = storedToken();
  const res = await fetch(path, {
    ...init,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...init.headers,
    },
  });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as ApiErrorBody | null;
    if (res.status === 401) localStorage.removeItem(TOKEN_KEY);
    throw new ApiError(res.status, body?.error.message ?? `${res.status} ${res.statusText}`);
  }
  return (await res.json()) as T;
}

export async function login(username: string, password: string): Promise<LoginResponse> {
  const r = await call<LoginResponse>('/api/v1/auth/login', {
    method: 'POST',
    body: JSON.stringify({ username, password }),
  });
  localStorage.setItem(TOKEN_KEY, r.token);
  return r;
}

export function logout(): void {
  localStorage.removeItem(TOKEN_KEY);
}

export function listTargets(filter: { status?: string; kind?: string }): Promise<TargetListResponse> {
  const q = new URLSearchParams({ limit: '500' });
  if (filter.status) q.set('status', filter.status);
  if (filter.kind) q.set('kind', filter.kind);
  return call<TargetListResponse>(`/api/v1/targets?${q}`);
}
