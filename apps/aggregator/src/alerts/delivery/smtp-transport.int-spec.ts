import { randomUUID } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { AlertDeliveriesRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { NotificationDelivery } from './notification-delivery.service';
import { alertOf, capturedLogger, MapChannelSource, notificationOf } from './receivers.int-helpers';
import { SMTPServer } from 'smtp-server';
import { sendEmail } from './smtp-transport';

// The SMTP transport against stand-in servers written here (real sockets, no mail library on the server side): what
// a hostile or broken relay can do to a send once the overall timeout has given up on it, and a relay that refuses
// some recipients for now (greylisting) while it takes the others.

jest.setTimeout(30_000);

interface Relay {
  port: number;
  /** Sockets the relay holds that the client has not closed. */
  open: () => number;
  commands: string[];
  close: () => Promise<void>;
}

/**
 * A stand-in relay: it greets, splits what the client sends into lines, reads a message's lines after DATA up to its
 * final dot, and answers EHLO, DATA, RSET and QUIT itself, any other command it is not given a 502 (not recognised).
 * `command` answers the rest (MAIL, RCPT) and says whether it did; `messageEnd` answers the final dot.
 */
async function scriptedRelay(script: {
  command: (command: string, line: string, socket: Socket) => boolean;
  /** `message`: the message's lines as sent (dot-stuffed), headers first. */
  messageEnd: (socket: Socket, message: string[]) => void;
}): Promise<Relay> {
  const sockets = new Set<Socket>();
  const commands: string[] = [];
  const server: Server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 relay.internal ESMTP\r\n');
    let buffered = '';
    let inData = false;
    let lines: string[] = [];
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (inData) {
          if (line !== '.') {
            lines.push(line);
            continue;
          }
          inData = false;
          commands.push('.');
          script.messageEnd(socket, lines);
          lines = [];
          continue;
        }
        const command = (line.split(/[ :]/)[0] ?? '').toUpperCase();
        commands.push(command);
        if (command === 'EHLO') socket.write('250-relay.internal\r\n250 8BITMIME\r\n');
        else if (command === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (command === 'RSET') socket.write('250 2.0.0 ok\r\n');
        else if (command === 'QUIT') socket.end('221 2.0.0 bye\r\n');
        else if (!script.command(command, line, socket)) socket.write('502 5.5.2 command not recognised\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    open: () => [...sockets].filter((s) => !s.destroyed).length,
    commands,
    close: async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A relay that speaks SMTP until the message's final dot, then answers it with a multi-line reply that never ends:
 * one `250-` line every `trickleMs` (each keeps the socket busy, so an idle timeout never fires).
 */
async function tricklingRelay(trickleMs = 200): Promise<Relay> {
  const timers = new Set<NodeJS.Timeout>();
  const relay = await scriptedRelay({
    command: (command, _line, socket) =>
      (command === 'MAIL' || command === 'RCPT') && (socket.write('250 2.1.0 ok\r\n'), true),
    messageEnd: (socket) => {
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write('250-still queueing\r\n');
      }, trickleMs);
      timers.add(timer);
      socket.on('close', () => clearInterval(timer));
    },
  });
  return {
    ...relay,
    close: async () => {
      timers.forEach((t) => clearInterval(t));
      await relay.close();
    },
  };
}

const message = { from: 'a@example.com', to: ['b@example.com'], subject: 's', text: 't', html: '<p>t</p>' };

describe('SMTP transport and a relay offering STARTTLS with a self-signed certificate', () => {
  // smtp-server's own certificate when given none: self-signed, as an internal relay's often is.
  async function selfSignedRelay(): Promise<{ port: number; mails: string[][]; close: () => Promise<void> }> {
    const mails: string[][] = [];
    const server = new SMTPServer({
      authOptional: true,
      logger: false,
      onData(stream, session, cb) {
        stream.resume();
        stream.on('end', () => {
          mails.push(session.envelope.rcptTo.map((r) => r.address));
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.server.address() as AddressInfo).port;
    return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
  const smtp = (port: number, tlsVerify: boolean) => ({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTls: false,
    tlsVerify,
  });

  it('fails with what to do when the certificate does not verify, and delivers over TLS with tlsVerify: false', async () => {
    const relay = await selfSignedRelay();
    try {
      // Before: no way through — STARTTLS is taken when offered, and the self-signed certificate failed every attempt.
      const refused = await sendEmail({ kind: 'email', smtp: smtp(relay.port, true), message }, { timeoutMs: 5000 });
      expect(refused).toMatchObject({ ok: false });
      expect(refused.error).toMatch(/self[- ]signed certificate/);
      expect(refused.error).toContain('set tlsVerify: false');
      expect(relay.mails).toEqual([]);

      const sent = await sendEmail({ kind: 'email', smtp: smtp(relay.port, false), message }, { timeoutMs: 5000 });
      expect(sent).toMatchObject({ ok: true, error: null });
      expect(relay.mails).toEqual([['b@example.com']]);
    } finally {
      await relay.close();
    }
  });
});

describe('SMTP transport against a relay that hangs mid-DATA', () => {
  it('gives up at the overall timeout and closes the connection (no socket left behind per attempt)', async () => {
    const relay = await tricklingRelay();
    try {
      const started = Date.now();
      const result = await sendEmail(
        {
          kind: 'email',
          smtp: { host: '127.0.0.1', port: relay.port, secure: false, requireTls: false, tlsVerify: true },
          message,
        },
        { timeoutMs: 1500 },
      );
      expect(Date.now() - started).toBeLessThan(5000);
      expect(result).toMatchObject({ ok: false, transient: true });
      expect(relay.commands).toContain('.'); // it did hang after the message, mid-reply
      // The connection is closed by the sender once it has given up: a relay that keeps trickling must not keep it
      // (each retry would leave one more open, and the mail might still be accepted after the attempt was logged).
      await waitFor(() => (relay.open() === 0 ? true : null), { timeoutMs: 1000 });
    } finally {
      await relay.close();
    }
  });
});

/**
 * A relay that greylists: the first RCPT TO of each address in `greylisted` gets a 450, later ones a 250. Records the
 * recipients of each mail it took.
 */
async function greylistingRelay(greylisted: readonly string[]): Promise<{
  port: number;
  mails: string[][];
  close: () => Promise<void>;
}> {
  const seen = new Set<string>();
  const mails: string[][] = [];
  // The recipients taken for the mail in progress, per connection.
  const rcpts = new Map<Socket, string[]>();
  const relay = await scriptedRelay({
    command: (command, line, socket) => {
      if (command === 'MAIL') socket.write('250 2.1.0 ok\r\n');
      else if (command === 'RCPT') {
        const address = /<([^>]*)>/.exec(line)?.[1] ?? '';
        if (greylisted.includes(address) && !seen.has(address)) {
          seen.add(address);
          socket.write('450 4.2.0 greylisted, try again later\r\n');
        } else {
          rcpts.set(socket, [...(rcpts.get(socket) ?? []), address]);
          socket.write('250 2.1.5 ok\r\n');
        }
      } else return false;
      return true;
    },
    messageEnd: (socket) => {
      mails.push(rcpts.get(socket) ?? []);
      rcpts.delete(socket);
      socket.write('250 2.0.0 queued\r\n');
    },
  });
  return { port: relay.port, mails, close: relay.close };
}

/** A database of the describe's own (made before its tests, dropped after): its pool, once made. */
function databasePool(): () => SqlPool {
  let db: IsolatedDatabase | undefined;
  let pool: SqlPool | undefined;
  beforeAll(async () => {
    db = await createIsolatedDatabase();
    pool = createSqlPool(db.databaseUrl, { max: 4 });
  });
  afterAll(async () => {
    if (pool) await closeSqlPool(pool);
    await db?.dispose();
  });
  return () => {
    if (!pool) throw new Error('the pool is made in beforeAll');
    return pool;
  };
}

/** A delivery worker on `pool` (retries after 0.1–0.5 s) and an email channel to the relay on `port`, for `to`. */
function mailDelivery(pool: SqlPool, port: number, to: string[], timeoutMs: number) {
  const repo = new AlertDeliveriesRepository(pool);
  const channels = new MapChannelSource();
  const d = new NotificationDelivery(repo, channels, capturedLogger().logger, {
    owner: `test-${randomUUID()}`,
    site: 'site-a',
    externalURL: 'https://fleet.example.com',
    pollIntervalMs: 50,
    policy: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 500, maxAgeMs: 600_000, jitter: 0 },
    smtp: { timeoutMs },
  });
  const mail = channels.set({
    id: `mail-${randomUUID()}`,
    config: {
      type: 'email',
      name: 'mail',
      enabled: true,
      sendResolved: true,
      host: '127.0.0.1',
      port,
      secure: false,
      allowPlaintextLogin: false,
      from: 'fw@example.com',
      to,
    },
    secrets: {},
  });
  /** Queues one alert to the channel and waits (up to `waitMs`) for its delivery to end: its id and log, oldest first. */
  const sendOne = async (waitMs: number) => {
    const [id] = await d.enqueue([{ channelId: mail.id, notification: notificationOf([alertOf()]) }]);
    const log = await waitFor(
      async () => {
        const l = await repo.listLog({ deliveryId: id });
        return l.length && l[0].outcome !== 'retrying' ? l.reverse() : null;
      },
      { timeoutMs: waitMs, description: 'the delivery to finish' },
    );
    return { id, log };
  };
  return { repo, d, mail, sendOne };
}

describe('a relay that refuses some recipients for now (greylisting: 450 at RCPT TO)', () => {
  const pool = databasePool();

  it('the others get it once; the refused one gets it on a retry, and the log says so', async () => {
    const relay = await greylistingRelay(['grey@example.com']);
    const { d, sendOne } = mailDelivery(pool(), relay.port, ['ok@example.com', 'grey@example.com'], 5000);
    d.start();
    try {
      const { log } = await sendOne(15_000);
      expect(log.map((e) => e.outcome)).toEqual(['retrying', 'delivered']);
      expect(log[0].error).toMatch(/grey@example\.com: 450 4\.2\.0 greylisted/);
      // The accepted recipient got it once; the greylisted one got it on the retry, alone.
      expect(relay.mails).toEqual([['ok@example.com'], ['grey@example.com']]);
    } finally {
      await d.stop();
      await relay.close();
    }
  });
});

describe('a relay that took the message but whose answer came too late (the duplicate-message problem, RFC 1047)', () => {
  const pool = databasePool();

  it('the retry carries the same Message-ID, so the mail system or the reader can drop the repeat', async () => {
    const messages: string[][] = [];
    // The first message's final dot is never answered (the relay queued it; its 250 is lost): the send times out and is
    // tried again. The second is answered at once.
    const relay = await scriptedRelay({
      command: (command, _line, socket) =>
        (command === 'MAIL' || command === 'RCPT') && (socket.write('250 2.1.0 ok\r\n'), true),
      messageEnd: (socket, lines) => {
        messages.push(lines);
        if (messages.length > 1) socket.write('250 2.0.0 queued\r\n');
      },
    });
    const { d, sendOne } = mailDelivery(pool(), relay.port, ['oncall@example.com'], 1500);
    d.start();
    try {
      const { id, log } = await sendOne(20_000);
      expect(log.map((e) => e.outcome)).toEqual(['retrying', 'delivered']);
      expect(messages).toHaveLength(2);
      const messageIds = messages.map((lines) => lines.find((l) => /^message-id:/i.test(l)) ?? '(none)');
      expect(messageIds[0]).toMatch(/^Message-ID: <[^>]+>$/i);
      expect(messageIds[1]).toBe(messageIds[0]);
      // The delivery's id names it: the same in the log, the webhook's X-Fleetwatch-Delivery header and this mail.
      expect(messageIds[0]).toContain(id);
    } finally {
      await d.stop();
      await relay.close();
    }
  });
});
