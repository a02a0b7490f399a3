import { SessionsRepository, generateApiKey } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { TcpProxy, type IsolatedDatabase } from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { newSessionToken } from './session-token';

// Postgres that hangs (a network dropping packets, no reset): a proxy the test owns stops passing bytes both ways.
// Every request's session is read from the database, and an API key not cached too: without a bound each such request
// waited the query timeout (DATABASE_QUERY_TIMEOUT_MS, 35 s) for its 503, and well-formed forged tokens — a query each
// — queued without bound for the pool, ahead of every other query of the gateway. GATEWAY_CREDENTIAL_LOOKUP_* bound
// them, as status-ingest's INGEST_KEY_LOOKUP_* do.

jest.setTimeout(90_000);

const LOOKUP_TIMEOUT_MS = 1000;
const MAX_LOOKUPS = 4;
/** Far below the query timeout (35 s); room for a loaded test machine. */
const PROMPT_MS = LOOKUP_TIMEOUT_MS + 4000;
/** Gives up after this (status 0): without a bound the answer comes after the query timeout. */
const GIVE_UP_MS = 10_000;

let proxy: TcpProxy;
let database: IsolatedDatabase;
let gw: GatewayHarness;
let token: string;

beforeAll(async () => {
  database = await testing.createIsolatedDatabase();
  proxy = TcpProxy.forUrl(database.databaseUrl);
  await proxy.start();
  gw = await startGateway(testing, 'credential-lookups', {
    database,
    env: {
      DATABASE_URL: proxy.rewriteUrl(database.databaseUrl),
      GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS: String(LOOKUP_TIMEOUT_MS),
      GATEWAY_CREDENTIAL_LOOKUP_MAX_CONCURRENT: String(MAX_LOOKUPS),
    },
  });
  token = await gw.login('admin', ADMIN_PASSWORD);
});
afterAll(async () => {
  // The proxy first: its connections cut, a lookup still waiting for its answer fails at once and frees the pool.
  await proxy?.stop();
  await gw?.close();
  await database?.dispose();
});
afterEach(() => {
  jest.restoreAllMocks();
  proxy.heal();
});

async function timed(bearer: string): Promise<{ status: number; retryAfter: string | null; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${gw.url}/api/v1/auth/me`, {
    headers: { authorization: `Bearer ${bearer}` },
    signal: AbortSignal.timeout(GIVE_UP_MS),
  }).catch(() => null);
  await res?.text();
  return {
    status: res?.status ?? 0,
    retryAfter: res?.headers.get('retry-after') ?? null,
    ms: Math.round(performance.now() - started),
  };
}

const unavailable = { status: 503, retryAfter: expect.stringMatching(/^[1-9]\d*$/) };

it('a session or an uncached API key with the database hanging: a prompt 503 + Retry-After; 200 once it answers', async () => {
  expect((await timed(token)).status).toBe(200);
  const key = generateApiKey();
  proxy.blackhole();
  const [session, apiKey] = await Promise.all([timed(token), timed(key.key)]);
  expect(session).toMatchObject(unavailable);
  expect(apiKey).toMatchObject(unavailable);
  expect(session.ms).toBeLessThan(PROMPT_MS);
  expect(apiKey.ms).toBeLessThan(PROMPT_MS);
  proxy.heal();
  await testing.waitFor(async () => (await timed(token)).status === 200, {
    timeoutMs: 20_000,
    description: 'the session read again once the database answers',
  });
  expect((await timed(key.key)).status).toBe(401);
});

it('a storm of forged session tokens: each a prompt 503, at most the bound of queries under way, one per token', async () => {
  expect((await timed(token)).status).toBe(200);
  const reads = jest.spyOn(gw.running.app.get(SessionsRepository), 'findActiveByTokenHash');
  const forged = Array.from({ length: 20 }, () => newSessionToken(1).token);
  proxy.blackhole();
  const answers = await Promise.all([...forged, forged[0], forged[0]].map((t) => timed(t)));
  for (const a of answers) {
    expect(a).toMatchObject(unavailable);
    expect(a.ms).toBeLessThan(PROMPT_MS);
  }
  // The first MAX_LOOKUPS tokens each started one query (the repeats of one joined it); the rest were refused at once.
  expect(reads.mock.calls.length).toBeLessThanOrEqual(MAX_LOOKUPS);
  expect(new Set(reads.mock.calls.map((c) => c[0])).size).toBe(reads.mock.calls.length);
  proxy.heal();
  await testing.waitFor(async () => (await timed(token)).status === 200, {
    timeoutMs: 20_000,
    description: 'a real session works again',
  });
});
