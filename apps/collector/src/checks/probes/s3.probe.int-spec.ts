import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { s3CheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { TcpProxy } from '@fleetwatch/testing';
import S3rver from 's3rver';
import { closedPort, probeContext } from './probes.int-helpers';
import { s3Probe } from './s3.probe';

jest.setTimeout(60_000);

// Against a real S3-compatible server: s3rver 3.7.1 (a dev dependency) on 127.0.0.1, a
// filesystem store in a temporary directory, one bucket. It speaks the S3 REST API the
// probe uses (HeadBucket, PutObject, GetObject, DeleteObject, path style, XML errors) and
// refuses an access key it does not know (InvalidAccessKeyId) — but it does NOT verify
// SigV4 signatures (its source: "Signature version 4 calculation is unimplemented"), so a
// wrong secret for the right key is accepted by it; only a real S3 or MinIO shows that.

const BUCKET = 'fleet-bucket';
const KEY_ID = 'S3RVER';
const SECRET = 'S3RVER';
let server: S3rver;
let dir: string;
let endpoint: string;
let admin: S3Client;
const seen: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-s3rver-'));
  server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: BUCKET }],
  });
  const { port } = await server.run();
  server.httpServer?.on('request', (req: { method?: string; url?: string }) =>
    seen.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`),
  );
  endpoint = `http://127.0.0.1:${port}`;
  admin = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
  });
});
afterAll(async () => {
  admin?.destroy();
  await server?.close().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function keysInBucket(): Promise<string[]> {
  const out = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (out.Contents ?? []).map((o) => o.Key ?? '');
}

type Input = Partial<Extract<CheckInput, { type: 's3' }>>;
const check = (fields: Input = {}) =>
  s3CheckFields.parse({
    name: 's3',
    type: 's3',
    endpoint,
    bucket: BUCKET,
    accessKeyIdEnv: 'FLEETWATCH_SECRET_S3_KEY',
    secretAccessKeyEnv: 'FLEETWATCH_SECRET_S3_SECRET',
    ...fields,
  });
// The collector's real default policy: loopback is allowed (monitoring internal services is the point).
const ctx = (
  env: Record<string, string> = { FLEETWATCH_SECRET_S3_KEY: KEY_ID, FLEETWATCH_SECRET_S3_SECRET: SECRET },
) => ({
  ...probeContext({ timeoutMs: 10_000, policy: createTargetPolicy(DEFAULT_DENY_NETWORKS) }),
  env,
});
type Out = Awaited<ReturnType<typeof s3Probe>>;
const value = (out: Out, name: string) => out.metrics?.find((m) => m.name === name)?.value;

describe('s3 probe against a real S3-compatible server (s3rver)', () => {
  it('HeadBucket, then put, get (compared) and delete under the prefix: nothing left behind', async () => {
    seen.length = 0;
    const out = await s3Probe(check(), ctx());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.facts.result).toEqual({ bucket: BUCKET, roundTrip: true });
    expect(value(out, 's3_up')).toBe(1);
    expect(value(out, 's3_round_trip_ok')).toBe(1);
    for (const m of ['s3_head_bucket_ms', 's3_put_ms', 's3_get_ms', 's3_delete_ms'])
      expect(value(out, m)).toBeGreaterThanOrEqual(0);
    expect(seen.map((s) => s.split(' ')[0])).toEqual(['HEAD', 'PUT', 'GET', 'DELETE']);
    expect(seen[1]).toMatch(new RegExp(`^PUT /${BUCKET}/fleetwatch-probe/[0-9a-f-]{36}$`));
    expect(await keysInBucket()).toEqual([]);
  });

  it('roundTrip false: HeadBucket only', async () => {
    seen.length = 0;
    const out = await s3Probe(check({ roundTrip: false }), ctx());
    expect(out.ok).toBe(true);
    expect(seen).toEqual([`HEAD /${BUCKET}/`]);
    expect(value(out, 's3_round_trip_ok')).toBeUndefined();
  });

  it('a missing bucket fails at HeadBucket with a clear reason; nothing is put', async () => {
    seen.length = 0;
    const out = await s3Probe(check({ bucket: 'no-such-bucket' }), ctx());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toBe('HeadBucket: 404 NotFound (no such bucket or key)');
    expect(out.latencyMs).toBeNull();
    expect(value(out, 's3_up')).toBeUndefined();
    expect(seen).toEqual(['HEAD /no-such-bucket/']);
  });

  it('an access key the server does not know is refused (403), and the secret is not in the reason', async () => {
    const out = await s3Probe(
      check(),
      ctx({ FLEETWATCH_SECRET_S3_KEY: 'AKIAUNKNOWNKEY', FLEETWATCH_SECRET_S3_SECRET: 'fw-secret-never-shown' }),
    );
    expect(out.ok).toBe(false);
    expect(out.failureReason).toBe('HeadBucket: 403 Forbidden (access denied)');
    expect(out.failureReason).not.toContain('fw-secret-never-shown');
    const noEnv = await s3Probe(check(), ctx({}));
    expect(noEnv.failureReason).toBe('environment variable FLEETWATCH_SECRET_S3_KEY is not set on this collector');
  });

  it('the server unreachable after the bucket answered: up 1, round trip 0, the failed step named', async () => {
    // Through a TCP proxy the test owns; once the server has the HeadBucket request the
    // proxy refuses new connections (the probe opens one per request, no keep-alive).
    const proxy = new TcpProxy({ targetHost: '127.0.0.1', targetPort: Number(new URL(endpoint).port) });
    const port = await proxy.start();
    const onRequest = (req: { method?: string }) => {
      if (req.method === 'HEAD') proxy.pause();
    };
    server.httpServer?.on('request', onRequest);
    try {
      const out = await s3Probe(check({ endpoint: `http://127.0.0.1:${port}` }), ctx());
      expect(out.ok).toBe(false);
      expect(out.failureReason).toMatch(/^PutObject: .*(socket hang up|ECONNRESET|EPIPE)/);
      expect(out.latencyMs).toBeGreaterThanOrEqual(0);
      expect(value(out, 's3_up')).toBe(1);
      expect(value(out, 's3_round_trip_ok')).toBe(0);
      expect(value(out, 's3_head_bucket_ms')).toBeGreaterThanOrEqual(0);
      expect(value(out, 's3_put_ms')).toBeUndefined();
    } finally {
      server.httpServer?.off('request', onRequest);
      await proxy.stop();
    }
    expect(await keysInBucket()).toEqual([]);
  });

  it('down: a closed port fails at HeadBucket with the connection error', async () => {
    const out = await s3Probe(check({ endpoint: `http://127.0.0.1:${await closedPort()}` }), ctx());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/^HeadBucket: .*ECONNREFUSED/);
  });

  it('the target policy: 127.0.0.1 passes the default policy; denied, the server is never connected to', async () => {
    seen.length = 0;
    const denied = await s3Probe(check(), { ...ctx(), policy: createTargetPolicy(['127.0.0.1/32']) });
    expect(denied.ok).toBe(false);
    expect(denied.failureReason).toMatch(/denied network 127\.0\.0\.1\/32/);
    const byName = await s3Probe(check({ endpoint: endpoint.replace('127.0.0.1', 'localhost') }), {
      ...ctx(),
      policy: createTargetPolicy(['127.0.0.0/8', '::1/128']),
    });
    expect(byName.ok).toBe(false);
    expect(byName.failureReason).toMatch(/denied network (127\.0\.0\.0\/8|::1\/128)/);
    expect(seen).toEqual([]);
  });

  it('a name is resolved once and the SDK connects to exactly that address', async () => {
    seen.length = 0;
    const out = await s3Probe(check({ endpoint: endpoint.replace('127.0.0.1', 'localhost') }), ctx());
    // localhost may resolve to ::1 first, where this server does not listen.
    if (out.ok) expect(seen).toHaveLength(4);
    else expect(out.failureReason).toMatch(/ECONNREFUSED ::1/);
  });
});

