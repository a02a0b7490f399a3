import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RequestMethod } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { ApiErrorBody, CreateApiKeyResponse } from '@fleetwatch/contracts';
import { GATEWAY_CONTROLLERS } from '../api-gateway.module';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import * as testing from '@fleetwatch/testing';

// The access policy of every gateway route, as a table: who may call it, and a request
// that must fail validation with the named fields. The table must list exactly the
// routes Nest serves and the OpenAPI document describes.

type Role = 'public' | 'viewer' | 'operator' | 'admin';
interface RouteCase {
  role: Role;
  /** A body or query string that fails validation, and the fields the answer must name. */
  invalid?: { body?: unknown; query?: string; paths: string[] };
}

const ID = '0190f0e0-0000-7000-8000-000000000000';
const POLICY: Record<string, RouteCase> = {
  'POST /api/v1/auth/login': { role: 'public', invalid: { body: { username: 'a' }, paths: ['password'] } },
  'POST /api/v1/auth/logout': { role: 'viewer' },
  'GET /api/v1/auth/me': { role: 'viewer' },
  'POST /api/v1/auth/session': { role: 'public', invalid: { body: { username: 'a' }, paths: ['password'] } },
  'GET /api/v1/auth/session': { role: 'viewer' },
  'DELETE /api/v1/auth/session': { role: 'viewer' },
  'GET /api/v1/status/summary': { role: 'viewer' },
  'GET /api/v1/status/events': {
    role: 'viewer',
    invalid: { query: 'limit=0&cursor=nope', paths: ['limit', 'cursor'] },
  },
  'GET /api/v1/instances': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'DELETE /api/v1/instances/{instanceId}': { role: 'operator' },
  'PUT /api/v1/auth/password': {
    role: 'viewer',
    invalid: { body: { currentPassword: '' }, paths: ['currentPassword', 'newPassword'] },
  },
  'GET /api/v1/users': { role: 'admin' },
  'POST /api/v1/users': {
    role: 'admin',
    invalid: {
      body: { username: 'bad name!', password: 'short', role: 'king' },
      paths: ['username', 'password', 'role'],
    },
  },
  'PUT /api/v1/users/{id}/role': { role: 'admin', invalid: { body: { role: 'king' }, paths: ['role'] } },
  'PUT /api/v1/users/{id}/password': { role: 'admin', invalid: { body: { password: 'x' }, paths: ['password'] } },
  'DELETE /api/v1/users/{id}': { role: 'admin' },
  'PUT /api/v1/users/{id}/disabled': { role: 'admin', invalid: { body: { disabled: 'yes' }, paths: ['disabled'] } },
  'POST /api/v1/api-keys': {
    role: 'operator',
    invalid: { body: { name: '', scopes: ['root'] }, paths: ['name', 'scopes.0'] },
  },
  'GET /api/v1/api-keys': { role: 'operator' },
  'DELETE /api/v1/api-keys/{id}': { role: 'operator' },
  'POST /api/v1/heartbeats': {
    role: 'operator',
    invalid: { body: { name: 'n', periodSeconds: 1.5, graceSeconds: 'x' }, paths: ['periodSeconds', 'graceSeconds'] },
  },
  'GET /api/v1/heartbeats': { role: 'operator' },
  'DELETE /api/v1/heartbeats/{id}': { role: 'operator' },
  'GET /api/v1/targets': {
    role: 'viewer',
    invalid: { query: 'limit=0&status=SIDEWAYS&bogus=1', paths: ['limit', 'status.0', '(body)'] },
  },
  'GET /api/v1/targets/{id}': { role: 'viewer' },
  'GET /api/v1/targets/{id}/history': { role: 'viewer', invalid: { query: 'minutes=0', paths: ['minutes'] } },
  'GET /api/v1/targets/{id}/updates': {
    role: 'viewer',
    invalid: { query: 'limit=0&cursor=x', paths: ['limit', 'cursor'] },
  },
  'GET /api/v1/targets/{id}/pings': {
    role: 'viewer',
    invalid: { query: 'limit=0&cursor=x', paths: ['limit', 'cursor'] },
  },
  'GET /api/v1/targets/recent': { role: 'viewer', invalid: { query: 'limit=0', paths: ['limit'] } },
  'GET /api/v1/targets/sparklines': { role: 'viewer', invalid: { query: 'bogus=1', paths: ['id', '(body)'] } },
  'GET /api/v1/hosts': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'GET /api/v1/hosts/{id}': { role: 'viewer' },
  'DELETE /api/v1/hosts/{id}': { role: 'operator' },
  'GET /api/v1/hosts/{id}/metrics': { role: 'viewer', invalid: { query: 'minutes=0', paths: ['minutes'] } },
  'POST /api/v1/checks': { role: 'operator' },
  'POST /api/v1/checks/bulk': { role: 'operator', invalid: { body: { checks: [] }, paths: ['checks'] } },
  'GET /api/v1/checks': {
    role: 'viewer',
    invalid: { query: 'limit=0&type=gopher&bogus=1', paths: ['limit', 'type', '(body)'] },
  },
  'GET /api/v1/checks/{id}': { role: 'viewer' },
  'PUT /api/v1/checks/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'PATCH /api/v1/checks/{id}': { role: 'operator' },
  'DELETE /api/v1/checks/{id}': { role: 'operator' },
  'POST /api/v1/checks/{id}/pause': { role: 'operator' },
  'POST /api/v1/checks/{id}/resume': { role: 'operator' },
  'GET /api/v1/config/export': { role: 'viewer' },
  // Viewers may plan (dryRun=true); applying needs an operator (checked in the route: 403).
  'POST /api/v1/config/import': { role: 'viewer', invalid: { query: 'dryRun=maybe', paths: ['dryRun'] } },
  'GET /api/v1/config/versions': { role: 'viewer', invalid: { query: 'limit=0', paths: ['limit'] } },
  'GET /api/v1/config/versions/{n}': { role: 'viewer' },
  'GET /api/v1/config/audit': { role: 'operator', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } }, // Fleet member endpoints (issue 19).
  'GET /api/v1/status/report': { role: 'viewer' },
  'GET /api/v1/metrics/flow': { role: 'viewer', invalid: { query: 'minutes=0&bogus=1', paths: ['minutes', '(body)'] } },
  'GET /api/v1/system/snapshot/current': { role: 'viewer' },
  // Fleet leader endpoints (issue 19).
  'GET /api/v1/leader/members': { role: 'viewer', invalid: { query: 'bogus=1', paths: ['(body)'] } },
  'GET /api/v1/leader/stats': { role: 'viewer' },
  'GET /api/v1/leader/flow-metrics': { role: 'viewer', invalid: { query: 'minutes=0', paths: ['minutes'] } },
  'GET /api/v1/leader/config/components': { role: 'viewer' },
  'GET /api/v1/leader/config/snapshot/{member}': { role: 'viewer' },
  'GET /api/v1/leader/config/drift': { role: 'viewer' },
  'GET /api/v1/leader/config/drift/{member}': { role: 'viewer' },
  // Alert configuration (issue 18): forwarded to sync-orchestrator like the check routes.
  'POST /api/v1/alert-rules': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/alert-rules': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'GET /api/v1/alert-rules/{id}': { role: 'viewer' },
  'PUT /api/v1/alert-rules/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'PATCH /api/v1/alert-rules/{id}': { role: 'operator' },
  'DELETE /api/v1/alert-rules/{id}': { role: 'operator' },
  'POST /api/v1/channels': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/channels': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'GET /api/v1/channels/{id}': { role: 'viewer' },
  'PUT /api/v1/channels/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'PATCH /api/v1/channels/{id}': { role: 'operator' },
  'DELETE /api/v1/channels/{id}': { role: 'operator' },
  'POST /api/v1/maintenance-windows': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/maintenance-windows': {
    role: 'viewer',
    invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] },
  },
  'GET /api/v1/maintenance-windows/{id}': { role: 'viewer' },
  'PUT /api/v1/maintenance-windows/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'PATCH /api/v1/maintenance-windows/{id}': { role: 'operator' },
  'DELETE /api/v1/maintenance-windows/{id}': { role: 'operator' },
  'GET /api/v1/alert-rules/prometheus': { role: 'viewer' },
  'POST /api/v1/channels/{id}/test': { role: 'operator' },
  'POST /api/v1/silences': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/silences': { role: 'viewer', invalid: { query: 'state=gone&limit=0', paths: ['state', 'limit'] } },
  'GET /api/v1/silences/{id}': { role: 'viewer' },
  'DELETE /api/v1/silences/{id}': { role: 'operator' },
  'POST /api/v1/silences/{id}/expire': { role: 'operator' },
  'POST /api/v1/status-pages': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/status-pages': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'GET /api/v1/status-pages/{id}': { role: 'viewer' },
  'PUT /api/v1/status-pages/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'PATCH /api/v1/status-pages/{id}': { role: 'operator' },
  'DELETE /api/v1/status-pages/{id}': { role: 'operator' },
  'GET /api/v1/properties': { role: 'viewer', invalid: { query: 'prefix=&bogus=1', paths: ['prefix', '(body)'] } },
  'GET /api/v1/properties/{key}': { role: 'viewer', invalid: { paths: ['key'] } },
  'PUT /api/v1/properties/{key}': { role: 'operator', invalid: { body: { value: 1 }, paths: ['key'] } },
  'DELETE /api/v1/properties/{key}': { role: 'operator', invalid: { paths: ['key'] } },
  'POST /api/v1/subscriptions': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'GET /api/v1/subscriptions': { role: 'viewer', invalid: { query: 'limit=0&bogus=1', paths: ['limit', '(body)'] } },
  'GET /api/v1/subscriptions/{id}': { role: 'viewer' },
  'GET /api/v1/subscriptions/{id}/deliveries': { role: 'viewer', invalid: { query: 'limit=0', paths: ['limit'] } },
  'PUT /api/v1/subscriptions/{id}': { role: 'operator', invalid: { body: [1], paths: ['(body)'] } },
  'DELETE /api/v1/subscriptions/{id}': { role: 'operator' },
  'GET /api/v1/public/status-pages/{slug}': { role: 'public' },
  'GET /api/v1/alerts': {
    role: 'viewer',
    invalid: { query: 'limit=0&state=gone&cursor=x', paths: ['limit', 'state.0', 'cursor'] },
  },
  'GET /api/v1/alerts/history': {
    role: 'viewer',
    invalid: { query: 'limit=0&since=soon&cursor=x', paths: ['limit', 'since', 'cursor'] },
  },
  'GET /api/v1/alerts/deliveries': {
    role: 'viewer',
    invalid: { query: 'limit=0&outcome=lost&test=maybe', paths: ['limit', 'outcome.0', 'test'] },
  },
};

