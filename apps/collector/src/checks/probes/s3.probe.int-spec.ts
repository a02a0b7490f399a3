import { createServer, type Server } from 'node:http';
import { s3CheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import { closedPort, probeContext } from './probes.int-helpers';
import { s3Probe } from './s3.probe';

jest.setTimeout(60_000);

// No S3-compatible server installs here without a new dependency (s3rver, MinIO are not in
// the tree; MinIO is no Debian package). So the probe runs against a minimal local stand-in
// that speaks the S3 REST wire format for exactly the calls the probe makes — HeadBucket
// (HEAD /bucket), PutObject (PUT /bucket/key), GetObject (GET), DeleteObject (DELETE), path
// style, XML error bodies with S3's codes — and checks each request carries a SigV4
// Authorization header for the configured access key. It does NOT verify the signature
// itself: a real server (MinIO, s3rver) is what would prove that.

const BUCKET = 'fleet-bucket';
const KEY_ID = 'AKIAFLEETWATCHTEST';
const SECRET = 'fw-test-secret-key-value';
let server: Server;
let endpoint: string;
const objects = new Map<string, Buffer>();
const seen: string[] = [];
let failPut = false;

function xmlError(code: string, status: number) {
  return {
    status,
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const [, bucket, ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      seen.push(`${req.method} ${url.pathname}`);
      const auth = String(req.headers.authorization ?? '');
      const send = (status: number, body = '', headers: Record<string, string> = {}) => {
        res.writeHead(status, {
          'content-type': body.startsWith('<?xml') ? 'application/xml' : 'text/plain',
          ...headers,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${KEY_ID}/`) || !req.headers['x-amz-date']) {
        const e = xmlError('InvalidAccessKeyId', 403);
        return send(e.status, e.body);
      }
      if (bucket !== BUCKET) {
        const e = xmlError('NoSuchBucket', 404);
        return send(e.status, e.body);
      }
      if (req.method === 'HEAD' && !key) return send(200);
      if (req.method === 'PUT' && key) {
        if (failPut) {
          const e = xmlError('AccessDenied', 403);
          return send(e.status, e.body);
        }
        objects.set(key, Buffer.concat(chunks));
        return send(200, '', { etag: '"x"' });
      }
      if (req.method === 'GET' && key) {
        const o = objects.get(key);
        if (!o) {
          const e = xmlError('NoSuchKey', 404);
          return send(e.status, e.body);
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(o.length) });
        return res.end(o);
      }
      if (req.method === 'DELETE' && key) {
        objects.delete(key);
        return send(204);
      }
      const e = xmlError('NotImplemented', 501);
      send(e.status, e.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

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
const ctx = (
  env: Record<string, string> = { FLEETWATCH_SECRET_S3_KEY: KEY_ID, FLEETWATCH_SECRET_S3_SECRET: SECRET },
) => ({
  ...probeContext({ timeoutMs: 10_000 }),
  env,
});
type Out = Awaited<ReturnType<typeof s3Probe>>;
const value = (out: Out, name: string) => out.metrics?.find((m) => m.name === name)?.value;

describe('s3 probe against a local S3 wire-format stand-in', () => {
  it('HeadBucket, then put, get (compared) and delete under the prefix: nothing left behind', async () => {
    seen.length = 0;
    const out = await s3Probe(check(), ctx());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(value(out, 's3_up')).toBe(1);
    expect(value(out, 's3_round_trip_ok')).toBe(1);
    for (const m of ['s3_head_bucket_ms', 's3_put_ms', 's3_get_ms', 's3_delete_ms'])
      expect(value(out, m)).toBeGreaterThanOrEqual(0);
    expect(seen.map((s) => s.split(' ')[0])).toEqual(['HEAD', 'PUT', 'GET', 'DELETE']);
    expect(seen[1]).toMatch(new RegExp(`^PUT /${BUCKET}/fleetwatch-probe/[0-9a-f-]{36}$`));
    expect(objects.size).toBe(0);
  });

  it('roundTrip false: HeadBucket only', async () => {
    seen.length = 0;
    const out = await s3Probe(check({ roundTrip: false }), ctx());
    expect(out.ok).toBe(true);
    expect(seen).toEqual([`HEAD /${BUCKET}/`]);
    expect(value(out, 's3_round_trip_ok')).toBeUndefined();
  });

  it('names what failed: no such bucket, a refused key, a put denied (nothing left), missing env', async () => {
    const noBucket = await s3Probe(check({ bucket: 'other-bucket' }), ctx());
    expect(noBucket.ok).toBe(false);
    expect(noBucket.failureReason).toMatch(/^HeadBucket: 404 .*\(no such bucket or key\)/);
    const badKey = await s3Probe(
      check(),
      ctx({ FLEETWATCH_SECRET_S3_KEY: 'AKIAOTHER', FLEETWATCH_SECRET_S3_SECRET: SECRET }),
    );
    expect(badKey.failureReason).toMatch(/^HeadBucket: 403 .*\(access denied\)/);
    expect(badKey.failureReason).not.toContain(SECRET);
    failPut = true;
    try {
      const denied = await s3Probe(check(), ctx());
      expect(denied.ok).toBe(false);
      expect(denied.failureReason).toMatch(/^PutObject: 403 AccessDenied/);
      expect(value(denied, 's3_up')).toBe(1);
      expect(value(denied, 's3_round_trip_ok')).toBe(0);
    } finally {
      failPut = false;
    }
    const noEnv = await s3Probe(check(), ctx({}));
    expect(noEnv.failureReason).toBe('environment variable FLEETWATCH_SECRET_S3_KEY is not set on this collector');
  });

  it('down and denied: a closed port; an endpoint in a denied network is never connected to', async () => {
    const closed = await s3Probe(check({ endpoint: `http://127.0.0.1:${await closedPort()}` }), ctx());
    expect(closed.ok).toBe(false);
    expect(closed.failureReason).toMatch(/^HeadBucket: .*ECONNREFUSED/);
    seen.length = 0;
    const denied = await s3Probe(check(), {
      ...ctx(),
      policy: createTargetPolicy(['127.0.0.1/32']),
    });
    expect(denied.failureReason).toMatch(/denied network 127\.0\.0\.1\/32/);
    expect(seen).toEqual([]);
  });

  it('a name is resolved once and the SDK connects to exactly that address', async () => {
    seen.length = 0;
    const port = new URL(endpoint).port;
    const out = await s3Probe(check({ endpoint: `http://localhost:${port}` }), ctx());
    expect(out.ok).toBe(true);
    expect(seen).toHaveLength(4);
  });
});