describe('s3 probe against an endpoint that answers 200 with an HTML page (a captive portal, a proxy)', () => {
  it('HeadBucket answered by a page is DOWN, with or without the round trip; an S3-like answer still passes', async () => {
    const methods: string[] = [];
    let headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8' };
    const portal = createServer((req, res) => {
      methods.push(req.method ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : '<html>Log in</html>'));
    });
    await new Promise<void>((r) => portal.listen(0, '127.0.0.1', r));
    try {
      const at = `http://127.0.0.1:${(portal.address() as AddressInfo).port}`;
      const reason =
        'HeadBucket: 200 with text/html and no x-amz-* header is no S3 answer (a captive portal or proxy page?)';
      const headOnly = await s3Probe(check({ endpoint: at, roundTrip: false }), ctx());
      expect(headOnly).toMatchObject({ ok: false, failureReason: reason });
      expect(value(headOnly, 's3_up')).toBeUndefined();
      expect(await s3Probe(check({ endpoint: at }), ctx())).toMatchObject({ ok: false, failureReason: reason });
      expect(methods).toEqual(['HEAD', 'HEAD']); // nothing put
      // The same page with S3's request id (an S3-compatible server behind it), or a bare 200 (the emulators'
      // HEAD): taken for the bucket, as before.
      headers = { 'content-type': 'text/html', 'x-amz-request-id': 'R1' };
      expect(await s3Probe(check({ endpoint: at, roundTrip: false }), ctx())).toMatchObject({ ok: true });
      headers = {};
      expect(await s3Probe(check({ endpoint: at, roundTrip: false }), ctx())).toMatchObject({ ok: true });
    } finally {
      portal.closeAllConnections();
      await new Promise((r) => portal.close(r));
    }
  });
});

