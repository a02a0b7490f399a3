import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { createGzip, deflateSync, gzipSync } from 'node:zlib';
import { generatePingToken } from '@fleetwatch/persistence';
import { createIsolatedVhost, streamPost, testEnv } from '@fleetwatch/testing';
import { UPDATES_PATH as UPDATES } from './http/ingest.routes';
import { errorOf, IngestHarness, update } from './int-spec.helpers';

// The network edge: which address a key's allow-list sees (INGEST_TRUST_PROXY is a
// list of proxy CIDRs; a client's own X-Forwarded-For is never believed), and an
// oversized body answered with a 413 the client actually reads, not a reset.

const PROXY_CIDRS = '127.0.0.1/32,::1/128,192.0.2.0/24';
let direct: IngestHarness;
let proxied: IngestHarness;

beforeAll(async () => {
  const databaseUrl = testEnv().databaseUrl;
  [direct, proxied] = await Promise.all([
    IngestHarness.start({ vhost: await createIsolatedVhost('ingest-edge'), databaseUrl }),
    IngestHarness.start(
      { vhost: await createIsolatedVhost('ingest-edge-proxied'), databaseUrl },
      { INGEST_TRUST_PROXY: PROXY_CIDRS },
    ),
  ]);
});
afterAll(() => Promise.all([direct?.stop(), proxied?.stop()]));
afterEach(async () => {
  await Promise.all([direct.drain(), proxied.drain()]);
});

describe('client address and per-key allow-lists', () => {
  const xff = (value: string) => ({ headers: { 'x-forwarded-for': value } });

  it('a spoofed X-Forwarded-For from an untrusted peer does not bypass the allow-list', async () => {
    const { key } = await direct.createKey(['ingest'], ['10.9.0.0/16']);
    for (const header of ['10.9.1.1', '203.0.113.5, 10.9.1.1', '10.9.1.1, 10.9.1.2']) {
      const res = await direct.post(update(1), { key, ...xff(header) });
      expect(res.status).toBe(403);
      expect(errorOf(res).message).toMatch(/may not be used from (::ffff:)?127\.0\.0\.1/);
    }
  });

  it('through a trusted proxy, the forwarded client address is the one checked', async () => {
    const { key } = await proxied.createKey(['ingest'], ['10.9.0.0/16']);
    expect((await proxied.post(update(1), { key, ...xff('10.9.1.1') })).status).toBe(202);
    // Two trusted hops (127.0.0.1 → 192.0.2.10): the client is the address before them.
    expect((await proxied.post(update(2), { key, ...xff('10.9.1.1, 192.0.2.10') })).status).toBe(202);
    // Whatever a client writes to the left of its own address is not believed.
    expect((await proxied.post(update(3), { key, ...xff('203.0.113.5, 10.9.1.1') })).status).toBe(202);
  });

  it('through a trusted proxy, the right-most untrusted address is the client, even when the client prepends an allowed one', async () => {
    const { key } = await proxied.createKey(['ingest'], ['10.9.0.0/16']);
    const res = await proxied.post(update(1), { key, ...xff('10.9.1.1, 203.0.113.5') });
    expect(res.status).toBe(403);
    expect(errorOf(res).message).toMatch(/may not be used from 203\.0\.113\.5/);
    // A proxy forwarding no header: the proxy itself is the client.
    const noHeader = await proxied.post(update(2), { key });
    expect(noHeader.status).toBe(403);
    expect(errorOf(noHeader).message).toMatch(/may not be used from (::ffff:)?127\.0\.0\.1/);
  });

  it('IPv6 forwarded addresses match IPv6 networks', async () => {
    const { key } = await proxied.createKey(['ingest'], ['2001:db8:7::/48']);
    expect((await proxied.post(update(1), { key, ...xff('2001:db8:7::42') })).status).toBe(202);
    expect((await proxied.post(update(2), { key, ...xff('2001:db8:8::42') })).status).toBe(403);
  });
});

