import { randomUUID } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  groupDedupKey,
  verifyWebhookSignature,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type ChannelNotification,
  type PagerDutyEvent,
  type SlackMessage,
  type WebhookBody,
} from '@fleetwatch/alerting';
import { AlertDeliveriesRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { NotificationDelivery } from './notification-delivery.service';
import { sendEmail } from './smtp-transport';
import {
  alertOf,
  notificationOf,
  capturedLogger,
  MapChannelSource,
  startHttpReceiver,
  startSmtpReceiver,
  type HttpReceiver,
  type SmtpReceiver,
} from './receivers.int-helpers';

// Every channel type against a real local receiver: the webhook receiver verifies the HMAC (and answers
// 401 when it does not hold), the Slack, Teams and PagerDuty receivers check the body's shape, the SMTP
// server takes the login and the mail. Then the delivery log has one `delivered` attempt per channel.

const HMAC_KEY = `hmac-${randomUUID()}`;
// A database of its own: another spec's workers or claims must not take this one's queued messages.
let db: IsolatedDatabase;
let pool: SqlPool;
let repo: AlertDeliveriesRepository;
let http: HttpReceiver;
let smtp: SmtpReceiver;
let delivery: NotificationDelivery;
const channels = new MapChannelSource();
const log = capturedLogger();
const base = { enabled: true, sendResolved: true };

function problems(path: string, body: string, headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  const json = JSON.parse(body) as Record<string, unknown>;
  if (path.startsWith('/webhook')) {
    const ok = verifyWebhookSignature({
      secret: HMAC_KEY,
      body,
      timestamp: headers[WEBHOOK_TIMESTAMP_HEADER] as string,
      signature: headers[WEBHOOK_SIGNATURE_HEADER] as string,
      now: Date.now(),
    });
    if (!ok) out.push('bad signature');
    if ((json as unknown as WebhookBody).version !== '4') out.push('no version');
  } else if (path.startsWith('/slack')) {
    const m = json as unknown as SlackMessage;
    if (typeof m.text !== 'string' || !Array.isArray(m.attachments)) out.push('not a Slack message');
  } else if (path.startsWith('/teams')) {
    const a = (json['attachments'] as Array<{ contentType: string; content: { type: string } }>)?.[0];
    if (
      json['type'] !== 'message' ||
      a?.contentType !== ADAPTIVE_CARD_CONTENT_TYPE ||
      a.content.type !== 'AdaptiveCard'
    )
      out.push('not an Adaptive Card message');
  } else if (path.startsWith('/pd')) {
    const e = json as unknown as PagerDutyEvent;
    if (!e.routing_key || !e.dedup_key || !['trigger', 'resolve'].includes(e.event_action)) out.push('not an event');
    if (e.event_action === 'trigger' && (!e.payload?.summary || !e.payload.severity || !e.payload.source))
      out.push('trigger without payload');
  }
  return out;
}

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  repo = new AlertDeliveriesRepository(pool);
  http = await startHttpReceiver((req) => {
    const bad = problems(req.path, req.body, req.headers);
    return bad.length ? { status: req.path.startsWith('/webhook') ? 401 : 400, body: bad.join(', ') } : { status: 202 };
  });
  smtp = await startSmtpReceiver({ user: 'fleetwatch', pass: 'smtp-pw' });
  delivery = new NotificationDelivery(repo, channels, log.logger, {
    owner: `test-${randomUUID()}`,
    site: 'site-a',
    externalURL: 'https://fleet.example.com',
    pollIntervalMs: 50,
  });
  delivery.start();
});

afterAll(async () => {
  await delivery?.stop();
  await http?.close();
  await smtp?.close();
  await closeSqlPool(pool);
  await db?.dispose();
});

const id = (type: string) => `${type}-${randomUUID()}`;

