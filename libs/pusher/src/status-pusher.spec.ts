import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InstanceKind } from '@fleetwatch/contracts';
import { freePortBlock, waitFor } from '@fleetwatch/testing';
import { backoffDelayMs, nextRetryDelayMs, retryAfterMs } from './backoff';
import { parseEnv } from '@fleetwatch/config';
import { pusherMetrics } from './daemon';
import { pusherSettings, pusherShape } from './pusher-config';
import {
  ANSWER_READ_LIMIT_BYTES,
  badIndexesOf,
  ingestBaseUrl,
  ingestRefusalOf,
  redactText,
  redactUrl,
  StatusPusher,
  type PushLog,
  type StatusPusherOptions,
} from './status-pusher';

// The pusher against a real HTTP server on loopback that answers as status-ingest does
// (202, 400 naming items, 413, 429/503 with Retry-After): what it sends, retries and drops.

// `gc` for the tests that need the collector to run (a signal only weakly held is collected: see send).
setFlagsFromString('--expose-gc');

type Handler = (body: unknown, req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let url: string;
let handler: Handler;
const received: unknown[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as unknown;
      received.push({ auth: req.headers.authorization, body });
      handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));
beforeEach(() => {
  received.length = 0;
});

const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const log: PushLog = {
  info: (msg, fields) => logs.push({ level: 'info', msg, fields }),
  warn: (msg, fields) => logs.push({ level: 'warn', msg, fields }),
  error: (msg, fields) => logs.push({ level: 'error', msg, fields }),
};
const update = (i: number, extra: Record<string, unknown> = {}) => ({
  updateId: `u-${i}`,
  instanceId: `c-${i}`,
  kind: InstanceKind.Container,
  status: 'running',
  ...extra,
});
const accept: Handler = (_b, _q, res) => res.writeHead(202, { 'content-type': 'application/json' }).end('{}');
/** The updateIds `p` gives up on, in order (its onDropped listener). */
function droppedBy(p: StatusPusher): string[] {
  const dropped: string[] = [];
  p.onDropped((us) => dropped.push(...us.map((u) => u.updateId as string)));
  return dropped;
}
const itemsOf = (body: unknown): { updateId: string }[] =>
  (body as { updates?: { updateId: string }[] }).updates ?? [body as { updateId: string }];
/**
 * An ingest answering `script`'s statuses in turn (202 takes the update, another status is sent with `errorBody`),
 * then 403 while `keyRefused` is set (the key revoked; the test flips it) and 202 otherwise.
 */
function scriptedAnswers(script: number[], opts: { keyRefused?: boolean; errorBody?: string } = {}) {
  const answers = [...script];
  const errorBody = opts.errorBody ?? '{"error":"forbidden"}';
  const scripted: { keyRefused: boolean; handler: Handler } = {
    keyRefused: opts.keyRefused ?? false,
    handler: (body, q, res) => {
      const status = answers.shift() ?? (scripted.keyRefused ? 403 : 202);
      if (status === 202) return accept(body, q, res);
      res.writeHead(status, { 'content-type': 'application/json' }).end(errorBody);
    },
  };
  return scripted;
}
/**
 * A pusher (not started) against the stand-in ingest (`url`, key `k`, `log`) with `opts`, updates `1..queued` queued;
 * `dropped`: the updateIds it gives up on (listened to before anything is queued).
 */
function queuedPusher(opts: Partial<StatusPusherOptions>, queued: number) {
  const p = new StatusPusher({ url, apiKey: 'k', log, ...opts });
  const dropped = droppedBy(p);
  for (let i = 1; i <= queued; i++) p.enqueue(update(i));
  return { p, dropped };
}
/**
 * Two updates sent one per request (`opts` besides) to an ingest answering 403 (with `errorBody`), 202 past it, then
 * 403 again, as replicas disagreeing on a key do: nothing is dropped, both are delivered.
 */
async function expectFlickeringRefusalDropsNothing(opts: Partial<StatusPusherOptions>, errorBody?: string) {
  handler = scriptedAnswers([403, 202, 403], { errorBody }).handler;
  const { p, dropped } = queuedPusher({ baseDelayMs: 10, maxDelayMs: 20, maxBatch: 1, ...opts }, 2);
  p.start();
  try {
    await p.drained();
    expect(dropped).toEqual([]);
    expect(p.stats).toMatchObject({ accepted: 2, droppedRefused: 0 });
  } finally {
    await p.stop();
  }
}