describe('a body over the limit', () => {
  const MB = 1024 * 1024;

  it('gets a 413 the client receives, every time (5–20 MB, declared length)', async () => {
    const { key } = await direct.createKey(['ingest']);
    for (const size of [5 * MB, 20 * MB, 8 * MB, 12 * MB, 20 * MB]) {
      const res = await streamPost(`${direct.url}${UPDATES}`, size, { authorization: `Bearer ${key}` });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    }
  });

  it('gets a 413 the client receives when the body is chunked (no declared length)', async () => {
    const { key } = await direct.createKey(['ingest']);
    for (let i = 0; i < 3; i++)
      expect(
        (await streamPost(`${direct.url}${UPDATES}`, 10 * MB, { authorization: `Bearer ${key}`, chunked: true }))
          .status,
      ).toBe(413);
  });

  it('without a key gets the 401, not a reset', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await streamPost(`${direct.url}${UPDATES}`, 8 * MB);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('past INGEST_BODY_DISCARD_LIMIT_BYTES (32 MiB) is not read to its end (the connection closes), and the service goes on', async () => {
    const { key } = await direct.createKey(['ingest']);
    const started = Date.now();
    const outcome = await streamPost(`${direct.url}${UPDATES}`, 48 * MB, { authorization: `Bearer ${key}` }).then(
      (res) => `answered ${res.status}`,
      (e: Error) => e.message,
    );
    expect(outcome).toMatch(/answered 413|connection failed after \d+ of/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });

  it('leaves the service answering', async () => {
    const { key } = await direct.createKey(['ingest']);
    await streamPost(`${direct.url}${UPDATES}`, 5 * MB, { authorization: `Bearer ${key}` });
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });
});

/** `head`, `chunk` `times` over, then `tail`, gzipped without holding this process's event loop or 256 MiB at once. */
async function gzipStreamed(head: string, chunk: Buffer, times: number, tail: string): Promise<Buffer> {
  const gz = createGzip();
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  gz.write(head);
  for (let i = 0; i < times; i++) if (!gz.write(chunk)) await once(gz, 'drain');
  gz.end(tail);
  await once(gz, 'end');
  return Buffer.concat(out);
}

describe('a compressed body (Content-Encoding)', () => {
  const batch = (n: number) => ({
    updates: Array.from({ length: n }, (_, i) => update(`gz-${i}`, { message: 'x'.repeat(200) })),
  });

  it('gzip and deflate bodies are accepted and every update published, as the same JSON sent plain', async () => {
    const { key } = await direct.createKey(['ingest']);
    const body = Buffer.from(JSON.stringify(batch(500)));
    for (const [encoding, bytes] of [
      ['gzip', gzipSync(body)],
      ['deflate', deflateSync(body)],
      ['GZip', gzipSync(body)],
      ['identity', body],
    ] as const) {
      const res = await direct.post(bytes, { key, headers: { 'content-encoding': encoding } });
      expect([encoding, res.status, res.text.slice(0, 200)]).toEqual([encoding, 202, expect.any(String)]);
      expect(res.json).toMatchObject({ accepted: 500 });
      const published = await direct.drain();
      expect(published.map((m) => (m.envelope.payload as { instanceId: string }).instanceId).sort()).toEqual(
        batch(500)
          .updates.map((u) => u.instanceId as string)
          .sort(),
      );
    }
  });

  it('an encoding it does not decode gets a 415 naming the encodings it takes, and nothing is published', async () => {
    const { key } = await direct.createKey(['ingest']);
    for (const encoding of ['br', 'compress', 'gzip, br', 'x-unknown']) {
      const res = await direct.post(gzipSync(JSON.stringify(update(1))), {
        key,
        headers: { 'content-encoding': encoding },
      });
      expect(res.status).toBe(415);
      expect(errorOf(res)).toMatchObject({
        code: 'unsupported_media_type',
        issues: [{ path: '(content-encoding)', message: expect.stringMatching(/gzip.*deflate/) }],
      });
    }
    expect(await direct.count()).toBe(0);
  });

  it('a body that is not the encoding it names gets a 400 saying so, and the service goes on', async () => {
    const { key } = await direct.createKey(['ingest']);
    const plain = Buffer.from(JSON.stringify(update(1)));
    const truncated = gzipSync(plain).subarray(0, 20);
    for (const [encoding, bytes] of [
      ['gzip', plain],
      ['gzip', truncated],
      ['deflate', plain],
    ] as const) {
      const res = await direct.post(bytes, { key, headers: { 'content-encoding': encoding } });
      expect(res.status).toBe(400);
      expect(errorOf(res)).toMatchObject({
        code: 'validation_failed',
        issues: [{ path: '(body)', message: expect.stringContaining(`not valid ${encoding} data`) }],
      });
    }
    expect(await direct.count()).toBe(0);
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });

  it('a body that decompresses past the size limit gets a 413 without being inflated whole (a zip bomb)', async () => {
    const { key } = await direct.createKey(['ingest']);
    // 256 MiB of spaces in JSON (valid when inflated) compress to ~250 KB. Streamed through zlib's thread pool, 1 MiB
    // reused: the service runs in this process, and gzipSync of one 256 MiB buffer held its event loop for 3 s, 11–19 s
    // on a loaded two-core box — past two AMQP heartbeats (5 s), so the broker closed the service's connection
    // ("missed heartbeats from client") and the push below got 503 "message broker unavailable", not its 202.
    const bomb = await gzipStreamed(
      '{"instanceId":"a","kind":"container","status":"running","message":"',
      Buffer.alloc(1024 * 1024, 0x20),
      256,
      '"}',
    );
    const cpu = process.cpuUsage(); // the service runs in this process: inflating 256 MiB would take ~0.3 s or more
    const res = await direct.post(bomb, { key, headers: { 'content-encoding': 'gzip' } });
    const { user, system } = process.cpuUsage(cpu);
    expect(res.status).toBe(413);
    expect((user + system) / 1000).toBeLessThan(150);
    expect(errorOf(res).code).toBe('payload_too_large');
    expect(await direct.count()).toBe(0);
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });

  it('a compressed body refused before it is inflated (declared length over the limit) gets its 413, and the service goes on', async () => {
    // Fastify refuses on Content-Length before reading the decoded stream; the rest of the body is still read off
    // the socket (so the client gets the 413) and must not reach an inflater whose failure nobody listens to.
    const { key } = await direct.createKey(['ingest']);
    for (const bytes of [Buffer.alloc(1024 * 1024 + 1024, 'a'), gzipSync(Buffer.alloc(8 * 1024 * 1024, 'a'))]) {
      const declared = Buffer.concat([bytes, Buffer.alloc(Math.max(0, 1024 * 1024 + 1 - bytes.length), 0xff)]);
      const res = await direct.post(declared, { key, headers: { 'content-encoding': 'gzip' } });
      expect(res.status).toBe(413);
      expect(errorOf(res).code).toBe('payload_too_large');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await direct.count()).toBe(0);
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });

  it('a chunked compressed body whose encoded length passes the limit mid-way gets its 413, and the service goes on', async () => {
    // Stored (level 0) gzip of random bytes: decoded within the limit, encoded past it — Fastify stops reading the
    // decoded stream at the limit; what follows (a broken second member) then fails the inflater.
    const { key } = await direct.createKey(['ingest']);
    const stored = gzipSync(randomBytes(1024 * 1024 - 10), { level: 0 });
    expect(stored.length).toBeGreaterThan(1024 * 1024);
    const res = await fetch(`${direct.url}${UPDATES}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: new ReadableStream({
        async start(controller) {
          for (let i = 0; i < stored.length; i += 64 * 1024) controller.enqueue(stored.subarray(i, i + 64 * 1024));
          await new Promise((resolve) => setTimeout(resolve, 300)); // the 413 is decided by then
          controller.enqueue(new Uint8Array([0x1f, 0x8b, 0x08, 0xff, 0x01, 0x02, 0x03, 0x04]));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await direct.count()).toBe(0);
    expect((await direct.post(update(1), { key })).status).toBe(202);
  });
});

describe('a body that stalls', () => {
  const MB = 1024 * 1024;
  let slow: IngestHarness;
  beforeAll(async () => {
    slow = await IngestHarness.start(
      { vhost: await createIsolatedVhost('ingest-edge-stall'), databaseUrl: testEnv().databaseUrl },
      // Two 1-MiB bodies fill the admission budget; a body gets two seconds.
      { INGEST_MAX_BODIES_IN_PROGRESS_BYTES: String(2 * MB), INGEST_BODY_TIMEOUT_MS: '2000' },
    );
  });
  afterAll(() => slow?.stop());

  /** Writes `request` (a head and the first bytes of its body), then nothing; resolves with what the server wrote back. */
  function stallRaw(request: string): { answer: Promise<string>; socket: Socket } {
    const socket = connect(slow.config.port, '127.0.0.1');
    let text = '';
    const answer = new Promise<string>((resolve) => {
      socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
    });
    socket.write(request);
    return { answer, socket };
  }

  /** Sends the head and the first bytes of a 1-MiB body, then nothing; resolves with what the server wrote back. */
  function stall(key: string): { answer: Promise<string>; socket: Socket } {
    return stallRaw(
      `POST ${UPDATES} HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${MB}\r\n\r\n{"instanceId":`,
    );
  }

  /** `answer`, or a marker that fails the 408 expectation when nothing came back within 4 s. */
  function within4s<T>(answer: Promise<T>, none: T): Promise<T> {
    return Promise.race([answer, new Promise<T>((resolve) => setTimeout(() => resolve(none), 4_000))]);
  }

  /** The server's raw answer is a 408 with the request_timeout error body. */
  function expect408(a: string): void {
    expect(a).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(a.slice(a.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'request_timeout' } });
  }

  it('is answered 408 once INGEST_BODY_TIMEOUT_MS passed, and no longer keeps other clients out', async () => {
    const { key } = await slow.createKey(['ingest']);
    // The key's verdict cached first: the stalled requests are admitted at once, before any other.
    expect((await slow.post(update(0), { key })).status).toBe(202);
    await slow.drain();
    const stalled = [stall(key), stall(key)];
    await new Promise((r) => setTimeout(r, 200));
    try {
      // Before the body deadline, every other request is refused: the stalled bodies hold the whole budget.
      expect((await slow.post(update(1), { key })).status).toBe(503);
      // Answered within the deadline (2 s), not when the client gives up (Node's own limit is 5 minutes).
      const answers = await within4s(Promise.all(stalled.map((s) => s.answer)), ['(no answer within 4 s)']);
      expect(answers).toHaveLength(2);
      for (const a of answers) expect408(a);
      expect((await slow.post(update(2), { key })).status).toBe(202);
      expect((await slow.drain()).map((m) => (m.envelope.payload as { instanceId: string }).instanceId)).toEqual([
        'web-2',
      ]);
    } finally {
      for (const s of stalled) s.socket.destroy();
    }
  });

  it.each(['', '/3'])(
    'a ping (/ping/{token}%s) whose POST body stalls is answered 408 in time too (it held its socket for minutes)',
    async (suffix) => {
      // A well-formed token (its checksum holds) that no monitor has: the body is read before the lookup.
      const { answer, socket } = stallRaw(
        `POST /ping/${generatePingToken()}${suffix} HTTP/1.1\r\nHost: ingest\r\nContent-Type: text/plain\r\n` +
          `Content-Length: 100\r\n\r\nabc`,
      );
      try {
        expect408(await within4s(answer, '(no answer within 4 s)'));
      } finally {
        socket.destroy();
      }
    },
  );
});
