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

  it('says when the connection is ready again, with the errors not logged yet and how long it lasted', () => {
    jest.useFakeTimers({ doNotFake: [] });
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
    redis.emit('ready');
    expect(lines).toEqual([]);
    for (let i = 0; i < 4; i++) {
      redis.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
      jest.advanceTimersByTime(500);
    }
    redis.emit('ready');
    expect(lines).toEqual([
      [
        'warn',
        { connection: 'gateway', error: 'connect ECONNREFUSED 127.0.0.1:6379', errors: 1 },
        'Redis connection error (ioredis reconnects)',
      ],
      [
        'info',
        { connection: 'gateway', errors: 3, errorsInAll: 4, afterMs: 2000 },
        'Redis connection ready again after errors',
      ],
    ]);
    // A new outage is logged at once again, and a ready without errors says nothing.
    redis.emit('ready');
    redis.emit('error', new Error('Socket timeout'));
    expect(lines).toHaveLength(3);
    expect(lines[2][1]).toEqual({ connection: 'gateway', error: 'Socket timeout', errors: 1 });
  });
});
