import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { Client } from 'pg';
// `ws` comes with @fastify/websocket (it is the gateway's WebSocket server) but is not a
// direct dependency in package.json: add it there and this exception goes.
import WsClientClass from 'ws';
import {
  InstanceKind,
  TargetIds,
  TargetKind,
  TargetStatus,
  WsCloseCode,
  type CreateApiKeyResponse,
  type HostMetricsPayload,
  type StatusChangedPayload,
  type WsServerMessage,
} from '@fleetwatch/contracts';
import { CorruptRecordError, createRedis, LiveKeys, LiveStateStore, type TargetWrite } from '@fleetwatch/live-state';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { corruptTarget, hostsUnchecked, noSuchHosts, READ_FAILURES_DEGRADED, WsHub } from './ws-hub.service';
import { processWsStats } from './ws.metrics';

// The WebSocket at /ws (issue 17) with a real `ws` client: Origin and credential checked
// at connect, fan-out across two gateway replicas through Redis pub/sub, sessions
// revoked or expired close live sockets, a client that does not read is dropped.

let a: GatewayHarness;
let b: GatewayHarness;
let token: string;
// What the aggregator does on each committed change: publish on the site's live:status channel.
let publisher: Redis;
let channel: string;
// Live state under the replicas' shared prefix, written as the aggregator writes it.
let liveRedis: Redis;
let live: LiveStateStore;
const publish = async (...events: string[]) => {
  const pipe = publisher.pipeline();
  for (const e of events) pipe.publish(channel, e);
  await pipe.exec();
};

beforeAll(async () => {
  const prefix = `${testing.testEnv().redisPrefix}gw-ws-shared:`;
  const env = {
    FLEETWATCH_REDIS_PREFIX: prefix,
    GATEWAY_WS_SESSION_CHECK_MS: '300',
    GATEWAY_WS_MAX_BUFFERED_BYTES: String(64 * 1024),
    GATEWAY_WS_ALLOWED_ORIGINS: 'https://ops.example',
    LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
  };
  a = await startGateway(testing, 'ws-a', { env });
  b = await startGateway(testing, 'ws-b', { env, database: a.database });
  token = await a.login('admin', ADMIN_PASSWORD);
  publisher = new Redis(testing.testEnv().redisUrl);
  channel = `${prefix}live:status`;
  liveRedis = createRedis({ url: testing.testEnv().redisUrl, keyPrefix: prefix, connectionName: 'ws-test-live' });
  live = new LiveStateStore(liveRedis, { keyPrefix: prefix });
});
afterAll(async () => {
  publisher?.disconnect();
  liveRedis?.disconnect();
  await b?.close();
  await a?.close();
});

/** What these tests use of a `ws` client. */
interface ClientSocket {
  protocol: string;
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): void;
  once(event: 'open', listener: () => void): void;
  once(event: 'unexpected-response', listener: (req: unknown, res: { statusCode: number }) => void): void;
  once(event: 'error', listener: (err: Error) => void): void;
  send(data: string): void;
  close(): void;
}
const WebSocket = WsClientClass as unknown as new (
  url: string,
  protocols: string[],
  options: { headers?: Record<string, string>; autoPong?: boolean },
) => ClientSocket;

const wsUrl = (gw: GatewayHarness) => `${gw.url.replace(/^http/, 'ws')}/ws`;

/**
 * One sample of the gateway's /metrics (`name` with its labels, as printed), or undefined. /metrics is the process's:
 * with several gateways in this process it adds up their hubs (processWsStats), checked against each hub's own count.
 */
async function metricOf(gw: GatewayHarness, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface Opened {
  ws: ClientSocket;
  messages: WsServerMessage[];
  closed: Promise<{ code: number; reason: string }>;
  next(type: WsServerMessage['type'], timeoutMs?: number): Promise<WsServerMessage>;
}

function open(
  gw: GatewayHarness,
  options: { headers?: Record<string, string>; protocols?: string[]; autoPong?: boolean } = {},
): Promise<Opened> {
  const ws = new WebSocket(wsUrl(gw), options.protocols ?? [], {
    headers: options.headers,
    autoPong: options.autoPong ?? true,
  });
  const messages: WsServerMessage[] = [];
  const waiters: { type: string; resolve: (m: WsServerMessage) => void }[] = [];
  let received = 0;
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as WsServerMessage;
    received++;
    messages.push(m);
    for (const w of waiters.filter((x) => x.type === m.type)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  const next = (type: WsServerMessage['type'], timeoutMs = 5000) =>
    new Promise<WsServerMessage>((resolve, reject) => {
      const seen = messages.find((m) => m.type === type);
      if (seen) {
        messages.splice(messages.indexOf(seen), 1);
        return resolve(seen);
      }
      const timer = setTimeout(
        () => reject(new Error(`no ${type} within ${timeoutMs} ms on a socket of ${gw.url} (received: ${received})`)),
        timeoutMs,
      );
      waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          messages.splice(messages.indexOf(m), 1);
          resolve(m);
        },
      });
    });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed, next }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

/** `p`, or a rejection naming `what` after `ms` (a socket that stays open fails fast instead of at the test timeout). */
function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still open ${ms} ms after: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function change(targetId: string, to: `${TargetStatus}`, extra: Partial<StatusChangedPayload> = {}) {
  const event: StatusChangedPayload = {
    targetId,
    kind: TargetKind.Instance,
    location: null,
    from: TargetStatus.Up,
    to: to as TargetStatus,
    reason: 'test',
    at: new Date().toISOString(),
    sequence: 1,
    ...extra,
  };
  return JSON.stringify(event);
}

async function subscribe(c: Opened, message: object): Promise<void> {
  c.ws.send(JSON.stringify(message));
  await c.next('subscribed');
}