describe('StatusPusher', () => {
  it('sends one update as an object and many as a batch, with the key as a bearer token', async () => {
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k1', log, maxBatch: 3 });
    p.enqueue(update(1));
    p.start();
    await p.drained();
    for (let i = 2; i <= 6; i++) p.enqueue(update(i));
    await p.drained();
    await p.stop();
    expect(received[0]).toEqual({ auth: 'Bearer k1', body: update(1) });
    const ids = received.slice(1).map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId));
    expect(ids.flat()).toEqual(['u-2', 'u-3', 'u-4', 'u-5', 'u-6']);
    expect(Math.max(...ids.map((b) => b.length))).toBeLessThanOrEqual(3);
    expect(p.stats).toMatchObject({ accepted: 6, retries: 0 });
  });

  it('retries 503 and 429 honouring Retry-After, with the same updateIds, until accepted', async () => {
    let n = 0;
    const at: number[] = [];
    handler = (_b, _q, res) => {
      at.push(Date.now());
      n++;
      if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end('{"error":"unavailable"}');
      else if (n === 2) res.writeHead(429, { 'retry-after': '0' }).end('{"error":"rate_limited"}');
      else accept(_b, _q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 10 });
    p.start();
    p.enqueue(update(1));
    p.enqueue(update(2));
    await p.drained();
    await p.stop();
    expect(n).toBe(3);
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(950);
    const sent = received.map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId));
    expect(sent).toEqual([
      ['u-1', 'u-2'],
      ['u-1', 'u-2'],
      ['u-1', 'u-2'],
    ]);
    expect(p.stats).toMatchObject({ accepted: 2, retries: 2, droppedRefused: 0 });
  });

  it('retries when nothing listens (network error) and delivers once the server is there', async () => {
    const spare = createServer((req, res) => {
      received.push({ body: null });
      req.resume();
      req.on('end', () => res.writeHead(202).end('{}'));
    });
    // Below the kernel's ephemeral range: no outgoing connection takes it before the server binds it.
    const port = await freePortBlock(1);
    const p = new StatusPusher({ url: `http://127.0.0.1:${port}`, apiKey: 'k', log, baseDelayMs: 20, maxDelayMs: 100 });
    p.start();
    p.enqueue(update(1));
    await new Promise((r) => setTimeout(r, 300));
    expect(p.stats.retries).toBeGreaterThan(0);
    await new Promise<void>((r) => spare.listen(port, '127.0.0.1', r));
    await p.drained();
    await p.stop();
    await new Promise((r) => spare.close(r));
    expect(p.stats.accepted).toBe(1);
  });

  it('never retries a 400: drops only the items it names and sends the rest again', async () => {
    let n = 0;
    handler = (body, _q, res) => {
      n++;
      const items = itemsOf(body);
      const bad = items.findIndex((u) => u.updateId === 'u-2');
      if (bad >= 0)
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(
            JSON.stringify({ error: 'validation_failed', issues: [{ path: `updates.${bad}.status`, message: 'x' }] }),
          );
      else accept(body, _q, res);
    };
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'k', log });
    for (let i = 1; i <= 3; i++) p.enqueue(update(i));
    p.start();
    await p.drained();
    await p.stop();
    expect(n).toBe(2);
    expect(itemsOf((received[1] as { body: unknown }).body).map((u) => u.updateId)).toEqual(['u-1', 'u-3']);
    expect(p.stats).toMatchObject({ accepted: 2, droppedRefused: 1, retries: 0 });
    expect(logs.find((l) => l.level === 'error')?.fields).toMatchObject({ status: 400, updateIds: ['u-2'] });
  });

  it('halves a batch the ingest answers 413 for', async () => {
    handler = (body, _q, res) => (itemsOf(body).length > 2 ? res.writeHead(413).end('{}') : accept(body, _q, res));
    const p = new StatusPusher({ url, apiKey: 'k', log });
    for (let i = 1; i <= 5; i++) p.enqueue(update(i));
    p.start();
    await p.drained();
    await p.stop();
    expect(p.stats).toMatchObject({ accepted: 5, droppedRefused: 0 });
  });

  it('validates with the shared contract before sending: what a store cannot hold never leaves', async () => {
    handler = accept;
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'k', log });
    expect(p.enqueue(update(1, { message: 'a\u0000b' }))).toBe(false);
    expect(p.enqueue(update(2, { status: 'sleeping' }))).toBe(false);
    expect(p.enqueue(update(3, { labels: { 'bad name': 'x' } }))).toBe(false);
    expect(p.enqueue(update(4, { instanceId: 'has space' }))).toBe(false);
    expect(p.enqueue(update(5))).toBe(true);
    p.start();
    await p.drained();
    await p.stop();
    expect(received).toHaveLength(1);
    expect(p.stats.droppedInvalid).toBe(4);
    expect(logs.filter((l) => l.msg.includes('contract refuses')).map((l) => l.fields?.['issues'])).toEqual([
      [expect.stringMatching(/^message/)],
      [expect.stringMatching(/^status/)],
      [expect.stringMatching(/^labels/)],
      [expect.stringMatching(/^instanceId/)],
    ]);
  });

  it('bounds its queue, dropping the oldest and counting them', () => {
    const p = new StatusPusher({ url, apiKey: 'k', log, maxQueue: 3 });
    for (let i = 1; i <= 5; i++) p.enqueue(update(i));
    expect(p.pending).toBe(3);
    expect(p.stats.droppedOverflow).toBe(2);
  });

  it('sends an update queued twice once per batch (the ingest refuses a batch repeating an updateId)', async () => {
    handler = (body, _q, res) => {
      const ids = itemsOf(body).map((u) => u.updateId);
      if (new Set(ids).size !== ids.length) res.writeHead(400, { 'content-type': 'application/json' }).end('{}');
      else accept(body, _q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log });
    for (const i of [1, 2, 1, 3, 2]) p.enqueue(update(i));
    p.start();
    await p.drained();
    await p.stop();
    expect(p.stats).toMatchObject({ accepted: 3, droppedRefused: 0 });
    expect(received.flatMap((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId))).toEqual([
      'u-1',
      'u-2',
      'u-3',
    ]);
  });

  it('tells listeners what was accepted and what was given up on (pushed out of the queue, refused)', async () => {
    handler = (body, _q, res) => {
      const bad = itemsOf(body).findIndex((u) => u.updateId === 'u-4');
      if (bad >= 0)
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(
            JSON.stringify({ error: 'validation_failed', issues: [{ path: `updates.${bad}.status`, message: 'x' }] }),
          );
      else accept(body, _q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log, maxQueue: 3 });
    const accepted: string[] = [];
    const dropped: string[] = [];
    p.onAccepted((us) => accepted.push(...us.map((u) => u.updateId as string)));
    p.onDropped((us) => dropped.push(...us.map((u) => u.updateId as string)));
    p.onAccepted(() => {
      throw new Error('a failing listener neither stops the others nor the pusher');
    });
    for (let i = 1; i <= 5; i++) p.enqueue(update(i));
    expect(dropped).toEqual(['u-1', 'u-2']);
    p.start();
    await p.drained();
    await p.stop();
    expect(accepted.sort()).toEqual(['u-3', 'u-5']);
    expect(dropped).toEqual(['u-1', 'u-2', 'u-4']);
  });
});

describe('backoff', () => {
  it.each([
    [0, 0.999, 99],
    [1, 0.999, 199],
    [3, 0.5, 400],
    [10, 0.999, 4995],
    [50, 1, 5000],
  ])('attempt %i, random %f → %i ms (base 100, cap 5000)', (attempt, random, expected) => {
    expect(backoffDelayMs(attempt, 100, 5000, () => random)).toBe(expected);
  });

  it.each([
    ['5', 5000],
    [' 0 ', 0],
    ['Wed, 02 Dec 2026 12:00:10 GMT', 10_000],
    ['Wed, 02 Dec 2026 11:59:00 GMT', 0],
    ['soon', undefined],
    // Neither delta-seconds nor an HTTP date: V8's Date.parse reads these as dates in 2001 (a wait of 0 ms, every
    // retry at once, the backoff never growing); unreadable, the backoff applies.
    ['1.5', undefined],
    ['-5', undefined],
    ['+5', undefined],
    ['soon 5', undefined],
    ['xyz-5', undefined],
    ['Wednesday, 02-Dec-26 12:00:10 GMT', 10_000],
    ['Wed Dec  2 12:00:10 2026', 10_000],
    [null, undefined],
  ])('Retry-After %p → %p ms', (header, expected) => {
    expect(retryAfterMs(header, Date.parse('2026-12-02T12:00:00Z'))).toBe(expected);
  });

  it('Retry-After wins over backoff, plus jitter below the base', () => {
    expect(nextRetryDelayMs(7, 2000, { baseMs: 100, maxMs: 1000 }, () => 0.5)).toBe(2050);
    expect(nextRetryDelayMs(0, undefined, { baseMs: 100, maxMs: 1000 }, () => 0)).toBe(1);
  });

  it('finds the batch positions a 400 names', () => {
    expect(
      badIndexesOf('{"issues":[{"path":"updates.3.status"},{"path":"updates.10.labels.x"},{"path":"updates.3.x"}]}'),
    ).toEqual([3, 10]);
    expect(badIndexesOf('{"issues":[{"path":"status"}]}')).toEqual([]);
    // Only the paths count: a message may mention another update.
    expect(
      badIndexesOf(
        '{"error":{"message":"updates.1.updateId: repeats updates.0.updateId","issues":[{"path":"updates.1.updateId","message":"repeats updates.0.updateId"}]}}',
      ),
    ).toEqual([1]);
  });
});

describe('StatusPusher waits', () => {
  it('leaves no abort listener behind per wait (a long-running daemon lingers before every request)', async () => {
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 1 });
    p.start();
    for (let i = 0; i < 30; i++) {
      p.enqueue(update(i));
      await p.drained();
    }
    const { signal } = (p as unknown as { stopSignal: AbortController }).stopSignal;
    expect(getEventListeners(signal, 'abort').length).toBeLessThanOrEqual(1);
    await p.stop();
  });
});

