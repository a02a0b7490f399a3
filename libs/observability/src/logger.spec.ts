import { createLogger, maskSecrets, PinoNestLogger } from './logger';

/** A logger writing JSON lines into an array, read back as objects. */
function capture(level = 'trace') {
  const lines: string[] = [];
  const logger = createLogger('status-ingest', level, { write: (line: string) => void lines.push(line) });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, records };
}

describe('maskSecrets', () => {
  it.each([
    ['postgresql://fleet:s3cr3t@db:5432/fleetwatch', 'postgresql://fleet:***@db:5432/fleetwatch'],
    ['amqp://guest:guest@127.0.0.1:5672 refused', 'amqp://guest:***@127.0.0.1:5672 refused'],
    ['redis://default:p%40ss@cache:6379/0', 'redis://default:***@cache:6379/0'],
    ['two: pg://a:x@h1/d and amqp://b:y@h2', 'two: pg://a:***@h1/d and amqp://b:***@h2'],
    ['Authorization: Bearer fwk_abc.DEF-123_~+/=', 'Authorization: Bearer ***'],
    // A Redis URL names no user as a rule; HTTP reads the scheme of Authorization case-insensitively.
    ['redis://:s3cr3t@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['REDISS://:s3cr3t@cache:6380', 'REDISS://:***@cache:6380'],
    ['authorization: bearer fwk_abc', 'authorization: bearer ***'],
  ])('masks %s', (input, expected) => expect(maskSecrets(input)).toBe(expected));

  it.each([
    'postgresql://db:5432/fleetwatch',
    'redis://cache:6379',
    'user@example.com wrote: see https://example.com/a:b',
    'no secrets here',
  ])('leaves %s alone', (input) => expect(maskSecrets(input)).toBe(input));
});

describe('createLogger', () => {
  it('writes one JSON line with the service, pid, ISO time and the level as a label', () => {
    const { logger, records } = capture();
    logger.info({ port: 3001 }, 'listening');
    const [r] = records();
    expect(r).toMatchObject({
      level: 'info',
      service: 'status-ingest',
      pid: process.pid,
      port: 3001,
      msg: 'listening',
    });
    expect(new Date(r.time as string).toISOString()).toBe(r.time);
  });

  it('respects the level', () => {
    const { logger, records } = capture('warn');
    logger.info('hidden');
    logger.warn('shown');
    expect(records().map((r) => r.msg)).toEqual(['shown']);
  });

  it('redacts secret fields at the top level, one level down and in request headers', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        password: 'hunter2',
        token: 'tok-1',
        user: { password: 'pw-2', name: 'ada' },
        apiKey: 'fwk_live',
        credentials: { key: 'k-3', secret: 's-4', apiKey: 'fwk_nested' },
        databaseUrl: 'postgresql://u:p@h/d',
        amqpUrl: 'amqp://u:p@h',
        redisUrl: 'redis://u:p@h',
        req: { headers: { authorization: 'Bearer abc', cookie: 'fw_session=xyz', accept: 'application/json' } },
      },
      'login',
    );
    const r = records()[0] as Record<string, Record<string, unknown>>;
    expect(r.password).toBe('***');
    expect(r.token).toBe('***');
    expect(r.user).toEqual({ password: '***', name: 'ada' });
    expect(r.apiKey).toBe('***');
    expect(r.credentials).toEqual({ key: '***', secret: '***', apiKey: '***' });
    expect([r.databaseUrl, r.amqpUrl, r.redisUrl]).toEqual(['***', '***', '***']);
    expect(r.req.headers).toEqual({ authorization: '***', cookie: '***', accept: 'application/json' });
    for (const secret of ['hunter2', 'tok-1', 'pw-2', 'fwk_live', 'k-3', 's-4', 'fwk_nested', 'u:p', 'abc', 'xyz']) {
      expect(lines[0]).not.toContain(secret);
    }
  });

  it('masks credentials in the message text and in string interpolation arguments', () => {
    const { logger, lines, records } = capture();
    logger.warn('waiting for amqp://guest:guest@mq:5672: ECONNREFUSED');
    logger.error(
      { variable: 'DATABASE_URL' },
      'cannot reach %s with %s',
      'postgresql://fw:pw@db/fw',
      'Bearer fwk_secret',
    );
    expect(records().map((r) => r.msg)).toEqual([
      'waiting for amqp://guest:***@mq:5672: ECONNREFUSED',
      'cannot reach postgresql://fw:***@db/fw with Bearer ***',
    ]);
    expect(lines.join('')).not.toMatch(/guest@|pw@|fwk_secret/);
  });
});