describe('connect', () => {
  it('admits a bearer token, a token subprotocol, and a cookie from the same origin', async () => {
    const viaHeader = await open(a, bearer(token));
    expect(await viaHeader.next('ready')).toMatchObject({ type: 'ready', user: { name: 'admin', role: 'admin' } });
    const viaProtocol = await open(a, { protocols: ['fleetwatch.v1', token] });
    expect(viaProtocol.ws.protocol).toBe('fleetwatch.v1');
    await viaProtocol.next('ready');
    const signed = await a.request('POST', '/api/v1/auth/session', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    });
    const cookie = signed.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const viaCookie = await open(a, { headers: { cookie, origin: a.url } });
    await viaCookie.next('ready');
    for (const c of [viaHeader, viaProtocol, viaCookie]) c.ws.close();
  });

  it.each([
    [
      'a foreign Origin with a valid token',
      () => ({ headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example' } }),
      403,
    ],
    ['no credential', () => ({}), 401],
    ['an unknown session token', () => bearer(`fws_0_${'A'.repeat(43)}`), 401],
  ])('refuses %s before the upgrade', async (_name, options, status) => {
    await expect(open(a, options())).rejects.toThrow(`HTTP ${status}`);
  });

  it('refuses a cookie without an Origin or from a foreign one (cross-site WebSocket hijacking), admits an allowed one', async () => {
    const signed = await a.request('POST', '/api/v1/auth/session', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    });
    const cookie = signed.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    await expect(open(a, { headers: { cookie } })).rejects.toThrow('HTTP 403');
    await expect(open(a, { headers: { cookie, origin: 'https://evil.example' } })).rejects.toThrow('HTTP 403');
    const allowed = await open(a, { headers: { cookie, origin: 'https://ops.example' } });
    await allowed.next('ready');
    allowed.ws.close();
  });

  it('compares the scheme of the Origin too: https://<this host> is another origin than this http:// gateway', async () => {
    const signed = await a.request('POST', '/api/v1/auth/session', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    });
    const cookie = signed.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const host = new URL(a.url).host;
    // The refusal for the scheme alone (a TLS proxy the gateway does not trust) is logged once per process with
    // the settings that fix it; a foreign origin's is not.
    const warn = jest.spyOn(a.running.logger, 'warn');
    const hints = () =>
      warn.mock.calls.filter((c) => /GATEWAY_TRUST_PROXY.*GATEWAY_WS_ALLOWED_ORIGINS/.test(String(c[1])));
    try {
      await expect(open(a, { headers: { cookie, origin: 'https://evil.example' } })).rejects.toThrow('HTTP 403');
      expect(hints()).toEqual([]);
      await expect(open(a, { headers: { cookie, origin: `https://${host}` } })).rejects.toThrow('HTTP 403');
      await expect(open(a, { headers: { ...bearer(token).headers, origin: `https://${host}` } })).rejects.toThrow(
        'HTTP 403',
      );
      expect(hints()).toHaveLength(1);
      expect(hints()[0][0]).toMatchObject({ requestOrigin: `http://${host}` });
    } finally {
      warn.mockRestore();
    }
    const same = await open(a, { headers: { cookie, origin: `http://${host}` } });
    await same.next('ready');
    same.ws.close();
  });
});

describe('database away at connect', () => {
  // The upgrade's credential is checked against Postgres; with it away REST answers 503 + Retry-After. The upgrade
  // route is Fastify's own (Nest's error filter never sees it): it answered Fastify's 500 in another body shape.
  let proxy: testing.TcpProxy;
  let e: GatewayHarness;
  beforeAll(async () => {
    proxy = testing.TcpProxy.forUrl(a.database.databaseUrl);
    await proxy.start();
    e = await startGateway(testing, 'ws-e', {
      database: a.database,
      env: { DATABASE_URL: proxy.rewriteUrl(a.database.databaseUrl), LOGIN_RATE_LIMIT_PER_MINUTE: '1000' },
    });
  });
  afterAll(async () => {
    await e?.close();
    await proxy?.stop();
  });

  it('answers the upgrade 503 with Retry-After and the API error body, as REST does', async () => {
    const session = await e.login('admin', ADMIN_PASSWORD);
    proxy.pause();
    proxy.cut();
    try {
      const rest = await e.request('GET', '/api/v1/auth/me', { token: session });
      expect(rest.status).toBe(503);
      const upgrade = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>(
        (resolve, reject) => {
          const req = httpRequest(`${e.url}/ws`, {
            headers: {
              authorization: `Bearer ${session}`,
              connection: 'Upgrade',
              upgrade: 'websocket',
              'sec-websocket-version': '13',
              'sec-websocket-key': randomBytes(16).toString('base64'),
            },
          });
          req.on('upgrade', () => reject(new Error('upgraded while the database is away')));
          req.on('response', (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += String(chunk)));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
          });
          req.on('error', reject);
          req.end();
        },
      );
      expect(upgrade.status).toBe(503);
      expect(Number(upgrade.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(upgrade.body)).toMatchObject({ error: { code: 'unavailable' } });
    } finally {
      proxy.resume();
    }
    // Back: admitted again.
    await testing.waitFor(async () => (await e.request('GET', '/api/v1/auth/me', { token: session })).status === 200, {
      timeoutMs: 20_000,
    });
    const c = await open(e, bearer(session));
    await c.next('ready');
    c.ws.close();
  });
});

describe('subscriptions', () => {
  it('answers a bad subscription with an error naming the field, and keeps the socket', async () => {
    const c = await open(a, bearer(token));
    c.ws.send(JSON.stringify({ type: 'subscribe', id: 's1', topic: 'status', filter: { kind: ['toaster'] } }));
    const error = (await c.next('error')) as Extract<WsServerMessage, { type: 'error' }>;
    expect(error.id).toBe('s1');
    expect(error.issues?.map((i) => i.path)).toContain('filter.kind.0');
    c.ws.send('not json');
    expect(await c.next('error')).toMatchObject({ message: expect.stringMatching(/JSON/) });
    c.ws.send(JSON.stringify({ type: 'ping' }));
    await c.next('pong');
    c.ws.close();
  });

  it('fans a status change out to the sockets of both replicas, filtered per subscription', async () => {
    const onA = await open(a, bearer(token));
    const onB = await open(b, bearer(token));
    await subscribe(onA, { type: 'subscribe', id: 'down', topic: 'status', filter: { status: ['DOWN'] } });
    await subscribe(onB, { type: 'subscribe', id: 'any', topic: 'status', filter: {} });
    await subscribe(onB, { type: 'subscribe', id: 'web1', topic: 'target', targetId: 'instance:web-1' });

    await publish(change('instance:web-2', 'PARTIAL'));
    await publish(change('instance:web-1', 'DOWN'));

    const bFirst = (await onB.next('status.changed')) as Extract<WsServerMessage, { type: 'status.changed' }>;
    expect(bFirst.event.targetId).toBe('instance:web-2');
    expect(bFirst.subscriptions).toEqual(['any']);
    const bSecond = (await onB.next('status.changed')) as Extract<WsServerMessage, { type: 'status.changed' }>;
    expect(bSecond.event.targetId).toBe('instance:web-1');
    expect(bSecond.subscriptions.sort()).toEqual(['any', 'web1']);
    const aOnly = (await onA.next('status.changed')) as Extract<WsServerMessage, { type: 'status.changed' }>;
    expect(aOnly).toMatchObject({ subscriptions: ['down'], event: { targetId: 'instance:web-1', to: 'DOWN' } });
    expect(onA.messages.filter((m) => m.type === 'status.changed')).toEqual([]);

    onA.ws.send(JSON.stringify({ type: 'unsubscribe', id: 'down' }));
    await onA.next('unsubscribed');
    await publish(change('instance:web-3', 'DOWN'));
    await onB.next('status.changed');
    await new Promise((r) => setTimeout(r, 200));
    expect(onA.messages.filter((m) => m.type === 'status.changed')).toEqual([]);
    onA.ws.close();
    onB.ws.close();
  });

  it("filters by a pushed instance's own kind, as live state has it", async () => {
    const now = Date.now();
    await live.writeTargets([
      { ...instance('instance:box-1', now, 5), instanceKind: InstanceKind.Container },
      { ...instance('instance:pod-1', now, 5), instanceKind: InstanceKind.Pod },
    ]);
    const c = await open(a, bearer(token));
    await subscribe(c, { type: 'subscribe', id: 'boxes', topic: 'status', filter: { kind: ['container'] } });
    await subscribe(c, { type: 'subscribe', id: 'checks', topic: 'status', filter: { kind: ['check', 'pod'] } });
    await publish(change('instance:box-1', 'DOWN'));
    await publish(change('instance:pod-1', 'DOWN'));
    const got = new Map<string, string[]>();
    for (let i = 0; i < 2; i++) {
      const m = (await c.next('status.changed')) as Extract<WsServerMessage, { type: 'status.changed' }>;
      got.set(m.event.targetId, m.subscriptions);
    }
    expect(Object.fromEntries(got)).toEqual({ 'instance:box-1': ['boxes'], 'instance:pod-1': ['checks'] });
    c.ws.close();
  });
});

