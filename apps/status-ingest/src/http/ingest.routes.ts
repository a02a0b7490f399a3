import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiErrorCode, charsetOf, textProblem, type ApiErrorBody } from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { pingTokenShapeOf } from '@fleetwatch/persistence';
import type { FastifyInstance, FastifyReply, FastifyRequest } from './fastify.types';
import { ApiKeyAuthService, type AuthenticatedKey } from '../auth/api-key-auth.service';
import type { IngestConfig } from '../config';
import { IngressPausedError } from '../ingress/ingress-state.service';
import { PublishGate } from '../ingress/publish-gate.service';
import { IngestMetrics, refusalReasonOf, type RefusalReason } from '../metrics/ingest.metrics';
import {
  exitCodeOf,
  MAX_PING_BODY_CHARS,
  PingsService,
  signalOfExitCode,
  type PingSignal,
} from '../pings/pings.service';
import { StatusUpdatesService } from '../updates/status-updates.service';
import { INGEST_CONFIG } from '../tokens';
import { parseJsonBody } from './json-body';
import { keepHeadOfBody, keepHeadOfEncodedBody } from './ping-body';
import { pingBodyText } from './ping-charset';
import { ACCEPTED_ENCODINGS, bodyEncodingOf, decodedBody } from './content-encoding';
import { clientCertificateOf } from './tls';

/** Bytes of a ping body read into memory: enough for MAX_PING_BODY_CHARS characters of any UTF-8. */
const MAX_PING_BODY_BYTES = MAX_PING_BODY_CHARS * 4;
/** The most of a ping's body read off the socket (the head kept, the rest dropped); larger bodies get 413. */
const PING_BODY_READ_LIMIT = 8 * 1024 * 1024;

export const UPDATES_PATH = '/api/v1/status/updates';
const PING_PREFIX = '/ping/';

/** A body that is not JSON (pings take any content type; updates refuse it with 415). */
class RawBody {
  constructor(
    readonly bytes: Buffer,
    readonly contentType: string | undefined,
  ) {}
}

/**
 * The ingest HTTP edge, registered straight on Fastify: this is the hot path
 * (thousands of requests per second on two cores), so it skips Nest's
 * per-request pipeline. Still a thin adapter: authenticate (before the body is
 * read), parse, call one service method, answer. Errors are domain errors that
 * the shared error handler (libs/observability mapError) turns into ApiErrorBody.
 */
