import { EventEmitter } from 'node:events';
import { logRedisErrors } from './redis';

describe('logRedisErrors', () => {
  afterEach(() => jest.useRealTimers());

  it('logs the first error at once, then one line per interval with how many came since', () => {
    jest.useFakeTimers({ doNotFake: [] });
    const lines: Array<[object, string]> = [];
    const redis = new EventEmitter();
    logRedisErrors(redis, { warn: (fields, message) => lines.push([fields, message]) }, 'aggregator', 10_000);

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
    logRedisErrors(redis, { warn: () => undefined }, 'x');
    expect(redis.listenerCount('error')).toBe(1);
  });
});