describe('errors logged as { err }', () => {
  it('masks credentials in the message, the stack, the error’s own text properties and its cause', () => {
    const { logger, lines, records } = capture();
    const cause = new Error('connect redis://:cause-pw@cache:6379 refused');
    const err = Object.assign(new Error('lost amqp://fw:msg-pw@mq:5672', { cause }), {
      detail: 'retrying with Bearer fwk_prop_token',
    });
    logger.warn({ err }, 'bus lost');
    const r = records()[0] as { err: { message: string; stack: string; detail: string } };
    // pino's serializer appends the causes' messages.
    expect(r.err.message).toBe('lost amqp://fw:***@mq:5672: connect redis://:***@cache:6379 refused');
    expect(r.err.detail).toBe('retrying with Bearer ***');
    expect(r.err.stack).toContain('amqp://fw:***@mq:5672');
    expect(lines[0]).not.toMatch(/msg-pw|cause-pw|fwk_prop_token/);
  });

  it.each([
    ['hello', ['3', 'AUTH', 'default', 'hello-pw']],
    ['auth', ['auth-pw']],
    ['AUTH', ['user', 'auth-pw-2']],
    ['config', ['set', 'requirepass', 'config-pw']],
    ['acl', ['setuser', 'u', '>acl-pw']],
  ])('withholds the arguments of a Redis %s on an error (ioredis attaches the command)', (name, args) => {
    const { logger, lines, records } = capture();
    const err = Object.assign(new Error('WRONGPASS invalid username-password pair'), { command: { name, args } });
    logger.warn({ err }, 'Redis error');
    logger.error(err);
    expect(records().map((r) => (r.err as { command: unknown }).command)).toEqual([
      { name, args: '***' },
      { name, args: '***' },
    ]);
    expect(lines.join('')).not.toContain(args[args.length - 1]);
  });

  it('keeps the arguments of other commands, and a non-Error under err', () => {
    const { logger, records } = capture();
    const err = Object.assign(new Error('READONLY'), { command: { name: 'set', args: ['k', 'v'] } });
    logger.warn({ err }, 'write refused');
    logger.warn({ err: 'reason as text with redis://:pw@h' }, 'rejected');
    const [a, b] = records();
    expect((a.err as { command: unknown }).command).toEqual({ name: 'set', args: ['k', 'v'] });
    expect(b.err).toBe('reason as text with redis://:***@h');
  });
});

describe('serializeError on odd errors', () => {
  it("writes a cycle among an error's own properties once, as [Circular], and keeps dates and buffers as pino wrote them", () => {
    // Walked to depth 8 with no cycle check, an object referring to itself from 4 keys expanded into 4^9 copies (a
    // socket or a request object on an error, dozens of keys each, exhausted the heap: the process died on a log line).
    const { lines, records, logger } = capture();
    const graph: Record<string, unknown> = { note: 'redis://:graph-pw@cache:6379' };
    for (let i = 0; i < 4; i++) graph[`k${i}`] = graph;
    const err = Object.assign(new Error('boom'), {
      graph,
      at: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
      bytes: Buffer.from('ab'),
    });
    logger.warn({ err }, 'odd error');
    expect(lines[0].length).toBeLessThan(4000);
    const e = records()[0].err as { graph: Record<string, unknown>; at: unknown; bytes: unknown };
    expect(e.graph.k0).toBe('[Circular]');
    expect(e.graph.note).toBe('redis://:***@cache:6379');
    expect(e.at).toBe('2026-01-02T03:04:05.000Z');
    expect(e.bytes).toEqual({ type: 'Buffer', data: [97, 98] });
  });

  it('bounds a graph without cycles that shares objects (each level refers to the next from many keys)', () => {
    const { lines, logger } = capture();
    let node: Record<string, unknown> = { leaf: 'redis://:deep-pw@cache:6379' };
    for (let level = 0; level < 12; level++) {
      const next: Record<string, unknown> = {};
      for (let i = 0; i < 10; i++) next[`k${i}`] = node;
      node = next;
    }
    const started = performance.now();
    logger.warn({ err: Object.assign(new Error('shared'), { node }) }, 'odd error');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('deep-pw');
  });

  it('logs an error whose property cannot be read, instead of throwing from the log call', () => {
    const { records, logger } = capture();
    const err = new Error('getter');
    const detail = { ok: 'fine' };
    Object.defineProperty(detail, 'bad', {
      enumerable: true,
      get() {
        throw new Error('unreadable');
      },
    });
    Object.assign(err, { detail });
    expect(() => logger.warn({ err }, 'odd error')).not.toThrow();
    expect((records()[0].err as { message: string }).message).toBe('getter');
  });
});

describe('PinoNestLogger', () => {
  it('maps Nest levels onto pino levels with the context', () => {
    const { logger, records } = capture();
    const nest = new PinoNestLogger(logger);
    nest.log('a', 'Ctx');
    nest.warn('b', 'Ctx');
    nest.debug('c', 'Ctx');
    nest.verbose('d', 'Ctx');
    nest.fatal('e', 'Ctx');
    expect(records().map((r) => [r.level, r.msg, r.context])).toEqual([
      ['info', 'a', 'Ctx'],
      ['warn', 'b', 'Ctx'],
      ['debug', 'c', 'Ctx'],
      ['trace', 'd', 'Ctx'],
      ['fatal', 'e', 'Ctx'],
    ]);
  });

  it('logs an Error with its stack and a masked message', () => {
    const { logger, lines, records } = capture();
    new PinoNestLogger(logger).error(new Error('connect to redis://default:pw@cache failed'), 'Boot');
    const r = records()[0] as Record<string, Record<string, unknown>>;
    expect(r.level).toBe('error');
    expect(r.context).toBe('Boot');
    expect(r.msg).toBe('connect to redis://default:***@cache failed');
    expect(typeof r.err.stack).toBe('string');
    expect(lines[0]).toContain('"err"');
  });

  it("keeps Nest's (message, stack, context) form apart from (message, context)", () => {
    const { logger, records } = capture();
    const nest = new PinoNestLogger(logger);
    nest.error('boom', 'Error: boom\n    at x', 'Router');
    nest.error('plain', 'Router');
    const [withStack, plain] = records();
    expect(withStack).toMatchObject({ msg: 'boom', context: 'Router', stack: 'Error: boom\n    at x' });
    expect(plain).toMatchObject({ msg: 'plain', context: 'Router' });
    expect(plain.stack).toBeUndefined();
  });

  it('logs a non-string message as detail, still redacted', () => {
    const { logger, records } = capture();
    new PinoNestLogger(logger).log({ event: 'x', token: 't' }, 'Ctx');
    expect(records()[0]).toMatchObject({ level: 'info', context: 'Ctx', detail: { event: 'x', token: '***' } });
  });
});