function instance(id: string, lastSeen: number, latencyMs: number): TargetWrite {
  const status = TargetStatus.Up;
  return {
    id,
    kind: TargetKind.Instance,
    name: id.slice('instance:'.length),
    status,
    previousStatus: null,
    since: lastSeen - 60_000,
    lastSeen,
    lastLatencyMs: latencyMs,
    lifecycle: 'Running',
    tags: [],
    labels: {},
    seq: lastSeen,
    locations: {
      'eu-west-1': { status, observedAt: lastSeen, lastSeen, latencyMs, detail: null, lifecycle: 'Running' },
    },
  };
}

function hostSample(hostId: string, at: number, cpu: number): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-2',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 5,
    cpu: { usagePct: cpu, cores: 8, load1: 1.5, load5: 1, load15: 0.5, perCorePct: [cpu, cpu] },
    memory: { totalBytes: 16e9, usedBytes: 4e9, swapTotalBytes: 2e9, swapUsedBytes: 1e8 },
    disks: [{ mount: '/', totalBytes: 1e11, usedBytes: 4e10, readBytesPerSec: 100, writeBytesPerSec: 200 }],
    network: [{ iface: 'eth0', rxBytesPerSec: 1000, txBytesPerSec: 500 }],
    gpus: [],
    uptimeSeconds: 86_400,
    system: { hostname: 'ws-host.lab', platform: 'linux', kernel: '6.1.0', arch: 'x64', gpuDriverVersion: '550.54' },
  };
}

describe('live views', () => {
  it("sends a watched target's view at once and again when a new result moves it", async () => {
    const t0 = Date.now() - 5000;
    await live.writeTargets([instance('instance:watched', t0, 10)]);
    const c = await open(b, bearer(token));
    c.ws.send(JSON.stringify({ type: 'subscribe', id: 'w', topic: 'target', targetId: 'instance:watched' }));
    const first = (await c.next('target')) as Extract<WsServerMessage, { type: 'target' }>;
    expect(first).toMatchObject({ subscriptions: ['w'], target: { id: 'instance:watched', status: 'UP' } });
    expect(first.target.locations[0].latencyMs).toBe(10);
    await live.writeTargets([instance('instance:watched', t0 + 1000, 25)]);
    const moved = (await c.next('target', 6000)) as Extract<WsServerMessage, { type: 'target' }>;
    expect(moved.target.locations[0].latencyMs).toBe(25);
    c.ws.close();
  });

  it("sends a watched host's latest sample summary at once and at each new sample", async () => {
    const t0 = Date.now() - 5000;
    await live.setHostMetrics('ws-host', JSON.stringify(hostSample('ws-host', t0, 12)), t0);
    const c = await open(a, bearer(token));
    c.ws.send(JSON.stringify({ type: 'subscribe', id: 'h', topic: 'host-metrics', hostIds: ['ws-host', 'no-such'] }));
    const first = (await c.next('host-metrics')) as Extract<WsServerMessage, { type: 'host-metrics' }>;
    expect(first).toMatchObject({ subscriptions: ['h'], hostId: 'ws-host', sample: { cpuPct: 12 } });
    await live.setHostMetrics('ws-host', JSON.stringify(hostSample('ws-host', t0 + 5000, 80)), t0 + 5000);
    const next = (await c.next('host-metrics', 6000)) as Extract<WsServerMessage, { type: 'host-metrics' }>;
    expect(next.sample.cpuPct).toBe(80);
    c.ws.close();
  });

  // A subscription's first view is read for its socket alone. When it is a view the replica had not sent yet (a new
  // result between two polls), it was recorded as sent: the next poll found nothing new and the sockets already
  // watching never got that result (until the next one). The window is the 2 s between polls: a newcomer subscribing
  // right after a write nearly always falls in it.
  it('sends a new result to the sockets already watching a target when a newcomer read it first', async () => {
    const t0 = Date.now() - 5000;
    await live.writeTargets([instance('instance:shared-view', t0, 10)]);
    const watcher = await open(b, bearer(token));
    const newcomer = await open(b, bearer(token));
    const sub = (id: string) => ({ type: 'subscribe', id, topic: 'target', targetId: 'instance:shared-view' });
    watcher.ws.send(JSON.stringify(sub('w')));
    const first = (await watcher.next('target')) as Extract<WsServerMessage, { type: 'target' }>;
    expect(first.target.locations[0].latencyMs).toBe(10);
    await live.writeTargets([instance('instance:shared-view', t0 + 1000, 25)]);
    newcomer.ws.send(JSON.stringify(sub('n')));
    const seenByNewcomer = (await newcomer.next('target')) as Extract<WsServerMessage, { type: 'target' }>;
    expect(seenByNewcomer.target.locations[0].latencyMs).toBe(25);
    const moved = (await watcher.next('target', 8000)) as Extract<WsServerMessage, { type: 'target' }>;
    expect(moved).toMatchObject({ subscriptions: ['w'] });
    expect(moved.target.locations[0].latencyMs).toBe(25);
    watcher.ws.close();
    newcomer.ws.close();
  });

  it('sends a new sample to the sockets already watching a host when a newcomer read it first', async () => {
    const t0 = Date.now() - 5000;
    await live.setHostMetrics('ws-host-shared', JSON.stringify(hostSample('ws-host-shared', t0, 12)), t0);
    const watcher = await open(a, bearer(token));
    const newcomer = await open(a, bearer(token));
    const sub = (id: string) => ({ type: 'subscribe', id, topic: 'host-metrics', hostIds: ['ws-host-shared'] });
    watcher.ws.send(JSON.stringify(sub('w')));
    const first = (await watcher.next('host-metrics')) as Extract<WsServerMessage, { type: 'host-metrics' }>;
    expect(first.sample.cpuPct).toBe(12);
    await live.setHostMetrics('ws-host-shared', JSON.stringify(hostSample('ws-host-shared', t0 + 5000, 80)), t0 + 5000);
    newcomer.ws.send(JSON.stringify(sub('n')));
    const seenByNewcomer = (await newcomer.next('host-metrics')) as Extract<WsServerMessage, { type: 'host-metrics' }>;
    expect(seenByNewcomer.sample.cpuPct).toBe(80);
    const next = (await watcher.next('host-metrics', 8000)) as Extract<WsServerMessage, { type: 'host-metrics' }>;
    expect(next).toMatchObject({ subscriptions: ['w'], hostId: 'ws-host-shared' });
    expect(next.sample.cpuPct).toBe(80);
    watcher.ws.close();
    newcomer.ws.close();
  });
});

