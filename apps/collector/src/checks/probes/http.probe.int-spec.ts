import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { httpProbe } from './http.probe';
import { checkOf, probeContext } from './testing/probe-context';
import { startHttpsTarget, startHttpTarget, type TestTarget } from './testing/targets';
import { certificateForDays } from './testing/tls-certs';

// Real local HTTP and HTTPS servers; every behaviour is observed on the wire.

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

function routes(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const url = new URL(req.url ?? '/', 'http://x');
      const hop = Number(url.searchParams.get('n') ?? 0);
      switch (url.pathname) {
        case '/ok':
          res.writeHead(200, { 'content-type': 'text/plain', 'x-Mixed-Case': 'yes' }).end('all good here');
          return;
        case '/status':
          res.writeHead(Number(url.searchParams.get('code'))).end();
          return;
        case '/json':
          res
            .writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
            .end(JSON.stringify({ status: 'UP', items: [{ ok: true, n: 3 }], 'a b': null }));
          return;
        case '/echo':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen.at(-1)));
          return;
        case '/chain':
          // /chain?n=3 → /chain?n=2 → … → /ok
          res.writeHead(302, { location: hop > 0 ? `/chain?n=${hop - 1}` : '/ok' }).end('moved');
          return;
        case '/goto':
          res.writeHead(302, { location: url.searchParams.get('to') ?? '/ok' }).end();
          return;
        case '/see-other':
          res.writeHead(303, { location: '/echo' }).end();
          return;
        case '/to-file':
          res.writeHead(302, { location: 'file:///etc/passwd' }).end();
          return;
        case '/big':
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('x'.repeat(2 * 1024 * 1024));
          res.end('needle');
          return;
        case '/json-as-text':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('{"status":"UP"}');
          return;
        case '/latin1':
          res
            .writeHead(200, { 'content-type': 'text/html; charset=ISO-8859-1' })
            .end(Buffer.from('<p>Größe: café</p>', 'latin1'));
          return;
        case '/latin1-euro':
          // The Latin-1 label means windows-1252 (WHATWG): 0x80 is €, 0x93/0x94 curly quotes.
          res
            .writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' })
            .end(Buffer.from([0x80, 0x20, 0x35, 0x20, 0x93, 0x6f, 0x6b, 0x94]));
          return;
        case '/json-mislabelled':
          // UTF-8, as JSON is, under a Latin-1 label some servers send (RFC 8259: the parameter has no effect).
          res
            .writeHead(200, { 'content-type': 'application/json; charset=ISO-8859-1' })
            .end(Buffer.from('{"unit":"Größe"}', 'utf8'));
          return;
        case '/bom':
          res.writeHead(200, { 'content-type': 'application/json' }).end('\uFEFF{"status":"UP"}');
          return;
        case '/split':
          // A two-byte character across bodyText's 64 KiB cut.
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`${'a'.repeat(64 * 1024 - 1)}é and more`);
          return;
        case '/slow':
          setTimeout(() => res.writeHead(200).end('late'), 2_000).unref();
          return;
        default:
          res.writeHead(404).end('not found');
      }
    });
  };
}

