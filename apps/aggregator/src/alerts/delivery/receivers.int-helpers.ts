import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import type { Logger } from 'pino';
import type { ChannelNotification, NotificationAlert, RetryPolicy } from '@fleetwatch/alerting';
import { createLogger } from '@fleetwatch/observability';
import { AlertDeliveriesRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import type { ChannelSource, ResolvedChannel } from './delivery.types';
import { NotificationDelivery, type DeliveryOptions } from './notification-delivery.service';

// Local receivers for the delivery integration tests: an HTTP server that records each request and
// answers as its script says (webhook, Slack, Teams, PagerDuty shapes are checked by the tests), and an
// SMTP server (smtp-server) that takes a login and records each mail.

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export type Responder = (req: ReceivedRequest, index: number) => Answer | Promise<Answer>;

export interface HttpReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  respond: Responder;
  close(): Promise<void>;
}

/** An HTTP receiver on a free loopback port; `respond` may be replaced between requests. */
export async function startHttpReceiver(respond: Responder = () => ({ status: 200 })): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const receiver = { requests, respond } as HttpReceiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      requests.push(received);
      void Promise.resolve(receiver.respond(received, requests.length - 1)).then((a) => {
        res.writeHead(a.status, a.headers ?? {});
        res.end(a.body ?? '');
      });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  receiver.port = port;
  receiver.url = `http://127.0.0.1:${port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** A loopback port with nothing listening on it (a receiver that is down). */
export async function closedPort(): Promise<number> {
  const r = await startHttpReceiver();
  await r.close();
  return r.port;
}

export interface ReceivedMail {
  from: string;
  to: string[];
  user: string | undefined;
  raw: string;
}

export interface SmtpReceiver {
  port: number;
  mails: ReceivedMail[];
  /** The usernames of every login attempt the server saw (right or wrong). */
  logins: string[];
  close(): Promise<void>;
}

/** An SMTP server (no TLS) that accepts this login only and records each mail. */
export async function startSmtpReceiver(login: { user: string; pass: string }): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const logins: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, cb) {
      logins.push(auth.username ?? '');
      if (auth.username === login.user && auth.password === login.pass) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, logins, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Channels from a map, as the configuration owner would give them. */
export class MapChannelSource implements ChannelSource {
  readonly channels = new Map<string, ResolvedChannel>();
  set(channel: ResolvedChannel): ResolvedChannel {
    this.channels.set(channel.id, channel);
    return channel;
  }
  async get(id: string): Promise<ResolvedChannel | null> {
    return this.channels.get(id) ?? null;
  }
}

/** The service's JSON logger (with its redaction) writing into memory, to search for secrets. */
export function capturedLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: createLogger('aggregator', 'debug', sink), text: () => lines.join('') };
}

/** A firing alert as the evaluator would queue it. */
export function alertOf(over: Partial<NotificationAlert> = {}, labels: Record<string, string> = {}): NotificationAlert {
  return {
    status: 'firing',
    labels: { alertname: 'Target down', severity: 'critical', target: 'check:web', rule_id: 'r1', ...labels },
    annotations: { summary: 'Web is down', description: 'check:web has been DOWN for 1 minute' },
    startsAt: new Date(Date.now() - 60_000).toISOString(),
    endsAt: null,
    fingerprint: 'abcdef0123456789',
    value: null,
    generatorURL: 'https://fleet.example.com/alerts/abcdef0123456789',
    ...over,
  };
}

export function notificationOf(
  alerts: NotificationAlert[],
  over: Partial<ChannelNotification> = {},
): ChannelNotification {
  return {
    groupKey: `ch:[["alertname","Target down"]]:${Math.random()}`,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    groupLabels: { alertname: 'Target down' },
    alerts,
    externalURL: 'https://fleet.example.com',
    site: 'site-a',
    ...over,
  };
}

/**
 * What the delivery specs share, with its jest hooks (call it at a spec's top level): a database of its own (another
 * spec's workers or claims must not take this one's queued messages) and a repository on a pool; receivers closed
 * after all; workers stopped after each test (a worker left running would claim the next test's messages).
 */
export function deliveryTestBed(policy: RetryPolicy): {
  /** The repository (set once the spec's hooks ran). */
  repo: () => AlertDeliveriesRepository;
  channels: MapChannelSource;
  log: ReturnType<typeof capturedLogger>;
  /** A receiver closed after the spec. */
  receiver: (respond?: Responder) => Promise<HttpReceiver>;
  /** A started worker on `source` (default: the channels the tests share), stopped after the test. */
  worker: (over?: Partial<DeliveryOptions>, source?: MapChannelSource) => NotificationDelivery;
  /** A webhook channel to `url`. */
  webhook: (url: string, secrets?: Record<string, string>, source?: MapChannelSource) => ResolvedChannel;
} {
  let db: IsolatedDatabase | undefined;
  let pool: SqlPool | undefined;
  let repo: AlertDeliveriesRepository | undefined;
  const receivers: HttpReceiver[] = [];
  const running: NotificationDelivery[] = [];
  const channels = new MapChannelSource();
  const log = capturedLogger();
  beforeAll(async () => {
    db = await createIsolatedDatabase();
    pool = createSqlPool(db.databaseUrl, { max: 6 });
    repo = new AlertDeliveriesRepository(pool);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    if (pool) await closeSqlPool(pool);
    await db?.dispose();
  });
  const repoOf = (): AlertDeliveriesRepository => {
    if (!repo) throw new Error('the delivery test bed is not set up yet (used outside a test?)');
    return repo;
  };
  return {
    repo: repoOf,
    channels,
    log,
    async receiver(respond) {
      const r = await startHttpReceiver(respond);
      receivers.push(r);
      return r;
    },
    worker(over = {}, source = channels) {
      const d = new NotificationDelivery(repoOf(), source, log.logger, {
        owner: `test-${randomUUID()}`,
        site: 'site-a',
        externalURL: 'https://fleet.example.com',
        pollIntervalMs: 50,
        policy,
        ...over,
      });
      running.push(d);
      d.start();
      return d;
    },
    webhook(url, secrets = {}, source = channels) {
      return source.set({
        id: `webhook-${randomUUID()}`,
        config: { type: 'webhook', name: 'hook', enabled: true, sendResolved: true, url, headers: {} },
        secrets,
      });
    },
  };
}

/**
 * A receiver's script that rate limits: its first request opens a window of `seconds`, and every request within it is
 * answered 429 with `Retry-After: seconds`; after it, 200. `openAt`: when the window ends (0 before the first request).
 */
export function rateLimitingResponder(seconds: number): { respond: Responder; openAt: () => number } {
  let openAt = 0;
  return {
    respond: (req) => {
      if (openAt === 0) openAt = req.at + seconds * 1000;
      return req.at < openAt ? { status: 429, headers: { 'retry-after': String(seconds) } } : { status: 200 };
    },
    openAt: () => openAt,
  };
}
