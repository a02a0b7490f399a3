import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { brotliCompressSync, createGzip, deflateSync, gzipSync } from 'node:zlib';
import {
  generatePingToken,
  hashPingToken,
  HeartbeatMonitorsRepository,
  PushMonitorsRepository,
  runInTransaction,
} from '@fleetwatch/persistence';
import { Messages, type PingReceivedPayload } from '@fleetwatch/contracts';
import { createBus, type Bus } from '@fleetwatch/messaging';
import { createIsolatedVhost, testEnv } from '@fleetwatch/testing';
import { IngestHarness } from '../int-spec.helpers';

// Pings at the edge: tokens issued before checksums keep working, random tokens of
// either shape cost no query, and pings are rate-limited per monitor and per client
// address (429 + Retry-After). Client addresses are real: requests leave from
// different loopback addresses (127.0.0.0/8 is all local on Linux).

let h: IngestHarness;
let monitors: PushMonitorsRepository;

beforeAll(async () => {
  h = await IngestHarness.start(
    { vhost: await createIsolatedVhost('ingest-pings'), databaseUrl: testEnv().databaseUrl },
    { INGEST_PING_RATE_LIMIT_PER_TOKEN_PER_MINUTE: '5', INGEST_PING_RATE_LIMIT_PER_IP_PER_MINUTE: '20' },
  );
  monitors = new PushMonitorsRepository(h.db);
});
afterAll(() => h?.stop());
afterEach(async () => {
  jest.restoreAllMocks();
  await h.drain();
});

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: { error?: { code: string; message: string } };
}