describe('StatusPusher and a refused API key', () => {
  it('holds the queue on 401 and retries with backoff until the key is accepted', async () => {
    let n = 0;
    handler = (body, q, res) => {
      n++;
      if (n <= 3) res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      else accept(body, q, res);
    };
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'fw_secret_key_123', log, baseDelayMs: 10, maxDelayMs: 50 });
    p.enqueue(update(1));
    p.enqueue(update(2));
    p.start();
    await p.drained();
    await p.stop();
    expect(p.stats).toMatchObject({ accepted: 2, droppedRefused: 0, authRefused: 3, retries: 3 });
    const sent = received.map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId));
    expect(sent).toEqual(Array.from({ length: 4 }, () => ['u-1', 'u-2']));
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/API key/);
    expect(errors[0]?.fields).toMatchObject({ status: 401 });
    expect(JSON.stringify(logs)).not.toContain('fw_secret_key_123');
  });

  it('holds the queue on 403 (scope, address, certificate: every request refused) and delivers all once accepted', async () => {
    let n = 0;
    handler = (body, q, res) => {
      n++;
      if (n <= 6) res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden"}');
      else accept(body, q, res);
    };
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'fw_secret_key_123', log, baseDelayMs: 10, maxDelayMs: 50 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 4; i++) p.enqueue(update(i));
    p.start();
    await p.drained();
    await p.stop();
    // A 403 may be a filter's answer to one payload, so the batch is halved first ([1-4], [1,2], [1]); nothing is
    // taken, so nothing is dropped: the queue is held, the retries (one per backoff) leave the head out and halve
    // ([2-4], [2,3], [2]); a lone one refused is held with the head ([3,4] next) until something is taken.
    expect(dropped).toEqual([]);
    expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 0 });
    const sent = received.map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId));
    expect(sent).toEqual([
      ['u-1', 'u-2', 'u-3', 'u-4'],
      ['u-1', 'u-2'],
      ['u-1'],
      ['u-2', 'u-3', 'u-4'],
      ['u-2', 'u-3'],
      ['u-2'],
      ['u-3', 'u-4'],
      ['u-1', 'u-2'],
    ]);
    expect(p.stats).toMatchObject({ authRefused: 4, retries: 4 });
    // One error per minute at most, naming the status, the key and the proxy.
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/API key.*filter in front/);
    expect(errors[0]?.fields).toMatchObject({ status: 403 });
    expect(JSON.stringify(logs)).not.toContain('fw_secret_key_123');
  });
});

describe('StatusPusher and an endpoint that answers for no update (404, 405, 410, 415)', () => {
  it.each([404, 405, 410, 415])(
    'holds the queue on %i (a wrong URL, a proxy during a rollout) and delivers everything once it answers',
    async (status) => {
      let n = 0;
      handler = (body, q, res) => {
        n++;
        if (n <= 3) res.writeHead(status, { 'content-type': 'text/html' }).end('<html>no such route</html>');
        else accept(body, q, res);
      };
      logs.length = 0;
      const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 10, maxDelayMs: 50 });
      const dropped = droppedBy(p);
      p.enqueue(update(1));
      p.enqueue(update(2));
      p.start();
      await p.drained();
      await p.stop();
      expect(dropped).toEqual([]);
      expect(p.stats).toMatchObject({ accepted: 2, droppedRefused: 0, endpointRefused: 3, retries: 3 });
      const errors = logs.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]?.msg).toContain(`the ingest URL answers ${status}`);
      expect(Object.fromEntries(pusherMetrics(p).map((x) => [x.name, x.value]))).toMatchObject({
        fleetwatch_pusher_endpoint_refused_total: 3,
      });
    },
  );
});

describe('StatusPusher and a filter in front refusing one payload (422, 406, a WAF`s 403)', () => {
  it.each([422, 406, 403])(
    'drops only the update answered %i (the batch halved to find it); the queue is not held by it',
    async (status) => {
      handler = (body, q, res) =>
        itemsOf(body).some((u) => u.updateId === 'u-2')
          ? res.writeHead(status, { 'content-type': 'text/plain' }).end('blocked by policy')
          : accept(body, q, res);
      // One batch of 5: halved until u-2 is alone; the others are delivered.
      const p = new StatusPusher({
        url,
        apiKey: 'k',
        log,
        forbiddenFlickerMs: 0,
        baseDelayMs: 10,
        maxDelayMs: 50,
        maxBatch: 5,
      });
      const dropped = droppedBy(p);
      for (let i = 1; i <= 5; i++) p.enqueue(update(i));
      p.start();
      await p.drained();
      await p.stop();
      expect(dropped).toEqual(['u-2']);
      expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 1, endpointRefused: 0 });
    },
  );
});

describe('StatusPusher and a filter refusing one update that was alone in the queue', () => {
  it.each([403, 422])(
    'holds it at first (%i for every request, as far as it can tell), then drops it once the updates behind it are taken',
    async (status) => {
      handler = (body, q, res) =>
        itemsOf(body).some((u) => u.updateId === 'u-1')
          ? res.writeHead(status, { 'content-type': 'text/html' }).end('<html>Request blocked</html>')
          : accept(body, q, res);
      const p = new StatusPusher({ url, apiKey: 'k', log, forbiddenFlickerMs: 0, baseDelayMs: 20, maxDelayMs: 50 });
      const dropped = droppedBy(p);
      p.enqueue(update(1));
      p.start();
      try {
        await new Promise((r) => setTimeout(r, 150));
        // Alone, nothing tells a filter judging it from one refusing all (a key's scope, a policy): held.
        expect(dropped).toEqual([]);
        expect(p.pending).toBe(1);
        // Before: every later update queued behind it was held for ever (its instance's refreshes too).
        for (let i = 2; i <= 4; i++) p.enqueue(update(i));
        await p.drained();
        expect(dropped).toEqual(['u-1']);
        expect(p.stats).toMatchObject({ accepted: 3, droppedRefused: 1 });
      } finally {
        await p.stop();
      }
    },
  );

  it('drops nothing when the key is refused (403) in the middle of a halving (a replica still taking it a moment)', async () => {
    // [1-4] refused, [1,2] taken by a replica that has not heard of the revocation yet
    const key = scriptedAnswers([403, 202], { keyRefused: true });
    handler = key.handler;
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 20, maxDelayMs: 50, maxBatch: 4 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 4; i++) p.enqueue(update(i));
    p.start();
    try {
      await new Promise((r) => setTimeout(r, 400));
      // Before: [3,4] 403, [3] 403, dropped on the evidence of [1,2] taken before it was refused.
      expect(dropped).toEqual([]);
      expect(p.pending).toBe(2);
      key.keyRefused = false;
      await p.drained();
      expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 0 });
    } finally {
      key.keyRefused = false;
      await p.stop();
    }
  });

  it('drops nothing on a 403 that flickers (ingest replicas disagreeing on a key: 403, 202 past it, 403 again)', async () => {
    // [good] refused, [other] taken by another replica, [good] refused again.
    // Before: [u-1] dropped on the probe one replica took a moment after it was refused (within its cached verdict).
    await expectFlickeringRefusalDropsNothing({});
  });

  it('drops nothing when the key is refused (403) after a halving was cut by an outage (503)', async () => {
    // [1-4] refused, [1,2] taken, [3,4] the ingest away; then the key revoked
    const key = scriptedAnswers([403, 202, 503], { keyRefused: true, errorBody: '{"error":"x"}' });
    handler = key.handler;
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 20, maxDelayMs: 50, maxBatch: 4 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 4; i++) p.enqueue(update(i));
    p.start();
    try {
      await new Promise((r) => setTimeout(r, 400));
      // Before: [3,4] halved to [3], dropped on the evidence of [1,2] taken before the outage.
      expect(dropped).toEqual([]);
      expect(p.pending).toBe(2);
      key.keyRefused = false;
      await p.drained();
      expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 0 });
    } finally {
      key.keyRefused = false;
      await p.stop();
    }
  });

  it('drops nothing when the key is refused (403) after an earlier refusal passed', async () => {
    const key = scriptedAnswers([403]); // the first request refused once (a filter's moment), then the key revoked later
    handler = key.handler;
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 20, maxDelayMs: 50, maxBatch: 4 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 4; i++) p.enqueue(update(i));
    p.start();
    try {
      // Halved once ([1-4] refused, [1,2] and [3,4] taken): nothing was the refused payload.
      await p.drained();
      for (let i = 5; i <= 8; i++) p.enqueue(update(i));
      await p.drained();
      expect(dropped).toEqual([]);
      // A whole batch taken since the halving: its evidence is over. The key revoked now refuses everything.
      key.keyRefused = true;
      for (let i = 9; i <= 12; i++) p.enqueue(update(i));
      await new Promise((r) => setTimeout(r, 300));
      // Before: [9-12] halved down to [9], dropped on the old evidence that the endpoint takes others.
      expect(dropped).toEqual([]);
      expect(p.pending).toBe(4);
      key.keyRefused = false;
      await p.drained();
      expect(p.stats).toMatchObject({ accepted: 12, droppedRefused: 0 });
    } finally {
      key.keyRefused = false;
      await p.stop();
    }
  });
});

