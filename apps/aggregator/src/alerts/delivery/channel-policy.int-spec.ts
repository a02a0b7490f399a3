import { randomUUID } from 'node:crypto';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS, type TargetPolicy } from '@fleetwatch/domain';
import { AlertDeliveriesRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { checkedAgent } from './checked-connect';
import { NotificationDelivery } from './notification-delivery.service';
import {
  alertOf,
  capturedLogger,
  MapChannelSource,
  notificationOf,
  startHttpReceiver,
  type HttpReceiver,
} from './receivers.int-helpers';

// Channels under the checks' target policy (SPEC §5), at send time, against real local listeners: a canary on
// 127.0.0.2 (denied here by policy) must never see a connection — not from a webhook URL, not from an SMTP
// host, not from a name that resolves into a denied network; the attempt fails at once (not retried) and the
// log says why. An allowed receiver is still delivered to. And an SMTP server that accepts the connection and
// never answers frees the worker after the overall timeout, the message retried later.

jest.setTimeout(60_000);

let db: IsolatedDatabase;
let pool: SqlPool;
let repo: AlertDeliveriesRepository;
let allowed: HttpReceiver;
const servers: Server[] = [];
const base = { enabled: true, sendResolved: true };

/** A TCP listener that counts connections; `silent` ones accept and never write (an SMTP server that hangs). */
async function listener(host: string): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const sockets: Socket[] = [];
  const server = createNetServer((s) => {
    n++;
    sockets.push(s);
    s.on('error', () => undefined);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, connections: () => n };
}

function deliveryWith(policy: TargetPolicy, channels: MapChannelSource, timeoutMs = 3000) {
  return new NotificationDelivery(repo, channels, capturedLogger().logger, {
    owner: `test-${randomUUID()}`,
    site: 'site-a',
    externalURL: 'https://fleet.example.com',
    pollIntervalMs: 50,
    http: { timeoutMs, maxResponseBytes: 4096, maxRedirects: 3, dispatcher: checkedAgent(policy) },
    smtp: { timeoutMs, policy },
  });
}

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  repo = new AlertDeliveriesRepository(pool);
  allowed = await startHttpReceiver(() => ({ status: 200 }));
});

afterAll(async () => {
  await allowed?.close();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await closeSqlPool(pool);
  await db?.dispose();
});

async function finalEntry(deliveryId: string) {
  return waitFor(
    async () => {
      const l = await repo.listLog({ deliveryId });
      return l.length ? l[0] : null;
    },
    { timeoutMs: 20_000 },
  );
}

describe('the target policy at send time', () => {
  const policy = createTargetPolicy([...DEFAULT_DENY_NETWORKS, '127.0.0.2/32']);

  it('a webhook, an SMTP host and a PagerDuty URL on a denied address: refused before connecting, failed, logged', async () => {
    const canary = await listener('127.0.0.2');
    const channels = new MapChannelSource();
    const d = deliveryWith(policy, channels);
    const hook = channels.set({
      id: `hook-${randomUUID()}`,
      config: { ...base, type: 'webhook', name: 'hook', url: `http://127.0.0.2:${canary.port}/in`, headers: {} },
      secrets: { secret: 'hmac-key-123456' },
    });
    const mail = channels.set({
      id: `mail-${randomUUID()}`,
      config: {
        ...base,
        type: 'email',
        name: 'mail',
        host: '127.0.0.2',
        port: canary.port,
        secure: false,
        allowPlaintextLogin: false,
        from: 'fw@example.com',
        to: ['ops@example.com'],
      },
      secrets: {},
    });
    const pd = channels.set({
      id: `pd-${randomUUID()}`,
      config: { ...base, type: 'pagerduty', name: 'pd', eventsUrl: `http://[::ffff:127.0.0.2]:${canary.port}/v2` },
      secrets: { routingKey: 'R0UTINGKEY' },
    });
    for (const ch of [hook, mail, pd]) {
      const test = await d.testSend(ch);
      expect(test).toMatchObject({ ok: false, outcome: 'failed' });
      expect(test.error).toMatch(
        /refused by the target policy: address 127\.0\.0\.2 .*denied network 127\.0\.0\.2\/32/,
      );
    }
    d.start();
    try {
      const [queued] = await d.enqueue([{ channelId: hook.id, notification: notificationOf([alertOf()]) }]);
      const entry = await finalEntry(queued);
      // Not retried: waiting does not change the policy.
      expect(entry).toMatchObject({ outcome: 'failed', attempt: 1, httpStatus: null });
      expect(entry.error).toMatch(/refused by the target policy/);
    } finally {
      await d.stop();
    }
    expect(canary.connections()).toBe(0);
  });

  it('a name is checked after DNS resolution: localhost refused where loopback is denied', async () => {
    const canary = await listener('127.0.0.1');
    const strict = createTargetPolicy([...DEFAULT_DENY_NETWORKS, '127.0.0.0/8', '::1/128']);
    const channels = new MapChannelSource();
    const d = deliveryWith(strict, channels);
    const hook = channels.set({
      id: `hook-${randomUUID()}`,
      config: { ...base, type: 'webhook', name: 'hook', url: `http://localhost:${canary.port}/in`, headers: {} },
      secrets: {},
    });
    const test = await d.testSend(hook);
    expect(test).toMatchObject({ ok: false, outcome: 'failed' });
    expect(test.error).toMatch(/refused by the target policy: address .* of localhost is in denied network/);
    const meta = channels.set({
      id: `meta-${randomUUID()}`,
      config: { ...base, type: 'webhook', name: 'meta', url: 'http://metadata.google.internal/x', headers: {} },
      secrets: {},
    });
    expect((await d.testSend(meta)).error).toMatch(/name metadata\.google\.internal is denied/);
    expect(canary.connections()).toBe(0);
  });

  it('an allowed receiver is still delivered to through the checked connection', async () => {
    const channels = new MapChannelSource();
    const d = deliveryWith(policy, channels);
    const hook = channels.set({
      id: `hook-${randomUUID()}`,
      config: { ...base, type: 'webhook', name: 'hook', url: `http://localhost:${allowed.port}/ok`, headers: {} },
      secrets: {},
    });
    expect(await d.testSend(hook)).toMatchObject({ ok: true, outcome: 'delivered', httpStatus: 200 });
    expect(allowed.requests.some((r) => r.path === '/ok')).toBe(true);
  });
});

describe('SMTP overall timeout', () => {
  it('a server that accepts and never answers frees the worker after the timeout; the message is retried', async () => {
    const hang = await listener('127.0.0.1');
    const channels = new MapChannelSource();
    const d = deliveryWith(createTargetPolicy(DEFAULT_DENY_NETWORKS), channels, 1500);
    const mail = channels.set({
      id: `mail-${randomUUID()}`,
      config: {
        ...base,
        type: 'email',
        name: 'mail',
        host: '127.0.0.1',
        port: hang.port,
        secure: false,
        allowPlaintextLogin: false,
        from: 'fw@example.com',
        to: ['ops@example.com'],
      },
      secrets: { password: 'smtp-password' },
    });
    d.start();
    try {
      const started = Date.now();
      const [queued] = await d.enqueue([{ channelId: mail.id, notification: notificationOf([alertOf()]) }]);
      const entry = await finalEntry(queued);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(entry).toMatchObject({ outcome: 'retrying', attempt: 1 });
      expect(entry.nextAttemptAt).not.toBeNull();
      expect(entry.error).toMatch(/ETIMEDOUT|timed out|Greeting never received|no answer/i);
      expect(hang.connections()).toBeGreaterThanOrEqual(1);
    } finally {
      await d.stop();
    }
  });
});