@Injectable()
export class IngestRoutes implements OnModuleInit, OnModuleDestroy {
  private readonly keys = new WeakMap<FastifyRequest, AuthenticatedKey>();
  private readonly refusals = new WeakMap<FastifyRequest, RefusalReason>();
  private readonly bodyTimers = new WeakMap<FastifyRequest, ReturnType<typeof setTimeout>>();
  private sweepTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly auth: ApiKeyAuthService,
    private readonly updates: StatusUpdatesService,
    private readonly pings: PingsService,
    private readonly gate: PublishGate,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) private readonly config: IngestConfig,
  ) {}

  onModuleInit(): void {
    const app = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    this.registerBodyParsers(app);
    this.registerUpdates(app);
    this.registerPings(app);
    this.sweepTimer = setInterval(() => {
      this.updates.sweep();
      this.pings.sweep();
      this.auth.sweep();
    }, 60_000);
    this.sweepTimer.unref();
  }

  /** Graceful stop: new requests get 503, and every publish already started gets its confirm. */
  async onModuleDestroy(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.gate.drain(Math.max(1000, this.config.shutdownTimeoutMs - 2000));
  }

  private registerBodyParsers(app: FastifyInstance): void {
    // Only these two (Nest adds JSON and urlencoded parsers; ingest takes JSON, pings take anything).
    // Strict JSON: invalid UTF-8 and `__proto__` keys are refused with a 400 naming them.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      if (request.url.startsWith(PING_PREFIX))
        return done(null, new RawBody(body as Buffer, request.headers['content-type']));
      try {
        done(null, parseJsonBody(body as Buffer));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) =>
      done(null, new RawBody(body as Buffer, request.headers['content-type'])),
    );
  }

  private registerUpdates(app: FastifyInstance): void {
    app.route({
      method: 'POST',
      url: UPDATES_PATH,
      // Before the body is read: an unauthenticated client cannot make us parse anything.
      onRequest: async (request, reply) => {
        this.keys.set(
          request,
          await this.auth.authenticate(
            request.headers.authorization,
            request.ip,
            clientCertificateOf(request.raw.socket),
          ),
        );
        const encoding = bodyEncodingOf(request.headers['content-encoding']);
        if (encoding === 'unsupported') return unsupportedEncoding(reply, request.headers['content-encoding']);
        // Bounded memory: bodies in progress are admitted up to a byte budget (PublishGate) — a compressed body at
        // the most it may inflate to.
        this.gate.admit(encoding ? undefined : request.headers['content-length'], reply.raw);
        // …for a bounded time: a body that stalls would hold its share of the budget (and so refuse others) for
        // as long as the client keeps the connection open.
        this.startBodyTimer(request, reply, 'updates');
      },
      // A gzip or deflate body is inflated as it arrives, never past the body limit.
      preParsing: async (request, _reply, payload) => {
        const encoding = bodyEncodingOf(request.headers['content-encoding']);
        return encoding && encoding !== 'unsupported'
          ? decodedBody(payload, encoding, this.config.bodyLimitBytes)
          : payload;
      },
      preValidation: async (request) => clearTimeout(this.bodyTimers.get(request)),
      onError: async (request, _reply, error) => {
        if (error instanceof IngressPausedError) this.refusals.set(request, 'paused');
      },
      onResponse: async (request, reply) => {
        if (reply.statusCode >= 400)
          this.metrics.refused.labels('updates', this.refusals.get(request) ?? refusalReasonOf(reply.statusCode)).inc();
      },
      handler: async (request, reply) => {
        const body = request.body;
        if (body instanceof RawBody) return unsupportedMediaType(reply, body.contentType);
        if (body === undefined)
          throw new InvalidError('body is empty: send one update or {"updates": [...]} as application/json', [
            { path: '(body)', message: 'is empty' },
          ]);
        const key = this.keys.get(request) as AuthenticatedKey;
        const result = await this.updates.accept(key, body);
        return reply.code(202).send(result);
      },
    });
  }

  /** Answers 408 when the body has not arrived whole within INGEST_BODY_TIMEOUT_MS (cleared in preValidation). */
  private startBodyTimer(request: FastifyRequest, reply: FastifyReply, route: 'updates' | 'ping'): void {
    const timer = setTimeout(() => this.bodyTimedOut(request, reply, route), this.config.bodyTimeoutMs);
    this.bodyTimers.set(request, timer);
    reply.raw.once('close', () => clearTimeout(timer));
  }

  /** The body did not arrive whole in time: 408, the connection closed (which releases its admission). */
  private bodyTimedOut(request: FastifyRequest, reply: FastifyReply, route: 'updates' | 'ping'): void {
    if (request.raw.complete || reply.sent || reply.raw.headersSent) return;
    const seconds = Math.round(this.config.bodyTimeoutMs / 1000);
    const body: ApiErrorBody = {
      error: {
        code: 'request_timeout',
        message: `the body did not arrive within ${seconds} s of the request; nothing was accepted, send it again`,
        issues: [{ path: '(body)', message: `not received whole within ${seconds} s` }],
      },
    };
    const text = JSON.stringify(body);
    this.metrics.refused.labels(route, 'timeout').inc();
    // Answered here, outside Fastify's reply (its body parser is still waiting): it must not answer again.
    reply.hijack();
    reply.raw
      .writeHead(408, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        connection: 'close',
      })
      .end(text, () => request.raw.destroy());
  }

  private registerPings(app: FastifyInstance): void {
    // `signal` 'exit-code': `/ping/{token}/{code}` (Healthchecks style, `curl …/ping/$TOKEN/$?`), the signal its code's.
    const route = (url: string, signal: PingSignal | 'exit-code'): void => {
      app.route({
        method: ['GET', 'POST', 'HEAD'],
        url,
        exposeHeadRoute: false,
        // Only the head of a large POST body is kept (the ping must count whatever a job posts); the rest, up to
        // PING_BODY_READ_LIMIT, is read and dropped. GET and HEAD bodies are left to the discard of unread bodies.
        bodyLimit: Math.max(this.config.bodyLimitBytes, PING_BODY_READ_LIMIT),
        preParsing: async (request, _reply, payload) => {
          if (request.method !== 'POST') return payload;
          const readLimit = Math.max(this.config.bodyLimitBytes, PING_BODY_READ_LIMIT);
          const header = request.headers['content-encoding'];
          const encoding = bodyEncodingOf(header);
          // A compressed body is inflated (its head kept); one in a coding not decoded here keeps a note instead.
          return encoding === null
            ? keepHeadOfBody(payload, MAX_PING_BODY_BYTES, readLimit)
            : keepHeadOfEncodedBody(
                payload,
                encoding,
                String(header).slice(0, 100),
                MAX_PING_BODY_BYTES,
                readLimit,
                () => pingCharsets.delete(request.raw),
              );
        },
        // Before the body is read and before any token lookup: the per-address ping limit, and a token that
        // cannot be one (malformed, or its checksum fails) refused without reading what it sends.
        onRequest: async (request, reply) => {
          this.pings.admit(request.ip);
          const { token } = request.params as { token: string };
          if (signal === 'exit-code') exitCodeParam(request);
          if (request.method === 'POST') takeAnyContentType(request);
          const shape = pingTokenShapeOf(token);
          if (shape === 'malformed' || shape === 'bad-checksum')
            throw new NotFoundError('no heartbeat monitor has this ping URL');
          // A POST body that stalls is answered 408 in time, as an update's is (it held a socket for Node's 5 min).
          if (request.method === 'POST') this.startBodyTimer(request, reply, 'ping');
        },
        preValidation: async (request) => clearTimeout(this.bodyTimers.get(request)),
        onError: async (request, _reply, error) => {
          if (error instanceof IngressPausedError) this.refusals.set(request, 'paused');
        },
        onResponse: async (request, reply) => {
          if (reply.statusCode >= 400)
            this.metrics.refused.labels('ping', this.refusals.get(request) ?? refusalReasonOf(reply.statusCode)).inc();
        },
        handler: async (request, reply) => {
          const { token } = request.params as { token: string };
          const rid = (request.query as Record<string, unknown>)['rid'];
          if (rid !== undefined && typeof rid !== 'string')
            throw new InvalidError('rid: give one run id', [{ path: 'rid', message: 'give one run id' }]);
          const ridProblem = rid === undefined ? null : rid.length > 128 ? 'at most 128 characters' : textProblem(rid);
          if (ridProblem) throw new InvalidError(`rid: ${ridProblem}`, [{ path: 'rid', message: ridProblem }]);
          // In the charset named (none, UTF-8: where the body is this edge's own note about its content coding).
          const body =
            request.body instanceof RawBody && request.body.bytes.length
              ? pingBodyText(request.body.bytes, pingCharsets.get(request.raw))
              : undefined;
          const exitCode = signal === 'exit-code' ? exitCodeParam(request) : undefined;
          const result = await this.pings.ping(
            token,
            exitCode === undefined ? (signal as PingSignal) : signalOfExitCode(exitCode),
            { runId: rid, body, clientAddress: request.ip, ...(exitCode === undefined ? {} : { exitCode }) },
          );
          return reply.code(200).send(result);
        },
      });
    };
    route(`${PING_PREFIX}:token`, 'success');
    route(`${PING_PREFIX}:token/start`, 'start');
    route(`${PING_PREFIX}:token/fail`, 'fail');
    // Any other last segment (`start` and `fail` are static: they match first); not an exit code 0–255, a 404 naming it.
    route(`${PING_PREFIX}:token/:code`, 'exit-code');
    // Another method on a ping URL (a job's `curl -X PUT`) is told so — a 404 read as a wrong URL — and not counted.
    for (const url of [
      `${PING_PREFIX}:token`,
      `${PING_PREFIX}:token/start`,
      `${PING_PREFIX}:token/fail`,
      `${PING_PREFIX}:token/:code`,
    ])
      app.route({
        method: ['PUT', 'DELETE', 'PATCH'],
        url,
        // Told 405 whatever its Content-Type says (one that is no media type was a 415 that named no wrong method).
        onRequest: anyContentType,
        onResponse: async (_request, reply) => {
          this.metrics.refused.labels('ping', refusalReasonOf(reply.statusCode)).inc();
        },
        handler: async (request, reply) => {
          // A last segment that is no exit code is no ping URL, whatever the method: 404 as for GET.
          if ((request.params as { code?: string }).code !== undefined) exitCodeParam(request);
          const body: ApiErrorBody = {
            error: {
              code: ApiErrorCode.MethodNotAllowed,
              message: `a ping is sent with GET, HEAD or POST, not ${request.method}: this one was not counted`,
            },
          };
          return reply.code(405).header('allow', 'GET, HEAD, POST').send(body);
        },
      });
    // Any other shape under /ping/ (a trailing slash after a code, more segments, an empty token): a 404 saying what a
    // ping URL is, counted as refused — not the framework's "Cannot GET /ping/<token>/…", which echoed the secret.
    app.route({
      method: ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH'],
      url: `${PING_PREFIX}*`,
      exposeHeadRoute: false,
      // Told 404 whatever its Content-Type says (one that is no media type was a 415 that named no wrong URL).
      onRequest: anyContentType,
      onResponse: async (_request, reply) => {
        this.metrics.refused.labels('ping', refusalReasonOf(reply.statusCode)).inc();
      },
      handler: async (request) => {
        // A segment longer than the router takes as a parameter (its 414, which this route would otherwise answer).
        const segments = request.url.split('?')[0].slice(PING_PREFIX.length).split('/');
        if (segments.some((segment) => segment.length > ROUTER_MAX_PARAM_LENGTH))
          throw Object.assign(new Error('a path parameter is too long'), {
            code: 'FST_ERR_MAX_PARAM_LENGTH',
            statusCode: 414,
          });
        throw new NotFoundError(PING_URL_SHAPES);
      },
    });
    // Any other method under /ping/ (OPTIONS, TRACE, or one the router does not route: PROPFIND, SEARCH…) reaches the
    // framework's not-found handler, whose "Cannot OPTIONS /ping/<token>" echoed the secret: the same 404 as above.
    // Counted as refused, as those are. Runs for the not-found handler only (`is404`): the routes pay one boolean check.
    // Callback style: no promise per request on the hot path.
    app.addHook('onRequest', (request, _reply, done) => {
      if (!request.is404 || !PING_PATH.test(request.url)) return done();
      this.metrics.refused.labels('ping', 'not_found').inc();
      done(new NotFoundError(PING_URL_SHAPES));
    });
  }
}

