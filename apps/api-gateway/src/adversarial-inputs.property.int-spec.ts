import fc from 'fast-check';
import type { ApiErrorBody } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from './checks/owner-process.int-helpers';
import { ADMIN_PASSWORD, type GatewayHarness, type HttpAnswer, startGateway } from './int-spec.helpers';
import { at, placesOf } from './key-paths.int-helpers';

// A hostile client against the gateway's whole HTTP surface, as properties: whatever goes into a path, a query
// string or a body — NUL, lone surrogates, times Postgres refuses (year 0000, six-digit years, UTC offsets past
// ±15:59, "1"), integers past int4 and int8, huge and deeply nested values, bytes that are not UTF-8, prototype
// keys — the answer is never a 5xx; and what a 2xx accepted reads back as the write answered it, each string and
// number as sent. The gateway runs in-process with its configuration owner (sync-orchestrator, built from today's
// sources) on a database, vhost and Redis prefix of their own. Failures print the request (fast-check shrinks it).

jest.setTimeout(180_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let admin: string;
const existing: Record<'check' | 'rule', string> = { check: '', rule: '' };

beforeAll(async () => {
  // The owner's build and the gateway's start at once (neither needs the other).
  await Promise.all([
    startGateway(testing, 'adversarial', { env: { GATEWAY_RPC_TIMEOUT_MS: '10000' } }).then((g) => (gw = g)),
    privateOwnerDist(`owner-adversarial-${testing.testEnv().runId}`).then((d) => (dist = d)),
  ]);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-adversarial:`,
  });
  admin = await gw.login('admin', ADMIN_PASSWORD);
  const check = await gw.request<{ id: string }>('POST', '/api/v1/checks', {
    token: admin,
    body: { name: 'existing', type: 'tcp', host: '127.0.0.1', port: 80, intervalSeconds: 30 },
  });
  const rule = await gw.request<{ id: string }>('POST', '/api/v1/alert-rules', {
    token: admin,
    body: { name: 'existing', condition: { type: 'status', statuses: ['DOWN'] } },
  });
  expect([check.status, rule.status]).toEqual([201, 201]);
  existing.check = check.body.id;
  existing.rule = rule.body.id;
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

// ── values ──

const MAX_PG_MS = Date.UTC(10_000, 0, 1) - 1;
const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

/** ISO date-times of every kind zod takes, and some it does not: any year, any offset up to ±23:59, any precision. */
const isoTime: fc.Arbitrary<string> = fc.oneof(
  fc
    .record({
      ms: fc.oneof(fc.integer({ min: -62_198_755_200_000, max: 8_640_000_000_000_000 }), fc.constant(MAX_PG_MS)),
      h: fc.oneof(fc.integer({ min: -23, max: 23 }), fc.constantFrom(-23, -16, 16, 23)),
      m: fc.integer({ min: 0, max: 59 }),
      frac: fc.constantFrom('', '.1', '.123', '.123456', '.123456789'),
    })
    .map(({ ms, h, m, frac }) => {
      const iso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, '');
      return `${iso}${frac}${h === 0 && m === 0 ? 'Z' : `${h < 0 ? '-' : '+'}${pad(h)}:${pad(m)}`}`;
    }),
  fc.constantFrom(
    '0000-01-01T00:00:00Z',
    '+275760-09-13T00:00:00.000Z',
    '9999-12-31T23:59:59.999-15:59',
    '2026-01-01T00:00:00+16:00',
    '2026-01-01T00:00:00-23:59',
    '1',
    '2026-02-30T00:00:00Z',
  ),
);

/** Integers at and past the edges of the columns they may land in. */
const edgeInteger: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53,
    2 ** 63,
    -(2 ** 63) - 2048,
    1e21,
    1e308,
    5e-324,
    0.5,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: testing.storeHostileText(12) },
  { weight: 2, arbitrary: isoTime },
  { weight: 1, arbitrary: edgeInteger.map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '__proto__',
      'constructor',
      '1e400',
      '-0',
      'NaN',
      '99999999999999999999',
      '%00',
      '..',
      'x'.repeat(70_000),
    ),
  },
);

const ISO = /^\d{4}-\d{2}-\d{2}T/;

/** Any JSON value, weighted toward the kind the baseline had at that place. */
const valueLike = (baseline: unknown): fc.Arbitrary<unknown> => {
  const any = testing.jsonValueArbitrary({ text: hostileString, key: testing.storeHostileText(6), maxItems: 3 });
  const like =
    typeof baseline === 'string'
      ? ISO.test(baseline)
        ? fc.oneof({ weight: 3, arbitrary: isoTime }, { weight: 1, arbitrary: hostileString })
        : hostileString
      : typeof baseline === 'number'
        ? edgeInteger
        : Array.isArray(baseline)
          ? fc.array(hostileString, { maxLength: 3 })
          : any;
  return fc.oneof({ weight: 4, arbitrary: like }, { weight: 1, arbitrary: any });
};

/** A cursor's time in ms as the services write it (up to 15 digits), often past what Postgres stores. */
const cursorMs: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: MAX_PG_MS }),
  fc.integer({ min: MAX_PG_MS + 1, max: 999_999_999_999_999 }),
  fc.constantFrom(MAX_PG_MS, MAX_PG_MS + 1, 999_999_999_999_999),
);

/** Cursors a client forges: the JSON shapes the services give out (base64url), with any time, id or name in them. */
const forgedCursor: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .record({ at: fc.oneof(isoTime, hostileString), id: fc.oneof(fc.uuid(), hostileString) })
      .map((v) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url')),
  },
  {
    weight: 1,
    arbitrary: fc.record({ n: hostileString }).map((v) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url')),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.string(), hostileString).map((v) => Buffer.from(v, 'utf8').toString('base64url')),
  },
  { weight: 3, arbitrary: fc.tuple(cursorMs, fc.uuid()).map(([ms, id]) => `${ms}_${id}`) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(cursorMs, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
      .map(([ms, h]) => `${ms}_${h.toString(16).padStart(16, '0')}`),
  },
);

/** `encodeURIComponent`, but a lone surrogate goes as the bytes of its code unit (what a raw client can send). */
function encodePart(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

// ── the surface ──

const ID = '0190f0e0-0000-7000-8000-000000000000';

/** GET routes and the query parameters each takes. */
const QUERIES: Record<string, string[]> = {
  '/api/v1/status/events': ['limit', 'cursor', 'targetId'],
  '/api/v1/instances': ['status', 'tag', 'location', 'limit', 'cursor'],
  '/api/v1/targets': ['kind', 'status', 'tag', 'location', 'limit', 'cursor'],
  '/api/v1/targets/recent': ['limit'],
  '/api/v1/targets/sparklines': ['id'],
  [`/api/v1/targets/check:${ID}/history`]: ['minutes', 'location'],
  [`/api/v1/targets/check:${ID}/updates`]: ['limit', 'cursor'],
  [`/api/v1/targets/check:${ID}/pings`]: ['limit', 'cursor'],
  '/api/v1/hosts': ['limit', 'cursor'],
  '/api/v1/hosts/h1/metrics': ['minutes'],
  '/api/v1/checks': ['type', 'tag', 'location', 'limit', 'cursor'],
  '/api/v1/config/versions': ['limit', 'before'],
  '/api/v1/config/audit': ['limit', 'cursor', 'subject'],
  '/api/v1/metrics/flow': ['minutes'],
  '/api/v1/leader/members': ['tag'],
  '/api/v1/leader/flow-metrics': ['minutes'],
  '/api/v1/alert-rules': ['limit', 'cursor'],
  '/api/v1/channels': ['limit', 'cursor'],
  '/api/v1/maintenance-windows': ['limit', 'cursor'],
  '/api/v1/silences': ['limit', 'cursor', 'state'],
  '/api/v1/status-pages': ['limit', 'cursor'],
  '/api/v1/properties': ['prefix'],
  '/api/v1/subscriptions': ['limit', 'cursor'],
  [`/api/v1/subscriptions/${ID}/deliveries`]: ['limit'],
  '/api/v1/alerts': ['state', 'ruleId', 'targetId', 'limit', 'cursor'],
  '/api/v1/alerts/history': ['ruleId', 'targetId', 'since', 'limit', 'cursor'],
  '/api/v1/alerts/deliveries': ['channelId', 'outcome', 'test', 'limit', 'cursor'],
};

/** Routes with a path parameter (`{}`); POST /channels/{id}/test is left out: its owner is the aggregator. */
const PATHS = [
  'GET /api/v1/targets/{}',
  'GET /api/v1/targets/{}/history',
  'GET /api/v1/targets/{}/updates',
  'GET /api/v1/targets/{}/pings',
  'GET /api/v1/hosts/{}',
  'GET /api/v1/hosts/{}/metrics',
  'GET /api/v1/checks/{}',
  'DELETE /api/v1/checks/{}',
  'POST /api/v1/checks/{}/pause',
  'GET /api/v1/config/versions/{}',
  'GET /api/v1/leader/config/snapshot/{}',
  'GET /api/v1/leader/config/drift/{}',
  'GET /api/v1/alert-rules/{}',
  'DELETE /api/v1/alert-rules/{}',
  'GET /api/v1/channels/{}',
  'GET /api/v1/maintenance-windows/{}',
  'GET /api/v1/silences/{}',
  'POST /api/v1/silences/{}/expire',
  'GET /api/v1/status-pages/{}',
  'GET /api/v1/properties/{}',
  'DELETE /api/v1/properties/{}',
  'GET /api/v1/subscriptions/{}',
  'GET /api/v1/subscriptions/{}/deliveries',
  'GET /api/v1/public/status-pages/{}',
  'PUT /api/v1/users/{}/role',
  'PUT /api/v1/users/{}/disabled',
  'PUT /api/v1/users/{}/password',
  'DELETE /api/v1/users/{}',
  'DELETE /api/v1/api-keys/{}',
  'DELETE /api/v1/heartbeats/{}',
  'PUT /api/v1/checks/{}',
  'PATCH /api/v1/checks/{}',
  'POST /api/v1/checks/{}/resume',
  'PUT /api/v1/status-pages/{}',
  'PATCH /api/v1/status-pages/{}',
  'DELETE /api/v1/status-pages/{}',
  'PUT /api/v1/alert-rules/{}',
  'PATCH /api/v1/alert-rules/{}',
  'PUT /api/v1/channels/{}',
  'PATCH /api/v1/channels/{}',
  'DELETE /api/v1/channels/{}',
  'PUT /api/v1/maintenance-windows/{}',
  'PATCH /api/v1/maintenance-windows/{}',
  'DELETE /api/v1/maintenance-windows/{}',
  'DELETE /api/v1/silences/{}',
  'PUT /api/v1/subscriptions/{}',
  'DELETE /api/v1/subscriptions/{}',
  'DELETE /api/v1/hosts/{}',
  'DELETE /api/v1/instances/{}',
  'PUT /api/v1/properties/{}',
];

/** A valid body for each PUT or PATCH of PATHS, so that the path parameter is what decides the answer. */
const PATH_BODIES: Record<string, unknown> = {
  'PUT /api/v1/users/{}/role': { role: 'viewer' },
  'PUT /api/v1/users/{}/disabled': { disabled: false },
  'PUT /api/v1/users/{}/password': { password: 'password-12345' },
  'PUT /api/v1/checks/{}': { name: 'path-put', type: 'tcp', host: '127.0.0.1', port: 80 },
  'PATCH /api/v1/checks/{}': { description: 'd' },
  'PUT /api/v1/status-pages/{}': { slug: 'path-put', title: 'P', components: [{ name: 'W', tags: ['w'] }] },
  'PATCH /api/v1/status-pages/{}': { title: 'P' },
  'PUT /api/v1/alert-rules/{}': { name: 'path-put', condition: { type: 'status', statuses: ['DOWN'] } },
  'PATCH /api/v1/alert-rules/{}': { description: 'd' },
  'PUT /api/v1/channels/{}': { type: 'webhook', name: 'path-put', url: 'https://hooks.example.com/in' },
  'PATCH /api/v1/channels/{}': { name: 'path-patch' },
  'PUT /api/v1/maintenance-windows/{}': {
    name: 'path-put',
    scope: { tags: ['db'] },
    schedule: { type: 'once', startsAt: '2026-01-01T00:00:00Z', endsAt: '2099-01-01T00:00:00Z' },
  },
  'PATCH /api/v1/maintenance-windows/{}': { name: 'path-patch' },
  'PUT /api/v1/subscriptions/{}': { name: 'path-put', url: 'https://hooks.example.com/s', selector: { tags: ['a'] } },
  'PUT /api/v1/properties/{}': { value: 1 },
};

interface BodyRoute {
  method: 'POST' | 'PUT' | 'PATCH';
  /** `{n}` becomes a fresh number (a property key). */
  path: string;
  body: Record<string, unknown>;
  /** Fields made unique per request (names, slugs) unless they are the one mutated. */
  unique?: string[];
  /** How to read the entry back: its Location, or a list holding it by id. */
  readBack?: 'location' | 'self' | { list: string };
}

const BODIES: BodyRoute[] = [
  {
    method: 'POST',
    path: '/api/v1/checks',
    body: {
      name: 'c',
      type: 'tcp',
      host: '127.0.0.1',
      port: 80,
      intervalSeconds: 30,
      timeoutSeconds: 5,
      tags: ['a'],
      locations: ['default'],
      conditions: ['latency < 300'],
      description: 'd',
    },
    unique: ['name'],
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/checks',
    body: {
      name: 'h',
      type: 'http',
      url: 'http://127.0.0.1:8080/x',
      headers: { a: 'b' },
      body: 'x',
      bodyContains: 'ok',
      jsonPath: [{ path: '$.a', equals: 1 }],
      expectedStatus: [200],
    },
    unique: ['name'],
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/checks',
    body: { name: 'p', type: 'push', periodSeconds: 60, graceSeconds: 10, maxRuntimeSeconds: 30 },
    unique: ['name'],
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/checks',
    body: { name: 'pg', type: 'postgres', host: 'db', database: 'x', user: 'u', query: 'select 1' },
    unique: ['name'],
    readBack: 'location',
  },
  { method: 'PATCH', path: `/api/v1/checks/{check}`, body: { description: 'd', retries: 1, tags: ['b'] } },
  {
    method: 'POST',
    path: '/api/v1/alert-rules',
    body: {
      name: 'r',
      condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
      for: '5m',
      labels: { severity: 'x' },
      annotations: { summary: 's' },
      selector: { tags: ['a'], targetIds: ['check:x'] },
    },
    readBack: 'location',
  },
  { method: 'PATCH', path: `/api/v1/alert-rules/{rule}`, body: { description: 'd', labels: { team: 't' } } },
  {
    method: 'POST',
    path: '/api/v1/channels',
    body: { type: 'webhook', name: 'w', url: 'https://hooks.example.com/in', secret: 'abcdefabcdefabcdef' },
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/channels',
    body: {
      type: 'email',
      name: 'e',
      host: 'smtp.example.com',
      port: 25,
      from: 'a@example.com',
      to: ['b@example.com'],
    },
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/silences',
    body: {
      matchers: [{ name: 'severity', op: '=', value: 'critical' }],
      startsAt: '2026-01-01T00:00:00Z',
      // A new silence must end after now (silenceWriteIssues); an offset all the same.
      endsAt: new Date(Date.now() + 30 * 86_400_000).toISOString().replace('Z', '+00:00'),
      comment: 'c',
    },
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/maintenance-windows',
    body: {
      name: 'm',
      scope: { tags: ['db'] },
      schedule: { type: 'once', startsAt: '2026-01-01T00:00:00Z', endsAt: '2099-01-01T00:00:00Z' },
    },
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/maintenance-windows',
    body: {
      name: 'n',
      scope: { targetIds: ['check:x'] },
      schedule: {
        type: 'recurring',
        cron: '0 2 * * *',
        duration: '1h',
        timezone: 'Europe/Paris',
        from: '2026-01-01T00:00:00Z',
        until: '2099-01-01T00:00:00Z',
      },
    },
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/status-pages',
    body: {
      slug: 'acme',
      title: 'Acme',
      description: 'x',
      components: [{ name: 'Web', tags: ['w'] }],
      published: true,
      announcements: [{ title: 'i', body: 'b', startsAt: '2026-01-01T00:00:00Z', endsAt: '2099-01-01T00:00:00Z' }],
    },
    unique: ['slug'],
    readBack: 'location',
  },
  {
    method: 'POST',
    path: '/api/v1/subscriptions',
    body: {
      name: 's',
      url: 'https://hooks.example.com/s',
      secret: 'abcdefabcdefabcdef',
      selector: { tags: ['a'] },
      transitions: { from: ['UP'], to: ['DOWN'] },
    },
    readBack: 'location',
  },
  { method: 'PUT', path: '/api/v1/properties/app.p{n}', body: { value: { a: [1, 'x'] } }, readBack: 'self' },
  {
    method: 'POST',
    path: '/api/v1/heartbeats',
    body: { name: 'hb', periodSeconds: 60, graceSeconds: 30, maxRuntimeSeconds: 100 },
    readBack: { list: '/api/v1/heartbeats' },
  },
  {
    method: 'POST',
    path: '/api/v1/users',
    body: { username: 'u', password: 'password-1234', role: 'viewer' },
    unique: ['username'],
    readBack: { list: '/api/v1/users' },
  },
  {
    method: 'POST',
    path: '/api/v1/api-keys',
    body: { name: 'k', scopes: ['ingest'], allowedCidrs: ['10.0.0.0/8'], clientCertSubject: 'cn' },
    readBack: { list: '/api/v1/api-keys' },
  },
  { method: 'POST', path: '/api/v1/auth/login', body: { username: 'nobody', password: 'x' } },
  { method: 'PUT', path: '/api/v1/auth/password', body: { currentPassword: 'x', newPassword: 'y' } },
  {
    method: 'POST',
    path: '/api/v1/checks/bulk',
    body: { checks: [{ name: 'b', type: 'tcp', host: '127.0.0.1', port: 80, intervalSeconds: 30 }] },
  },
  {
    method: 'POST',
    path: '/api/v1/config/import?dryRun=true&prune=false',
    body: { yaml: 'checks: {}\nproperties:\n  app.y: 1\n' },
  },
];

/** Secrets come back as `{set}`; tokens and keys only once. */
const WRITE_ONLY = new Set(['password', 'secret', 'routingKey', 'token', 'key', 'pingUrl', 'currentPassword']);

function setAt(value: unknown, path: ReadonlyArray<string | number>, x: unknown): unknown {
  if (path.length === 0) return x;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<string | number, unknown>;
  copy[path[0]] = setAt(copy[path[0]], path.slice(1), x);
  return copy;
}

let serial = 0;
let readBack = 0;
async function send(method: string, path: string, body?: unknown): Promise<HttpAnswer> {
  const res = await gw.request(method, path, { token: admin, body });
  if (res.status >= 500)
    throw new Error(
      `${method} ${path.slice(0, 300)} → ${res.status} ${res.text.slice(0, 300)}\nowner:\n${owner.output().slice(-1500)}`,
    );
  return res;
}

/** The fields both answers have, each equal (a list may show more than a create answered, or less: one-shot fields). */
function expectSameEntry(written: Record<string, unknown>, read: Record<string, unknown>, what: string): void {
  for (const [k, v] of Object.entries(written))
    if (k in read && !WRITE_ONLY.has(k))
      expect({ what, field: k, value: testing.canonicalJson(read[k]) }).toEqual({
        what,
        field: k,
        value: testing.canonicalJson(v),
      });
}

async function readBackOf(route: BodyRoute, path: string, res: HttpAnswer): Promise<Record<string, unknown> | null> {
  const written = res.body as Record<string, unknown>;
  if (route.readBack === 'self' || route.readBack === 'location') {
    const where = route.readBack === 'self' ? path : res.headers.get('location');
    expect(where).toBeTruthy();
    const read = await send('GET', where as string);
    expect({ where, status: read.status }).toEqual({ where, status: 200 });
    return read.body as Record<string, unknown>;
  }
  if (route.readBack) {
    const list = (await send('GET', route.readBack.list)).body as Array<Record<string, unknown>>;
    return list.find((e) => e.id === written.id) ?? null;
  }
  return null;
}

// ── properties ──

/**
 * Runs in flight at once: each run's assertion is about its own requests (names, keys and read-backs are its own), so
 * the runs go CONCURRENCY at a time (assertConcurrently: fast-check's values for the seed; a failure replayed alone
 * and shrunk by fast-check). One at a time, the suite waited on each round trip (~1 min here, 5 on a loaded CI box).
 */
const CONCURRENCY = 8;

describe('a hostile client gets no 5xx, and what a 2xx accepted reads back as written', () => {
  it('query strings: any value of any parameter, repeated or unknown', async () => {
    const param = (r: string) =>
      fc.oneof(
        {
          weight: 1,
          arbitrary: fc.tuple(
            fc.oneof(fc.constantFrom(...QUERIES[r]), fc.constantFrom('__proto__', 'bogus')),
            hostileString,
          ),
        },
        ...(QUERIES[r].includes('cursor')
          ? [{ weight: 2, arbitrary: fc.tuple(fc.constant('cursor'), forgedCursor) }]
          : []),
      );
    await testing.assertConcurrently(
      // Mostly one parameter: with a second one refused, the first never reaches a store.
      fc
        .constantFrom(...Object.keys(QUERIES))
        .chain((r) =>
          fc.tuple(
            fc.constant(r),
            fc.oneof(
              { weight: 3, arbitrary: param(r).map((p) => [p]) },
              { weight: 1, arbitrary: fc.array(param(r), { minLength: 2, maxLength: 3 }) },
            ),
          ),
        ),
      async ([r, params]) => {
        await send('GET', `${r}?${params.map(([k, v]) => `${k}=${encodePart(v)}`).join('&')}`);
      },
      // 27 routes, ~18 requests each (on the cursor routes two in three a forged cursor), a fresh seed each run.
      { numRuns: 500, concurrency: CONCURRENCY },
    );
  });

  it('path parameters: any text as an id, key, slug, member or version', async () => {
    await testing.assertConcurrently(
      fc.tuple(
        fc.constantFrom(...PATHS),
        hostileString.filter((s) => s !== '' && s !== '.' && s !== '..'),
      ),
      async ([route, value]) => {
        const [method, template] = route.split(' ');
        await send(method, template.replace('{}', encodePart(value)), PATH_BODIES[route]);
      },
      { numRuns: 400, concurrency: CONCURRENCY },
    );
  });

  it('bodies: any value at any place of a valid one; an accepted one reads back as written, each text and number as sent', async () => {
    // Every place of every body equally likely (a route with more fields is hit more often).
    const places = BODIES.flatMap((route) => placesOf(route.body).map((path) => [route, path] as const));
    const mutation = fc
      .constantFrom(...places)
      .chain(([route, path]) => fc.tuple(fc.constant(route), fc.constant(path), valueLike(at(route.body, path))));
    await testing.assertConcurrently(
      mutation,
      async ([route, path, value]) => {
        const n = ++serial;
        let body = setAt(route.body, path, value) as Record<string, unknown>;
        for (const field of route.unique ?? [])
          if (path[0] !== field && typeof body === 'object' && body && !Array.isArray(body))
            body = { ...body, [field]: `${String(body[field])}-${n}` };
        if (route.path.startsWith('/api/v1/alert-rules') && path[0] !== 'name' && route.method === 'POST')
          body = { ...body, name: `r-${n}` };
        const target = route.path
          .replace('{n}', String(n))
          .replace('{check}', existing.check)
          .replace('{rule}', existing.rule);
        const res = await send(route.method, target, body);
        if (res.status >= 300 || !route.readBack) return;
        const read = await readBackOf(route, target, res);
        readBack++;
        expect({ target, found: read !== null }).toEqual({ target, found: true });
        expectSameEntry(res.body as Record<string, unknown>, read as Record<string, unknown>, target);
        const sent = at(body, path);
        const stored = at(read, path);
        if (path.some((k) => WRITE_ONLY.has(String(k)))) return;
        if (typeof sent === 'string' && typeof stored === 'string')
          expect({ target, path, stored }).toEqual({ target, path, stored: stored === sent ? sent : sent.trim() });
        if (typeof sent === 'number')
          expect({ target, path, stored }).toEqual({ target, path, stored: sent === 0 ? 0 : sent });
      },
      // 176 places: each hit ~6 times; about 1 in 5 is accepted and read back (the bound below needs the 1000).
      { numRuns: 1000, concurrency: CONCURRENCY },
    );
    // Not vacuous: many of them were accepted and read back.
    expect(readBack).toBeGreaterThan(100);
  });

  it('bodies with any bytes in a string are refused unless UTF-8, and kept as sent when they are', async () => {
    await testing.assertConcurrently(
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      async (bytes) => {
        const key = `app.bytes${++serial}`;
        const body = Buffer.concat([Buffer.from('{"value":"<'), bytes, Buffer.from('>"}')]);
        const res = await fetch(`${gw.url}/api/v1/properties/${key}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body,
        });
        expect(res.status).toBeLessThan(500);
        if (res.status >= 300) return;
        // Accepted: the bytes were UTF-8 (not read as U+FFFD), and the value reads back as the text they spell.
        expect(() => new TextDecoder('utf-8', { fatal: true }).decode(body)).not.toThrow();
        const sent = JSON.parse(body.toString('utf8')) as { value: string };
        const read = await send('GET', `/api/v1/properties/${key}`);
        expect((read.body as { value: unknown }).value).toEqual(sent.value);
      },
      { numRuns: 150, concurrency: CONCURRENCY },
    );
  });

  it('bodies nested to any depth are read or refused, never a 5xx', async () => {
    await testing.assertConcurrently(
      fc.tuple(
        fc.constantFrom(...BODIES.filter((b) => b.method !== 'PATCH')),
        fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 200, max: 300_000 })),
        fc.constantFrom('[', '{"a":'),
      ),
      async ([route, depth, open]) => {
        const close = open === '[' ? ']' : '}';
        const inner = open === '[' ? '' : '1';
        const text = `{"value":${open.repeat(depth)}${inner}${close.repeat(depth)}}`;
        const res = await gw.request<ApiErrorBody>(route.method, route.path.replace('{n}', 'deep'), {
          token: admin,
          body: text,
        });
        expect({ route: route.path, depth, status: res.status < 500 }).toEqual({
          route: route.path,
          depth,
          status: true,
        });
      },
      { numRuns: 60, concurrency: CONCURRENCY },
    );
  });

  it('after all that, every list, export and page still reads', async () => {
    await Promise.all(Object.keys(QUERIES).map((path) => send('GET', path)));
    const paths = [
      '/api/v1/checks?limit=1000',
      '/api/v1/alert-rules?limit=1000',
      '/api/v1/channels?limit=1000',
      '/api/v1/maintenance-windows?limit=1000',
      '/api/v1/silences?limit=1000',
      '/api/v1/subscriptions?limit=1000',
      '/api/v1/properties',
      '/api/v1/users',
      '/api/v1/api-keys',
      '/api/v1/heartbeats',
      '/api/v1/config/export',
      '/api/v1/config/versions',
      '/api/v1/config/audit',
      '/api/v1/alert-rules/prometheus',
      '/api/v1/system/snapshot/current',
      '/api/v1/status/report',
      '/api/v1/status/summary',
    ];
    const statuses = await Promise.all(paths.map(async (path) => ({ path, status: (await send('GET', path)).status })));
    expect(statuses).toEqual(paths.map((path) => ({ path, status: 200 })));
    const pages = (await send('GET', '/api/v1/status-pages?limit=1000')).body as { items: Array<{ slug: string }> };
    const answers = await Promise.all(
      pages.items.map(async ({ slug }) => {
        const res = await gw.request('GET', `/api/v1/public/status-pages/${slug}`);
        return { slug, status: res.status < 500 };
      }),
    );
    expect(answers).toEqual(pages.items.map(({ slug }) => ({ slug, status: true })));
  });
});
