import { connect } from 'node:net';
import { BUS_BATCH_MAX_UPDATES } from '@fleetwatch/contracts';
import { createIsolatedVhost, testEnv } from '@fleetwatch/testing';
import { errorOf, IngestHarness, update, type PostOptions } from './int-spec.helpers';

// SPEC §6: bad input gets a 4xx with a JSON body naming the field and the problem;
// nothing a client sends produces a 5xx; a refused request publishes nothing.

const BODY_LIMIT = 256 * 1024;

let h: IngestHarness;
let key: string;

beforeAll(async () => {
  h = await IngestHarness.start(
    { vhost: await createIsolatedVhost('ingest-bad-input'), databaseUrl: testEnv().databaseUrl },
    { INGEST_BODY_LIMIT_BYTES: String(BODY_LIMIT) },
  );
  key = (await h.createKey(['ingest'])).key;
});
afterAll(() => h?.stop());

const hourAgo = () => new Date(Date.now() - 3_600_000).toISOString();
const deep = (levels: number): unknown => {
  let v: unknown = { leaf: true };
  for (let i = 0; i < levels; i++) v = { next: v };
  return v;
};
const many = (n: number, value: (i: number) => unknown) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value(i)]));

interface BadInput {
  name: string;
  /** A JSON value (serialised), or raw bytes/string sent as they are. */
  body: unknown;
  raw?: boolean;
  options?: PostOptions;
  status: number;
  /** The path the refusal must name (an entry of `issues`), when the problem is a field. */
  path?: string;
  /** What the message must say. */
  message: RegExp;
  /** ApiErrorBody code (default by status). */
  code?: string;
}