/** A path under /ping/, however many slashes lead it (`//ping/<token>` is no route either). */
const PING_PATH = /^\/+ping\//;

/**
 * A ping URL takes any body as bytes, whatever its Content-Type says: one that is no media type (`text`, an empty
 * header, `a/b/c`) is refused by the framework with 415 before any parser runs — a ping lost, or a wrong method or URL
 * not told so. Called in a route's onRequest hook, before the framework reads the header. Only its charset is kept (the
 * body's text is read in it: pingBodyText); Content-Encoding is read on its own.
 */
function takeAnyContentType(request: FastifyRequest): void {
  const type = request.raw.headers['content-type'];
  if (type === undefined) return;
  const charset = charsetOf(type);
  if (charset !== undefined) pingCharsets.set(request.raw, charset);
  request.raw.headers['content-type'] = 'application/octet-stream';
}

/**
 * The charset a ping POST's Content-Type named (takeAnyContentType reads it before the header is replaced); dropped when
 * the body is replaced by a note (keepHeadOfEncodedBody), which is UTF-8.
 */
const pingCharsets = new WeakMap<FastifyRequest['raw'], string>();

/** takeAnyContentType as a route's onRequest hook (the routes that refuse a ping URL: 405, 404). */
function anyContentType(request: FastifyRequest, _reply: unknown, done: () => void): void {
  takeAnyContentType(request);
  done();
}