/** GET /ping/{token} (POST with `body`; `method` another) from the loopback address `from`. */
function ping(
  token: string,
  from: string,
  body?: string,
  method = body === undefined ? 'GET' : 'POST',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers =
      body === undefined ? {} : { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) };
    const req = httpRequest(
      { host: '127.0.0.1', port: h.config.port, path: `/ping/${token}`, method, headers, localAddress: from },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'] as string | undefined,
            body: text ? JSON.parse(text) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A monitor row as its one writer, sync-orchestrator, writes it with a push check
 * (PushMonitorsRepository): this edge only reads it. `token` may be of the shape issued
 * before checksums, which the owner no longer issues but sites still hold.
 */
async function createMonitor(token: string = generatePingToken()): Promise<{ token: string; id: string }> {
  const id = randomUUID();
  const row = { id, name: `job ${id}`, periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null };
  await runInTransaction(h.db, (tx) => monitors.insertMany(tx, [{ ...row, tokenHash: hashPingToken(token) }]));
  return { token, id };
}

/** A token as issued before checksums: 32 random bytes, base64url. */
const legacyToken = () => randomBytes(32).toString('base64url');
const randomNewToken = () => `fwp_${randomBytes(32).toString('hex').slice(0, 46)}`;

describe('tokens', () => {
  it('new and pre-checksum tokens both work; random tokens of either shape cost no query', async () => {
    const repo = h.service.app.get(HeartbeatMonitorsRepository);
    const byHash = jest.spyOn(repo, 'findByTokenHash');
    const hashes = jest.spyOn(repo, 'listTokenHashes');
    const fresh = await createMonitor();
    const old = await createMonitor(legacyToken());
    expect((await ping(fresh.token, '127.0.1.1')).status).toBe(200);
    expect((await ping(old.token, '127.0.1.1')).status).toBe(200);
    expect(byHash).toHaveBeenCalledTimes(2);
    expect(hashes).toHaveBeenCalledTimes(1);

    expect((await h.drain()).length).toBe(2);

    byHash.mockClear();
    hashes.mockClear();
    // 200 random tokens from 20 addresses (each stays under its address limit).
    const tokens = [...Array.from({ length: 100 }, legacyToken), ...Array.from({ length: 100 }, randomNewToken)];
    const answers = await Promise.all(tokens.map((t, i) => ping(t, `127.0.2.${1 + (i % 20)}`)));
    expect(answers.map((a) => a.status)).toEqual(tokens.map(() => 404));
    expect(byHash).not.toHaveBeenCalled();
    expect(hashes.mock.calls.length).toBeLessThanOrEqual(1);
    expect(await h.count()).toBe(0);
  });
});

describe('methods', () => {
  it.each(['PUT', 'DELETE', 'PATCH'])(
    '%s on a ping URL is a 405 naming the methods, and is not counted',
    async (method) => {
      const m = await createMonitor();
      for (const path of ['', '/start', '/fail', '/0', '/3']) {
        const a = await ping(`${m.token}${path}`, '127.0.5.1', 'done', method);
        expect(a.status).toBe(405);
        expect(a.body.error).toEqual({ code: 'method_not_allowed', message: expect.stringContaining('not counted') });
      }
      expect(await h.count()).toBe(0);
      expect((await ping(m.token, '127.0.5.1')).status).toBe(200);
    },
  );
});

describe('exit-code pings (/ping/{token}/{code}, as `curl …/ping/$TOKEN/$?`)', () => {
  type Published = { envelope: { type: string; payload: PingReceivedPayload } };

  it('0 counts as a success, 1–255 as a fail carrying its exit code; rid, body and HEAD as on the other URLs', async () => {
    const m = await createMonitor();
    const from = '127.0.6.1';
    const ok = await ping(`${m.token}/0`, from);
    expect(ok).toMatchObject({ status: 200, body: { ok: true, signal: 'success' } });
    const failed = await ping(`${m.token}/7?rid=run-7`, from, 'pg_dump: disk full');
    expect(failed).toMatchObject({ status: 200, body: { ok: true, signal: 'fail' } });
    expect((await ping(`${m.token}/255`, from, undefined, 'HEAD')).status).toBe(200);
    expect((await ping(`${m.token}/007`, from)).body).toEqual({ ok: true, signal: 'fail' });
    const published = (await h.drain()) as Published[];
    expect(published.map((p) => [p.envelope.type, p.envelope.payload.signal, p.envelope.payload.exitCode])).toEqual([
      ['ping.received', 'success', 0],
      ['ping.received', 'fail', 7],
      ['ping.received', 'fail', 255],
      ['ping.received', 'fail', 7],
    ]);
    expect(published[1].envelope.payload).toMatchObject({
      monitorId: m.id,
      runId: 'run-7',
      body: 'pg_dump: disk full',
    });
    // The other ping URLs carry no exit code (another monitor: 5 pings/min each here).
    const other = await createMonitor();
    expect((await ping(other.token, from)).status).toBe(200);
    expect((await ping(`${other.token}/fail`, from)).status).toBe(200);
    const plain = (await h.drain()) as Published[];
    expect(plain.map((p) => [p.envelope.payload.signal, 'exitCode' in p.envelope.payload])).toEqual([
      ['success', false],
      ['fail', false],
    ]);
  });

  const notExitCodes = ['256', '-1', '01x', '1e2', '1000', '+1', '0x1', 'done'];
  it.each(notExitCodes)(
    '/ping/{token}/%s is a 404 saying the code must be 0–255, before the body is read; nothing is counted',
    async (code) => {
      const m = await createMonitor();
      const from = `127.0.6.${10 + notExitCodes.indexOf(code)}`;
      const before = await h.request('GET', '/metrics');
      const refusedBefore = Number(
        /fleetwatch_ingest_requests_refused_total\{route="ping",reason="not_found"\} (\d+)/.exec(before.text)?.[1] ?? 0,
      );
      for (const [body, method] of [
        [undefined, 'GET'],
        ['x'.repeat(200_000), 'POST'],
        [undefined, 'HEAD'],
        ['done', 'PUT'],
      ] as const) {
        const a = await ping(`${m.token}/${code}`, from, body, method);
        expect(a.status).toBe(404);
        if (method !== 'HEAD')
          expect(a.body.error).toEqual({
            code: 'not_found',
            message: expect.stringContaining(`no ping URL ends in "${code}"`),
          });
        if (method !== 'HEAD') expect(a.body.error?.message).toContain('exit code 0–255');
      }
      expect(await h.count()).toBe(0);
      const after = await h.request('GET', '/metrics');
      const refusedAfter = Number(
        /fleetwatch_ingest_requests_refused_total\{route="ping",reason="not_found"\} (\d+)/.exec(after.text)?.[1] ?? 0,
      );
      expect(refusedAfter - refusedBefore).toBe(4);
      // The monitor itself is fine: its own URL still counts.
      expect((await ping(`${m.token}/0`, from)).status).toBe(200);
    },
  );

  it('other shapes under /ping/ are a 404 saying what a ping URL is, never echoing the token; counted as refused', async () => {
    const m = await createMonitor();
    const metric = async () =>
      Number(
        /fleetwatch_ingest_requests_refused_total\{route="ping",reason="not_found"\} (\d+)/.exec(
          (await h.request('GET', '/metrics')).text,
        )?.[1] ?? 0,
      );
    const before = await metric();
    const shapes = [`${m.token}/`, `${m.token}/0/`, `${m.token}/3/extra`, `${m.token}/start/`, `/${m.token}/0`];
    for (const [i, path] of shapes.entries())
      for (const method of ['GET', 'POST'] as const) {
        const a = await ping(path, `127.0.6.${40 + i}`, method === 'POST' ? 'x' : undefined, method);
        expect({ path, method, status: a.status, code: a.body.error?.code }).toEqual({
          path,
          method,
          status: 404,
          code: 'not_found',
        });
        expect(a.body.error?.message).toMatch(/^no ping URL has this shape: ping \/ping\/\{token\}/);
        expect(JSON.stringify(a.body)).not.toContain(m.token);
      }
    expect(await h.count()).toBe(0);
    expect((await metric()) - before).toBe(shapes.length * 2);
    expect((await ping(`${m.token}/0`, '127.0.6.49')).status).toBe(200);
  });

  it('any other method on a ping URL (OPTIONS, TRACE, PROPFIND…: no route) is the same 404, never echoing the token; counted', async () => {
    const m = await createMonitor();
    const metric = async () =>
      Number(
        /fleetwatch_ingest_requests_refused_total\{route="ping",reason="not_found"\} (\d+)/.exec(
          (await h.request('GET', '/metrics')).text,
        )?.[1] ?? 0,
      );
    const before = await metric();
    const methods = ['OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH'];
    const paths = [m.token, `${m.token}/start`, `${m.token}/3`, `${m.token}/3/extra`];
    for (const method of methods)
      for (const path of paths) {
        const a = await ping(path, '127.0.6.60', undefined, method);
        expect({ method, path, status: a.status, code: a.body.error?.code }).toEqual({
          method,
          path,
          status: 404,
          code: 'not_found',
        });
        expect(a.body.error?.message).toMatch(/^no ping URL has this shape: ping \/ping\/\{token\}/);
        expect(JSON.stringify(a.body)).not.toContain(m.token);
      }
    expect(await h.count()).toBe(0);
    expect((await metric()) - before).toBe(methods.length * paths.length);
    expect((await ping(m.token, '127.0.6.61')).status).toBe(200);
  });

  it('an unknown token with a good exit code is the usual 404', async () => {
    const a = await ping(`${randomNewToken()}/0`, '127.0.6.3');
    expect(a.status).toBe(404);
    expect(a.body.error?.message).toBe('no heartbeat monitor has this ping URL');
    expect(await h.count()).toBe(0);
  });
});

describe('429', () => {
  it('per monitor: its sixth ping within a minute is refused, from any address; other monitors are not', async () => {
    const m = await createMonitor();
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await ping(m.token, `127.0.3.${i + 1}`));
    expect(answers.slice(0, 5).map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers[5].status).toBe(429);
    expect(answers[5].retryAfter).toBe('12');
    expect(answers[5].body.error).toEqual({
      code: 'rate_limited',
      message: expect.stringMatching(/5 pings\/min for this monitor/),
    });
    const other = await createMonitor();
    expect((await ping(other.token, '127.0.3.1')).status).toBe(200);
    expect((await h.drain()).length).toBe(6);
  });

  it('per address: rotating tokens (known or not) from one address is refused after the budget; other addresses are not', async () => {
    const known = await Promise.all(Array.from({ length: 4 }, () => createMonitor()));
    const from = '127.0.4.1';
    const answers = [];
    for (let i = 0; i < 16; i++) answers.push(await ping(randomNewToken(), from));
    for (const m of known) answers.push(await ping(m.token, from));
    expect(answers.map((a) => a.status)).toEqual([...Array(16).fill(404), 200, 200, 200, 200]);
    const refused = await ping(known[0].token, from);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(refused.body.error?.message).toMatch(/20 pings\/min from this address/);
    // Refused before its body is read: a POST with a large body gets the same answer.
    expect((await ping(known[1].token, from, 'x'.repeat(200_000))).status).toBe(429);
    expect((await ping(known[0].token, '127.0.4.2')).status).toBe(200);
    const metrics = await h.request('GET', '/metrics');
    expect(metrics.text).toMatch(
      /fleetwatch_ingest_requests_refused_total\{route="ping",reason="rate_limited"\} [1-9]/,
    );
  });
});