describe('a corrupt record in live state (Redis answers, the value cannot be read)', () => {
  // A target whose tags are not JSON (written by hand, a bad migration) or a host's record that cannot be read: Redis
  // answers every read, so it is no outage. Before, such a read counted as Redis failing: a socket watching it alone
  // was told `degraded` after three polls, and its first view was answered "live state unavailable".
  it('names the target in an error, is counted apart, and never tells the socket `degraded`; its view comes once rewritten', async () => {
    const id = `instance:ws-corrupt-${Date.now()}`;
    await live.writeTargets([instance(id, Date.now() - 5000, 10)]);
    await liveRedis.hset(LiveKeys.target(id), 'tags', '{not json');
    const corruptBefore = processWsStats().corruptRecords;
    const degradedBefore = processWsStats().degraded;
    const c = await open(a, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'bad', topic: 'target', targetId: id });
    expect(await c.next('error')).toEqual({ type: 'error', id: 'bad', message: corruptTarget(id) });
    // Polls every 2 s read it again: more than READ_FAILURES_DEGRADED polls go by without a `degraded`.
    await expect(c.next('degraded', 2_000 * (READ_FAILURES_DEGRADED + 1))).rejects.toThrow(/no degraded/);
    expect(processWsStats().degraded).toBe(degradedBefore);
    expect(processWsStats().corruptRecords).toBeGreaterThan(corruptBefore + 1);
    expect(await metricOf(a, 'fleetwatch_gateway_ws_corrupt_records_total')).toBeGreaterThan(corruptBefore + 1);
    // Written again (its next result): the subscription stood, its view comes with the next poll.
    await live.writeTargets([instance(id, Date.now(), 12)]);
    expect(await c.next('target', 6000)).toMatchObject({ subscriptions: ['bad'], target: { id } });
    expect(c.messages.filter((m) => m.type === 'degraded' || m.type === 'resync' || m.type === 'error')).toEqual([]);
    c.ws.close();
  });

  it('a host-metrics subscription: the samples there are are sent, and the error says what could not be read', async () => {
    const sampled = `ws-corrupt-sampled-${Date.now()}`;
    const unreadable = `ws-corrupt-host-${Date.now()}`;
    const at = Date.now();
    await live.setHostMetrics(sampled, JSON.stringify(hostSample(sampled, at, 33)), at);
    // A host live state holds (its record) with no sample yet, whose tags cannot be read.
    await liveRedis.hset(LiveKeys.target(TargetIds.host(unreadable)), { kind: TargetKind.Host, tags: '[1,' });
    const c = await open(a, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'hosts', topic: 'host-metrics', hostIds: [sampled, unreadable] });
    expect(await c.next('host-metrics')).toMatchObject({ subscriptions: ['hosts'], hostId: sampled });
    const error = await c.next('error');
    // Before: "live state unavailable: … its first view comes once live state answers" (the first view was sent).
    const corrupt = new CorruptRecordError(`target:${TargetIds.host(unreadable)}`, 'tags');
    expect(error).toEqual({ type: 'error', id: 'hosts', message: hostsUnchecked([unreadable], corrupt) });
    expect(hostsUnchecked([unreadable], corrupt)).toMatch(
      new RegExp(
        `^could not tell whether host "${unreadable}" exists \\(no sample yet\\): its record in live state is corrupt`,
      ),
    );
    c.ws.close();
  });

  it('a corrupt host record beside a host that does not exist: the one that does not is still named as no host', async () => {
    // One corrupt record failed the whole check: every host without a sample was answered "could not tell whether …
    // exist: its record in live state is corrupt", so a host id that is no host (a typo) was never said to be one.
    const unreadable = `ws-corrupt-beside-${Date.now()}`;
    const missing = `ws-no-such-host-${Date.now()}`;
    await liveRedis.hset(LiveKeys.target(TargetIds.host(unreadable)), { kind: TargetKind.Host, tags: '[1,' });
    const c = await open(a, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'pair', topic: 'host-metrics', hostIds: [unreadable, missing] });
    const corrupt = new CorruptRecordError(`target:${TargetIds.host(unreadable)}`, 'tags');
    const errors = [await c.next('error'), await c.next('error')];
    expect(errors).toEqual(
      expect.arrayContaining([
        { type: 'error', id: 'pair', message: noSuchHosts([missing]) },
        { type: 'error', id: 'pair', message: hostsUnchecked([unreadable], corrupt) },
      ]),
    );
    c.ws.close();
  });
});