/** status-ingest's own answers to a refused key (libs/observability's error filter: its error code in JSON). */
const INGEST_403 = JSON.stringify({
  error: { code: 'forbidden', message: 'this API key may not be used from 10.1.2.3' },
});
const INGEST_401 = JSON.stringify({ error: { code: 'unauthorized', message: 'unknown or revoked API key' } });
/** What AWS WAF answers by default for a request a rule blocks. */
const WAF_PAGE =
  '<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n';

describe("StatusPusher and the ingest's own 401/403 (its error code) against a filter's 403", () => {
  it('tells the ingest`s refusal of a key from any other 403 by the error code in its body', () => {
    expect(ingestRefusalOf(403, INGEST_403)).toBe('this API key may not be used from 10.1.2.3');
    expect(ingestRefusalOf(401, INGEST_401)).toBe('unknown or revoked API key');
    for (const other of [
      WAF_PAGE,
      '',
      'Forbidden',
      '{"error":"forbidden"}',
      '{"message":"Forbidden"}',
      '{"error":{"code":"forbidden"}}',
      '{"error":{"code":"AccessDenied","message":"blocked"}}',
      'null',
      INGEST_401,
    ])
      expect({ other, answer: ingestRefusalOf(403, other) }).toEqual({ other, answer: undefined });
    expect(ingestRefusalOf(401, INGEST_403)).toBeUndefined();
  });

  it.each([
    [403, INGEST_403],
    [401, INGEST_401],
  ])(
    'a key refused %i by the ingest: nothing set aside, the batch held whole (never halved) and delivered once accepted',
    async (status, body) => {
      let refusals = 3;
      handler = (b, q, res) =>
        refusals-- > 0 ? res.writeHead(status, { 'content-type': 'application/json' }).end(body) : accept(b, q, res);
      logs.length = 0;
      // The timing guard off: the body alone keeps these updates from being taken for a filter's refusal.
      const { p, dropped } = queuedPusher({ forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 }, 4);
      p.start();
      try {
        await p.drained();
        expect(dropped).toEqual([]);
        const sent = received.map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId));
        // Before (403): [1-4], [1,2], [1] refused, then probes past the held head: a request per half, not per retry.
        expect(sent).toEqual(Array.from({ length: 4 }, () => ['u-1', 'u-2', 'u-3', 'u-4']));
        expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 0, authRefused: 3, retries: 3 });
        const errors = logs.filter((l) => l.level === 'error');
        expect(errors).toHaveLength(1);
        expect(errors[0]?.msg).toMatch(/the ingest refuses the API key/);
        expect(errors[0]?.msg).not.toMatch(/filter in front/);
        expect(errors[0]?.fields).toMatchObject({ status, answer: JSON.parse(body).error.message });
      } finally {
        await p.stop();
      }
    },
  );

  it('drops nothing when the ingest`s own 403 flickers (replicas disagreeing on a key), even with no timing guard', async () => {
    // [u-1] refused by one replica, [u-2] taken past it by another, [u-1] refused again.
    // Before: a 403 was a filter's as much as the key's: u-1, refused alone, then refused again after u-2 was
    // taken past it, was dropped (only FORBIDDEN_FLICKER_MS, off here, kept it).
    await expectFlickeringRefusalDropsNothing({ forbiddenFlickerMs: 0 }, INGEST_403);
  });

  it('a WAF`s 403 page for one update of a batch: every other update delivered in order, that one set aside and logged', async () => {
    handler = (body, q, res) =>
      itemsOf(body).some((u) => u.updateId === 'u-7')
        ? res.writeHead(403, { 'content-type': 'text/html' }).end(WAF_PAGE)
        : accept(body, q, res);
    logs.length = 0;
    const { p, dropped } = queuedPusher({ forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 }, 0);
    const accepted: string[] = [];
    p.onAccepted((us) => accepted.push(...us.map((u) => u.updateId as string)));
    for (let i = 1; i <= 10; i++) p.enqueue(update(i, { instanceId: `c-${i % 3}` }));
    p.start();
    try {
      await p.drained();
      expect(dropped).toEqual(['u-7']);
      expect(accepted).toEqual(['u-1', 'u-2', 'u-3', 'u-4', 'u-5', 'u-6', 'u-8', 'u-9', 'u-10']);
      expect(p.stats).toMatchObject({ accepted: 9, droppedRefused: 1 });
      const setAside = logs.find((l) => l.msg.startsWith('updates refused by the ingest: dropped'));
      expect(setAside?.fields).toMatchObject({
        status: 403,
        updateIds: ['u-7'],
        count: 1,
        refusedBy: expect.stringMatching(/filter in front/),
        reason: expect.stringContaining('403 Forbidden'),
      });
    } finally {
      await p.stop();
    }
  });

  it("a WAF refusing one update, then the key revoked (the ingest's 403): only that update set aside, the rest held", async () => {
    let revoked = false;
    handler = (body, q, res) => {
      if (revoked) return res.writeHead(403, { 'content-type': 'application/json' }).end(INGEST_403);
      if (itemsOf(body).some((u) => u.updateId === 'u-2'))
        return res.writeHead(403, { 'content-type': 'text/html' }).end(WAF_PAGE);
      accept(body, q, res);
    };
    const { p, dropped } = queuedPusher({ forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 }, 4);
    p.start();
    try {
      await p.drained();
      expect(dropped).toEqual(['u-2']);
      revoked = true;
      for (let i = 5; i <= 8; i++) p.enqueue(update(i));
      await new Promise((r) => setTimeout(r, 200));
      expect(dropped).toEqual(['u-2']);
      expect(p.pending).toBe(4);
      revoked = false;
      await p.drained();
      expect(p.stats).toMatchObject({ accepted: 7, droppedRefused: 1 });
    } finally {
      revoked = false;
      await p.stop();
    }
  });
});