describe('what a ping carries is storable', () => {
  it('a body with NUL bytes and a split surrogate pair is kept as information, cleaned; the ping counts', async () => {
    const { token } = await createMonitor();
    const body = `line 1\u0000line 2 ${'x'.repeat(9_990)}😀 tail`;
    expect((await ping(token, '127.0.0.41', body)).status).toBe(200);
    const [{ envelope: published }] = (await h.drain()) as Array<{ envelope: { payload: { body?: string } } }>;
    expect(published.payload.body?.startsWith('line 1line 2 ')).toBe(true);
    expect(published.payload.body?.includes('\u0000')).toBe(false);
    expect(published.payload.body?.isWellFormed()).toBe(true);
  });

  it('a run id a store cannot hold is refused with 400 naming rid', async () => {
    const { token } = await createMonitor();
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: h.config.port,
          path: `/ping/${token}/start?rid=run%00one`,
          method: 'GET',
          localAddress: '127.0.0.42',
        },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({
      error: { issues: [{ path: 'rid', message: expect.stringMatching(/NUL/) }] },
    });
  });
});

describe('a ping body with a Content-Type no parser takes', () => {
  // A job's HTTP client may send a Content-Type that is no media type (`curl -H 'Content-Type: text'`, an empty
  // header): the ping must still count, its body kept as any other (Fastify refused it with 415, the ping lost).

  /** `method` `path` with the header `Content-Type: type` and the body `body`, from the loopback address `from`. */
  function sendTyped(
    method: string,
    path: string,
    type: string,
    body: string,
    from: string,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: h.config.port,
          path,
          method,
          headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) },
          localAddress: from,
        },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  type Published = { envelope: { payload: PingReceivedPayload } };

  it.each(['text', '', 'a/b/c', ';;;', 'text/plain; charset'])(
    '%j: 200, the ping counts, its body kept',
    async (type) => {
      const { token } = await createMonitor();
      const res = await sendTyped('POST', `/ping/${token}/fail`, type, 'disk full', '127.0.0.44');
      expect(res).toEqual({ status: 200, text: JSON.stringify({ ok: true, signal: 'fail' }) });
      const [{ envelope }] = (await h.drain()) as Published[];
      expect(envelope.payload).toMatchObject({ signal: 'fail', body: 'disk full' });
    },
  );

  it('on every ping URL (success, start, an exit code, with a run id): each ping counts, its body kept', async () => {
    const { token } = await createMonitor();
    for (const [suffix, signal] of [
      ['', 'success'],
      ['/start?rid=r1', 'start'],
      ['/3?rid=r1', 'fail'],
    ] as const) {
      const res = await sendTyped('POST', `/ping/${token}${suffix}`, 'text', 'log', '127.0.0.50');
      expect({ suffix, status: res.status }).toEqual({ suffix, status: 200 });
      const [{ envelope }] = (await h.drain()) as Published[];
      expect(envelope.payload).toMatchObject({ signal, body: 'log' });
    }
  });

  it('a wrong method or URL shape is still told so (405, 404), not refused for its Content-Type; not counted', async () => {
    const { token } = await createMonitor();
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const res = await sendTyped(method, `/ping/${token}`, 'text', 'log', '127.0.0.51');
      expect({ method, status: res.status }).toEqual({ method, status: 405 });
    }
    for (const path of [`/ping/${token}/`, `/ping/${token}/3/extra`]) {
      const res = await sendTyped('POST', path, 'text', 'log', '127.0.0.51');
      expect({ status: res.status, body: JSON.parse(res.text) }).toEqual({
        status: 404,
        body: { error: { code: 'not_found', message: expect.stringMatching(/^no ping URL has this shape/) } },
      });
    }
    expect(await h.count()).toBe(0);
  });
});

