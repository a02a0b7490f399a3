import { EventEmitter } from 'node:events';
import { NotFoundError } from '@fleetwatch/domain';
import { CorruptRecordError, type LiveStateStore } from '@fleetwatch/live-state';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config';
import type { TargetsService } from '../targets/targets.service';
import { fakeSocket, socketOpener } from './ws-hub.spec-helpers';
import {
  CORRUPT_RECORD_LOG_MS,
  corruptTarget,
  DEGRADED_READS_REASON,
  DEGRADED_REASON,
  READ_FAILURES_DEGRADED,
  WsHub,
} from './ws-hub.service';

// What a socket hears while the replica's live-state feed (its Redis subscriber) is away: `degraded` once when it is
// lost, `resync` once it is back; and what a subscription to a target that does not exist answers.

const RESYNC_MIN_MS = 10_000;

function hubWith(
  getTarget: (id: string) => Promise<unknown> = async () => ({ id: 'x', locations: [] }),
  liveState: Partial<Record<'getHostMetricsMany' | 'readTargets' | 'ping', (ids: string[]) => Promise<unknown>>> = {},
) {
  const config = {
    wsMaxSocketsPerPrincipal: 100,
    wsMaxSocketsPerUser: 100,
    wsMaxBufferedBytes: 1 << 20,
    wsResyncMinIntervalMs: RESYNC_MIN_MS,
  } as GatewayConfig;
  const live = { statusChannel: 'live:status', ...liveState } as unknown as LiveStateStore;
  const targets = { get: getTarget } as unknown as TargetsService;
  const logger = { warn: jest.fn(), info: jest.fn() };
  const hub = new WsHub(config, live, targets, logger as unknown as Logger);
  // The subscriber as the hub holds it once booted (onApplicationBootstrap wires ioredis' 'close' and 'ready' to these).
  const subscriber = Object.assign(new EventEmitter(), { subscribe: async () => 1 });
  const internals = hub as unknown as {
    subscriber: unknown;
    subscriptionLost(s: unknown): void;
    resubscribed(s: unknown): Promise<void>;
    poll(): Promise<void>;
  };
  internals.subscriber = subscriber;
  const open = socketOpener(hub);
  return {
    hub,
    open,
    logger,
    lost: () => internals.subscriptionLost(subscriber),
    back: () => internals.resubscribed(subscriber),
    stats: () => hub.snapshot(),
    poll: () => internals.poll(),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('live-state outage', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('tells every open socket `degraded` once per outage, a socket opened during it too, and `resync` when it ends', async () => {
    const { open, lost, back, logger, stats } = hubWith();
    const first = open();
    const second = open();
    lost();
    lost(); // ioredis closes again at each failed reconnect
    lost();
    expect(first.sent.filter((m) => m.type === 'degraded')).toEqual([{ type: 'degraded', reason: DEGRADED_REASON }]);
    expect(second.types()).toEqual(['ready', 'degraded']);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(stats().degraded).toBe(1); // fleetwatch_gateway_ws_degraded_total: one per outage
    const during = open();
    expect(during.types()).toEqual(['ready', 'degraded']);

    await back();
    for (const s of [first, second, during]) expect(s.types()).toEqual(['ready', 'degraded', 'resync']);
    // Over: a socket opened now hears nothing of it.
    expect(open().types()).toEqual(['ready']);
    lost(); // the next outage is counted again
    expect(stats().degraded).toBe(2);
  });

  it('a resync due while the feed is lost again is held back until it is back (it would say live updates resumed)', async () => {
    const { open, lost, back } = hubWith();
    const s = open();
    lost();
    await back(); // resync at once (the first)
    lost(); // a second outage: degraded again
    await back(); // within the interval: the resync waits for its end…
    lost(); // …and the feed is lost again before it
    expect(s.types()).toEqual(['ready', 'degraded', 'resync', 'degraded']);
    jest.advanceTimersByTime(RESYNC_MIN_MS + 1);
    expect(s.types()).toEqual(['ready', 'degraded', 'resync', 'degraded']);
    await back();
    expect(s.types()).toEqual(['ready', 'degraded', 'resync', 'degraded', 'resync']);
  });
});

describe('reads of live state failing while the subscriber stays connected', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  // Live state that answers until `down` is set (a read slower than GATEWAY_REDIS_TIMEOUT_MS, a lost data connection).
  function flaky() {
    const state = { down: false };
    const fail = async () => {
      if (state.down) throw new Error('Command timed out (redis-0.internal:6379)');
    };
    const env = hubWith(
      async (id) => {
        await fail();
        return { id, locations: [] };
      },
      { ping: fail },
    );
    const watch = async (s: ReturnType<typeof fakeSocket>, id: string, targetId: string) => {
      s.emit(JSON.stringify({ type: 'subscribe', id, topic: 'target', targetId }));
      await settle();
    };
    return { ...env, state, watch };
  }

  it(`tells every socket \`degraded\` after ${READ_FAILURES_DEGRADED} failed reads in a row, once, and \`resync\` once live state answers`, async () => {
    const { open, poll, stats, state, watch } = flaky();
    const s = open();
    await watch(s, 'w', 'instance:web-1');
    const quiet = open();
    state.down = true;
    for (let i = 1; i < READ_FAILURES_DEGRADED; i++) await poll();
    expect(s.types()).toEqual(['ready', 'subscribed', 'target']); // a blip: no word yet
    await poll();
    expect(s.sent.at(-1)).toEqual({ type: 'degraded', reason: DEGRADED_READS_REASON });
    expect(quiet.types()).toEqual(['ready', 'degraded']);
    for (let i = 0; i < 5; i++) await poll(); // still failing: nothing more
    const during = open();
    expect(during.types()).toEqual(['ready', 'degraded']);
    expect(stats().degraded).toBe(1);
    expect(JSON.stringify([s.sent, quiet.sent, during.sent])).not.toContain('redis-0.internal');

    state.down = false;
    await poll();
    for (const x of [s, quiet, during]) expect(x.types().slice(-2)).toEqual(['degraded', 'resync']);
    expect(s.types()).toEqual(['ready', 'subscribed', 'target', 'degraded', 'resync']);
    await poll();
    expect(open().types()).toEqual(['ready']); // over
  });

  it('a corrupt record (Redis answered) is no failed read: counted apart, logged once a minute, never `degraded`', async () => {
    const { open, poll, stats, logger } = hubWith(async () => {
      throw new CorruptRecordError('target:instance:web-1', 'tags');
    });
    const s = open();
    s.emit(JSON.stringify({ type: 'subscribe', id: 'w', topic: 'target', targetId: 'instance:web-1' }));
    await settle();
    for (let i = 0; i < READ_FAILURES_DEGRADED * 3; i++) await poll();
    expect(s.types()).toEqual(['ready', 'subscribed', 'error']);
    expect(s.sent[2]).toEqual({ type: 'error', id: 'w', message: corruptTarget('instance:web-1') });
    expect(stats()).toMatchObject({ degraded: 0, resyncs: 0, corruptRecords: 1 + READ_FAILURES_DEGRADED * 3 });
    const corruptLines = () =>
      logger.warn.mock.calls.filter(([, text]) => String(text).includes('corrupt record')) as [
        Record<string, unknown>,
        string,
      ][];
    expect(corruptLines()).toHaveLength(1);
    expect(corruptLines()[0][0]).toEqual({ record: 'target:instance:web-1', field: 'tags', corruptReads: 1 });
    // A minute on: one more line, with the reads of it since the last.
    jest.advanceTimersByTime(CORRUPT_RECORD_LOG_MS);
    await poll();
    expect(corruptLines()).toHaveLength(2);
    expect(corruptLines()[1][0]).toMatchObject({ corruptReads: READ_FAILURES_DEGRADED * 3 + 1 });
  });

  it('failures that an answer interrupts say nothing (no flapping)', async () => {
    const { open, poll, stats, state, watch } = flaky();
    const s = open();
    await watch(s, 'w', 'instance:web-1');
    for (let round = 0; round < 4; round++) {
      state.down = true;
      for (let i = 1; i < READ_FAILURES_DEGRADED; i++) await poll();
      state.down = false;
      await poll();
    }
    expect(s.types()).toEqual(['ready', 'subscribed', 'target']);
    expect(stats().degraded).toBe(0);
  });

  it('ends with a resync once live state answers, though no socket watches anything left to read', async () => {
    const { open, poll, state, watch } = flaky();
    const s = open();
    await watch(s, 'w', 'instance:web-1');
    state.down = true;
    for (let i = 0; i < READ_FAILURES_DEGRADED; i++) await poll();
    s.emit(JSON.stringify({ type: 'unsubscribe', id: 'w' }));
    await settle();
    await poll();
    state.down = false;
    await poll();
    expect(s.types()).toEqual(['ready', 'subscribed', 'target', 'degraded', 'unsubscribed', 'resync']);
  });

  it('a PING that answers does not end it while the reads the sockets watch still fail (no degraded/resync flapping)', async () => {
    // Redis answers PING but not the watched read (a record it refuses to read, a read slower than the timeout while
    // PING is not): a resync on PING alone said live updates were back, every dashboard re-read everything, and three
    // polls later the same reads failed again — `degraded` and `resync` to every socket of the replica every ~10 s.
    const pings: number[] = [];
    const env = hubWith(
      async () => {
        throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
      },
      { ping: async () => void pings.push(1) },
    );
    const s = env.open();
    s.emit(JSON.stringify({ type: 'subscribe', id: 'w', topic: 'target', targetId: 'instance:web-1' }));
    await settle();
    for (let i = 0; i < 30; i++) {
      await env.poll();
      jest.advanceTimersByTime(2_000);
      await settle();
    }
    expect(s.types()).toEqual(['ready', 'subscribed', 'error', 'degraded']);
    expect(env.stats().degraded).toBe(1);
    expect(env.stats().resyncs).toBe(0);
    expect(pings).toEqual([]); // the watched reads are what is asked: no PING besides them
  });

  it('watched reads that keep failing beside one that answers in the same poll say nothing (Redis answers)', async () => {
    // Three watched targets whose records cannot be read (refused, or each slower than the timeout) and one that
    // answers: counted per read, the three in a row said `degraded` and the fourth `resync`, every poll.
    const env = hubWith(async (id) => {
      if (id.startsWith('instance:bad'))
        throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
      return { id, locations: [] };
    });
    const s = env.open();
    for (const id of ['instance:bad-1', 'instance:bad-2', 'instance:bad-3', 'instance:ok']) {
      s.emit(JSON.stringify({ type: 'subscribe', id, topic: 'target', targetId: id }));
      await settle();
    }
    for (let i = 0; i < 10; i++) {
      await env.poll();
      jest.advanceTimersByTime(2_000);
      await settle();
    }
    expect(s.types().filter((t) => t === 'degraded' || t === 'resync')).toEqual([]);
    expect(env.stats().degraded).toBe(0);
  });

  it('with the subscriber lost too: one `degraded`, and the resync waits for both to be back', async () => {
    const { open, poll, stats, state, watch, lost, back } = flaky();
    const s = open();
    await watch(s, 'w', 'instance:web-1');
    lost();
    state.down = true;
    for (let i = 0; i < READ_FAILURES_DEGRADED + 2; i++) await poll();
    expect(s.sent.filter((m) => m.type === 'degraded')).toEqual([{ type: 'degraded', reason: DEGRADED_REASON }]);
    await back(); // subscribed again, reads still failing: a resync now would say live updates are back
    expect(s.types()).toEqual(['ready', 'subscribed', 'target', 'degraded']);
    state.down = false;
    await poll();
    expect(s.types()).toEqual(['ready', 'subscribed', 'target', 'degraded', 'resync']);
    expect(stats().degraded).toBe(1);
  });
});