describe('StatusPusher and an answer whose body is huge or never ends (a page streamed by something in front)', () => {
  it('reads at most ANSWER_READ_LIMIT_BYTES of it and judges the answer at once: not held in memory whole, nor read until the request timeout', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let written = 0;
    let requests = 0;
    handler = (_b, _q, res) => {
      requests++;
      res.writeHead(403, { 'content-type': 'text/html' });
      // Without end, as fast as the pusher reads (a bound only so a pusher reading it all cannot exhaust the test).
      const pump = (): void => {
        while (!res.destroyed && written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return;
        }
      };
      res.on('drain', pump);
      pump();
    };
    logs.length = 0;
    const { p, dropped } = queuedPusher({ requestTimeoutMs: 4_000, baseDelayMs: 60_000, maxDelayMs: 60_000 }, 1);
    const started = Date.now();
    p.start();
    try {
      await waitFor(() => p.stats.authRefused >= 1, {
        timeoutMs: 10_000,
        intervalMs: 5,
        description: 'the 403 judged',
      });
      const took = Date.now() - started;
      // Judged as any 403 without the ingest's error code (a filter's): the lone update held, nothing dropped.
      expect({ requests, authRefused: p.stats.authRefused, dropped, pending: p.pending }).toEqual({
        requests: 1,
        authRefused: 1,
        dropped: [],
        pending: 1,
      });
      // What the pusher read, plus what socket buffers took: far below what a read to the timeout takes in.
      expect(written).toBeLessThan(ANSWER_READ_LIMIT_BYTES + 16 * 1024 * 1024);
      expect(took).toBeLessThan(3_000);
    } finally {
      await p.stop(0);
    }
  });

  // fetch holds its signal weakly (Node 20's undici): a signal nothing else held was collected, and its timeout never
  // reached the request. The collector is run throughout, as a long-running watcher's runs sooner or later.
  it.each([
    ['sends its headers, then stalls the body (a 403 page cut off)', 'body'],
    ['never answers at all', 'headers'],
  ])(
    'gives up on an endpoint that %s after requestTimeoutMs, with the collector running: not held for ever',
    async (_name, stall) => {
      const gc = runInNewContext('gc') as () => void;
      const stalled: ServerResponse[] = [];
      let requests = 0;
      handler = (body, q, res) => {
        if (requests++ > 0) return accept(body, q, res);
        stalled.push(res);
        if (stall === 'body') res.writeHead(403, { 'content-type': 'text/html' }).write('<html><body>');
      };
      const collecting = setInterval(gc, 20);
      // 1.5 s: the second (answered) request must not time out too on a loaded machine (the collector runs every 20 ms).
      const { p, dropped } = queuedPusher({ requestTimeoutMs: 1_500, baseDelayMs: 10, maxDelayMs: 20 }, 1);
      p.start();
      try {
        await waitFor(() => p.stats.accepted === 1, { timeoutMs: 10_000, intervalMs: 10, description: 'delivered' });
        expect({ requests, dropped }).toEqual({ requests: 2, dropped: [] });
        expect(p.stats).toMatchObject(stall === 'body' ? { authRefused: 1 } : { retries: 1 });
      } finally {
        clearInterval(collecting);
        for (const res of stalled) res.destroy();
        await p.stop(0);
      }
    },
  );

  it('stop() ends a request whose answer stalls, with the collector running', async () => {
    const gc = runInNewContext('gc') as () => void;
    const stalled: ServerResponse[] = [];
    handler = (_b, _q, res) => {
      stalled.push(res);
      res.writeHead(403, { 'content-type': 'text/html' }).write('<html>');
    };
    const collecting = setInterval(gc, 20);
    const { p } = queuedPusher({ requestTimeoutMs: 60_000 }, 1);
    p.start();
    try {
      await waitFor(() => stalled.length === 1, { timeoutMs: 5_000, intervalMs: 10, description: 'the request' });
      await new Promise((r) => setTimeout(r, 200));
      const stopped = await Promise.race([
        p.stop(0).then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 3_000)),
      ]);
      expect({ stopped, pending: p.pending }).toEqual({ stopped: true, pending: 1 });
    } finally {
      clearInterval(collecting);
      for (const res of stalled) res.destroy();
      await p.stop(0);
    }
  });
});

describe('StatusPusher and a filter refusing more than one payload while the head is held', () => {
  /** Resolves when the queue drains, or after `ms` (a queue held for ever). */
  const drainedWithin = (p: StatusPusher, ms: number) =>
    Promise.race([p.drained(), new Promise<void>((r) => setTimeout(r, ms))]);

  it.each([
    [403, ['u-1', 'u-3']],
    [422, ['u-1', 'u-3']],
    [403, ['u-1', 'u-2']],
  ])(
    '%i for %j: both dropped, the others delivered (the probe past the held head is halved too)',
    async (status, bad) => {
      handler = (body, q, res) =>
        itemsOf(body).some((u) => bad.includes(u.updateId))
          ? res.writeHead(status, { 'content-type': 'text/html' }).end('<html>Request blocked</html>')
          : accept(body, q, res);
      const p = new StatusPusher({ url, apiKey: 'k', log, forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 });
      const dropped = droppedBy(p);
      for (let i = 1; i <= 5; i++) p.enqueue(update(i));
      p.start();
      try {
        await drainedWithin(p, 500);
        // One refused update left alone in the queue is held until another is taken (see above): the next comes.
        p.enqueue(update(6));
        await drainedWithin(p, 2_000);
        // Before: the probe [u-2 … u-5] held a refused payload too, so it was taken for "refuses every request": the
        // whole queue held for ever (until overflow dropped the oldest).
        expect([...dropped].sort()).toEqual(bad);
        expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 2 });
      } finally {
        await p.stop(0);
      }
    },
  );

  it('delivers an update held with a refused one once the key is accepted again, with nothing queued behind them', async () => {
    let revoked = 3; // the key refused for 3 requests: both updates refused alone, held; then a filter refuses u-1
    handler = (body, q, res) => {
      if (revoked-- > 0) return res.writeHead(403).end('{"error":"forbidden"}');
      if (itemsOf(body).some((u) => u.updateId === 'u-1')) return res.writeHead(422).end('blocked');
      accept(body, q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log, forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 });
    const dropped = droppedBy(p);
    p.enqueue(update(1));
    p.enqueue(update(2));
    p.start();
    try {
      await drainedWithin(p, 1_000);
      // Before: the held updates were sent together, [u-1, u-2], refused for u-1 for ever (u-2 too, until another
      // update was queued): now halved, u-2 is taken and u-1 dropped.
      expect(received.map((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId)).slice(0, 3)).toEqual([
        ['u-1', 'u-2'],
        ['u-1'],
        ['u-2'],
      ]);
      expect(dropped).toEqual(['u-1']);
      expect(p.stats).toMatchObject({ accepted: 1, droppedRefused: 1 });
    } finally {
      await p.stop(0);
    }
  });

  it('a probe answered 413 is halved past the held head (not from the head, which is refused again)', async () => {
    handler = (body, q, res) => {
      const items = itemsOf(body);
      if (items.some((u) => u.updateId === 'u-1')) return res.writeHead(403).end('blocked');
      if (items.length > 2) return res.writeHead(413).end('too large');
      accept(body, q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log, forbiddenFlickerMs: 0, baseDelayMs: 10, maxDelayMs: 20 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 5; i++) p.enqueue(update(i));
    p.start();
    try {
      await drainedWithin(p, 2_000);
      // Before: the 413's half was taken from the head ([u-1, u-2]: refused, held), then the probe again: for ever.
      expect(dropped).toEqual(['u-1']);
      expect(p.stats).toMatchObject({ accepted: 4, droppedRefused: 1 });
    } finally {
      await p.stop(0);
    }
  });
});