const CASES: BadInput[] = [
  // ── fields of one update ──
  {
    name: 'instanceId of the wrong type',
    body: update(1, { instanceId: 42 }),
    status: 400,
    path: 'instanceId',
    message: /expected string/i,
  },
  {
    name: 'missing instanceId',
    body: { kind: 'container', status: 'running' },
    status: 400,
    path: 'instanceId',
    message: /instanceId/,
  },
  { name: 'missing kind', body: { instanceId: 'a', status: 'running' }, status: 400, path: 'kind', message: /kind/ },
  { name: 'missing status', body: { instanceId: 'a', kind: 'pod' }, status: 400, path: 'status', message: /status/ },
  {
    name: 'unknown status',
    body: update(1, { status: 'exploding' }),
    status: 400,
    path: 'status',
    message: /status: .*expected one of/i,
  },
  { name: 'status of the wrong type', body: update(1, { status: 1 }), status: 400, path: 'status', message: /status/ },
  {
    name: 'unknown kind',
    body: update(1, { kind: 'vm' }),
    status: 400,
    path: 'kind',
    message: /kind: .*expected one of/i,
  },
  {
    name: 'instanceId with a space',
    body: update(1, { instanceId: 'web 1' }),
    status: 400,
    path: 'instanceId',
    message: /no spaces/,
  },
  {
    name: 'instanceId with control characters',
    body: update(1, { instanceId: 'web\u0000\u0007' }),
    status: 400,
    path: 'instanceId',
    message: /instanceId/,
  },
  {
    name: 'instanceId starting with a dot',
    body: update(1, { instanceId: '../etc/passwd' }),
    status: 400,
    path: 'instanceId',
    message: /starting with a letter or digit/,
  },
  {
    name: 'very long instanceId',
    body: update(1, { instanceId: 'a'.repeat(300) }),
    status: 400,
    path: 'instanceId',
    message: /instanceId/,
  },
  {
    name: 'very long message',
    body: update(1, { message: 'm'.repeat(5000) }),
    status: 400,
    path: 'message',
    message: /message/,
  },
  { name: 'empty source', body: update(1, { source: '' }), status: 400, path: 'source', message: /source/ },
  {
    name: 'bad location',
    body: update(1, { location: 'eu west/1' }),
    status: 400,
    path: 'location',
    message: /location/,
  },
  {
    name: 'bad updateId characters',
    body: update(1, { updateId: 'id with spaces' }),
    status: 400,
    path: 'updateId',
    message: /updateId/,
  },
  {
    name: 'unknown field',
    body: update(1, { colour: 'blue' }),
    status: 400,
    path: '(body)',
    message: /unknown field\(s\): colour/,
  },
  // ── values no store can hold (issue 13: refused here, never a 202 that Postgres later refuses) ──
  {
    name: 'NUL in message',
    body: update(1, { message: 'a\u0000b' }),
    status: 400,
    path: 'message',
    message: /message: contains a NUL character \(U\+0000\) at position 1/,
  },
  {
    name: 'NUL in source',
    body: update(1, { source: '\u0000' }),
    status: 400,
    path: 'source',
    message: /source: contains a NUL/,
  },
  {
    name: 'NUL in a label value',
    body: update(1, { labels: { team: 'x\u0000' } }),
    status: 400,
    path: 'labels.team',
    message: /labels\.team: contains a NUL/,
  },
  {
    name: 'NUL in a metadata key',
    body: update(1, { metadata: { 'k\u0000': 1 } }),
    status: 400,
    path: 'metadata.k\u0000',
    message: /key contains a NUL/,
  },
  {
    name: 'NUL deep in metadata',
    body: update(1, { metadata: { a: [{ b: 'x\u0000' }] } }),
    status: 400,
    path: 'metadata.a.0.b',
    message: /metadata\.a\.0\.b: contains a NUL/,
  },
  {
    name: 'lone high surrogate in message',
    body: update(1, { message: 'x\ud800' }),
    status: 400,
    path: 'message',
    message: /lone surrogate \(U\+D800\)/,
  },
  {
    name: 'lone low surrogate in a label value',
    body: update(1, { labels: { a: '\udfff' } }),
    status: 400,
    path: 'labels.a',
    message: /lone surrogate \(U\+DFFF\)/,
  },
  {
    name: 'lone surrogate in a metadata key',
    body: update(1, { metadata: { '\udc00': 'v' } }),
    status: 400,
    path: 'metadata.\udc00',
    message: /key contains a lone surrogate/,
  },
  {
    name: 'a number JSON cannot hold (1e400 reads as Infinity)',
    body: '{"instanceId":"a","kind":"pod","status":"running","metadata":{"n":1e400}}',
    raw: true,
    status: 400,
    path: 'metadata.n',
    message: /number out of range/,
  },
  {
    name: 'lone surrogate in batch item 2, named by index',
    body: { updates: [update(1), update(2), update(3, { source: 'a\ud83d' })] },
    status: 400,
    path: 'updates.2.source',
    message: /lone surrogate/,
  },
  {
    name: 'labels as an array',
    body: update(1, { labels: ['a', 'b'] }),
    status: 400,
    path: 'labels',
    message: /labels/,
  },
  {
    name: 'label value of the wrong type',
    body: update(1, { labels: { app: 5 } }),
    status: 400,
    path: 'labels.app',
    message: /labels\.app/,
  },
  {
    name: 'bad label name',
    body: update(1, { labels: { 'bad key!': 'x' } }),
    status: 400,
    path: 'labels.bad key!',
    message: /label names/,
  },
  {
    name: 'too many labels',
    body: update(1, { labels: many(65, (i) => `v${i}`) }),
    status: 400,
    path: 'labels',
    message: /at most 64 labels/,
  },
  {
    name: '__proto__ in labels',
    body: '{"instanceId":"a","kind":"pod","status":"running","labels":{"__proto__":{"polluted":"yes"}}}',
    raw: true,
    status: 400,
    path: 'labels.__proto__',
    message: /"__proto__" is not allowed/,
  },
  {
    name: '__proto__ in metadata',
    body: '{"instanceId":"a","kind":"pod","status":"running","metadata":{"__proto__":{"polluted":1}}}',
    raw: true,
    status: 400,
    path: 'metadata.__proto__',
    message: /"__proto__" is not allowed/,
  },
  {
    name: 'escaped __proto__ deep in metadata',
    body: '{"instanceId":"a","kind":"pod","status":"running","metadata":{"a":[{"\\u005f_proto__":1}]}}',
    raw: true,
    status: 400,
    path: 'metadata.a.0.__proto__',
    message: /"__proto__" is not allowed/,
  },
  {
    name: 'constructor as a label',
    body: update(1, { labels: { constructor: 'x' } }),
    status: 400,
    path: 'labels.constructor',
    message: /"constructor" is not allowed/,
  },
  {
    name: 'deep nesting in metadata',
    body: update(1, { metadata: deep(20) as Record<string, unknown> }),
    status: 400,
    path: 'metadata',
    message: /nested deeper than 8 levels/,
  },
  {
    name: 'very deep nesting in metadata (10,000 levels)',
    body:
      '{"instanceId":"a","kind":"pod","status":"running","metadata":' +
      '{"a":'.repeat(10_000) +
      '1' +
      '}'.repeat(10_001),
    raw: true,
    status: 400,
    path: 'metadata',
    message: /nested deeper/,
  },
  {
    name: 'too many metadata keys',
    body: update(1, { metadata: many(300, (i) => i) }),
    status: 400,
    path: 'metadata',
    message: /more than 256 keys/,
  },
  {
    name: 'metadata as a string',
    body: update(1, { metadata: 'big' }),
    status: 400,
    path: 'metadata',
    message: /metadata/,
  },
  {
    name: 'occurredAt in the future',
    body: update(1, { occurredAt: new Date(Date.now() + 3_600_000).toISOString() }),
    status: 400,
    path: 'occurredAt',
    message: /in the future/,
  },
  {
    name: 'ancient occurredAt',
    body: update(1, { occurredAt: '2001-01-01T00:00:00Z' }),
    status: 400,
    path: 'occurredAt',
    message: /older than the history retention/,
  },
  {
    name: 'occurredAt not a timestamp',
    body: update(1, { occurredAt: 'yesterday' }),
    status: 400,
    path: 'occurredAt',
    message: /occurredAt/,
  },
  {
    name: 'occurredAt as a number',
    body: update(1, { occurredAt: Date.now() }),
    status: 400,
    path: 'occurredAt',
    message: /occurredAt/,
  },
  // ── batches ──
  { name: 'empty batch', body: { updates: [] }, status: 400, path: 'updates', message: /at least one update/ },
  {
    name: '1001 updates',
    body: { updates: Array.from({ length: 1001 }, (_, i) => update(i)) },
    status: 400,
    path: 'updates',
    message: /at most 1000 updates/,
  },
  {
    name: 'one bad item in a batch',
    body: { updates: [update(0), update(1), update(2), update(3, { status: 'exploding' }), update(4)] },
    status: 400,
    path: 'updates.3.status',
    message: /1 of 5 updates are invalid/,
  },
  {
    name: 'several bad items, each named',
    body: {
      updates: [
        update(0, { kind: 'vm' }),
        update(1),
        update(2, { occurredAt: hourAgo() }),
        update(3, { occurredAt: '2001-01-01T00:00:00Z' }),
      ],
    },
    status: 400,
    path: 'updates.3.occurredAt',
    message: /updates\.0\.kind/,
  },
  { name: 'updates not an array', body: { updates: { a: 1 } }, status: 400, path: 'updates', message: /updates/ },
  {
    name: 'batch with an extra field',
    body: { updates: [update(1)], dryRun: true },
    status: 400,
    path: '(body)',
    message: /dryRun/,
  },
  {
    name: 'null item in a batch',
    body: { updates: [update(1), null] },
    status: 400,
    path: 'updates.1',
    message: /updates\.1/,
  },
  // ── the body itself ──
  {
    name: 'JSON array root',
    body: [update(1)],
    status: 400,
    path: '(body)',
    message: /must be a JSON object.*got an array/,
  },
  { name: 'null root', body: 'null', raw: true, status: 400, path: '(body)', message: /got null/ },
  { name: 'number root', body: '42', raw: true, status: 400, path: '(body)', message: /got number/ },
  { name: 'string root', body: '"running"', raw: true, status: 400, path: '(body)', message: /got string/ },
  {
    name: 'invalid JSON',
    body: '{"instanceId": "a", kind: pod}',
    raw: true,
    status: 400,
    path: '(body)',
    message: /not valid JSON/,
  },
  {
    name: 'truncated JSON',
    body: '{"instanceId": "a", "kind": "po',
    raw: true,
    status: 400,
    path: '(body)',
    message: /not valid JSON/,
  },
  {
    name: 'invalid UTF-8 bytes',
    body: Buffer.concat([
      Buffer.from('{"instanceId":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","kind":"pod","status":"up"}'),
    ]),
    raw: true,
    status: 400,
    path: '(body)',
    message: /not valid UTF-8 \(invalid byte at offset 16\)/,
  },
  {
    name: 'overlong UTF-8 encoding',
    body: Buffer.concat([
      Buffer.from('{"instanceId":"'),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('","kind":"pod","status":"up"}'),
    ]),
    raw: true,
    status: 400,
    path: '(body)',
    message: /not valid UTF-8/,
  },
  {
    name: 'deeply nested root',
    body: '['.repeat(100_000) + ']'.repeat(100_000),
    raw: true,
    status: 400,
    path: '(body)',
    message: /JSON/,
  },
  { name: 'empty JSON body', body: '', raw: true, status: 400, path: '(body)', message: /body is empty/ },
  {
    name: 'no body at all',
    body: undefined,
    options: { contentType: null },
    status: 400,
    path: '(body)',
    message: /body is empty/,
  },
  {
    name: 'text/plain',
    body: JSON.stringify(update(1)),
    raw: true,
    options: { contentType: 'text/plain' },
    status: 415,
    path: '(content-type)',
    message: /"text\/plain" is not supported: send application\/json/,
  },
  {
    name: 'form-urlencoded',
    body: 'instanceId=a&kind=pod',
    raw: true,
    options: { contentType: 'application/x-www-form-urlencoded' },
    status: 415,
    message: /send application\/json/,
  },
  {
    name: 'a body without a content type',
    body: Buffer.from(JSON.stringify(update(1))),
    raw: true,
    options: { contentType: null },
    status: 415,
    message: /no content type/,
  },
  {
    name: 'oversized body',
    body: JSON.stringify({ updates: [update(1, { message: 'x'.repeat(BODY_LIMIT) })] }),
    raw: true,
    status: 413,
    message: /too large/i,
  },
];

