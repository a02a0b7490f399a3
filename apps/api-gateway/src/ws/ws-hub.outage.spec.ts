import { EventEmitter } from 'node:events';
import { UserRole, type WsServerMessage } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config';
import type { TargetsService } from '../targets/targets.service';
import { FrameBudget } from './frame-budget';
import { SocketSubscriptions } from './subscriptions';
import { DEGRADED_REASON, WsHub, type WsClient } from './ws-hub.service';

// What a socket hears while the replica's live-state feed (its Redis subscriber) is away: `degraded` once when it is
// lost, `resync` once it is back; and what a subscription to a target that does not exist answers.

function fakeSocket() {
  const handlers = new Map<string, (...args: unknown[]) => void>();
  const sent: WsServerMessage[] = [];
  const socket = {
    OPEN: 1,
    CONNECTING: 0,
    readyState: 1,
    bufferedAmount: 0,
    on: (event: string, fn: (...args: unknown[]) => void) => handlers.set(event, fn),
    send: (json: string) => sent.push(JSON.parse(json) as WsServerMessage),
    close: () => undefined,
    terminate: () => undefined,
    ping: () => undefined,
  };
  return {
    socket,
    sent,
    types: () => sent.map((m) => m.type),
    emit: (data: unknown) => handlers.get('message')?.(data, false),
  };
}

const RESYNC_MIN_MS = 10_000;

function hubWith(getTarget: (id: string) => Promise<unknown> = async () => ({ id: 'x', locations: [] })) {
  const config = {
    wsMaxSocketsPerPrincipal: 100,
    wsMaxSocketsPerUser: 100,
    wsMaxBufferedBytes: 1 << 20,
    wsResyncMinIntervalMs: RESYNC_MIN_MS,
  } as GatewayConfig;
  const live = { statusChannel: 'live:status' } as unknown as LiveStateStore;
  const targets = { get: getTarget } as unknown as TargetsService;
  const logger = { warn: jest.fn(), info: jest.fn() };
  const hub = new WsHub(config, live, targets, logger as unknown as Logger);
  // The subscriber as the hub holds it once booted (onApplicationBootstrap wires ioredis' 'close' and 'ready' to these).
  const subscriber = Object.assign(new EventEmitter(), { subscribe: async () => 1 });
  const internals = hub as unknown as {
    subscriber: unknown;
    subscriptionLost(s: unknown): void;
    resubscribed(s: unknown): Promise<void>;
  };
  internals.subscriber = subscriber;
  let n = 0;
  const open = () => {
    const s = fakeSocket();
    const id = `u${++n}`;
    const client: WsClient = {
      socket: s.socket as unknown as WsClient['socket'],
      principal: { kind: 'user', id, name: id, role: UserRole.Viewer, sessionId: id },
      recheck: async () => client.principal,
      credentialKey: id,
      subscriptions: new SocketSubscriptions(),
      expiry: null,
      awaitingPong: false,
      frames: new FrameBudget(),
    };
    hub.attach(client);
    return s;
  };
  return {
    hub,
    open,
    logger,
    lost: () => internals.subscriptionLost(subscriber),
    back: () => internals.resubscribed(subscriber),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('live-state outage', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('tells every open socket `degraded` once per outage, a socket opened during it too, and `resync` when it ends', async () => {
    const { open, lost, back, logger } = hubWith();
    const first = open();
    const second = open();
    lost();
    lost(); // ioredis closes again at each failed reconnect
    lost();
    expect(first.sent.filter((m) => m.type === 'degraded')).toEqual([{ type: 'degraded', reason: DEGRADED_REASON }]);
    expect(second.types()).toEqual(['ready', 'degraded']);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    const during = open();
    expect(during.types()).toEqual(['ready', 'degraded']);

    await back();
    for (const s of [first, second, during]) expect(s.types()).toEqual(['ready', 'degraded', 'resync']);
    // Over: a socket opened now hears nothing of it.
    expect(open().types()).toEqual(['ready']);
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