describe('StatusPusher and a queue overflowing while the updates past a held head are in flight', () => {
  it("puts them back before what was queued after them (an instance's updates stay in order)", async () => {
    let probe: ServerResponse | null = null;
    let probed = (): void => undefined;
    const inFlight = new Promise<void>((r) => (probed = r));
    const taken: string[] = [];
    handler = (body, q, res) => {
      const ids = itemsOf(body).map((u) => u.updateId);
      if (ids.includes('u-1')) return res.writeHead(403).end('blocked');
      if (probe === null && ids.includes('u-2')) {
        probe = res; // answered later, once the queue has overflowed
        return probed();
      }
      taken.push(...ids);
      accept(body, q, res);
    };
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 10, maxDelayMs: 20, maxQueue: 4, lingerMs: 0 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 4; i++) p.enqueue(update(i));
    p.start();
    try {
      await inFlight; // [u-2 … u-4] in flight, u-1 held at the head
      p.enqueue(update(5, { instanceId: 'c-x', status: 'running' }));
      p.enqueue(update(6, { instanceId: 'c-x', status: 'failed' }));
      p.enqueue(update(7));
      p.enqueue(update(8)); // over maxQueue: u-1, the oldest, pushed out
      expect(dropped).toEqual(['u-1']);
      (probe as ServerResponse | null)?.writeHead(503).end('{"error":"unavailable"}');
      await Promise.race([p.drained(), new Promise<void>((r) => setTimeout(r, 2_000))]);
      // Before: put back past the new head (u-5), the retry sent u-2 … u-4 and u-6 before u-5: c-x's older state
      // (running) after its newer one (failed).
      expect(taken).toEqual(['u-2', 'u-3', 'u-4', 'u-5', 'u-6', 'u-7', 'u-8']);
    } finally {
      await p.stop(0);
    }
  });
});

describe('StatusPusher and a filter refusing every request (451)', () => {
  it('holds the queue with backoff (nothing dropped, refreshes kept) and delivers everything once it lets them through', async () => {
    let refusing = true;
    let refused = 0;
    handler = (body, q, res) => {
      if (!refusing) return accept(body, q, res);
      refused++;
      res.writeHead(451, { 'content-type': 'text/plain' }).end('blocked');
    };
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 50, maxDelayMs: 200, refreshMs: 60_000 });
    const dropped = droppedBy(p);
    for (let i = 1; i <= 200; i++) p.enqueue(update(i));
    p.start();
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      // Before: 1,500+ requests in a few seconds and all 200 dropped one by one, their refreshes ended.
      expect(dropped).toEqual([]);
      expect(p.pending).toBe(200);
      // One halving chain (~9 requests), then one request per backoff (50–200 ms), not a request per update.
      expect(refused).toBeLessThan(40);
      expect(logs.filter((l) => l.level === 'error').length).toBeLessThanOrEqual(1);
      refusing = false;
      await p.drained();
      expect(p.stats.accepted).toBe(200);
      expect(p.refreshDue(Date.now() + 61_000)).toBe(200);
    } finally {
      refusing = false;
      await p.stop();
    }
  });
});

describe('StatusPusher queue byte bound', () => {
  const long = (i: number) => update(i, { message: 'm'.repeat(2000) });
  const size = Buffer.byteLength(JSON.stringify(long(1)));

  it('drops the oldest when the queued JSON bytes pass maxQueueBytes, and counts them in its metrics', async () => {
    handler = accept;
    logs.length = 0;
    const p = new StatusPusher({ url, apiKey: 'k', log, maxQueueBytes: 3 * size + 10 });
    for (let i = 1; i <= 5; i++) p.enqueue(long(i));
    expect(p.pending).toBe(3);
    expect(p.queuedBytes).toBe(3 * size);
    expect(p.stats.droppedOverflow).toBe(2);
    const m = Object.fromEntries(pusherMetrics(p).map((x) => [x.name, x.value]));
    expect(m).toMatchObject({ fleetwatch_pusher_dropped_overflow_total: 2, fleetwatch_pusher_queued_bytes: 3 * size });
    // Logged once a minute at most (every update dropped one during an outage would flood the log).
    const full = logs.filter((l) => l.msg.includes('queue full'));
    expect(full).toHaveLength(1);
    expect(full[0]?.fields).toMatchObject({ dropped: 1, droppedTotal: 1 });
    p.start();
    await p.drained();
    await p.stop();
    expect(received.flatMap((r) => itemsOf((r as { body: unknown }).body).map((u) => u.updateId))).toEqual([
      'u-3',
      'u-4',
      'u-5',
    ]);
    expect(p.queuedBytes).toBe(0);
  });

  it('keeps its byte count through retries (what goes back to the queue counts again)', async () => {
    let n = 0;
    handler = (body, q, res) => (++n === 1 ? res.writeHead(503).end('{}') : accept(body, q, res));
    const p = new StatusPusher({ url, apiKey: 'k', log, baseDelayMs: 10, maxQueueBytes: 10 * size });
    for (let i = 1; i <= 4; i++) p.enqueue(long(i));
    p.start();
    await p.drained();
    await p.stop();
    expect(p.stats).toMatchObject({ accepted: 4, droppedOverflow: 0 });
    expect(p.queuedBytes).toBe(0);
  });

  it('refuses FLEETWATCH_LOCATION "all" (the consensus series of /metrics), naming it', () => {
    const base = { FLEETWATCH_INGEST_API_KEY: 'k' };
    expect(() => parseEnv(pusherShape, { ...base, FLEETWATCH_LOCATION: 'all' })).toThrow(
      /FLEETWATCH_LOCATION: "all" is reserved/,
    );
    expect(pusherSettings(parseEnv(pusherShape, { ...base, FLEETWATCH_LOCATION: 'all-eu' })).location).toBe('all-eu');
  });

  it('reads WATCHER_QUEUE_MAX_BYTES, 32 MiB by default', () => {
    const base = { FLEETWATCH_INGEST_API_KEY: 'k' };
    expect(pusherSettings(parseEnv(pusherShape, base)).maxQueueBytes).toBe(32 * 1024 * 1024);
    expect(pusherSettings(parseEnv(pusherShape, { ...base, WATCHER_QUEUE_MAX_BYTES: '2097152' })).maxQueueBytes).toBe(
      2_097_152,
    );
    expect(() => parseEnv(pusherShape, { ...base, WATCHER_QUEUE_MAX_BYTES: '1000' })).toThrow(
      /WATCHER_QUEUE_MAX_BYTES/,
    );
  });
});