const CODE_BY_STATUS: Record<number, string> = {
  400: 'validation_failed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

describe('bad input: a 4xx naming the problem, never a 5xx', () => {
  it('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await h.post(c.body, { key, ...c.options }, undefined);
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const error = errorOf(res);
    expect(error.code).toBe(c.code ?? CODE_BY_STATUS[c.status]);
    expect(error.message).toMatch(c.message);
    if (c.path) expect(error.issues?.map((i) => i.path)).toContain(c.path);
    for (const issue of error.issues ?? []) expect(issue.message.length).toBeGreaterThan(0);
  });

  it('accepted none of them', async () => {
    expect(await h.count()).toBe(0);
    // …and the service still takes good input.
    expect((await h.post(update('after'), { key })).status).toBe(202);
    await h.drain();
  });

  it('a 1000-update batch at the limit is accepted, and prototypes stayed clean', async () => {
    const res = await h.post({ updates: Array.from({ length: 1000 }, (_, i) => update(i)) }, { key });
    expect(res.status).toBe(202);
    expect((res.json as { accepted: number }).accepted).toBe(1000);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // Cut per shard into status.update.batch messages of at most BUS_BATCH_MAX_UPDATES each.
    expect(1000).toBeGreaterThan(BUS_BATCH_MAX_UPDATES);
    expect(await h.count()).toBeGreaterThanOrEqual(1000 / BUS_BATCH_MAX_UPDATES);
    expect((await h.drain()).length).toBe(1000);
  });
});

