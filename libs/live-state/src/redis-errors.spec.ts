import { EventEmitter } from 'node:events';
import { logRedisErrors } from './redis';

describe('logRedisErrors', () => {
  afterEach(() => jest.useRealTimers());

  it('logs the first error at once, then one line per interval with how many came since', () => {
    jest.useFakeTimers({ doNotFake: [] });
    const lines: Array<[object, string]> = [];
    const redis = new EventEmitter();
    logRedisErrors(
      redis,
      { warn: (fields, message) => lines.push([fields, message]), info: () => undefined },
      'aggregator',
      10_000,
    );

    redis.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    for (let i = 0; i < 5; i++) {
      jest.advanceTimersByTime(1_000);
      redis.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    }
    expect(lines).toEqual([
      [
        { connection: 'aggregator', error: 'connect ECONNREFUSED 127.0.0.1:6379', errors: 1 },
        'Redis connection error (ioredis reconnects)',
      ],
    ]);
    jest.advanceTimersByTime(5_000);
    redis.emit('error', new Error('Socket timeout'));
    expect(lines[1]).toEqual([
      { connection: 'aggregator', error: 'Socket timeout', errors: 6 },
      'Redis connection error (ioredis reconnects)',
    ]);
  });

  it('listens, so ioredis does not print "Unhandled error event" to the console', () => {
    const redis = new EventEmitter();
    logRedisErrors(redis, { warn: () => undefined, info: () => undefined }, 'x');
    expect(redis.listenerCount('error')).toBe(1);
  });

  function capture() {
    const lines: Array<[string, object, string]> = [];
    const redis = new EventEmitter();
    logRedisErrors(
      redis,
      {
        warn: (fields, message) => lines.push(['warn', fields, message]),
        info: (fields, message) => lines.push(['info', fields, message]),
      },
      'gateway',
      10_000,
    );
    return { lines, redis };
  }
  const refused = () => new Error('connect ECONNREFUSED 127.0.0.1:6379');

  it('says when the connection is ready again, with the errors not logged yet, at the end of the interval', () => {
    jest.useFakeTimers({ doNotFake: [] });
    const { lines, redis } = capture();
    redis.emit('ready');
    expect(lines).toEqual([]);
    for (let i = 0; i < 4; i++) {
      redis.emit('error', refused());
      jest.advanceTimersByTime(500);
    }
    redis.emit('ready');
    // The first error's line was written 2 s ago: the "ready again" line waits for the end of that interval.
    expect(lines).toHaveLength(1);
    jest.advanceTimersByTime(8_000);
    expect(lines).toEqual([
      [
        'warn',
        { connection: 'gateway', error: refused().message, errors: 1 },
        'Redis connection error (ioredis reconnects)',
      ],
      [
        'info',
        { connection: 'gateway', errors: 3, errorsInAll: 4, afterMs: 10_000 },
        'Redis connection ready again after errors',
      ],
    ]);
    // A ready without errors says nothing; a new outage's first error is logged once an interval has passed.
    redis.emit('ready');
    jest.advanceTimersByTime(20_000);
    expect(lines).toHaveLength(2);
    redis.emit('error', new Error('Socket timeout'));
    expect(lines).toHaveLength(3);
    expect(lines[2][1]).toEqual({ connection: 'gateway', error: 'Socket timeout', errors: 1 });
  });

  it('a connection flapping between ready and failing writes one line per interval, not two per flap', () => {
    jest.useFakeTimers({ doNotFake: [] });
    const { lines, redis } = capture();
    for (let i = 0; i < 50; i++) {
      redis.emit('error', refused());
      jest.advanceTimersByTime(100);
      redis.emit('ready');
      jest.advanceTimersByTime(100);
    }
    // 10 s of flapping: the first error, then one "ready again" line at the end of its interval (the last flap was
    // ready by then), counting every error since.
    expect(lines.map(([level]) => level)).toEqual(['warn', 'info']);
    expect(lines[1][1]).toMatchObject({ errors: 49, errorsInAll: 50 });
  });

  it('no "ready again" line while the outage goes on after a ready', () => {
    jest.useFakeTimers({ doNotFake: [] });
    const { lines, redis } = capture();
    redis.emit('error', refused());
    redis.emit('ready');
    redis.emit('error', refused());
    jest.advanceTimersByTime(15_000);
    expect(lines.map(([level]) => level)).toEqual(['warn']);
  });
});