describe('ingest URL redaction', () => {
  it('sends to a URL given with user:pass@ and a query string, and never logs them', async () => {
    handler = accept;
    logs.length = 0;
    const withSecrets = url.replace('http://', 'http://ops:pa55word@') + '/?token=qs-secret';
    const p = new StatusPusher({ url: withSecrets, apiKey: 'k', log, baseDelayMs: 10, maxDelayMs: 50 });
    p.enqueue(update(1));
    p.start();
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      p.drained().then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000))),
    ]);
    clearTimeout(timer);
    await p.stop(0);
    expect(done).toBe(true);
    expect(received).toEqual([{ auth: 'Bearer k', body: update(1) }]);
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/pa55word|ops:|qs-secret/);
    expect(logs.find((l) => l.msg.includes('userinfo'))?.fields).toEqual({
      url: `${url.replace('http://', 'http://***@')}/?***`,
    });
  });

  it('keeps userinfo and query strings out of retry messages when the ingest is away', async () => {
    const spare = createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((r) => spare.close(r));
    logs.length = 0;
    const p = new StatusPusher({
      url: `http://ops:pa55word@127.0.0.1:${port}/?token=qs-secret`,
      apiKey: 'k',
      log,
      baseDelayMs: 10,
      maxDelayMs: 20,
    });
    p.enqueue(update(1));
    p.start();
    await new Promise((r) => setTimeout(r, 200));
    await p.stop(0);
    expect(logs.filter((l) => l.msg.includes('retrying')).length).toBeGreaterThan(0);
    expect(JSON.stringify(logs)).not.toMatch(/pa55word|ops:|qs-secret/);
  });

  it.each([
    ['http://u:p@ingest:3001/?k=v', 'http://***@ingest:3001/?***', 'http://ingest:3001/'],
    ['https://u@ingest.example', 'https://***@ingest.example/', 'https://ingest.example/'],
    ['http://127.0.0.1:3001', 'http://127.0.0.1:3001/', 'http://127.0.0.1:3001'],
    ['http://ingest/base#frag', 'http://ingest/base', 'http://ingest/base'],
  ])('%s logs as %s and is sent to %s', (raw, logged, base) => {
    expect(redactUrl(raw)).toBe(logged);
    expect(ingestBaseUrl(raw)).toBe(base);
  });

  it('warns about nothing for a plain URL', () => {
    logs.length = 0;
    new StatusPusher({ url, apiKey: 'k', log });
    new StatusPusher({ url: `${url}/`, apiKey: 'k', log });
    expect(logs).toEqual([]);
  });

  it('redacts URLs inside free text', () => {
    expect(redactText('fetch http://a:b@h:1/x?token=t failed; see https://c@d/y')).toBe(
      'fetch http://***@h:1/x?*** failed; see https://***@d/y',
    );
    expect(redactText('no url here')).toBe('no url here');
  });

  it.each([
    ['/ingest', '/ingest/api/v1/status/updates'],
    ['/ingest/', '/ingest/api/v1/status/updates'],
    ['', '/api/v1/status/updates'],
    ['/', '/api/v1/status/updates'],
    // The endpoint itself (a path the pusher ignored before 926f4e6, so such a setting worked): not posted to under
    // itself — a 404 there is a refusal, and every update would be dropped.
    ['/api/v1/status/updates', '/api/v1/status/updates'],
    ['/api/v1/status/updates/', '/api/v1/status/updates'],
    ['/ingest/api/v1/status/updates', '/ingest/api/v1/status/updates'],
  ])('posts under the path of the URL it is given (%j: behind a proxy that routes a prefix)', async (base, path) => {
    const paths: string[] = [];
    handler = (body, req, res) => {
      paths.push(req.url ?? '');
      accept(body, req, res);
    };
    const p = new StatusPusher({ url: `${url}${base}`, apiKey: 'k', log });
    p.enqueue(update(1));
    p.start();
    await p.drained();
    await p.stop();
    expect(paths).toEqual([path]);
    expect(p.stats.droppedRefused).toBe(0);
  });

  it('gives the watchers a URL to log without userinfo or query string', () => {
    const v = parseEnv(pusherShape, {
      FLEETWATCH_INGEST_API_KEY: 'k',
      FLEETWATCH_INGEST_URL: 'http://ops:pa55word@ingest:3001/?token=qs-secret',
    });
    expect(pusherSettings(v).ingestUrl).toBe('http://ingest:3001/');
  });
});