describe('a large ping body', () => {
  it('still counts the ping (2 MB of log, over the body limit); only the head of the body travels on', async () => {
    const { token } = await createMonitor();
    const log = `start of log\n${'x'.repeat(2 * 1024 * 1024)}`;
    expect((await ping(token, '127.0.0.43', log)).status).toBe(200);
    const [{ envelope }] = (await h.drain()) as Array<{ envelope: { payload: { body?: string } } }>;
    expect(envelope.payload.body?.startsWith('start of log\nxxx')).toBe(true);
    expect(envelope.payload.body?.length).toBe(10_000);
  });
});

describe('a ping body with a Content-Encoding', () => {
  /** POST /ping/{token} with raw bytes and a Content-Encoding (several parts: written 50 ms apart). */
  function postEncoded(
    token: string,
    from: string,
    body: Buffer | Buffer[],
    encoding: string,
    type = 'text/plain',
  ): Promise<number> {
    const parts = Array.isArray(body) ? body : [body];
    const bytes = Buffer.concat(parts);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: h.config.port,
          path: `/ping/${token}`,
          method: 'POST',
          headers: { 'content-type': type, 'content-encoding': encoding, 'content-length': bytes.length },
          localAddress: from,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      const write = (i: number): void => {
        if (i === parts.length - 1) req.end(parts[i]);
        else {
          req.write(parts[i]);
          setTimeout(() => write(i + 1), 50);
        }
      };
      write(0);
    });
  }
  const bodyOf = async () =>
    ((await h.drain()) as Array<{ envelope: { payload: { body?: string } } }>)[0]?.envelope.payload.body;

  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
  ] as const)('%s: inflated, the output kept as text', async (encoding, compress) => {
    const { token } = await createMonitor();
    expect(await postEncoded(token, '127.0.0.45', compress(Buffer.from('backup done: 42 files ✓\n')), encoding)).toBe(
      200,
    );
    expect(await bodyOf()).toBe('backup done: 42 files ✓\n');
  });

  it.each(['gzip', 'deflate', 'br'])('an empty body sent as %s: the ping counts, no body', async (encoding) => {
    const { token } = await createMonitor();
    expect(await postEncoded(token, '127.0.0.48', Buffer.alloc(0), encoding)).toBe(200);
    expect(await bodyOf()).toBeUndefined();
  });

  it('bytes after the deflate data, the last of them arriving later: the ping counts, the text kept', async () => {
    const { token } = await createMonitor();
    const parts = [Buffer.concat([deflateSync(Buffer.from('hello world')), Buffer.from('junk')]), Buffer.from('more')];
    expect(await postEncoded(token, '127.0.0.49', parts, 'deflate')).toBe(200);
    expect(await bodyOf()).toBe('hello world');
  });

  /**
   * gzip of `head` then `chunk` × `times`, compressed a chunk at a time with the event loop free between: the service
   * runs in this process, and one gzipSync of 100 MiB held its loop (and AMQP heartbeats) ~5 s on a loaded 2-core box.
   */
  async function gzipStreamed(head: string, chunk: Buffer, times: number): Promise<Buffer> {
    const gz = createGzip();
    const out: Buffer[] = [];
    gz.on('data', (c: Buffer) => out.push(c));
    gz.write(head);
    for (let i = 0; i < times; i++) if (!gz.write(chunk)) await once(gz, 'drain');
    gz.end();
    await once(gz, 'end');
    return Buffer.concat(out);
  }

  it('a large compressed log (100 MB inflated): the ping counts, the head of the text is kept', async () => {
    const { token } = await createMonitor();
    const bomb = await gzipStreamed('start of log\n', Buffer.alloc(1024 * 1024, 'x'), 100);
    expect(await postEncoded(token, '127.0.0.46', bomb, 'gzip')).toBe(200);
    const body = await bodyOf();
    expect(body?.startsWith('start of log\nxxx')).toBe(true);
    expect(body?.length).toBe(10_000);
  });

  it.each([
    ['br', brotliCompressSync(Buffer.from('hello')), /content encoding "br" is not decoded here/],
    ['gzip', Buffer.from('not gzip at all'), /not valid gzip data/],
  ])('%s it cannot read: the ping counts, a note in place of the body', async (encoding, bytes, note) => {
    const { token } = await createMonitor();
    expect(await postEncoded(token, '127.0.0.47', bytes, encoding)).toBe(200);
    expect(await bodyOf()).toMatch(note);
  });

  // A job's log in another charset was kept as UTF-8 read from its bytes: every accented or CJK character a U+FFFD.
  it.each([
    ['text/plain; charset=iso-8859-1', 'identity', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80]), 'café €'],
    ['text/plain; charset="UTF-16LE"', 'identity', Buffer.from('disk full ✓', 'utf16le'), 'disk full ✓'],
    ['text/plain; charset=shift_jis', 'gzip', gzipSync(Buffer.from([0x82, 0xa0, 0x82, 0xa2])), 'あい'],
    ['text/plain; charset=utf-8', 'identity', Buffer.from('backup ✓'), 'backup ✓'],
    ['text/plain; charset=klingon', 'identity', Buffer.from('backup ✓'), 'backup ✓'],
  ])(
    '%s (%s): the text is read in that charset (UTF-8 when none a decoder knows)',
    async (type, coding, bytes, text) => {
      const { token } = await createMonitor();
      expect(await postEncoded(token, '127.0.0.60', bytes, coding, type)).toBe(200);
      expect(await bodyOf()).toBe(text);
    },
  );

  it("a note in place of a body it cannot read is the edge's own text, not read in the charset the client named", async () => {
    const { token } = await createMonitor();
    expect(
      await postEncoded(token, '127.0.0.61', Buffer.from('not gzip'), 'gzip', 'text/plain; charset=utf-16le'),
    ).toBe(200);
    expect(await bodyOf()).toMatch(/not valid gzip data/);
    expect(await postEncoded(token, '127.0.0.61', Buffer.from('x'), 'br', 'text/plain; charset=utf-16le')).toBe(200);
    expect(await bodyOf()).toMatch(/content encoding "br" is not decoded here/);
  });
});

