import 'reflect-metadata';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  INestApplication,
  Logger,
  Module,
  NotFoundException,
  Post,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiErrorCode } from '@fleetwatch/contracts';
import {
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
} from '@fleetwatch/domain';
import type { InjectOptions } from 'fastify';
import { z } from 'zod';
import { ApiErrorFilter, mapError, OUTAGE_LOG_INTERVAL_MS } from './error.filter';

describe('mapError', () => {
  it.each([
    [new InvalidError('bad'), 400, ApiErrorCode.ValidationFailed],
    [new UnauthorizedError('who?'), 401, ApiErrorCode.Unauthorized],
    [new ForbiddenError('no'), 403, ApiErrorCode.Forbidden],
    [new NotFoundError('gone'), 404, ApiErrorCode.NotFound],
    [new ConflictError('taken'), 409, ApiErrorCode.Conflict],
    [new PayloadTooLargeError('big'), 413, ApiErrorCode.PayloadTooLarge],
    [new RateLimitedError('slow down', 2), 429, ApiErrorCode.RateLimited],
    [new UnavailableError('broker away', 5), 503, ApiErrorCode.Unavailable],
  ])('maps %p to %i %s with its message', (error, status, code) => {
    const mapped = mapError(error);
    expect(mapped.status).toBe(status);
    expect(mapped.body).toEqual({ error: { code, message: error.message } });
  });

  it.each([
    [0, '1'],
    [0.2, '1'],
    [2, '2'],
    [2.1, '3'],
  ])('gives rate-limited and unavailable answers a whole Retry-After of at least 1 s (%p → %s)', (seconds, header) => {
    expect(mapError(new RateLimitedError('x', seconds)).headers).toEqual({ 'retry-after': header });
    expect(mapError(new UnavailableError('x', seconds)).headers).toEqual({ 'retry-after': header });
  });

  /** ioredis's errors, as it makes them (MaxRetriesPerRequestError names itself; ReplyError is redis-errors'). */
  const named = (name: string, message: string) => Object.assign(new Error(message), { name });
  it.each<[string, unknown, number]>([
    ['ioredis out of retries', named('MaxRetriesPerRequestError', 'Reached the max retries per request limit'), 503],
    ['ioredis connection closed', new Error('Connection is closed.'), 503],
    ['ioredis command timeout', new Error('Command timed out'), 503],
    ['ioredis offline, no queue', new Error("Stream isn't writeable and enableOfflineQueue options is false"), 503],
    ['Redis loading', named('ReplyError', 'LOADING Redis is loading the dataset in memory'), 503],
    ['Redis out of memory', named('ReplyError', 'OOM command not allowed when used memory > maxmemory'), 503],
    [
      'a socket refused',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' }),
      503,
    ],
    ['ioredis pipeline cut short', named('AbortError', 'Command aborted due to connection close'), 503],
    ['a MULTI discarded (its commands got LOADING)', named('ReplyError', 'EXECABORT Transaction discarded'), 503],
    [
      'a name that does not resolve',
      Object.assign(new Error('getaddrinfo ENOTFOUND redis'), { code: 'ENOTFOUND', syscall: 'getaddrinfo' }),
      503,
    ],
    [
      'a client aborting its own request (no syscall)',
      Object.assign(new Error('aborted'), { code: 'ECONNRESET' }),
      500,
    ],
    ['a Redis reply about the data', named('ReplyError', 'WRONGTYPE Operation against a key'), 500],
    ['a message that only mentions a closed connection', new Error('upstream said: Connection is closed.'), 500],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')"), 500],
  ])('a dependency outage reaching a handler as its client error (%s) answers %i', (_name, error, status) => {
    const mapped = mapError(error);
    expect(mapped.status).toBe(status);
    if (status === 503) {
      expect(mapped.body.error.code).toBe(ApiErrorCode.Unavailable);
      expect(mapped.headers).toEqual({ 'retry-after': '5' });
    } else expect(mapped.body.error.code).toBe(ApiErrorCode.Internal);
  });

  it("a domain error keeps its own answer even when its words look like a client's outage", () => {
    const mapped = mapError(new UnavailableError('Connection is closed. (configuration owner)', 2));
    expect(mapped.headers).toEqual({ 'retry-after': '2' });
    expect(mapped.body.error.message).toBe('Connection is closed. (configuration owner)');
  });

  it('sets no Retry-After on other domain errors', () => {
    expect(mapError(new ConflictError('x')).headers).toEqual({});
  });

  it('carries the issues of an InvalidError', () => {
    const issues = [{ path: 'updates.0.status', message: 'unknown status' }];
    expect(mapError(new InvalidError('invalid update', issues)).body).toEqual({
      error: { code: ApiErrorCode.ValidationFailed, message: 'invalid update', issues },
    });
  });

  it('turns a ZodError into 400 naming each field; the root is "(body)"', () => {
    const schema = z.object({ name: z.string(), tags: z.array(z.string()) });
    const nested = schema.safeParse({ name: 1, tags: ['a', 2] });
    const root = schema.safeParse('nope');
    const a = mapError(nested.error);
    expect(a.status).toBe(400);
    expect(a.body.error.code).toBe(ApiErrorCode.ValidationFailed);
    expect(a.body.error.issues?.map((i) => i.path)).toEqual(['name', 'tags.1']);
    expect(a.body.error.message).toMatch(/^name: .+; tags\.1: .+$/);
    expect(mapError(root.error).body.error.issues?.[0].path).toBe('(body)');
  });

  it.each([
    [new NotFoundException('no route'), 404, ApiErrorCode.NotFound, 'no route'],
    [new BadRequestException('odd'), 400, ApiErrorCode.ValidationFailed, 'odd'],
    [new BadRequestException({ message: 'from object' }), 400, ApiErrorCode.ValidationFailed, 'from object'],
  ])('maps a Nest HttpException %p to %i %s', (error, status, code, message) => {
    expect(mapError(error)).toEqual({ status, body: { error: { code, message } } });
  });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, ApiErrorCode.PayloadTooLarge],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, ApiErrorCode.UnsupportedMediaType],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, ApiErrorCode.ValidationFailed],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, ApiErrorCode.ValidationFailed],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, ApiErrorCode.ValidationFailed],
    ['FST_ERR_BAD_URL', 400, ApiErrorCode.ValidationFailed],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, ApiErrorCode.ValidationFailed],
  ])("maps Fastify's %s to %i %s", (fastifyCode, status, code) => {
    const mapped = mapError(Object.assign(new Error('fastify says'), { code: fastifyCode, statusCode: 500 }));
    expect(mapped.status).toBe(status);
    expect(mapped.body.error.code).toBe(code);
  });

  it('maps a JSON SyntaxError to 400 and a client 4xx error to its own status', () => {
    expect(mapError(new SyntaxError('Unexpected token')).status).toBe(400);
    expect(mapError(Object.assign(new Error('range not satisfiable'), { statusCode: 416 }))).toEqual({
      status: 416,
      body: { error: { code: ApiErrorCode.ValidationFailed, message: 'range not satisfiable' } },
    });
  });

  it.each([
    new Error('connect ECONNREFUSED postgresql://u:pw@db'),
    Object.assign(new Error('server side'), { statusCode: 502 }),
    'a thrown string',
    undefined,
  ])('answers anything else (%p) with a bare 500 that leaks nothing', (error) => {
    expect(mapError(error)).toEqual({
      status: 500,
      body: { error: { code: ApiErrorCode.Internal, message: 'internal error' } },
    });
  });
});