async function deliverTo(channelId: string, n: ChannelNotification) {
  const [deliveryId] = await delivery.enqueue([{ channelId, notification: n }]);
  const entries = await waitFor(
    async () => {
      const l = await repo.listLog({ deliveryId });
      return l.length && l[0].outcome !== 'retrying' ? l : null;
    },
    { description: `delivery ${deliveryId} to finish` },
  );
  return { deliveryId, entries };
}

describe('delivery to real receivers', () => {
  it('webhook: the receiver verifies the HMAC over timestamp.body', async () => {
    const ch = channels.set({
      id: id('webhook'),
      config: { ...base, type: 'webhook', name: 'hook', url: `${http.url}/webhook/in`, headers: { 'X-Env': 'test' } },
      secrets: { secret: HMAC_KEY },
    });
    const { deliveryId, entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
    expect(entries.map((e) => [e.attempt, e.outcome, e.httpStatus])).toEqual([[1, 'delivered', 202]]);
    const got = http.requests.find((r) => r.headers['x-fleetwatch-delivery'] === deliveryId);
    expect(got?.headers['x-env']).toBe('test');
    expect((JSON.parse(got?.body ?? '{}') as WebhookBody).alerts[0].labels['target']).toBe('check:web');
  });

  it('webhook signed with another key: the receiver refuses it (401), and a 401 is not retried', async () => {
    const ch = channels.set({
      id: id('webhook'),
      config: { ...base, type: 'webhook', name: 'hook', url: `${http.url}/webhook/in`, headers: {} },
      secrets: { secret: 'not-the-key' },
    });
    const { entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
    expect(entries.map((e) => [e.attempt, e.outcome, e.httpStatus])).toEqual([[1, 'failed', 401]]);
    expect(entries[0].error).toMatch(/HTTP 401: bad signature \(permanent failure\)/);
  });

  it('Slack, Teams and PagerDuty receivers get bodies of their shape', async () => {
    const slack = channels.set({
      id: id('slack'),
      config: { ...base, type: 'slack', name: 's', channel: '#ops' },
      secrets: { url: `${http.url}/slack/T1/B2/secretpart` },
    });
    const teams = channels.set({
      id: id('teams'),
      config: { ...base, type: 'teams', name: 't' },
      secrets: { url: `${http.url}/teams/hook` },
    });
    const pd = channels.set({
      id: id('pd'),
      config: { ...base, type: 'pagerduty', name: 'p', eventsUrl: `${http.url}/pd/v2/enqueue` },
      secrets: { routingKey: 'rk-123' },
    });
    const n = notificationOf([alertOf()]);
    for (const ch of [slack, teams, pd]) {
      const { entries } = await deliverTo(ch.id, n);
      expect([ch.config.type, entries[0].outcome, entries[0].httpStatus]).toEqual([ch.config.type, 'delivered', 202]);
    }
    const slackBody = JSON.parse(http.requests.filter((r) => r.path.startsWith('/slack')).at(-1)?.body ?? '{}');
    expect(slackBody).toMatchObject({ channel: '#ops', text: '*[FIRING:1] Target down*' });
    // PagerDuty: trigger, then resolve with the same dedup key.
    await deliverTo(
      pd.id,
      notificationOf([alertOf({ status: 'resolved', endsAt: new Date().toISOString() })], { groupKey: n.groupKey }),
    );
    const events = http.requests
      .filter((r) => r.path.startsWith('/pd'))
      .map((r) => JSON.parse(r.body) as PagerDutyEvent);
    expect(events.map((e) => [e.event_action, e.dedup_key])).toEqual([
      ['trigger', groupDedupKey(n.groupKey)],
      ['resolve', groupDedupKey(n.groupKey)],
    ]);
  });

  it('Slack: a target or label written as a channel-wide mention (@channel, @here …) reaches the receiver defused', async () => {
    const slack = channels.set({
      id: id('slack'),
      config: { ...base, type: 'slack', name: 's' },
      secrets: { url: `${http.url}/slack/T1/B2/mentions` },
    });
    // Grouped by target: the group's label values are in the message's `text`, where Mattermost and Rocket.Chat
    // notify the whole channel for a mention.
    const n = notificationOf(
      [alertOf({ annotations: { summary: '@everyone: disk full on @here' } }, { target: '@channel', owner: '@ALL' })],
      { groupLabels: { alertname: 'Target down', target: '@channel' } },
    );
    const { entries } = await deliverTo(slack.id, n);
    expect(entries[0].outcome).toBe('delivered');
    const body = http.requests.filter((r) => r.path === '/slack/T1/B2/mentions').at(-1)?.body ?? '';
    const msg = JSON.parse(body) as { text: string; attachments: Array<{ title: string }> };
    expect(body).not.toMatch(/@(channel|here|all|everyone)\b/i);
    expect(msg.text).toBe('*[FIRING:1] Target down (@\u2060channel)*');
    expect(msg.attachments[0].title).toBe('🔥 @\u2060everyone: disk full on @\u2060here');
  });

  it('e-mail: the SMTP server takes the login and the mail (text and HTML parts)', async () => {
    const ch = channels.set({
      id: id('email'),
      config: {
        ...base,
        type: 'email',
        name: 'e',
        host: '127.0.0.1',
        port: smtp.port,
        secure: false,
        username: 'fleetwatch',
        allowPlaintextLogin: true, // the receiver offers no STARTTLS
        from: 'alerts@example.com',
        to: ['ops@example.com', 'oncall@example.com'],
      },
      secrets: { password: 'smtp-pw' },
    });
    const { entries } = await deliverTo(
      ch.id,
      notificationOf([alertOf({ annotations: { summary: '<b>Web</b> is down' } })]),
    );
    expect(entries.map((e) => e.outcome)).toEqual(['delivered']);
    const mail = smtp.mails.at(-1);
    expect(mail).toMatchObject({
      from: 'alerts@example.com',
      to: ['ops@example.com', 'oncall@example.com'],
      user: 'fleetwatch',
    });
    expect(mail?.raw).toMatch(/Subject: \[FIRING:1\] Target down/);
    expect(mail?.raw).toMatch(/Content-Type: text\/plain/);
    expect(mail?.raw).toMatch(/Content-Type: text\/html/);
    expect(mail?.raw).toContain('&lt;b&gt;Web&lt;/b&gt; is down');
  });

  it('e-mail with a login to a server that offers no STARTTLS: not sent, the password never goes in clear', async () => {
    const before = { mails: smtp.mails.length, logins: smtp.logins.length };
    const ch = channels.set({
      id: id('email'),
      config: {
        ...base,
        type: 'email',
        name: 'e',
        host: '127.0.0.1',
        port: smtp.port,
        secure: false,
        username: 'fleetwatch',
        allowPlaintextLogin: false,
        from: 'a@example.com',
        to: ['b@example.com'],
      },
      secrets: { password: 'smtp-pw' },
    });
    const { entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
    expect(entries.map((e) => e.outcome)).toEqual(['failed']);
    expect(entries[0].error).toMatch(/offers no STARTTLS, so the login was not sent/);
    expect(smtp.logins.length).toBe(before.logins); // no login attempt: the password was never sent
    expect(smtp.mails.length).toBe(before.mails);
  });

  it('e-mail with a login to a relay answering STARTTLS with 454 (RFC 3207: TLS not available): retried, never logged in, and the error says why', async () => {
    // A relay that lists no STARTTLS and answers it 454 (Exchange without a certificate; a man in the middle may too).
    const commands: string[] = [];
    const relay = createTcpServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('220 relay.internal ESMTP\r\n');
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
          const command = (buffered.slice(0, end).split(' ')[0] ?? '').toUpperCase();
          buffered = buffered.slice(end + 2);
          commands.push(command);
          if (command === 'EHLO') socket.write('250-relay.internal\r\n250 AUTH PLAIN LOGIN\r\n');
          else if (command === 'STARTTLS') socket.write('454 4.7.0 TLS not available due to temporary reason\r\n');
          else if (command === 'QUIT') socket.end('221 2.0.0 bye\r\n');
          else socket.write('503 5.5.1 not now\r\n');
        }
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const result = await sendEmail(
        {
          kind: 'email',
          smtp: {
            host: '127.0.0.1',
            port: (relay.address() as AddressInfo).port,
            secure: false,
            requireTls: true,
            tlsVerify: true,
            username: 'fleetwatch',
            password: 'smtp-pw',
          },
          message: { from: 'a@example.com', to: ['b@example.com'], subject: 's', text: 't', html: '<p>t</p>' },
        },
        { timeoutMs: 5_000 },
      );
      expect(result).toMatchObject({ ok: false, transient: true }); // a 4xx: tried again, as any 4xx
      expect(result.error).toMatch(/^SMTP 454: .*TLS not available/);
      expect(result.error).toMatch(/the server refused STARTTLS, so the login was not sent/);
      expect(commands).toContain('STARTTLS');
      expect(commands).not.toContain('AUTH');
    } finally {
      await new Promise((resolve) => relay.close(resolve));
    }
  });

  it('e-mail with a wrong password: 535 is permanent, logged once', async () => {
    const ch = channels.set({
      id: id('email'),
      config: {
        ...base,
        type: 'email',
        name: 'e',
        host: '127.0.0.1',
        port: smtp.port,
        secure: false,
        username: 'fleetwatch',
        allowPlaintextLogin: true, // the receiver offers no STARTTLS
        from: 'a@example.com',
        to: ['b@example.com'],
      },
      secrets: { password: 'wrong-pw' },
    });
    const { entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
    expect(entries.map((e) => e.outcome)).toEqual(['failed']);
    expect(entries[0].error).toMatch(/535/);
    expect(entries[0].error).not.toContain('wrong-pw');
  });

  it.each(['PLAIN', 'LOGIN'])(
    'e-mail to a server that echoes the AUTH %s argument in its refusal: the stored error holds no form of the password',
    async (mechanism) => {
      const echoed: string[] = [];
      const relay = createTcpServer((socket) => {
        socket.on('error', () => undefined);
        socket.write('220 relay.internal ESMTP\r\n');
        let buffered = '';
        let loginStep = 0;
        socket.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('latin1');
          for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
            const line = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const [command = '', arg1 = '', arg2 = ''] = line.split(' ');
            if (loginStep === 1) {
              loginStep = 2;
              socket.write('334 UGFzc3dvcmQ6\r\n');
            } else if (loginStep === 2) {
              echoed.push(line);
              socket.write(`535 5.7.8 authentication failed for ${line}\r\n`);
            } else if (command.toUpperCase() === 'EHLO')
              socket.write(`250-relay.internal\r\n250 AUTH ${mechanism}\r\n`);
            else if (command.toUpperCase() === 'AUTH' && arg1 === 'PLAIN') {
              echoed.push(arg2);
              socket.write(`535 5.7.8 authentication failed for ${arg2}\r\n`);
            } else if (command.toUpperCase() === 'AUTH' && arg1 === 'LOGIN') {
              loginStep = 1;
              socket.write('334 VXNlcm5hbWU6\r\n');
            } else if (command.toUpperCase() === 'QUIT') socket.end('221 2.0.0 bye\r\n');
            else socket.write('503 5.5.1 not now\r\n');
          }
        });
      });
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      try {
        const ch = channels.set({
          id: id(`email-echo-${mechanism}`),
          config: {
            ...base,
            type: 'email',
            name: 'e',
            host: '127.0.0.1',
            port: (relay.address() as AddressInfo).port,
            secure: false,
            username: 'fleetwatch',
            allowPlaintextLogin: true, // the relay offers no STARTTLS
            from: 'a@example.com',
            to: ['b@example.com'],
          },
          secrets: { password: 'echoed-pw' },
        });
        const { entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
        expect(entries.map((e) => e.outcome)).toEqual(['failed']);
        expect(echoed).toHaveLength(1); // the relay did echo the login
        expect(entries[0].error).toMatch(/^SMTP 535: .*authentication failed for \*\*\*/);
        expect(entries[0].error).not.toContain(echoed[0]);
      } finally {
        await new Promise((resolve) => relay.close(resolve));
      }
    },
  );

  it('a deleted or disabled channel: the message is skipped and logged, nothing sent', async () => {
    const before = http.requests.length;
    const gone = await deliverTo(id('gone'), notificationOf([alertOf()]));
    expect(gone.entries.map((e) => [e.outcome, e.error])).toEqual([['skipped', 'channel not found']]);
    const off = channels.set({
      id: id('teams'),
      config: { ...base, enabled: false, type: 'teams', name: 't' },
      secrets: { url: `${http.url}/teams/x` },
    });
    const disabled = await deliverTo(off.id, notificationOf([alertOf()]));
    expect(disabled.entries.map((e) => [e.outcome, e.error])).toEqual([['skipped', 'channel disabled']]);
    expect(http.requests.length).toBe(before);
  });

  it('a channel that cannot build its request (a secret it needs is missing): failed, logged once, nothing sent', async () => {
    const before = http.requests.length;
    const ch = channels.set({
      id: id('teams'),
      config: { ...base, type: 'teams', name: 'no-url' },
      secrets: {},
    });
    const { entries } = await deliverTo(ch.id, notificationOf([alertOf()]));
    expect(entries.map((e) => e.outcome)).toEqual(['failed']);
    expect(entries[0].error).toMatch(/^not sent: /);
    expect(http.requests.length).toBe(before);
  });

  it('test-send: one attempt, its outcome returned and logged as a test', async () => {
    const ch = channels.set({
      id: id('webhook'),
      config: { ...base, type: 'webhook', name: 'hook', url: `${http.url}/webhook/test`, headers: {} },
      secrets: { secret: HMAC_KEY },
    });
    const result = await delivery.testSend(ch);
    expect(result).toMatchObject({ ok: true, httpStatus: 202, error: null });
    const body = JSON.parse(http.requests.at(-1)?.body ?? '{}') as WebhookBody;
    expect(body).toMatchObject({ test: true, commonLabels: { alertname: 'FleetwatchTestNotification' } });
    const [entry] = await repo.listLog({ channelId: ch.id });
    expect(entry).toMatchObject({ test: true, outcome: 'delivered', attempt: 1, httpStatus: 202 });
    // A test-send to a channel missing its secret says why, and sends nothing.
    const broken = await delivery.testSend({
      id: id('slack'),
      config: { ...base, type: 'slack', name: 's' },
      secrets: {},
    });
    expect(broken).toMatchObject({ ok: false, httpStatus: null, error: 'channel "s" (slack) has no url stored' });
  });

  it('test-send to PagerDuty: the test incident is triggered and resolved at once (same dedup key), both logged', async () => {
    const pd = channels.set({
      id: id('pd'),
      config: { ...base, type: 'pagerduty', name: 'p-test', eventsUrl: `${http.url}/pd/v2/test-enqueue` },
      secrets: { routingKey: 'rk-test' },
    });
    const result = await delivery.testSend(pd);
    expect(result).toMatchObject({ ok: true, httpStatus: 202, error: null });
    const events = http.requests
      .filter((r) => r.path === '/pd/v2/test-enqueue')
      .map((r) => JSON.parse(r.body) as PagerDutyEvent);
    expect(events.map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    expect(events[1].dedup_key).toBe(events[0].dedup_key);
    const log = await repo.listLog({ channelId: pd.id });
    expect(log.map((e) => [e.test, e.status, e.outcome, e.attempt]).sort()).toEqual([
      [true, 'firing', 'delivered', 1],
      [true, 'resolved', 'delivered', 2],
    ]);
  });
});