describe('sessions end, sockets close', () => {
  it('closes a live socket on either replica within seconds of a logout', async () => {
    const own = await a.login('admin', ADMIN_PASSWORD);
    const onA = await open(a, bearer(own));
    const onB = await open(b, { protocols: ['fleetwatch.v1', own] });
    await Promise.all([onA.next('ready'), onB.next('ready')]);
    const started = Date.now();
    expect((await a.request('POST', '/api/v1/auth/logout', { token: own })).status).toBe(204);
    const [closedA, closedB] = await Promise.all([onA.closed, onB.closed]);
    expect(closedA.code).toBe(4401);
    expect(closedB.code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(3000);
    // And the revoked token cannot open a new one.
    await expect(open(a, bearer(own))).rejects.toThrow('HTTP 401');
  });

  it("closes a user's live sockets on either replica when the role drops or the password is reset, and a key's when it is revoked", async () => {
    const created = await a.request<{ id: string }>('POST', '/api/v1/users', {
      token,
      body: { username: 'ws-demoted', password: 'ws-demoted-password', role: 'operator' },
    });
    expect(created.status).toBe(201);
    const userId = created.body.id;
    const status = async (c: Opened) => {
      await subscribe(c, { type: 'subscribe', id: 's', topic: 'status', filter: {} });
    };
    const cases: [string, () => Promise<number>][] = [
      [
        'role operator → viewer',
        async () =>
          (await a.request('PUT', `/api/v1/users/${userId}/role`, { token, body: { role: 'viewer' } })).status,
      ],
      [
        'password reset by an admin',
        async () =>
          (
            await a.request('PUT', `/api/v1/users/${userId}/password`, {
              token,
              body: { password: 'ws-demoted-password' },
            })
          ).status,
      ],
    ];
    for (const [what, act] of cases) {
      const own = await a.login('ws-demoted', 'ws-demoted-password');
      const onA = await open(a, bearer(own));
      const onB = await open(b, { protocols: ['fleetwatch.v1', own] });
      await Promise.all([onA.next('ready'), onB.next('ready')]);
      await Promise.all([status(onA), status(onB)]);
      const started = Date.now();
      expect([200, 204]).toContain(await act());
      const [closedA, closedB] = await Promise.all([within(onA.closed, what), within(onB.closed, what)]);
      expect([what, closedA.code, closedB.code]).toEqual([what, 4401, 4401]);
      expect(Date.now() - started).toBeLessThan(3000);
      // Nothing reaches them afterwards, and the old token opens no new one.
      const before = onA.messages.length + onB.messages.length;
      await publish(change('instance:after-revoke', 'DOWN'));
      await new Promise((r) => setTimeout(r, 300));
      expect(onA.messages.length + onB.messages.length).toBe(before);
      await expect(open(a, bearer(own))).rejects.toThrow('HTTP 401');
    }

    const key = await a.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token,
      body: { name: 'ws-revoked', scopes: ['read'] },
    });
    const byKey = await open(a, bearer(key.body.key));
    await byKey.next('ready');
    const started = Date.now();
    expect((await a.request('DELETE', `/api/v1/api-keys/${key.body.id}`, { token })).status).toBe(204);
    expect((await within(byKey.closed, 'key revoked')).code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('closes a socket whose session expired', async () => {
    const own = await a.login('admin', ADMIN_PASSWORD);
    const c = await open(b, bearer(own));
    await c.next('ready');
    const pg = new Client({ connectionString: a.database.databaseUrl });
    await pg.connect();
    try {
      await pg.query(
        `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE revoked_at IS NULL AND expires_at > now() - interval '1 second' AND id IN (SELECT id FROM sessions ORDER BY created_at DESC LIMIT 1)`,
      );
    } finally {
      await pg.end();
    }
    expect((await c.closed).code).toBe(4401);
  });
});

describe('back-pressure', () => {
  it('drops a client that does not read, and keeps serving the others', async () => {
    const hub = a.running.app.get(WsHub);
    const before = hub.snapshot().droppedSlow;
    const slow = await open(a, bearer(token));
    const fast = await open(a, bearer(token));
    await subscribe(slow, { type: 'subscribe', id: 'all', topic: 'status', filter: {} });
    await subscribe(fast, { type: 'subscribe', id: 'one', topic: 'status', filter: { targetIds: ['instance:last'] } });
    // The slow client stops reading: its kernel buffers fill, then the gateway's.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const reason = 'r'.repeat(1000);
    const burst = Array.from({ length: 20_000 }, (_, i) => change(`instance:flood-${i}`, 'DOWN', { reason }));
    for (let i = 0; i < burst.length; i += 1000) await publish(...burst.slice(i, i + 1000));
    const deadline = Date.now() + 20_000;
    while (hub.snapshot().droppedSlow === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(hub.snapshot().droppedSlow).toBe(before + 1);
    expect(processWsStats().droppedSlow).toBeGreaterThanOrEqual(1);
    expect(await metricOf(a, 'fleetwatch_gateway_ws_closed_total{reason="slow"}')).toBe(processWsStats().droppedSlow);

    await publish(change('instance:last', 'UP'));
    expect(await fast.next('status.changed', 10_000)).toMatchObject({ event: { targetId: 'instance:last' } });
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await slow.closed;
    fast.ws.close();
  });
});

describe('frame budget', () => {
  it("drops a socket's frames past its budget (answering the first), closes a flood, and serves the others", async () => {
    const hub = a.running.app.get(WsHub);
    const before = hub.snapshot();
    const flood = await open(a, bearer(token));
    const calm = await open(a, bearer(token));
    // 100,000 small frames once held the gateway's Redis connection for seconds: a REST read took 12 s.
    for (let i = 0; i < 2000; i++)
      flood.ws.send(JSON.stringify({ type: 'subscribe', id: `t${i % 30}`, topic: 'target', targetId: 'instance:x' }));
    const { code } = await within(flood.closed, 'a socket flooding its frames', 10_000);
    expect(code).toBe(WsCloseCode.TooManyFrames);
    const answered = flood.messages.filter((m) => m.type === 'subscribed' || m.type === 'error');
    // The burst (60) and what the rate refilled meanwhile, and one answer for the dropped run — not 2,000.
    expect(answered.length).toBeLessThan(200);
    const overBudget = flood.messages.filter((m) => m.type === 'error' && /too many messages/.test(m.message));
    expect(overBudget).toHaveLength(1);
    // It names the frame it dropped first, so the client knows which request went unanswered.
    expect(overBudget[0]).toMatchObject({ id: expect.stringMatching(/^t\d+$/) });
    expect(hub.snapshot().closedFlooding).toBe(before.closedFlooding + 1);
    expect(hub.snapshot().framesDropped).toBeGreaterThan(before.framesDropped + 60);
    expect(await metricOf(a, 'fleetwatch_gateway_ws_closed_total{reason="flooding"}')).toBe(
      processWsStats().closedFlooding,
    );
    // Another socket of the same session is served as before.
    calm.ws.send(JSON.stringify({ type: 'ping' }));
    await calm.next('pong');
    calm.ws.close();
  });
});

/** The hub's Redis subscriber connection: its id on the server, found by the client's local port. */
async function subscriberClientId(gw: GatewayHarness): Promise<string> {
  const subscriber = (gw.running.app.get(WsHub) as unknown as { subscriber: Redis | null }).subscriber;
  const port = subscriber?.stream?.localPort;
  if (!port) throw new Error('the hub holds no connected subscriber');
  const list = String(await publisher.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
  const line = list.split('\n').find((l) => new RegExp(`\\baddr=[^ ]*:${port}\\b`).test(l));
  const id = line?.match(/\bid=(\d+)/)?.[1];
  if (!id) throw new Error(`no pubsub client on local port ${port}`);
  return id;
}

/**
 * The next status change a socket gets, past any left over from the flood test before (20,000 changes on the shared
 * channel: under load the gateway may still be fanning them out when a new socket subscribes).
 */
async function nextChange(c: Awaited<ReturnType<typeof open>>, timeoutMs = 5000): Promise<WsServerMessage> {
  for (;;) {
    const m = await c.next('status.changed', timeoutMs);
    const id = (m as { event?: { targetId?: string } }).event?.targetId ?? '';
    if (!id.startsWith('instance:flood-') && id !== 'instance:last') return m;
  }
}

describe('Redis subscriber reconnects', () => {
  it('tells every open socket of that replica to resync once it has subscribed again, and fans out again', async () => {
    const onA = await open(a, bearer(token));
    const onB = await open(b, bearer(token));
    await subscribe(onA, { type: 'subscribe', id: 'any', topic: 'status', filter: {} });
    await subscribe(onB, { type: 'subscribe', id: 'any', topic: 'status', filter: {} });
    // Both replicas have worked through the back-pressure case's flood (20,000 changes, parsed by every hub): on a
    // busy box the next change could otherwise wait behind it longer than a wait below allows.
    await publish(change('instance:caught-up', 'UP'));
    for (const s of [onA, onB])
      expect(await nextChange(s, 30_000)).toMatchObject({ event: { targetId: 'instance:caught-up' } });
    // Cut replica a's subscriber connection only (CLIENT KILL ID: no other client, Redis stays up).
    const id = await subscriberClientId(a);
    expect(await publisher.call('CLIENT', 'KILL', 'ID', id)).toBe(1);
    // Published while a's subscriber is away: a never sees it, b does.
    await publish(change('instance:during-gap', 'DOWN'));
    expect(await nextChange(onB, 15_000)).toMatchObject({ event: { targetId: 'instance:during-gap' } });
    expect(await onA.next('resync', 10_000)).toMatchObject({ type: 'resync', reason: expect.any(String) });
    // Subscribed again on a new connection (a resync left over from an earlier reconnect — Redis may drop a subscriber
    // that falls behind a flood — could come before this one's): then the next change arrives.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const now = await subscriberClientId(a).catch(() => id);
      if (now !== id) break;
      if (Date.now() > deadline) throw new Error(`replica a did not subscribe again within 15 s (still client ${id})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await publish(change('instance:after-gap', 'DOWN'));
    expect(await nextChange(onA, 15_000)).toMatchObject({ event: { targetId: 'instance:after-gap' } });
    expect(onB.messages.filter((m) => m.type === 'resync')).toEqual([]);
    // /metrics counts the reconnect and the resync.
    const hubA = a.running.app.get(WsHub);
    expect(hubA.snapshot().resubscribes).toBeGreaterThanOrEqual(1);
    expect(hubA.snapshot().resyncs).toBeGreaterThanOrEqual(1);
    expect(await metricOf(a, 'fleetwatch_gateway_ws_resubscribes_total')).toBe(processWsStats().resubscribes);
    expect(await metricOf(b, 'fleetwatch_gateway_ws_resyncs_total')).toBe(processWsStats().resyncs);
    onA.ws.close();
    onB.ws.close();
  });

  it('names the subscriber connection by host and pid (every container is pid 1)', async () => {
    const id = await subscriberClientId(a);
    const list = String(await publisher.call('CLIENT', 'LIST', 'ID', id));
    const name = list.match(/\bname=(\S*)/)?.[1];
    expect(name).toBe(`api-gateway-ws-${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}`);
  });
});

describe('Redis subscriber gone silent', () => {
  // A subscriber connection that goes silent without a reset (a NAT flow forgotten), Redis still there: it only
  // listens, so nothing waited on it and ioredis kept it for hours while this replica missed every change. The hub
  // PINGs it; unanswered past the socket timeout, it is closed and opened again, and the sockets told to resync.
  let proxy: testing.TcpProxy;
  let d: GatewayHarness;
  beforeAll(async () => {
    proxy = testing.TcpProxy.forUrl(testing.testEnv().redisUrl);
    await proxy.start();
    d = await startGateway(testing, 'ws-d', {
      database: a.database,
      env: {
        REDIS_URL: proxy.rewriteUrl(testing.testEnv().redisUrl),
        FLEETWATCH_REDIS_PREFIX: channel.slice(0, -'live:status'.length),
        LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
  });
  afterAll(async () => {
    await d?.close();
    await proxy?.stop();
  });

  it('is noticed by its PINGs, opened again, and the sockets told to resync; changes reach them again', async () => {
    const onD = await open(d, bearer(await d.login('admin', ADMIN_PASSWORD)));
    await subscribe(onD, { type: 'subscribe', id: 'any', topic: 'status', filter: {} });
    await publish(change('instance:before-silence', 'UP'));
    expect(await nextChange(onD, 30_000)).toMatchObject({ event: { targetId: 'instance:before-silence' } });
    const accepted = proxy.stats.accepted;

    proxy.silenceLive();
    // Within a PING interval and the socket timeout (5 s + 10 s by default; slack for a loaded box). (Before: nothing.)
    expect(await onD.next('resync', 40_000)).toMatchObject({
      type: 'resync',
      reason: expect.stringMatching(/lost its Redis subscription/),
    });
    expect(proxy.stats.accepted).toBeGreaterThan(accepted);
    await publish(change('instance:after-silence', 'DOWN'));
    expect(await nextChange(onD, 15_000)).toMatchObject({ event: { targetId: 'instance:after-silence' } });
    onD.ws.close();
  });
});

/**
 * A gateway of its own whose Redis is reached through a TCP proxy this test owns (to cut, refuse or hold it: the
 * shared Redis stays up for every other test), on the shared database and live-state prefix; `env` adds settings.
 */
function gatewayBehindRedisProxy(
  name: string,
  env: Record<string, string> = {},
): { readonly gw: GatewayHarness; readonly proxy: testing.TcpProxy } {
  let proxy: testing.TcpProxy | undefined;
  let gw: GatewayHarness | undefined;
  beforeAll(async () => {
    proxy = testing.TcpProxy.forUrl(testing.testEnv().redisUrl);
    await proxy.start();
    gw = await startGateway(testing, name, {
      database: a.database,
      env: {
        REDIS_URL: proxy.rewriteUrl(testing.testEnv().redisUrl),
        FLEETWATCH_REDIS_PREFIX: channel.slice(0, -'live:status'.length),
        LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
        ...env,
      },
    });
  });
  afterAll(async () => {
    proxy?.resume();
    proxy?.release();
    await gw?.close();
    await proxy?.stop();
  });
  return {
    get gw() {
      if (!gw) throw new Error(`gateway ${name} not started`);
      return gw;
    },
    get proxy() {
      if (!proxy) throw new Error(`proxy of ${name} not started`);
      return proxy;
    },
  };
}

describe('live state away (Redis cut by a proxy this test owns)', () => {
  // Redis behind a TCP proxy of this test's own, cut and refused: the shared Redis stays up for every other test.
  // The sockets are told live updates stopped (`degraded`) when the gateway loses its subscription, not only after it
  // with the resync; /readyz names the failing dependency with a reason word and not the connection's error text.
  const rig = gatewayBehindRedisProxy('ws-e');
  let proxy: testing.TcpProxy;
  let e: GatewayHarness;
  beforeAll(() => {
    ({ gw: e, proxy } = rig);
  });

  it('answers a subscription to an unknown target with an error naming it', async () => {
    const c = await open(e, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'nope', topic: 'target', targetId: 'instance:ws-no-such-target' });
    expect(await c.next('error')).toEqual({
      type: 'error',
      id: 'nope',
      message: expect.stringMatching(/^no target "instance:ws-no-such-target"/),
    });
    // A target that exists is answered with its view, no error.
    await live.writeTargets([instance('instance:ws-known', Date.now() - 5000, 10)]);
    await subscribe(c, { type: 'subscribe', id: 'known', topic: 'target', targetId: 'instance:ws-known' });
    expect(await c.next('target')).toMatchObject({ subscriptions: ['known'], target: { id: 'instance:ws-known' } });
    expect(c.messages.filter((m) => m.type === 'error')).toEqual([]);
    c.ws.close();
  });

  it('answers a host-metrics subscription naming an unknown host with an error naming it, as REST answers 404', async () => {
    const hostId = `ws-no-such-host-${Date.now()}`;
    expect(
      (await e.request('GET', `/api/v1/hosts/${hostId}`, { headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(404);
    const c = await open(e, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'hosts', topic: 'host-metrics', hostIds: [hostId] });
    expect(await c.next('error')).toEqual({
      type: 'error',
      id: 'hosts',
      message: `no host "${hostId}": the subscription stands, its samples come once it reports`,
    });
    // The subscription stands: the host's first sample comes with the next poll once it reports.
    const at = Date.now();
    await live.setHostMetrics(hostId, JSON.stringify(hostSample(hostId, at, 42)), at);
    expect(await c.next('host-metrics', 6000)).toMatchObject({
      subscriptions: ['hosts'],
      hostId,
      sample: { cpuPct: 42 },
    });
    expect(c.messages.filter((m) => m.type === 'error')).toEqual([]);
    c.ws.close();
  });

  it('tells the sockets `degraded` when the feed is lost and `resync` when it is back; /readyz names redis, not its error', async () => {
    const c = await open(e, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'any', topic: 'status', filter: {} });
    await publish(change('instance:before-cut', 'UP'));
    expect(await nextChange(c, 30_000)).toMatchObject({ event: { targetId: 'instance:before-cut' } });

    const degradedBefore = processWsStats().degraded;
    proxy.pause();
    proxy.cut();
    // (Before: nothing until the resync after the outage.)
    expect(await c.next('degraded', 10_000)).toEqual({
      type: 'degraded',
      reason: expect.stringMatching(/live updates paused/),
    });
    // Counted once for the outage on /metrics (the process's: every hub's figures added up).
    expect(await metricOf(e, 'fleetwatch_gateway_ws_degraded_total')).toBe(degradedBefore + 1);
    expect(processWsStats().degraded).toBe(degradedBefore + 1);
    const ready = await fetch(`${e.url}/readyz`);
    expect(ready.status).toBe(503);
    const body = await ready.text();
    const redis = (JSON.parse(body) as { checks: { name: string; ok: boolean; error?: string }[] }).checks.find(
      (x) => x.name === 'redis',
    );
    expect(redis).toMatchObject({ ok: false, error: expect.stringMatching(/^(unreachable|timeout)$/) });
    expect(body).not.toContain(String(proxy.port));
    expect(body).not.toMatch(/ECONNREFUSED|Connection is closed|127\.0\.0\.1/);
    expect(c.messages.filter((m) => m.type === 'resync')).toEqual([]);

    proxy.resume();
    expect(await c.next('resync', 30_000)).toMatchObject({ type: 'resync' });
    // One `degraded` for the whole outage, however many reconnects failed in it.
    expect(c.messages.filter((m) => m.type === 'degraded')).toEqual([]);
    expect(await metricOf(e, 'fleetwatch_gateway_ws_degraded_total')).toBe(degradedBefore + 1);
    await publish(change('instance:after-cut', 'DOWN'));
    expect(await nextChange(c, 15_000)).toMatchObject({ event: { targetId: 'instance:after-cut' } });
    c.ws.close();
  });
});

describe('live state reads failing while the subscriber stays connected (a proxy this test owns holds answers)', () => {
  // Redis slower than GATEWAY_REDIS_TIMEOUT_MS: the proxy holds back every answer (no connection is closed, for less
  // than the socket timeout), so the hub's reads of watched targets time out while its subscriber stays connected —
  // before, sockets heard nothing until a resync after it. The shared Redis is not touched.
  const rig = gatewayBehindRedisProxy('ws-f', { GATEWAY_REDIS_TIMEOUT_MS: '1500' });
  let proxy: testing.TcpProxy;
  let f: GatewayHarness;
  beforeAll(() => {
    ({ gw: f, proxy } = rig);
  });

  it('tells the sockets `degraded` after reads fail in a row, and `resync` once live state answers again', async () => {
    const ids = ['instance:ws-slow-1', 'instance:ws-slow-2', 'instance:ws-slow-3'];
    await live.writeTargets(ids.map((id) => instance(id, Date.now() - 5000, 10)));
    const c = await open(f, bearer(token));
    await c.next('ready');
    for (const [i, targetId] of ids.entries()) {
      await subscribe(c, { type: 'subscribe', id: `w${i}`, topic: 'target', targetId });
      await c.next('target');
    }
    const degradedBefore = processWsStats().degraded;
    proxy.hold();
    // One poll's reads of the three watched targets time out (1.5 s each), the subscriber's connection stays.
    expect(await c.next('degraded', 8000)).toEqual({
      type: 'degraded',
      reason: expect.stringMatching(/^live updates paused: the gateway cannot read live state/),
    });
    expect(processWsStats().degraded).toBe(degradedBefore + 1);
    expect(c.messages.filter((m) => m.type === 'resync')).toEqual([]);
    proxy.release();
    expect(await c.next('resync', 10_000)).toMatchObject({ type: 'resync' });
    expect(await metricOf(f, 'fleetwatch_gateway_ws_degraded_total')).toBe(degradedBefore + 1);
    expect(c.messages.filter((m) => m.type === 'degraded')).toEqual([]);
    c.ws.close();
  });
});

describe('per-principal cap and server pings', () => {
  let c: GatewayHarness;
  beforeAll(async () => {
    c = await startGateway(testing, 'ws-c', {
      database: a.database,
      env: {
        GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL: '3',
        GATEWAY_WS_PING_INTERVAL_MS: '300',
        LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
  });
  afterAll(() => c?.close());

  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)),
    ]);

  it('refuses a session its 4th socket with close code 4429 and a reason; other sessions and freed places are admitted', async () => {
    const own = await c.login('admin', ADMIN_PASSWORD);
    const hub = c.running.app.get(WsHub);
    const held = await Promise.all([0, 1, 2].map(() => open(c, bearer(own))));
    await Promise.all(held.map((h) => h.next('ready')));
    const fourth = await open(c, { protocols: ['fleetwatch.v1', own] });
    const refused = await within(fourth.closed, 3000, 'the 4th socket closed');
    expect(refused.code).toBe(4429);
    expect(refused.reason).toMatch(/at most 3 open sockets per session or API key/);
    expect(fourth.messages.map((m) => m.type)).not.toContain('ready');
    // The gateway's /metrics counts it, and the sockets open now.
    expect(hub.snapshot().refusedTooMany).toBeGreaterThanOrEqual(1);
    expect(await metricOf(c, 'fleetwatch_gateway_ws_refused_total')).toBe(processWsStats().refusedTooMany);
    expect(hub.snapshot().open).toBeGreaterThanOrEqual(3);
    expect(await metricOf(c, 'fleetwatch_gateway_ws_sockets')).toBe(processWsStats().open);
    // Another session of the same user has its own places.
    const other = await open(c, bearer(await c.login('admin', ADMIN_PASSWORD)));
    await other.next('ready');
    // A socket closed frees its place.
    const openBefore = hub.snapshot().open;
    held[0].ws.close();
    await held[0].closed;
    const deadline = Date.now() + 3000;
    while (hub.snapshot().open !== openBefore - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const again = await open(c, bearer(own));
    await again.next('ready');
    for (const s of [...held.slice(1), other, again]) s.ws.close();
  });

  it('terminates a socket that does not answer pings, keeps one that does', async () => {
    const hub = c.running.app.get(WsHub);
    const before = hub.snapshot().closedNoPong;
    const mute = await open(c, { ...bearer(token), autoPong: false });
    const alive = await open(c, bearer(token));
    await Promise.all([mute.next('ready'), alive.next('ready')]);
    const started = Date.now();
    const closed = await within(mute.closed, 3000, 'the mute socket cut');
    expect(closed.code).toBe(1006); // terminated: no close handshake with a peer that does not answer
    expect(Date.now() - started).toBeLessThan(1500);
    expect(hub.snapshot().closedNoPong).toBe(before + 1);
    expect(await metricOf(c, 'fleetwatch_gateway_ws_closed_total{reason="no_pong"}')).toBe(
      processWsStats().closedNoPong,
    );
    // The answering socket outlives several intervals and still works.
    await new Promise((r) => setTimeout(r, 1000));
    alive.ws.send(JSON.stringify({ type: 'ping' }));
    await alive.next('pong');
    alive.ws.close();
  });
});

describe('per-user cap and resync rate limit', () => {
  let d: GatewayHarness;
  const RESYNC_MIN_MS = 3000;
  beforeAll(async () => {
    d = await startGateway(testing, 'ws-d', {
      database: a.database,
      env: {
        GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL: '2',
        GATEWAY_WS_MAX_SOCKETS_PER_USER: '3',
        GATEWAY_WS_RESYNC_MIN_INTERVAL_MS: String(RESYNC_MIN_MS),
        LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
  });
  afterAll(() => d?.close());

  const closedWithin = (c: Opened, ms: number) =>
    Promise.race([
      c.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms)),
    ]);

  it('refuses a user more sockets than GATEWAY_WS_MAX_SOCKETS_PER_USER across sessions; an API key counts apart', async () => {
    const hub = d.running.app.get(WsHub);
    const first = await d.login('admin', ADMIN_PASSWORD);
    const second = await d.login('admin', ADMIN_PASSWORD);
    const held = [await open(d, bearer(first)), await open(d, bearer(first)), await open(d, bearer(second))];
    await Promise.all(held.map((h) => h.next('ready')));
    // The second session has a place of its own left (2 per session), but the user holds 3 already.
    const over = await open(d, bearer(second));
    const refused = await closedWithin(over, 3000);
    expect(refused.code).toBe(4429);
    expect(refused.reason).toMatch(/at most 3 open sockets per user.*GATEWAY_WS_MAX_SOCKETS_PER_USER/);
    // Signing in again buys nothing.
    const third = await open(d, bearer(await d.login('admin', ADMIN_PASSWORD)));
    expect((await closedWithin(third, 3000)).code).toBe(4429);
    // An API key is not its creator: it has its own places (per key).
    const key = await d.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: first,
      body: { name: 'ws-cap', scopes: ['read'] },
    });
    expect(key.status).toBe(201);
    const viaKey = await open(d, bearer(key.body.key));
    await viaKey.next('ready');
    // A socket closed frees the user's place.
    const openBefore = hub.snapshot().open;
    held[0].ws.close();
    await held[0].closed;
    const deadline = Date.now() + 3000;
    while (hub.snapshot().open !== openBefore - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const again = await open(d, bearer(second));
    await again.next('ready');
    const rest = [...held.slice(1), viaKey, again];
    for (const s of rest) s.ws.close();
    await Promise.all(rest.map((s) => s.closed));
    while (hub.snapshot().open > 0 && Date.now() < deadline + 3000) await new Promise((r) => setTimeout(r, 20));
  });

  it('sends one resync per GATEWAY_WS_RESYNC_MIN_INTERVAL_MS however often the subscriber reconnects, and one after the last', async () => {
    const hub = d.running.app.get(WsHub);
    const c = await open(d, bearer(token));
    await c.next('ready');
    const resyncAt: number[] = [];
    c.ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as WsServerMessage).type === 'resync') resyncAt.push(Date.now());
    });
    const cut = async () => {
      const before = hub.snapshot().resubscribes;
      expect(await publisher.call('CLIENT', 'KILL', 'ID', await subscriberClientId(d))).toBe(1);
      const deadline = Date.now() + 5000;
      while (hub.snapshot().resubscribes === before && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(hub.snapshot().resubscribes).toBe(before + 1);
    };
    const started = Date.now();
    await cut();
    await c.next('resync');
    // Three more reconnects within the interval: no resync for each, one at its end.
    for (let i = 0; i < 3; i++) await cut();
    expect(Date.now() - started).toBeLessThan(RESYNC_MIN_MS - 500);
    expect(resyncAt).toHaveLength(1);
    await c.next('resync', RESYNC_MIN_MS + 2000);
    expect(resyncAt).toHaveLength(2);
    expect(resyncAt[1] - resyncAt[0]).toBeGreaterThanOrEqual(RESYNC_MIN_MS - 50);
    // Nothing more comes: the trailing one covered every reconnect.
    await new Promise((r) => setTimeout(r, RESYNC_MIN_MS + 500));
    expect(resyncAt).toHaveLength(2);
    c.ws.close();
  });

  it('tells sockets to resync when a changed target cannot be read (a tag-filtered subscription would miss it)', async () => {
    // Redis away or slower than GATEWAY_REDIS_TIMEOUT_MS for the read of the changed target (its tags and kind),
    // while the subscriber still delivers: the change was dropped for every filtered subscription, silently.
    const store = d.running.app.get(LiveStateStore);
    const c = await open(d, bearer(token));
    await c.next('ready');
    await subscribe(c, { type: 'subscribe', id: 'tagged', topic: 'status', filter: { tag: 'web' } });
    const getTarget = store.getTarget.bind(store);
    store.getTarget = () => Promise.reject(new Error('Command timed out'));
    try {
      // On d's own prefix (its channel), as an aggregator of its site publishes it.
      await d.live.publishStatusChange(change('instance:unreadable', 'DOWN'));
      expect(await c.next('resync', RESYNC_MIN_MS + 5000)).toMatchObject({
        type: 'resync',
        reason: expect.stringMatching(/could not read a change from Redis/),
      });
    } finally {
      store.getTarget = getTarget;
    }
    c.ws.close();
  });
});