describe('subscribing to a target', () => {
  const subscribe = (s: ReturnType<typeof fakeSocket>, targetId: string) =>
    s.emit(JSON.stringify({ type: 'subscribe', id: 't1', topic: 'target', targetId }));

  it('that does not exist is answered with an error naming it; the subscription stands', async () => {
    const { open } = hubWith(async (id) => {
      throw new NotFoundError(`target ${JSON.stringify(id)} not found`);
    });
    const s = open();
    subscribe(s, 'instance:no-such');
    await settle();
    expect(s.sent.slice(1)).toEqual([
      { type: 'subscribed', id: 't1', topic: 'target' },
      { type: 'error', id: 't1', message: expect.stringContaining('"instance:no-such"') },
    ]);
    expect((s.sent[2] as { message: string }).message).toMatch(
      /^no target "instance:no-such": the subscription stands/,
    );
  });

  it('while live state does not answer: an error without the Redis error (it names hosts)', async () => {
    const { open } = hubWith(async () => {
      throw new Error('connect ECONNREFUSED redis-0.internal:6379');
    });
    const s = open();
    subscribe(s, 'instance:web-1');
    await settle();
    expect(s.sent.at(-1)).toEqual({
      type: 'error',
      id: 't1',
      message: expect.stringMatching(/^live state unavailable/),
    });
    expect(JSON.stringify(s.sent)).not.toContain('redis-0.internal');
  });

  it('that exists gets its view and no error', async () => {
    const { open } = hubWith(async (id) => ({ id, locations: [] }));
    const s = open();
    subscribe(s, 'instance:web-1');
    await settle();
    expect(s.types()).toEqual(['ready', 'subscribed', 'target']);
  });
});

