import { UnavailableError } from '@fleetwatch/domain';
import { errorText, isTooLarge, isTransient, retryTransient } from './outage-retry';

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code, severity: 'ERROR' });

describe('isTransient: wait out outages, blame the data otherwise', () => {
  it.each<[string, unknown, boolean]>([
    [
      'UnavailableError (repositories classify Postgres outages, locks, schema drift)',
      new UnavailableError('database unavailable', 5),
      true,
    ],
    ['Redis connection closed', new Error('Connection is closed.'), true],
    // ioredis's commandTimeout (AGGREGATOR_REDIS_TIMEOUT_MS): Redis slow or gone, not a refusal of the data.
    ['Redis command timed out', new Error('Command timed out'), true],
    // ioredis aborts the rest of a pipeline whose connection closed after part of it was answered (a socket timeout
    // closes a silent connection).
    [
      'Redis pipeline aborted',
      Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' }),
      true,
    ],
    [
      'Redis max retries',
      new Error('Reached the max retries per request limit (which is 20). MaxRetriesPerRequestError'),
      true,
    ],
    ['socket refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), true],
    ['EPIPE (five letters, not a SQLSTATE)', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), true],
    [
      'DNS failure (ENOTFOUND with a syscall)',
      Object.assign(new Error('getaddrinfo ENOTFOUND pg'), { code: 'ENOTFOUND', syscall: 'getaddrinfo' }),
      true,
    ],
    ['a check constraint (23514)', pgError('23514', 'new row violates check constraint'), false],
    ['invalid text for jsonb (22P02)', pgError('22P02', 'invalid input syntax for type json'), false],
    ['a Postgres error whose words mention a timeout', pgError('22023', 'ETIMEDOUT in a value'), false],
    ['a bug in our code', new TypeError("Cannot read properties of undefined (reading 'x')"), false],
  ])('%s → %s', (_name, error, expected) => expect(isTransient(error)).toBe(expected));
});

describe('errorText', () => {
  it('adds the SQLSTATE', () => expect(errorText(pgError('23514', 'violates'))).toBe('violates (23514)'));
  it('copes with non-errors', () => expect(errorText('plain')).toBe('plain'));
});

describe('retryTransient', () => {
  it('retries outages with backoff until success, rethrows other errors at once', async () => {
    let calls = 0;
    const retries: number[] = [];
    const result = await retryTransient(
      async () => {
        if (++calls < 3) throw new UnavailableError('down', 1);
        return 'ok';
      },
      {
        stopping: () => false,
        backoff: { initialDelayMs: 1, maxDelayMs: 5 },
        onRetry: (_e, attempt) => retries.push(attempt),
      },
    );
    expect(result).toBe('ok');
    expect(retries).toEqual([1, 2]);
    let other = 0;
    await expect(
      retryTransient(
        async () => {
          other++;
          throw pgError('23514');
        },
        { stopping: () => false },
      ),
    ).rejects.toMatchObject({ code: '23514' });
    expect(other).toBe(1);
  });

  it('stops retrying while stopping', async () => {
    await expect(
      retryTransient(async () => Promise.reject(new UnavailableError('down', 1)), { stopping: () => true }),
    ).rejects.toBeInstanceOf(UnavailableError);
  });
});

describe('isTransient: Redis replies that mean "not now"', () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
  it.each([
    'OOM command not allowed when used memory > maxmemory',
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    'MISCONF Redis is configured to save RDB snapshots',
    'BUSY Redis is busy running a script',
    'NOPERM this user has no permissions to access one of the keys used as arguments',
    "ERR The user executing the script can't access at least one of the keys mentioned in the command script: 100",
  ])('%s', (message) => expect(isTransient(reply(message))).toBe(true));
  it('a wrong-type reply is not an outage', () =>
    expect(isTransient(reply('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false));
});

describe('isTooLarge', () => {
  it.each<[string, unknown, boolean]>([
    ['statement timeout', new UnavailableError('timeout', 5, '57014'), true],
    ['out of memory', new UnavailableError('oom', 5, '53200'), true],
    ['disk full', new UnavailableError('disk', 5, '53100'), false],
    ['an outage without a SQLSTATE', new UnavailableError('database unavailable', 5), false],
    ['a data error', Object.assign(new Error('x'), { code: '57014' }), false],
  ])('%s → %s', (_name, error, expected) => expect(isTooLarge(error)).toBe(expected));
});
