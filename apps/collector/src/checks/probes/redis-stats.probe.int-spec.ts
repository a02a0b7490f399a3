import { redisStatsCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { testEnv } from '@fleetwatch/testing';
import { Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { asCheckResult, closedPort, floodingServer, probeContext } from './probes.int-helpers';
import {
  countValues,
  MAX_REPLY_BYTES,
  MAX_TRACKED_VALUES,
  MAX_VALUE_LENGTH,
  redisStatsProbe,
} from './redis-stats.probe';

jest.setTimeout(60_000);

// Against the shared local Redis, with keys of this run's own (removed afterwards): an
// application's client states kept in a hash become counts by state.

const env = testEnv();
const url = new URL(env.redisUrl);
const host = url.hostname;
const port = Number(url.port || 6379);
const k = (name: string) => `fwtest-${env.runId}-stats-${name}`;

type Input = Partial<Extract<CheckInput, { type: 'redis-stats' }>>;
const check = (fields: Input = {}) =>
  redisStatsCheckFields.parse({ name: 'rs', type: 'redis-stats', host, port, ...fields });
type Out = Awaited<ReturnType<typeof redisStatsProbe>>;
const value = (out: Out, name: string, labels: Record<string, string> = {}) =>
  out.metrics?.find((m) => m.name === name && Object.entries(labels).every(([key, v]) => m.labels?.[key] === v))?.value;

describe('redis-stats probe against the local server', () => {
  let admin: Redis;
  beforeAll(async () => {
    admin = new Redis(env.redisUrl);
    const states = ['active', 'active', 'active', 'paused', 'blocked', 'blocked', 'deactivated'];
    await admin.hset(k('clients'), Object.fromEntries(states.map((s, i) => [`client-${i}`, s])));
    await admin.sadd(k('set'), 'a', 'b', 'c');
    await admin.rpush(k('list'), '1', '2');
    await admin.set(k('counter'), '42.5');
    await admin.set(k('text'), 'not a number');
    // A hash larger than one HSCAN page, to show the cap.
    const big: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) big[`f${i}`] = `v${i % 30}`;
    await admin.hset(k('big'), big);
  });
  afterAll(async () => {
    await admin.del(k('clients'), k('set'), k('list'), k('counter'), k('text'), k('big'));
    await admin.quit();
  });

  it('INFO figures as metrics, and a hash of client states counted by value', async () => {
    const out = await redisStatsProbe(
      check({
        keys: [
          { key: k('clients') },
          { key: k('set') },
          { key: k('list'), type: 'list' },
          { key: k('counter') },
          { key: k('text') },
          { key: k('missing') },
        ],
      }),
      probeContext(),
    );
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(value(out, 'redis_up')).toBe(1);
    expect(value(out, 'redis_connected_clients')).toBeGreaterThanOrEqual(2);
    expect(value(out, 'redis_used_memory_bytes')).toBeGreaterThan(0);
    expect(value(out, 'redis_ops_per_sec')).toBeGreaterThanOrEqual(0);
    expect(value(out, 'redis_evicted_keys_total')).toBeGreaterThanOrEqual(0);
    expect(value(out, 'redis_keyspace_keys', { db: '0' })).toBeGreaterThanOrEqual(6);
    const key = k('clients');
    expect(value(out, 'redis_key_hash_values', { key, value: 'active' })).toBe(3);
    expect(value(out, 'redis_key_hash_values', { key, value: 'paused' })).toBe(1);
    expect(value(out, 'redis_key_hash_values', { key, value: 'blocked' })).toBe(2);
    expect(value(out, 'redis_key_hash_values', { key, value: 'deactivated' })).toBe(1);
    expect(value(out, 'redis_key_length', { key })).toBe(7);
    expect(value(out, 'redis_key_truncated', { key })).toBe(0);
    expect(value(out, 'redis_key_length', { key: k('set') })).toBe(3);
    expect(value(out, 'redis_key_length', { key: k('list') })).toBe(2);
    expect(value(out, 'redis_key_value', { key: k('counter') })).toBe(42.5);
    expect(value(out, 'redis_key_value', { key: k('text') })).toBeUndefined();
    expect(value(out, 'redis_key_length', { key: k('text') })).toBe('not a number'.length);
    expect(value(out, 'redis_key_exists', { key: k('missing') })).toBe(0);

    // What travels is what the contract accepts; conditions read the same figures.
    expect(asCheckResult({ ...out, ok: true }).success).toBe(true);
    const facts = { ok: out.ok, latencyMs: out.latencyMs, ...out.facts };
    expect(
      evaluateConditions(
        [
          `metric("redis_key_hash_values", {"key": "${key}", "value": "blocked"}) <= 2`,
          'metric("redis_connected_clients") >= 1',
        ],
        facts,
      ),
    ).toEqual({ ok: true });
    expect(
      evaluateConditions([`metric("redis_key_hash_values", {"key": "${key}", "value": "active"}) < 3`], facts).ok,
    ).toBe(false);
  });

  it('bounds a large hash: HSCAN stops at maxFields and says truncated; values beyond maxValues are summed', async () => {
    const key = k('big');
    const out = await redisStatsProbe(check({ keys: [{ key, maxFields: 1500, maxValues: 10 }] }), probeContext());
    expect(out.ok).toBe(true);
    expect(value(out, 'redis_key_length', { key })).toBe(3000);
    expect(value(out, 'redis_key_fields_read', { key })).toBe(1500);
    expect(value(out, 'redis_key_truncated', { key })).toBe(1);
    const counted = (out.metrics ?? []).filter((m) => m.name === 'redis_key_hash_values');
    expect(counted).toHaveLength(10);
    const sum = counted.reduce((s, m) => s + m.value, 0) + (value(out, 'redis_key_hash_other', { key }) ?? 0);
    expect(sum).toBe(1500);
  });

  it('a key of another type than the check says: that key is named, the rest still read', async () => {
    const out = await redisStatsProbe(
      check({ keys: [{ key: k('set'), type: 'hash' }, { key: k('list') }] }),
      probeContext(),
    );
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/WRONGTYPE/);
    expect(value(out, 'redis_key_length', { key: k('list') })).toBe(2);
    expect(value(out, 'redis_up')).toBe(1);
  });

  it('at most 500 figures: the rest are dropped and counted', async () => {
    const keys = Array.from({ length: 32 }, (_, i) => ({ key: `${k('clients')}`, maxValues: 20 + (i % 2) }));
    const many: Record<string, string> = {};
    for (let i = 0; i < 100; i++) many[`c${i}`] = `state-${i % 25}`;
    await admin.hset(k('clients'), many);
    const out = await redisStatsProbe(check({ keys }), probeContext());
    expect(out.metrics?.length).toBe(500);
    expect((out.facts.result as Record<string, number>)['metricsDropped']).toBeGreaterThan(0);
    await admin.del(k('clients'));
  });

  it('reads the database it names: one the server lacks is DOWN naming why (was UP, reading db 0)', async () => {
    const missing = await redisStatsProbe(check({ db: 999, keys: [{ key: k('counter') }] }), probeContext());
    expect(missing).toMatchObject({ ok: false });
    expect(missing.failureReason).toMatch(/DB index is out of range/);
    const other = await redisStatsProbe(check({ db: 5, keys: [{ key: k('counter') }] }), probeContext());
    expect(other.ok).toBe(true);
    expect(value(other, 'redis_key_exists', { key: k('counter') })).toBe(0); // set in db 0 only
    const zero = await redisStatsProbe(check({ keys: [{ key: k('counter') }] }), probeContext());
    expect(value(zero, 'redis_key_exists', { key: k('counter') })).toBe(1);
  });

  it('down: a closed port, and a denied address never connected to', async () => {
    const closed = await redisStatsProbe(check({ port: await closedPort() }), probeContext());
    expect(closed).toMatchObject({ ok: false, metrics: [] });
    expect(closed.failureReason).toMatch(/ECONNREFUSED/);
    const denied = await redisStatsProbe(
      check({ host: '127.0.0.2' }),
      probeContext({ policy: createTargetPolicy(['127.0.0.2/32']) }),
    );
    expect(denied.failureReason).toMatch(/denied network 127\.0\.0\.2\/32/);
  });

  it('countValues keeps the most common values (ties: first seen) and sums the rest, long and untracked values too', () => {
    expect(countValues(['a', 'b', 'a', 'c', 'c', 'd'], 2)).toEqual({
      counts: new Map([
        ['a', 2],
        ['c', 2],
      ]),
      other: 2,
      long: 0,
      capped: false,
    });
    const long = 'x'.repeat(MAX_VALUE_LENGTH + 1);
    expect(countValues(['a', long, 'b', 'c', 'a', long, 'c', 'a'], 5, 2)).toEqual({
      counts: new Map([
        ['a', 3],
        ['b', 1],
      ]),
      other: 4,
      long: 2,
      capped: true,
    });
    expect(countValues(['x'.repeat(MAX_VALUE_LENGTH)], 1).counts.size).toBe(1);
  });

  it('a hash of many distinct and long values: bounded output, exact counts of the common values, both noted', async () => {
    const key = k('wide');
    // 3000 active, 1500 paused, 500 blocked; more distinct values than are tracked, each once;
    // and 1000 values of 5 KB (5 MB), too long to be a label.
    const fields: Array<[string, string]> = [];
    for (let i = 0; i < 3000; i++) fields.push([`a${i}`, 'active']);
    for (let i = 0; i < 1500; i++) fields.push([`p${i}`, 'paused']);
    for (let i = 0; i < 500; i++) fields.push([`b${i}`, 'blocked']);
    for (let i = 0; i < 2 * MAX_TRACKED_VALUES; i++) fields.push([`u${i}`, `user-${i}`]);
    for (let i = 0; i < 1000; i++) fields.push([`l${i}`, `${'x'.repeat(5000)}${i}`]);
    for (let i = 0; i < fields.length; i += 500) await admin.hset(key, Object.fromEntries(fields.slice(i, i + 500)));
    try {
      const out = await redisStatsProbe(check({ keys: [{ key, maxValues: 5 }] }), probeContext());
      expect(out.ok).toBe(true);
      expect(value(out, 'redis_key_fields_read', { key })).toBe(fields.length);
      expect(value(out, 'redis_key_truncated', { key })).toBe(0);
      const counted = (out.metrics ?? []).filter((m) => m.name === 'redis_key_hash_values');
      expect(counted).toHaveLength(5);
      expect(value(out, 'redis_key_hash_values', { key, value: 'active' })).toBe(3000);
      expect(value(out, 'redis_key_hash_values', { key, value: 'paused' })).toBe(1500);
      expect(value(out, 'redis_key_hash_values', { key, value: 'blocked' })).toBe(500);
      for (const m of counted) expect(m.labels?.['value']?.length).toBeLessThanOrEqual(MAX_VALUE_LENGTH);
      const other = value(out, 'redis_key_hash_other', { key }) ?? 0;
      expect(counted.reduce((s, m) => s + m.value, 0) + other).toBe(fields.length);
      expect(value(out, 'redis_key_hash_long_values', { key })).toBe(1000);
      expect(out.facts.result).toMatchObject({ longValueKeys: 1, valueCappedKeys: 1, truncatedKeys: 0 });
      expect(asCheckResult({ ...out, ok: true }).success).toBe(true);
    } finally {
      await admin.del(key);
    }
  });
});