/** find-my-way's longest path parameter (status-ingest keeps the default): longer is a 414. */
const ROUTER_MAX_PARAM_LENGTH = 100;

const PING_URL_SHAPES =
  'no ping URL has this shape: ping /ping/{token}, /ping/{token}/start, /ping/{token}/fail or /ping/{token}/{exit code 0–255}';

/**
 * The exit code of `/ping/{token}/{code}`; a last segment that is none (not 0–255 in decimal) is a 404 saying what a
 * ping URL may end in, before the body is read or the token looked up — the ping is not counted.
 */
function exitCodeParam(request: FastifyRequest): number {
  const { code } = request.params as { code: string };
  const exitCode = exitCodeOf(code);
  if (exitCode === null) {
    if (code === '') throw new NotFoundError(PING_URL_SHAPES);
    const named = JSON.stringify(Array.from(code).slice(0, 40).join(''));
    throw new NotFoundError(
      `no ping URL ends in ${named}: after the token comes nothing, /start, /fail or an exit code 0–255 (/ping/{token}/$?)`,
    );
  }
  return exitCode;
}

function unsupportedEncoding(reply: FastifyReply, encoding: string | string[] | undefined): FastifyReply {
  const named = String(encoding).slice(0, 100);
  const body: ApiErrorBody = {
    error: {
      code: ApiErrorCode.UnsupportedMediaType,
      message: `content encoding "${named}" is not supported: send the body as ${ACCEPTED_ENCODINGS}`,
      issues: [{ path: '(content-encoding)', message: `must be one of ${ACCEPTED_ENCODINGS}` }],
    },
  };
  return reply.code(415).send(body);
}

function unsupportedMediaType(reply: FastifyReply, contentType: string | undefined): FastifyReply {
  const body: ApiErrorBody = {
    error: {
      code: ApiErrorCode.UnsupportedMediaType,
      message: contentType
        ? `content type "${contentType.slice(0, 100)}" is not supported: send application/json`
        : 'no content type: send the body as application/json',
      issues: [{ path: '(content-type)', message: 'must be application/json' }],
    },
  };
  return reply.code(415).send(body);
}