const RANK: Record<Role, number> = { public: 0, viewer: 1, operator: 2, admin: 3 };

let gw: GatewayHarness;
const tokens: Partial<Record<'viewer' | 'operator' | 'admin' | 'readKey' | 'writeKey', string>> = {};

beforeAll(async () => {
  gw = await startGateway(testing, 'access');
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    tokens[role] = await gw.login(role, `${role}-password`);
  }
  const key = async (scopes: string[]) =>
    (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: tokens.admin,
        body: { name: scopes[0], scopes },
      })
    ).body.key;
  tokens.readKey = await key(['read']);
  tokens.writeKey = await key(['write']);
});
afterAll(() => gw?.close());

function nestRoutes(): string[] {
  const routes: string[] = [];
  for (const controller of GATEWAY_CONTROLLERS) {
    const base = String(Reflect.getMetadata(PATH_METADATA, controller));
    for (const name of Object.getOwnPropertyNames(controller.prototype)) {
      if (name === 'constructor') continue;
      const handler = (controller.prototype as unknown as Record<string, unknown>)[name];
      if (typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
      const sub = String(Reflect.getMetadata(PATH_METADATA, handler));
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      const path = `/${[base, sub].filter((p) => p && p !== '/').join('/')}`.replace(/:(\w+)/g, '{$1}');
      routes.push(`${method} ${path}`);
    }
  }
  return routes.sort();
}

const url = (route: string, query?: string) => {
  const [, path] = route.split(' ');
  return path.replace('{id}', ID) + (query ? `?${query}` : '');
};
const methodOf = (route: string) => route.split(' ')[0];
const hasBody = (route: string) => ['POST', 'PUT'].includes(methodOf(route));
const cases = Object.entries(POLICY);

describe('route access', () => {
  it('the policy table lists exactly the routes Nest serves and OpenAPI documents', async () => {
    expect(nestRoutes()).toEqual(Object.keys(POLICY).sort());
    const doc = (await gw.request<OpenAPIObject>('GET', '/api/docs/openapi.json')).body;
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(Object.keys(POLICY).sort());
    // Every non-public route declares bearer auth.
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item as Record<string, { security?: unknown[] }>)) {
        const route = `${method.toUpperCase()} ${path}`;
        if (POLICY[route].role !== 'public')
          expect({ route, security: op.security }).toEqual({ route, security: [{ bearer: [] }] });
      }
    }
  });

  it.each(cases.filter(([, c]) => c.role !== 'public'))(
    '%s: 401 without a token, with a malformed one, with an unknown one',
    async (route) => {
      const none = await gw.request<ApiErrorBody>(methodOf(route), url(route));
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('unauthorized');
      expect(
        (await gw.request(methodOf(route), url(route), { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } }))
          .status,
      ).toBe(401);
      expect((await gw.request(methodOf(route), url(route), { token: `fws_0_${'A'.repeat(43)}` })).status).toBe(401);
      expect((await gw.request(methodOf(route), url(route), { token: `fwk_00000000_${'A'.repeat(43)}` })).status).toBe(
        401,
      );
    },
  );

  it.each(cases.filter(([, c]) => RANK[c.role] > RANK.viewer))(
    '%s: 403 for every role below the one it needs',
    async (route, c) => {
      const below: string[] = [];
      if (RANK[c.role] > RANK.viewer) below.push(tokens.viewer as string, tokens.readKey as string);
      if (RANK[c.role] > RANK.operator) below.push(tokens.operator as string, tokens.writeKey as string);
      for (const token of below) {
        const res = await gw.request<ApiErrorBody>(methodOf(route), url(route), {
          token,
          body: hasBody(route) ? {} : undefined,
        });
        expect({ route, status: res.status, code: res.body.error?.code }).toEqual({
          route,
          status: 403,
          code: 'forbidden',
        });
      }
    },
  );

  it.each(cases.filter(([, c]) => c.invalid))('%s: validation errors name the fields', async (route, c) => {
    const inv = c.invalid as NonNullable<RouteCase['invalid']>;
    const res = await gw.request<ApiErrorBody>(methodOf(route), url(route, inv.query), {
      token: c.role === 'public' ? undefined : tokens.admin,
      body: inv.body,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(inv.paths));
    for (const p of inv.paths.filter((x) => x !== '(body)')) expect(res.body.error.message).toContain(p);
  });

  it('a role that may gets past the guard (not 401/403)', async () => {
    const allowed: Record<Exclude<Role, 'public'>, string> = {
      viewer: tokens.viewer as string,
      operator: tokens.operator as string,
      admin: tokens.admin as string,
    };
    for (const [route, c] of cases) {
      if (
        c.role === 'public' ||
        route === 'POST /api/v1/auth/logout' ||
        route === 'DELETE /api/v1/auth/session' ||
        route.startsWith('PUT /api/v1/auth/password')
      )
        continue;
      const res = await gw.request(methodOf(route), url(route), {
        token: allowed[c.role],
        body: hasBody(route) ? {} : undefined,
      });
      expect({ route, passed: ![401, 403].includes(res.status) }).toEqual({ route, passed: true });
    }
  });
});
