import { BROWSER_SESSION, type ApiErrorBody } from '@fleetwatch/contracts';

// The one place that talks HTTP to the gateway. The session is the gateway's HttpOnly,
// SameSite=Strict cookie, which the browser sends by itself and no script can read; the
// page holds no token at all (nothing in localStorage). Writes carry the session's CSRF
// token (from the sign-in answer, else the readable `fw_csrf` cookie) as `X-CSRF-Token`.

let csrfToken: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called once by the session: any 401 ends the session in the UI. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly issues: { path: string; message: string }[] = [],
    readonly currentVersion: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

function csrfHeader(method: string): Record<string, string> {
  if (method === 'GET' || method === 'HEAD') return {};
  let token = csrfToken;
  if (!token && typeof document !== 'undefined') {
    const m = new RegExp(`(?:^|;\\s*)${BROWSER_SESSION.csrfCookie}=([^;]+)`).exec(document.cookie);
    token = m ? decodeURIComponent(m[1]) : null;
  }
  return token ? { [BROWSER_SESSION.csrfHeader]: token } : {};
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? 'GET';
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    signal: options.signal,
    headers: {
      accept: 'application/json',
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...csrfHeader(method),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as ApiErrorBody | null;
    if (res.status === 401 && !(method === 'POST' && path.endsWith('/auth/session'))) onUnauthorized?.();
    throw new ApiError(
      res.status,
      body?.error?.message ?? `${res.status} ${res.statusText}`,
      body?.error?.code ?? null,
      body?.error?.issues ?? [],
      body?.error?.currentVersion ?? null,
    );
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Path segment for an id such as `instance:web-1` or `check:…`. */
export const enc = encodeURIComponent;