/** The commands (lower-case names) in what a RESP client sent: `*N\r\n$len\r\nname\r\n…`. */
function commandsIn(data: Buffer): string[] {
  return [...data.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)].map((m) => m[1].toLowerCase());
}

/** A RESP bulk string. */
const bulk = (text: string) => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;

const asPayload = asCheckResult;

describe('redis-stats against a server whose reply never ends', () => {
  // RESP2 servers (no HELLO) that answer as a Redis would until one command, then announce a 1 GiB bulk string for it
  // and stream 64 MiB: ioredis holds a reply until its last byte, so without a bound all of it piled up in the
  // collector until the timeout.
  const streamed = 64 * 1024 * 1024;
  const answer = (s: Socket, command: string): void => {
    if (command === 'hello') s.write("-ERR unknown command 'hello'\r\n");
    else if (command === 'ping') s.write('+PONG\r\n');
    else if (command === 'info') s.write(bulk('# Server\r\nredis_version:7.2.4\r\nrole:master\r\n'));
    else if (command === 'type') s.write('+hash\r\n');
    else if (command === 'hlen') s.write(':3\r\n');
    else s.write(`-ERR unexpected ${command}\r\n`);
  };
  const floodOn = (flooded: string) =>
    floodingServer((data, s) => {
      for (const command of commandsIn(data)) {
        if (command === flooded)
          return command === 'hscan' ? `*2\r\n$1\r\n0\r\n*2\r\n$1\r\nf\r\n$${1024 ** 3}\r\n` : `$${1024 ** 3}\r\n`;
        answer(s, command);
      }
      return null;
    }, streamed);

  it.each([
    ['INFO', 'info'],
    ['HSCAN', 'hscan'],
  ])(
    'a reply to %s over MAX_REPLY_BYTES: DOWN saying so, the connection cut near the limit, other checks unharmed',
    async (name, flooded) => {
      const flood = await floodOn(flooded);
      try {
        const started = performance.now();
        // A normal check of the real server at the same time: the flood costs it nothing.
        const [out, other] = await Promise.all([
          redisStatsProbe(
            check({ host: '127.0.0.1', port: flood.port, keys: [{ key: 'h' }, { key: 'other' }] }),
            probeContext({ timeoutMs: 20_000 }),
          ),
          redisStatsProbe(check(), probeContext()),
        ]);
        expect(out).toMatchObject({
          ok: false,
          failureReason: `the server's reply to ${name} exceeded ${MAX_REPLY_BYTES} bytes`,
          metrics: [],
        });
        // Cut when the reply passed the limit, not at the timeout.
        expect(performance.now() - started).toBeLessThan(10_000);
        await flood.expectCut();
        // What the server got out before the cut: the limit, and what the sockets' buffers hold on the way.
        expect(flood.sent.bytes).toBeLessThan(MAX_REPLY_BYTES + 16 * 1024 * 1024);
        expect(asPayload(out).success).toBe(true);
        expect(other).toMatchObject({ ok: true });
        expect(other.metrics?.find((m) => m.name === 'redis_up')?.value).toBe(1);
      } finally {
        await flood.close();
      }
    },
  );

  it('replies each under the limit: a run whose replies add up past it still reads (the bound is per reply)', async () => {
    // INFO and every HSCAN page just under MAX_REPLY_BYTES / 2: three replies together are well past the limit.
    const half = Math.floor(MAX_REPLY_BYTES / 2);
    const pad = 'x'.repeat(half);
    const pages = 3;
    let page = 0;
    const flood = await floodingServer((data, s) => {
      for (const command of commandsIn(data)) {
        if (command === 'info') s.write(bulk(`redis_version:7.2.4\r\npad:${pad}\r\n`));
        else if (command === 'hscan') {
          page++;
          const next = page < pages ? String(page) : '0';
          s.write(`*2\r\n${bulk(next)}*2\r\n${bulk(`f${page}`)}${bulk(pad)}`);
        } else answer(s, command);
      }
      return null;
    }, 0);
    try {
      const out = await redisStatsProbe(
        check({ host: '127.0.0.1', port: flood.port, keys: [{ key: 'h' }] }),
        probeContext({ timeoutMs: 20_000 }),
      );
      expect(out.failureReason).toBeUndefined();
      expect(out.ok).toBe(true);
      expect(page).toBe(pages);
      expect(value(out, 'redis_key_fields_read', { key: 'h' })).toBe(pages);
    } finally {
      await flood.close();
    }
  });

  it('a reply that trickles in under the limit ends at the timeout, not when the server stops', async () => {
    const flood = await floodingServer((data, s) => {
      for (const command of commandsIn(data)) {
        if (command === 'info') {
          s.write(`$${1024 ** 3}\r\n`);
          const drip = setInterval(() => (s.destroyed ? clearInterval(drip) : s.write('x'.repeat(1024))), 20);
          s.on('close', () => clearInterval(drip));
        } else answer(s, command);
      }
      return null;
    }, 0);
    try {
      const started = performance.now();
      const out = await redisStatsProbe(
        check({ host: '127.0.0.1', port: flood.port }),
        probeContext({ timeoutMs: 500 }),
      );
      expect(out).toMatchObject({ ok: false, failureReason: expect.stringMatching(/timed out after 500 ms/) });
      expect(performance.now() - started).toBeLessThan(2000);
      const until = Date.now() + 3000;
      while (flood.connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(flood.connections.size).toBe(0);
    } finally {
      await flood.close();
    }
  });
});
