import { Redis } from 'ioredis';
import { testEnv, waitFor } from '@fleetwatch/testing';
import { createLogger } from './logger';

// Errors of real clients as the services log them (`logger.warn({ err }, …)`): the logger's err serializer keeps
// what the clients attach to their errors, and some of it is a credential.

jest.setTimeout(30_000);

function capture() {
  const lines: string[] = [];
  const logger = createLogger('api-gateway', 'trace', { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

describe('logged client errors hold no credential', () => {
  it('a Redis connection refused for its credentials: the password ioredis attaches to the error is not logged', async () => {
    // An ACL user that does not exist: the local Redis answers HELLO 3 AUTH with WRONGPASS, as it would a rotated
    // password. ioredis puts the refused command on the error (`command: {name: 'hello', args: [..., password]}`).
    const password = `zz-redis-canary-${Date.now().toString(36)}`;
    const url = new URL(testEnv().redisUrl);
    url.username = 'fleetwatch-no-such-user';
    url.password = password;
    const { logger, lines } = capture();
    const errors: Error[] = [];
    const redis = new Redis(url.toString(), { retryStrategy: () => 200, maxRetriesPerRequest: 0, lazyConnect: true });
    redis.on('error', (err: Error) => {
      errors.push(err);
      logger.warn({ err }, 'WebSocket fan-out subscriber: Redis error');
    });
    redis.connect().catch(() => undefined);
    try {
      await waitFor(() => errors.length >= 1, { description: 'the refusal', timeoutMs: 10_000 });
    } finally {
      redis.disconnect();
    }
    // The error does carry it (so the guard is about what the logger writes, not about this client's habits).
    expect(JSON.stringify((errors[0] as Error & { command?: unknown }).command)).toContain(password);
    expect(errors[0].message).toMatch(/WRONGPASS/);
    const logged = lines.join('');
    expect(logged).toContain('WRONGPASS');
    expect(logged).toContain('hello');
    expect(logged).not.toContain(password);
  });
});