@Controller('t')
class ThrowingController {
  @Get('missing')
  missing(): never {
    throw new NotFoundError('target web-1 not found');
  }
  @Get('limited')
  limited(): never {
    throw new RateLimitedError('too many pings', 1.5);
  }
  @Get('crash')
  crash(): never {
    throw new Error('secret internals');
  }
  @Get('redis-away')
  redisAway(): never {
    throw new Error('Command timed out');
  }
  @Get('database-away')
  databaseAway(): never {
    throw new UnavailableError(
      'database unavailable: canceling statement due to statement timeout (57014)',
      5,
      '57014',
    );
  }
  @Get('paused')
  paused(): never {
    throw new (class extends UnavailableError {
      override readonly outage = false;
    })('ingress is paused (maintenance); retry later', 30);
  }
  @Post('echo')
  @HttpCode(200)
  echo(@Body() body: unknown): unknown {
    return body;
  }
}

@Module({ controllers: [ThrowingController] })
class ThrowingModule {}

describe('ApiErrorFilter on a Fastify app', () => {
  let app: NestFastifyApplication;

  beforeAll(async () => {
    app = await NestFactory.create<NestFastifyApplication>(ThrowingModule, new FastifyAdapter({ bodyLimit: 256 }), {
      logger: false,
    });
    app.useGlobalFilters(new ApiErrorFilter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });
  afterAll(() => (app as INestApplication | undefined)?.close());

  const inject = (opts: InjectOptions) => app.getHttpAdapter().getInstance().inject(opts);

  it('answers a domain error with its status and the error body', async () => {
    const res = await inject({ method: 'GET', url: '/t/missing' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'target web-1 not found' } });
  });

  it('sends Retry-After with a rate-limit', async () => {
    const res = await inject({ method: 'GET', url: '/t/limited' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('2');
  });

  it('logs outage answers once per interval, with the error and how many were answered since', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(1_000_000_000);
      for (let i = 0; i < 3; i++) expect((await inject({ method: 'GET', url: '/t/redis-away' })).statusCode).toBe(503);
      now.mockReturnValue(1_000_000_000 + OUTAGE_LOG_INTERVAL_MS);
      expect((await inject({ method: 'GET', url: '/t/redis-away' })).statusCode).toBe(503);
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/answered 503: .*Command timed out.*1 such answer/);
      expect(lines[1]).toMatch(/3 such answer/);
    } finally {
      now.mockRestore();
      warn.mockRestore();
    }
  });

  it('logs a 503 for an UnavailableError (the database away) with its words and SQLSTATE', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(2_000_000_000);
      const res = await inject({ method: 'GET', url: '/t/database-away' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /answered 503: .*database unavailable: canceling statement.*SQLSTATE 57014.*1 such answer/,
      );
    } finally {
      now.mockRestore();
      warn.mockRestore();
    }
  });

  it('does not log a 503 given on purpose (an operator paused ingress) as an outage', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(3_000_000_000);
      const res = await inject({ method: 'GET', url: '/t/paused' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('30');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      now.mockRestore();
      warn.mockRestore();
    }
  });

  it('hides an unexpected error behind a 500', async () => {
    const res = await inject({ method: 'GET', url: '/t/crash' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(res.body).not.toContain('secret internals');
  });

  it.each<[string, InjectOptions, number, string]>([
    ['an unknown route', { method: 'GET', url: '/nowhere' }, 404, 'not_found'],
    [
      'a body over the limit',
      {
        method: 'POST',
        url: '/t/echo',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ x: 'y'.repeat(1000) }),
      },
      413,
      'payload_too_large',
    ],
    [
      'invalid JSON',
      { method: 'POST', url: '/t/echo', headers: { 'content-type': 'application/json' }, payload: '{nope' },
      400,
      'validation_failed',
    ],
    [
      'a content type it does not parse',
      { method: 'POST', url: '/t/echo', headers: { 'content-type': 'application/xml' }, payload: '<a/>' },
      415,
      'unsupported_media_type',
    ],
  ])('gives %s the same JSON error shape', async (_label, request, status, code) => {
    const res = await inject(request);
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
  });

  it('lets a good request through', async () => {
    const res = await inject({
      method: 'POST',
      url: '/t/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":1}',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ a: 1 });
  });
});