describe('odd requests: still a 4xx with a JSON body', () => {
  it.each<[string, string, string, Record<string, string>, number]>([
    ['PUT on the updates route', 'PUT', '/api/v1/status/updates', {}, 404],
    ['an unknown path', 'GET', '/api/v1/status/nope', {}, 404],
    ['a malformed percent-encoding in a ping URL', 'GET', '/ping/%E0%A4%A', {}, 400],
    ['a ping token of 500 characters', 'GET', `/ping/${'a'.repeat(500)}`, {}, 414],
    [
      'an Authorization header of 8 KB',
      'POST',
      '/api/v1/status/updates',
      { authorization: `Bearer ${'x'.repeat(8192)}` },
      401,
    ],
  ])('%s', async (_name, method, path, headers, status) => {
    const res = await h.request(
      method,
      path,
      { 'content-type': 'application/json', ...headers },
      method === 'POST' || method === 'PUT' ? '{}' : undefined,
    );
    expect(res.status).toBe(status);
    expect(errorOf(res).message.length).toBeGreaterThan(0);
  });
});

describe('malformed HTTP: still an ApiErrorBody the client can read', () => {
  /** Writes `head` on a fresh connection and resolves with everything the server wrote before it closed. */
  const raw = (head: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect(h.config.port, '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
      socket.write(head);
      setTimeout(() => socket.destroy(), 5_000).unref();
    });

  it.each<[string, string, number]>([
    ['a method HTTP does not have', 'FOO /api/v1/status/updates HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a negative Content-Length', 'POST /api/v1/status/updates HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
    [
      'Content-Length and chunked together',
      'POST /api/v1/status/updates HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['headers over 16 KiB', `GET /ping/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ])('%s', async (_name, head, status) => {
    const answer = await raw(head);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(answer).toMatch(/\r\ncontent-type: application\/json/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      error?: { code?: unknown; message?: unknown };
    };
    expect(typeof body.error?.code).toBe('string');
    expect(String(body.error?.message)).toMatch(/HTTP/);
  });
});