describe('a GET ping that carries a body', () => {
  it('is answered at once, not after the unread body times out', async () => {
    const { token } = await createMonitor();
    const started = Date.now();
    const status = await new Promise<number>((resolve, reject) => {
      const body = 'x'.repeat(100_000);
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: h.config.port,
          path: `/ping/${token}`,
          method: 'GET',
          headers: { 'content-type': 'text/plain', 'content-length': body.length },
          localAddress: '127.0.0.44',
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('a monitor changed or deleted (config.changed)', () => {
  let bus: Bus;
  beforeAll(() => {
    bus = createBus({
      url: h.servers.vhost.amqpUrl,
      source: { site: 'test', service: 'sync-orchestrator', location: 'test' },
      name: 'test-pings-config',
    });
  });
  afterAll(() => bus?.close());

  const configChanged = (version: number) =>
    bus.publisher.publish(
      Messages.ConfigChanged,
      { version, hash: 'a'.repeat(64), areas: ['checks'], actor: 'test', origin: 'local' },
      { mandatory: false },
    );
  const periods = async () =>
    (await h.drain())
      .filter((m) => m.envelope.type === Messages.PingReceived.type)
      .map((m) => (m.envelope.payload as PingReceivedPayload).periodSeconds);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("the next ping carries the new period at once, and a deleted monitor's URL is a 404 at once", async () => {
    const m = await createMonitor();
    expect((await ping(m.token, '127.0.0.31')).status).toBe(200);
    // The owner raises the period (a monitor row as it writes it): cached, the edge still has the old one...
    const row = { id: m.id, name: `job ${m.id}`, periodSeconds: 300, graceSeconds: 60, maxRuntimeSeconds: null };
    await runInTransaction(h.db, (tx) => monitors.updateMany(tx, [row]));
    expect((await ping(m.token, '127.0.0.31')).status).toBe(200);
    expect(await periods()).toEqual([3600, 3600]);
    // ...until config.changed says checks changed (well within the cache's 5 s).
    await configChanged(1);
    await sleep(500);
    expect((await ping(m.token, '127.0.0.31')).status).toBe(200);
    expect(await periods()).toEqual([300]);

    await runInTransaction(h.db, (tx) => monitors.deleteMany(tx, [m.id]));
    await configChanged(2);
    await sleep(500);
    expect((await ping(m.token, '127.0.0.31')).status).toBe(404);
    expect(await periods()).toEqual([]);
  });

  it('each ping carries the config version of the check its schedule was read at: the new one with the new schedule', async () => {
    const m = await createMonitor();
    const sql = (tx: unknown, text: string, ...params: unknown[]) =>
      (tx as { $executeRawUnsafe(t: string, ...p: unknown[]): Promise<number> }).$executeRawUnsafe(text, ...params);
    const sent = async () =>
      (await h.drain())
        .filter((x) => x.envelope.type === Messages.PingReceived.type)
        .map((x) => x.envelope.payload as PingReceivedPayload)
        .map((p) => [p.periodSeconds, p.configVersion]);
    // A monitor with no check row (made before monitors were checks): no version.
    expect((await ping(m.token, '127.0.0.32')).status).toBe(200);
    expect(await sent()).toEqual([[3600, undefined]]);
    // Its push check, as the owner writes it (version 5), then a write of version 6 making it daily, in one transaction.
    await runInTransaction(h.db, (tx) =>
      sql(
        tx,
        `INSERT INTO checks (id, name, type, spec, version) VALUES ($1::uuid, $2, 'push', '{}'::jsonb, 5)`,
        m.id,
        `job ${m.id}`,
      ),
    );
    await configChanged(3);
    await sleep(500);
    expect((await ping(m.token, '127.0.0.32')).status).toBe(200);
    expect(await sent()).toEqual([[3600, 5]]);
    const daily = { id: m.id, name: `job ${m.id}`, periodSeconds: 86_340, graceSeconds: 60, maxRuntimeSeconds: null };
    await runInTransaction(h.db, async (tx) => {
      await sql(tx, 'UPDATE checks SET version = 6 WHERE id = $1::uuid', m.id);
      await monitors.updateMany(tx, [daily]);
    });
    // Cached: the old schedule with its own version (the aggregator counts it with the window it holds)...
    expect((await ping(m.token, '127.0.0.32')).status).toBe(200);
    expect(await sent()).toEqual([[3600, 5]]);
    // ...the new one with the new version once read again.
    await configChanged(4);
    await sleep(500);
    expect((await ping(m.token, '127.0.0.32')).status).toBe(200);
    expect(await sent()).toEqual([[86_340, 6]]);
    await runInTransaction(h.db, async (tx) => {
      await monitors.deleteMany(tx, [m.id]);
      await sql(tx, 'DELETE FROM checks WHERE id = $1::uuid', m.id);
    });
  });
});