describe('StatusPusher refreshes (a steady instance must not go STALE)', () => {
  const at = (iso: string) => ({ occurredAt: iso });
  const sentItems = () => received.flatMap((r) => itemsOf((r as { body: unknown }).body)) as Record<string, unknown>[];

  it('reports each instance`s latest state again once refreshMs passed since it was accepted, with a new id, dated now', async () => {
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
    p.start();
    p.enqueue(update(1, { ...at('2026-01-01T10:00:00.000Z'), status: 'exited' }));
    p.enqueue(update(1, { updateId: 'u-1b', ...at('2026-01-01T10:00:05.000Z') })); // the latest state of c-1
    p.enqueue(update(2, at('2026-01-01T10:00:00.000Z')));
    await p.drained();
    const t = Date.now();
    expect(p.refreshDue(t + 59_000)).toBe(0);
    expect(p.refreshDue(t + 61_000)).toBe(2);
    await p.drained();
    // Not again within the period that began when the refreshes were accepted.
    expect(p.refreshDue(Date.now() + 59_000)).toBe(0);
    await p.stop();
    const items = sentItems();
    expect(items).toHaveLength(5);
    const refreshes = items.slice(3);
    expect(refreshes.map((u) => [u['instanceId'], u['status'], u['occurredAt']]).sort()).toEqual([
      ['c-1', 'running', new Date(t + 61_000).toISOString()],
      ['c-2', 'running', new Date(t + 61_000).toISOString()],
    ]);
    for (const u of refreshes) expect(['u-1', 'u-1b', 'u-2']).not.toContain(u['updateId']);
    expect(p.stats.refreshed).toBe(2);
    expect(pusherMetrics(p).find((m) => m.name === 'fleetwatch_pusher_refreshed_total')?.value).toBe(2);
  });

  it('dates a later update of the instance no earlier than a refresh (the aggregator ignores older observations)', async () => {
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 1_000, lingerMs: 0 });
    p.start();
    p.enqueue(update(1, at(new Date(Date.now() - 60_000).toISOString())));
    await p.drained();
    const refreshAt = Date.now() + 5_000;
    expect(p.refreshDue(refreshAt)).toBe(1);
    // The change the watcher saw before its refresh, reported after it: dated as the refresh.
    p.enqueue(update(1, { updateId: 'u-1-died', status: 'exited', ...at(new Date(Date.now() - 1_000).toISOString()) }));
    // Another instance keeps its own time.
    const own = new Date(Date.now() - 1_000).toISOString();
    p.enqueue(update(2, at(own)));
    await p.drained();
    await p.stop();
    const byId = new Map(sentItems().map((u) => [u['updateId'], u]));
    expect(byId.get('u-1-died')?.['occurredAt']).toBe(new Date(refreshAt).toISOString());
    expect(byId.get('u-2')?.['occurredAt']).toBe(own);
  });

  it('dates an update queued after its instance`s removal (final) after the removal: the next life is not kept removed', async () => {
    // The aggregator keeps a removal against any update of the instance not newer than it (a late one of the life
    // removed): the pod re-created under its name, or the container under its name, must come after it.
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 1_000, lingerMs: 0 });
    p.start();
    p.enqueue(update(1, at(new Date(Date.now() - 60_000).toISOString())));
    await p.drained();
    const refreshAt = Date.now() + 5_000;
    expect(p.refreshDue(refreshAt)).toBe(1);
    // Deleted and re-created under its name, both seen before the refresh went out: the removal is dated as the
    // refresh, and the new life's first state, seen at the same time, must still come after it.
    const seen = new Date(Date.now() - 1_000).toISOString();
    p.enqueue(update(1, { updateId: 'u-1-removed', status: 'removed', ...at(seen) }), { final: true });
    p.enqueue(update(1, { updateId: 'u-1-new', status: 'starting', ...at(seen) }));
    // Without refreshes: a removal and the next life's state seen in the same millisecond.
    const q = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    q.start();
    const same = new Date().toISOString();
    q.enqueue(update(3, { updateId: 'u-3-removed', status: 'removed', ...at(same) }), { final: true });
    q.enqueue(update(3, { updateId: 'u-3-new', status: 'running', ...at(same) }));
    await p.drained();
    await q.drained();
    await p.stop();
    await q.stop();
    const byId = new Map(sentItems().map((u) => [u['updateId'], u]));
    const time = (id: string) => Date.parse(byId.get(id)?.['occurredAt'] as string);
    expect(time('u-1-removed')).toBe(refreshAt);
    expect(time('u-1-new')).toBeGreaterThan(time('u-1-removed'));
    expect(time('u-3-removed')).toBe(Date.parse(same));
    expect(time('u-3-new')).toBeGreaterThan(time('u-3-removed'));
  });

  it('a refresh or a removal dated before this clock was stepped back moves no later update past what the ingest takes', async () => {
    handler = accept;
    const realNow = Date.now.bind(Date);
    let ahead = 3_600_000; // this host's clock an hour ahead: stepped back (NTP) below
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + ahead);
    try {
      const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      p.start();
      p.enqueue(update(1, at(new Date(Date.now() - 1_000).toISOString())));
      p.enqueue(update(2, at(new Date(Date.now() - 1_000).toISOString())));
      await p.drained();
      expect(p.refreshDue(Date.now() + 61_000)).toBe(2); // dated an hour and a minute ahead of the true time
      await p.drained();
      p.enqueue(update(2, { updateId: 'u-2-removed', status: 'removed', ...at(new Date().toISOString()) }), {
        final: true,
      });
      await p.drained();
      ahead = 0;
      // Seen after the step: floored at the refresh (c-1) or just past the removal (c-2, re-created), each was dated
      // an hour ahead — beyond the ingest's allowance (INGEST_MAX_FUTURE_SKEW_SECONDS, 300 s), its batch refused and
      // the update dropped, and so every later one of the instance until the clock caught up. Kept as dated instead.
      const seen = new Date(Date.now() - 1_000).toISOString();
      p.enqueue(update(1, { updateId: 'u-1-died', status: 'exited', ...at(seen) }));
      p.enqueue(update(2, { updateId: 'u-2-new', status: 'starting', ...at(seen) }));
      await p.drained();
      await p.stop();
      const byId = new Map(sentItems().map((u) => [u['updateId'], u]));
      expect(byId.get('u-1-died')?.['occurredAt']).toBe(seen);
      expect(byId.get('u-2-new')?.['occurredAt']).toBe(seen);
    } finally {
      clock.mockRestore();
    }
  });

  it('keeps refreshing after this clock is stepped back: the period is not counted from a time ahead of the clock', async () => {
    handler = accept;
    const realNow = Date.now.bind(Date);
    let ahead = 3_600_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + ahead);
    try {
      const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      p.start();
      p.enqueue(update(1));
      await p.drained(); // accepted as the clock read an hour ahead
      ahead = 0; // stepped back an hour
      // A period after the step: refreshed. Before, not until the clock had caught up an hour later — the instance
      // went STALE meanwhile (300 s with nothing heard).
      expect(p.refreshDue(Date.now() + 61_000)).toBe(1);
      await p.drained();
      // And counted from then on as ever.
      expect(p.refreshDue(Date.now() + 59_000)).toBe(0);
      await p.stop();
    } finally {
      clock.mockRestore();
    }
  });

  it('sends no refresh while an update of the instance is still unanswered, none after a final update, none while refreshWhile says no', async () => {
    let refuse = true;
    handler = (body, q, res) =>
      refuse
        ? res.writeHead(503, { 'retry-after': '0', 'content-type': 'application/json' }).end('{}')
        : accept(body, q, res);
    let following = true;
    const p = new StatusPusher({
      url,
      apiKey: 'k',
      log,
      refreshMs: 1_000,
      lingerMs: 0,
      baseDelayMs: 10,
      maxDelayMs: 20,
      refreshWhile: () => following,
    });
    p.start();
    p.enqueue(update(1));
    p.enqueue(update(2));
    await new Promise((r) => setTimeout(r, 50));
    // Both still unanswered (503s): nothing to refresh, however late.
    expect(p.refreshDue(Date.now() + 10_000)).toBe(0);
    refuse = false;
    await p.drained();
    // c-2 removed: its last update.
    p.enqueue(update(2, { updateId: 'u-2-removed', status: 'stopped' }), { final: true });
    await p.drained();
    following = false;
    expect(p.refreshDue(Date.now() + 10_000)).toBe(0);
    following = true;
    expect(p.refreshDue(Date.now() + 10_000)).toBe(1);
    await p.drained();
    await p.stop();
    expect(sentItems().filter((u) => u['instanceId'] === 'c-2' && u['updateId'] !== 'u-2')).toHaveLength(1);
    // c-1: retried as itself until accepted, then refreshed once.
    expect(sentItems().filter((u) => u['instanceId'] === 'c-1' && u['updateId'] !== 'u-1')).toHaveLength(1);
  });

  it('stops refreshing an instance released (its state no longer known), until a new update or keep of it', async () => {
    handler = accept;
    const p = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 1_000, lingerMs: 0 });
    p.start();
    p.enqueue(update(1, { location: 'here' }));
    p.enqueue(update(2));
    await p.drained();
    p.release({ instanceId: 'c-1', location: 'here' });
    p.release({ instanceId: 'c-2', location: 'elsewhere' }); // another instance: c-2 here has no location
    expect(p.refreshDue(Date.now() + 10_000)).toBe(1); // c-2 only
    await p.drained();
    p.keep(update(1, { location: 'here' }));
    expect(p.refreshDue(Date.now() + 20_000)).toBe(2);
    await p.drained();
    await p.stop();
  });

  it('refreshes on its own timer once started, and never when refreshMs is 0', async () => {
    handler = accept;
    const on = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 200, lingerMs: 0 });
    const off = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    on.start();
    off.start();
    on.enqueue(update(1));
    off.enqueue(update(2));
    await new Promise((r) => setTimeout(r, 1_000));
    await on.stop();
    await off.stop();
    expect(on.stats.refreshed).toBeGreaterThanOrEqual(2);
    expect(off.stats.refreshed).toBe(0);
    expect(off.refreshDue(Date.now() + 3_600_000)).toBe(0);
    expect(sentItems().filter((u) => u['instanceId'] === 'c-2')).toHaveLength(1);
  });

  it('reads WATCHER_REFRESH_SECONDS, 60 s by default (well below the aggregator`s 300 s STALE window)', () => {
    const base = { FLEETWATCH_INGEST_API_KEY: 'k' };
    expect(pusherSettings(parseEnv(pusherShape, base)).refreshMs).toBe(60_000);
    expect(pusherSettings(parseEnv(pusherShape, { ...base, WATCHER_REFRESH_SECONDS: '0' })).refreshMs).toBe(0);
  });
});
