import type { ApiErrorBody, CheckDefinition, TargetListResponse, TargetView } from '@fleetwatch/contracts';
import { E2E_ADMIN_PASSWORD } from './site-launcher';

// The REST API as a person or a CI job uses it (SPEC §11): log in, send the bearer
// token, read JSON back. Every answer keeps its status, headers and body, so a test can
// assert on a refusal as easily as on a success.

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  /** The body as sent, for failure messages. */
  text: string;
}

export class GatewayClient {
  private constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
  ) {}

  /** Logs in (POST /api/v1/auth/login) and returns a client that sends the session token. */
  static async login(baseUrl: string, username = 'admin', password = E2E_ADMIN_PASSWORD): Promise<GatewayClient> {
    const anonymous = new GatewayClient(baseUrl, null);
    const res = await anonymous.request<{ token?: string }>('POST', '/api/v1/auth/login', { username, password });
    if (res.status !== 200 || !res.body.token)
      throw new Error(`login as ${username} answered ${res.status}: ${res.text}`);
    return new GatewayClient(baseUrl, res.body.token);
  }

  static anonymous(baseUrl: string): GatewayClient {
    return new GatewayClient(baseUrl, null);
  }

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer<T>> {
    const sendsText = typeof body === 'string';
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': sendsText ? 'application/yaml' : 'application/json' }),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : sendsText ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  /** POST /api/v1/checks; throws with the answer unless it is 201. */
  async createCheck(check: Record<string, unknown>): Promise<CheckDefinition> {
    const res = await this.request<CheckDefinition>('POST', '/api/v1/checks', check);
    if (res.status !== 201) throw new Error(`POST /api/v1/checks answered ${res.status}: ${res.text}`);
    return res.body;
  }

  async patchCheck(id: string, patch: Record<string, unknown>, ifMatch?: string): Promise<Answer<CheckDefinition>> {
    return this.request<CheckDefinition>(
      'PATCH',
      `/api/v1/checks/${id}`,
      patch,
      ifMatch ? { 'if-match': ifMatch } : {},
    );
  }

  /** GET /api/v1/targets/{id}: null while it is 404 (not yet folded), the view once it is there. */
  async target(id: string): Promise<TargetView | null> {
    const res = await this.request<TargetView | ApiErrorBody>('GET', `/api/v1/targets/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.status !== 200) throw new Error(`GET /api/v1/targets/${id} answered ${res.status}: ${res.text}`);
    return res.body as TargetView;
  }

  async targets(query = ''): Promise<TargetListResponse> {
    const res = await this.request<TargetListResponse>('GET', `/api/v1/targets${query ? `?${query}` : ''}`);
    if (res.status !== 200) throw new Error(`GET /api/v1/targets answered ${res.status}: ${res.text}`);
    return res.body;
  }
}

/** `eu=UP us=DOWN`: a target's per-location statuses, sorted, for assertions and wait messages. */
export function locationsOf(target: TargetView | null): string {
  if (!target) return '(not there yet)';
  return [...target.locations]
    .sort((a, b) => a.location.localeCompare(b.location))
    .map((l) => `${l.location}=${l.status}`)
    .join(' ');
}
