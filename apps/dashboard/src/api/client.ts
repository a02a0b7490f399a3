import type { ApiErrorBody } from '@fleetwatch/contracts';

// The one place that talks HTTP to the gateway. A bearer token, when the session uses
// one, lives in this module's memory only (never localStorage: a script injected into
// the page could read it there); a reload asks for the password again unless the
// gateway's session cookie (HttpOnly, sent by the browser itself) still holds.

let bearer: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setBearerToken(token: string | null): void {
  bearer = token;
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

/** A CSRF token the gateway hands out in a readable cookie, echoed in a header on writes (double submit). */
function csrfHeader(method: string): Record<string, string> {
  if (method === 'GET' || method === 'HEAD' || typeof document === 'undefined') return {};
  const m = /(?:^|;\s*)fw_csrf=([^;]+)/.exec(document.cookie);
  return m ? { 'x-csrf-token': decodeURIComponent(m[1]) } : {};
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
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...csrfHeader(method),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as ApiErrorBody | null;
    if (res.status === 401 && !path.endsWith('/auth/login')) onUnauthorized?.();
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