describe('s3 probe against an endpoint that answers GetObject with far more than was put', () => {
  it('stops reading at a bound, fails the round trip naming it, and still deletes the object', async () => {
    const methods: string[] = [];
    let sent = 0;
    const total = 256 * 1024 * 1024;
    const hostile = createServer((req, res) => {
      methods.push(req.method ?? '');
      req.resume();
      req.on('end', () => {
        if (req.method !== 'GET') {
          res.writeHead(req.method === 'DELETE' ? 204 : 200, { etag: '"x"' }).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = (): void => {
          while (sent < total && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => res.removeAllListeners('drain'));
        pump();
      });
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    try {
      const port = (hostile.address() as AddressInfo).port;
      const out = await s3Probe(check({ endpoint: `http://127.0.0.1:${port}` }), ctx());
      expect(out.ok).toBe(false);
      expect(out.failureReason).toMatch(/^GetObject: .*larger than 4096 bytes/);
      expect(methods).toEqual(['HEAD', 'PUT', 'GET', 'DELETE']);
      // The client stopped reading: what left the server is socket buffers' worth, nowhere near the whole body.
      expect(sent).toBeLessThan(total / 4);
    } finally {
      hostile.closeAllConnections();
      await new Promise((r) => hostile.close(r));
    }
  });
});

describe('s3 probe against an endpoint whose GetObject never answers', () => {
  it('fails naming GetObject at the timeout, and still deletes the object it put', async () => {
    const methods: string[] = [];
    const stuck = createServer((req, res) => {
      methods.push(req.method ?? '');
      req.resume();
      req.on('end', () => {
        if (req.method === 'GET') return; // never answered
        res.writeHead(req.method === 'DELETE' ? 204 : 200, { etag: '"x"' }).end();
      });
    });
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
    try {
      const port = (stuck.address() as AddressInfo).port;
      const timeoutMs = 800;
      const started = performance.now();
      const out = await s3Probe(check({ endpoint: `http://127.0.0.1:${port}` }), {
        ...ctx(),
        signal: AbortSignal.timeout(timeoutMs),
        timeoutMs,
      });
      // The DELETE went with the run's ended signal: never sent (the object stayed), and its "timed out" was the reason.
      expect(out).toMatchObject({ ok: false, failureReason: `GetObject: timed out after ${timeoutMs} ms` });
      expect(methods).toEqual(['HEAD', 'PUT', 'GET', 'DELETE']);
      expect(value(out, 's3_round_trip_ok')).toBe(0);
      // Within the runner's grace after its abort (PROBE_GRACE_MS).
      expect(performance.now() - started).toBeLessThan(timeoutMs + 1000);
    } finally {
      stuck.closeAllConnections();
      await new Promise((r) => stuck.close(r));
    }
  });
});
