import { buildEnvelope, ingressCommandStamp, isNewerIngressStamp, Messages } from '@fleetwatch/contracts';
import { testEnv } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { IngressControlStore, type IngressControlRecord } from './ingress-control';
import { createRedis } from './redis';

// The ingress record's compare-and-set in Redis (real server): only a newer stamp
// replaces it, compared as the JS rule compares (byte by byte), and each change is
// announced on the channel.

const prefix = `${testEnv().redisPrefix}ingress-control:`;
let redis: Redis;
let sub: Redis;
let store: IngressControlStore;

beforeAll(() => {
  redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
  sub = createRedis({ url: testEnv().redisUrl });
  store = new IngressControlStore(redis, { keyPrefix: prefix });
});
afterAll(async () => {
  await redis.del('ingress:control');
  redis.disconnect();
  sub.disconnect();
});

const source = { site: 's', service: 'sync-orchestrator' as const };
function record(paused: boolean, occurredAt: string, id?: string): IngressControlRecord {
  const env = buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'r' }, { occurredAt, id });
  return {
    paused,
    reason: paused ? 'pause' : 'resume',
    until: null,
    stamp: ingressCommandStamp(env),
    commandId: env.id,
    appliedAt: new Date().toISOString(),
  };
}

it('stores a newer record, keeps it against older or equal ones, and announces each change', async () => {
  const heard: string[] = [];
  sub.on('message', (_channel: string, message: string) => heard.push(message));
  await sub.subscribe(store.channel);
  expect(await store.read()).toBeNull();

  const pause = record(true, '2025-01-01T00:00:01.000Z');
  expect(await store.apply(pause)).toEqual({ applied: true, current: pause });
  const olderResume = record(false, '2025-01-01T00:00:00.999Z');
  expect(await store.apply(olderResume)).toEqual({ applied: false, current: pause });
  expect(await store.apply(pause)).toEqual({ applied: false, current: pause });
  const resume = record(false, '2025-01-01T00:00:02.000Z');
  expect((await store.apply(resume)).applied).toBe(true);
  expect(await store.read()).toEqual(resume);

  await new Promise((r) => setTimeout(r, 100));
  expect(heard.map((m) => (JSON.parse(m) as IngressControlRecord).commandId)).toEqual([
    pause.commandId,
    resume.commandId,
  ]);
});

it('orders stamps exactly as isNewerIngressStamp does (ids within one millisecond, hyphens, case)', async () => {
  await redis.del('ingress:control');
  const at = '2025-02-01T00:00:00.000Z';
  const ids = [
    '0190a000-0000-7000-8000-000000000001',
    '0190a000-0000-7000-8000-00000000000a',
    '0190a000-0000-7000-8000-0000000000a0',
    '0190a000-0000-7000-9000-000000000000',
    '0190a000-0000-7001-8000-000000000000',
    '0190a0ff-0000-7000-8000-000000000000',
  ];
  let current: IngressControlRecord | null = null;
  // Every order of application ends with the same, greatest stamp in force, and each answer matches the JS rule.
  for (const order of [ids, [...ids].reverse(), [ids[2], ids[0], ids[5], ids[1], ids[4], ids[3]]]) {
    await redis.del('ingress:control');
    current = null;
    for (const id of order) {
      const r = record(true, at, id);
      const expected = isNewerIngressStamp(r.stamp, current?.stamp);
      const result = await store.apply(r);
      expect(result.applied).toBe(expected);
      current = result.current;
    }
    expect(current?.commandId).toBe(ids[5]);
  }
});