describe('http probe (real local servers)', () => {
  let http: TestTarget;
  let https: TestTarget;
  let soon: TestTarget;
  const seen: Seen[] = [];

  beforeAll(async () => {
    http = await startHttpTarget(routes(seen));
    https = await startHttpsTarget(certificateForDays(365), routes(seen));
    soon = await startHttpsTarget(certificateForDays(10), routes(seen));
  });
  afterAll(async () => {
    await Promise.all([http, https, soon].map((t) => t?.close()));
  });

  const get = (url: string, extra: Record<string, unknown> = {}, timeoutMs = 5_000) =>
    httpProbe(checkOf({ name: 'h', type: 'http', url, ...extra }), probeContext({ timeoutMs }));

  it('a 200 is UP: status, lower-case headers, bodyText; latency measured', async () => {
    const out = await get(`${http.origin}/ok`);
    expect(out).toMatchObject({
      ok: true,
      facts: {
        status: 200,
        bodyText: 'all good here',
        headers: { 'content-type': 'text/plain', 'x-mixed-case': 'yes' },
      },
    });
    expect(out.facts.body).toBeUndefined();
    expect(out.latencyMs).toBeGreaterThan(0);
  });

  it('default expected status is 2xx/3xx; expectedStatus overrides it', async () => {
    expect((await get(`${http.origin}/status?code=503`)).failureReason).toBe('status 503 not in 2xx/3xx');
    expect((await get(`${http.origin}/status?code=204`)).ok).toBe(true);
    const listed = await get(`${http.origin}/status?code=503`, { expectedStatus: [503] });
    expect(listed.ok).toBe(true);
    expect((await get(`${http.origin}/ok`, { expectedStatus: [201, 202] })).failureReason).toBe(
      'status 200 not in [201, 202]',
    );
  });

  it('bodyContains', async () => {
    expect((await get(`${http.origin}/ok`, { bodyContains: 'good' })).ok).toBe(true);
    expect((await get(`${http.origin}/ok`, { bodyContains: 'bad' })).failureReason).toBe('body does not contain "bad"');
  });

  it('JSON bodies are parsed; JSON-path assertions pass and fail with reasons', async () => {
    const ok = await get(`${http.origin}/json`, {
      jsonPath: [{ path: '$.status', equals: 'UP' }, { path: '$.items[0].ok' }, { path: '$["a b"]', equals: null }],
    });
    expect(ok).toMatchObject({ ok: true, facts: { body: { status: 'UP', items: [{ ok: true, n: 3 }] } } });
    const bad = await get(`${http.origin}/json`, {
      jsonPath: [{ path: '$.status', equals: 'DOWN' }, { path: '$.items[1]' }],
    });
    expect(bad.ok).toBe(false);
    expect(bad.failureReason).toBe('$.status is "UP", expected "DOWN"; $.items[1] not found in the body');
    const notJson = await get(`${http.origin}/ok`, { jsonPath: [{ path: '$.status' }] });
    expect(notJson.failureReason).toBe('$.status: the body is not JSON');
  });

  it('JSON-path assertions read the body as JSON whatever its Content-Type (JSON served as text/plain)', async () => {
    const out = await get(`${http.origin}/json-as-text`, { jsonPath: [{ path: '$.status', equals: 'UP' }] });
    expect(out).toMatchObject({ ok: true, facts: { body: { status: 'UP' } } });
    // Without assertions, a text/plain body is text (`body` stays for JSON responses).
    expect((await get(`${http.origin}/json-as-text`)).facts.body).toBeUndefined();
  });

  it('method, headers and body are sent as given', async () => {
    const out = await get(`${http.origin}/echo`, {
      method: 'POST',
      headers: { 'X-Token': 'abc', 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(out.facts.body).toMatchObject({
      method: 'POST',
      url: '/echo',
      body: 'hello',
      headers: { 'x-token': 'abc', 'user-agent': 'fleetwatch-collector' },
    });
  });

  it('redirects are followed up to maxRedirects, and one more is DOWN', async () => {
    const three = await get(`${http.origin}/chain?n=2`, { maxRedirects: 3 });
    expect(three).toMatchObject({ ok: true, facts: { status: 200, bodyText: 'all good here' } });
    const tooMany = await get(`${http.origin}/chain?n=3`, { maxRedirects: 3 });
    expect(tooMany.ok).toBe(false);
    expect(tooMany.failureReason).toBe(`more than 3 redirects (last to ${http.origin}/ok)`);
    const unfollowed = await get(`${http.origin}/chain?n=0`, { followRedirects: false });
    expect(unfollowed).toMatchObject({ ok: true, facts: { status: 302, headers: { location: '/ok' } } });
  });

  it('a 303 after POST continues as GET without the body; a redirect to file: is refused', async () => {
    const out = await get(`${http.origin}/see-other`, {
      method: 'POST',
      body: 'secret',
      headers: { 'content-type': 'text/plain' },
    });
    expect(out.facts.body).toMatchObject({ method: 'GET', url: '/echo', body: '' });
    const file = await get(`${http.origin}/to-file`);
    expect(file.failureReason).toBe('redirect to scheme "file:" refused (http, https only)');
  });

  it('credentials headers do not follow a redirect to another origin', async () => {
    // The hopper and the echo server listen on different ports: different origins.
    const hopper = await startHttpTarget((_req, res) => res.writeHead(307, { location: `${http.origin}/echo` }).end());
    try {
      // Every credential header (contracts' isSecretHeader), not only Authorization and Cookie (SPEC §10: never
      // forwarded to another host): X-Api-Key and X-Auth-Token went to the redirect's target before.
      const credentials = {
        Authorization: 'Bearer s3cret',
        'Proxy-Authorization': 'Basic s3cret',
        Cookie: 'sid=s3cret',
        'X-Api-Key': 's3cret-key',
        'X-Auth-Token': 's3cret-token',
      };
      const out = await get(`${hopper.origin}/cross`, { headers: { ...credentials, 'X-Keep': '1' } });
      expect(out.facts.body).toMatchObject({ url: '/echo', headers: { 'x-keep': '1' } });
      const seen = (out.facts.body as Seen).headers;
      expect(Object.keys(credentials).filter((h) => seen[h.toLowerCase()] !== undefined)).toEqual([]);
      expect(JSON.stringify(seen)).not.toContain('s3cret');
      // The same origin gets them all.
      const same = await get(`${http.origin}/see-other`, { headers: credentials });
      expect((same.facts.body as Seen).headers).toMatchObject({ 'x-api-key': 's3cret-key', cookie: 'sid=s3cret' });
    } finally {
      await hopper.close();
    }
  });

  it('a check stored before the write rules still runs: expectedStatus [] is the default, framing headers left out', async () => {
    expect((await get(`${http.origin}/ok`, { expectedStatus: [] })).ok).toBe(true);
    // A Content-Length with no body made the server wait for bytes that never came: every run timed out.
    const framed = await get(
      `${http.origin}/echo`,
      { headers: { 'Content-Length': '5', Expect: '100-continue' } },
      2_000,
    );
    expect(framed.ok).toBe(true);
    const seenHeaders = (framed.facts.body as Seen).headers;
    expect(seenHeaders['content-length']).toBeUndefined();
    expect(seenHeaders['expect']).toBeUndefined();
  });

  it("a Host header set on the check is the first host's: a redirect to another host gets its own", async () => {
    const hopper = await startHttpTarget((_req, res) =>
      res.writeHead(302, { location: `${http.origin.replace('127.0.0.1', 'localhost')}/echo` }).end(),
    );
    try {
      const out = await get(`${hopper.origin}/`, { headers: { Host: 'app.example.com' } });
      expect((out.facts.body as Seen).headers.host).toBe(new URL(http.origin).host.replace('127.0.0.1', 'localhost'));
      // The same host on another port (or scheme: http → https) keeps it.
      const samehost = await startHttpTarget((_req, res) =>
        res.writeHead(302, { location: `${http.origin}/echo` }).end(),
      );
      try {
        const kept = await get(`${samehost.origin}/`, { headers: { Host: 'app.example.com' } });
        expect((kept.facts.body as Seen).headers.host).toBe(`app.example.com:${http.port}`);
        // Its name kept, its port the new URL's.
        const ported = await get(`${samehost.origin}/`, { headers: { Host: 'app.example.com:8080' } });
        expect((ported.facts.body as Seen).headers.host).toBe(`app.example.com:${http.port}`);
      } finally {
        await samehost.close();
      }
      // Within one origin the check's Host stays.
      const same = await get(`${http.origin}/see-other`, { headers: { Host: 'app.example.com' } });
      expect((same.facts.body as Seen).headers.host).toBe('app.example.com');
    } finally {
      await hopper.close();
    }
  });

  it('the body read is capped: bodyText is 64 KiB, bodyContains looks at the first 1 MiB only', async () => {
    const out = await get(`${http.origin}/big`, { bodyContains: 'needle' });
    expect(out.facts.bodyText).toHaveLength(64 * 1024);
    expect(out.failureReason).toBe('body does not contain "needle" (in its first 1 MiB)');
  });

  it('the body is read in the charset its Content-Type names: a Latin-1 page contains "Größe"', async () => {
    const latin1 = await get(`${http.origin}/latin1`, { bodyContains: 'Größe' });
    expect(latin1).toMatchObject({ ok: true, facts: { bodyText: '<p>Größe: café</p>' } });
  });

  it('a page labelled Latin-1 is read as windows-1252, as browsers read it: 0x80 is "€" (Node 20 read a C1 control)', async () => {
    const euro = await get(`${http.origin}/latin1-euro`, { bodyContains: '€ 5' });
    expect(euro).toMatchObject({ ok: true, facts: { bodyText: '€ 5 “ok”' } });
  });

  it('a JSON body is read as UTF-8 whatever charset its Content-Type names (RFC 8259: the parameter has no effect)', async () => {
    const out = await get(`${http.origin}/json-mislabelled`, { jsonPath: [{ path: '$.unit', equals: 'Größe' }] });
    expect(out).toMatchObject({ ok: true, facts: { body: { unit: 'Größe' } } });
  });

  it('a JSON body that starts with a byte-order mark is JSON', async () => {
    const bom = await get(`${http.origin}/bom`, { jsonPath: [{ path: '$.status', equals: 'UP' }] });
    expect(bom).toMatchObject({ ok: true, facts: { body: { status: 'UP' } } });
  });

  it('a character split by the 64 KiB cut of bodyText is left out, not shown as U+FFFD', async () => {
    const split = await get(`${http.origin}/split`);
    expect(split.facts.bodyText).toBe('a'.repeat(64 * 1024 - 1));
  });

  it('a slow server times out at the check timeout', async () => {
    const started = Date.now();
    const out = await get(`${http.origin}/slow`, {}, 300);
    expect(out).toEqual({ ok: false, latencyMs: null, failureReason: 'timed out after 300 ms', facts: {} });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('https with a self-signed certificate: DOWN verified (the request never sent), UP unverified with cert facts', async () => {
    const before = seen.length;
    const verified = await get(`${https.origin}/ok`);
    expect(verified).toMatchObject({
      ok: false,
      failureReason: 'certificate of 127.0.0.1 not trusted: DEPTH_ZERO_SELF_SIGNED_CERT',
      // The certificate refused still shows in the result (certDaysLeft), as the tls check shows it.
      facts: { cert: { daysLeft: 365, authorized: false } },
    });
    expect(seen.length).toBe(before);
    const unverified = await get(`${https.origin}/ok`, { tlsVerify: false });
    expect(unverified).toMatchObject({
      ok: true,
      facts: { status: 200, cert: { daysLeft: 365, subject: 'CN=localhost, O=Fleetwatch Test', authorized: false } },
    });
  });

  it("https by address with a Host header: the Host's name is the SNI (and the name verified); by name, the URL's", async () => {
    const sni: string[] = [];
    const cert = certificateForDays(30, { cn: 'app.example.com', altNames: 'DNS:app.example.com' });
    const server = createHttpsServer(
      {
        key: cert.key,
        cert: cert.cert,
        SNICallback: (name, cb) => {
          sni.push(name);
          cb(null, createSecureContext({ key: cert.key, cert: cert.cert }));
        },
      },
      (_req, res) => res.writeHead(200).end('vhost'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const vhost = await get(url, { tlsVerify: false, headers: { Host: 'app.example.com:8443' } });
      expect(vhost).toMatchObject({
        ok: true,
        facts: { cert: { subject: expect.stringContaining('app.example.com') } },
      });
      await get(url, { tlsVerify: false, headers: { Host: '[::1]:8443' } });
      await get(url, { tlsVerify: false });
      // By name, the URL's name is the SNI and the name verified whatever the Host header says (curl -H Host).
      await get(url.replace('127.0.0.1', 'localhost'), { tlsVerify: false, headers: { Host: 'app.example.com' } });
      expect(sni).toEqual(['app.example.com', 'localhost']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('certMinDaysLeft against a certificate with 10 days left', async () => {
    const url = `${soon.origin}/ok`;
    expect((await get(url, { tlsVerify: false, certMinDaysLeft: 10 })).ok).toBe(true);
    const short = await get(url, { tlsVerify: false, certMinDaysLeft: 14 });
    expect(short).toMatchObject({
      ok: false,
      failureReason: 'certificate expires in 10 days (minimum 14)',
      facts: { status: 200, cert: { daysLeft: 10 } },
    });
  });

  it('the certificate reported is the answering origin’s, after a redirect from http', async () => {
    // http → https on another port: the cert facts are the https server's.
    const hopper = await startHttpTarget((_req, res) => res.writeHead(301, { location: `${soon.origin}/ok` }).end());
    try {
      const out = await get(hopper.origin, { tlsVerify: false });
      expect(out).toMatchObject({ ok: true, facts: { status: 200, cert: { daysLeft: 10 } } });
    } finally {
      await hopper.close();
    }
  });

  it('an https URL redirected to plain http has its certificate checked, named by its host (certMinDaysLeft)', async () => {
    const url = `${https.origin}/goto?to=${encodeURIComponent(`${http.origin}/ok`)}`;
    const short = await get(url, { tlsVerify: false, certMinDaysLeft: 400 });
    expect(short).toMatchObject({ ok: false, facts: { status: 200 } });
    expect(short.facts.cert).toBeUndefined();
    const host = new URL(https.origin).host;
    expect([364, 365].map((d) => `${host}: certificate expires in ${d} days (minimum 400)`)).toContain(
      short.failureReason,
    );
    expect(await get(url, { tlsVerify: false, certMinDaysLeft: 30 })).toMatchObject({
      ok: true,
      facts: { status: 200 },
    });
  });

  it('an earlier https hop expiring soon is DOWN naming its host; facts.cert stays the answering origin', async () => {
    const url = `${soon.origin}/goto?to=${encodeURIComponent(`${https.origin}/ok`)}`;
    const short = await get(url, { tlsVerify: false, certMinDaysLeft: 14 });
    expect(short).toMatchObject({
      ok: false,
      failureReason: `${new URL(soon.origin).host}: certificate expires in 10 days (minimum 14)`,
      facts: { status: 200 },
    });
    expect([364, 365]).toContain((short.facts.cert as { daysLeft: number }).daysLeft);
    expect((await get(url, { tlsVerify: false, certMinDaysLeft: 10 })).ok).toBe(true);
  });
});