describe('subscribing to host metrics', () => {
  const sample = (hostId: string) =>
    JSON.stringify({
      hostId,
      location: 'l',
      sampledAt: '2026-12-07T22:00:00.000Z',
      cpu: { usagePct: 50, cores: 2, load1: 0.5, load5: 0.4, load15: 0.3 },
      memory: { totalBytes: 100, usedBytes: 40 },
      disks: [],
      network: [],
      gpus: [],
    });
  const subscribe = (s: ReturnType<typeof fakeSocket>, hostIds: string[]) =>
    s.emit(JSON.stringify({ type: 'subscribe', id: 'h1', topic: 'host-metrics', hostIds }));
  // Live state holding `gpu-1` (a host with a sample) and `box-2` (a host target whose sample expired), nothing else;
  // `instance:gpu-9` is a target of another kind.
  const liveState = (reads: string[][] = []) => ({
    getHostMetricsMany: async (ids: string[]) =>
      new Map(ids.filter((h) => h === 'gpu-1').map((h) => [h, sample(h)] as [string, string])),
    readTargets: async (ids: string[]) => {
      reads.push(ids);
      const known: Record<string, unknown> = { 'host:gpu-1': { kind: 'host' }, 'host:box-2': { kind: 'host' } };
      return { targets: new Map(ids.filter((id) => known[id]).map((id) => [id, known[id]])), unreadable: [] };
    },
  });

  it('naming hosts that do not exist is answered with an error naming them; the subscription stands', async () => {
    const { open } = hubWith(undefined, liveState());
    const s = open();
    subscribe(s, ['gpu-1', 'no-such', 'box-2', 'typo"d']);
    await settle();
    expect(s.types()).toEqual(['ready', 'subscribed', 'host-metrics', 'error']);
    expect(s.sent.at(-1)).toEqual({
      type: 'error',
      id: 'h1',
      message: 'no hosts "no-such", "typo\\"d": the subscription stands, their samples come once they report',
    });
  });

  it('one unknown host is named alone', async () => {
    const { open } = hubWith(undefined, liveState());
    const s = open();
    subscribe(s, ['gpu-9']);
    await settle();
    expect(s.sent.slice(1)).toEqual([
      { type: 'subscribed', id: 'h1', topic: 'host-metrics' },
      {
        type: 'error',
        id: 'h1',
        message: 'no host "gpu-9": the subscription stands, its samples come once it reports',
      },
    ]);
  });

  it('hosts that exist get their samples and no error; only hosts without a sample are looked up', async () => {
    const reads: string[][] = [];
    const { open } = hubWith(undefined, liveState(reads));
    const s = open();
    subscribe(s, ['gpu-1', 'box-2']);
    await settle();
    expect(s.types()).toEqual(['ready', 'subscribed', 'host-metrics']);
    expect(reads).toEqual([['host:box-2']]);
  });

  it('while live state does not answer: an error without the Redis error', async () => {
    const { open } = hubWith(undefined, {
      getHostMetricsMany: async () => new Map(),
      readTargets: async () => {
        throw new Error('connect ECONNREFUSED redis-0.internal:6379');
      },
    });
    const s = open();
    subscribe(s, ['gpu-9']);
    await settle();
    expect(s.sent.at(-1)).toEqual({
      type: 'error',
      id: 'h1',
      message:
        'live state unavailable: could not tell whether host "gpu-9" exists (no sample yet); the subscription stands, its samples come once it reports',
    });
    expect(JSON.stringify(s.sent)).not.toContain('redis-0.internal');
  });

  it('failing after the samples there are were sent: the error names what failed, not a first view still to come', async () => {
    const { open } = hubWith(undefined, {
      ...liveState(),
      readTargets: async () => {
        throw new Error('Command timed out (redis-0.internal:6379)');
      },
    });
    const s = open();
    subscribe(s, ['gpu-1', 'gpu-9', 'gpu-8']);
    await settle();
    expect(s.types()).toEqual(['ready', 'subscribed', 'host-metrics', 'error']);
    // Before: "live state unavailable: …, its first view comes once live state answers" (gpu-1's had been sent).
    expect(s.sent.at(-1)).toEqual({
      type: 'error',
      id: 'h1',
      message:
        'live state unavailable: could not tell whether hosts "gpu-9", "gpu-8" exist (no sample yet); the subscription stands, their samples come once they report',
    });
    expect(JSON.stringify(s.sent)).not.toContain('redis-0.internal');
  });
});
