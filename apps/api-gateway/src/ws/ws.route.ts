import fastifyWebsocket from '@fastify/websocket';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ApiErrorBody, ApiErrorCode, WS_MAX_CLIENT_FRAME_BYTES, WS_PATH, WS_PROTOCOL } from '@fleetwatch/contracts';
import { mapError } from '@fleetwatch/observability';
import type { AuthService } from '../auth/auth.service';
import { checkOrigin, requestOrigin, SESSION_COOKIE, warnOtherSchemeOnce } from '../auth/browser-session';
import { parseCookies } from '../auth/cookies';
import type { Principal } from '../auth/principal';
import type { GatewayConfig } from '../config';
import { FrameBudget } from './frame-budget';
import { SocketSubscriptions } from './subscriptions';
import type { WsHub } from './ws-hub.service';

/** A session token offered as a subprotocol (`fleetwatch.v1, fws_…`): browsers cannot set headers on a WebSocket. */
const TOKEN_PROTOCOL = /^fw[sk]_[A-Za-z0-9_-]+$/;

interface Admitted {
  principal: Principal;
  recheck: () => Promise<Principal>;
  credentialKey: string;
}

const admitted = new WeakMap<object, Admitted>();

function offeredProtocols(request: FastifyRequest): string[] {
  const raw = request.headers['sec-websocket-protocol'];
  return (Array.isArray(raw) ? raw.join(',') : (raw ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

function refuse(reply: FastifyReply, status: number, code: ApiErrorCode, message: string): FastifyReply {
  const body: ApiErrorBody = { error: { code, message } };
  return reply.code(status).header('connection', 'close').send(body);
}

/**
 * The credential of an upgrade request: `Authorization: Bearer` (API clients), a token
 * subprotocol, or the browser session cookie. Origin: when the browser sends one it must
 * be this origin (scheme, host and port) or listed in GATEWAY_WS_ALLOWED_ORIGINS; a cookie is only honoured with an
 * allowed Origin (a page elsewhere cannot ride on the user's cookie: cross-site WebSocket hijacking).
 */
async function admit(
  auth: AuthService,
  config: GatewayConfig,
  logger: Logger,
  request: FastifyRequest,
): Promise<Admitted> {
  const origin = request.headers.origin;
  const cookie = parseCookies(request.headers.cookie)[SESSION_COOKIE];
  const authorization = request.headers.authorization;
  const protocolToken = offeredProtocols(request).find((p) => TOKEN_PROTOCOL.test(p));
  const usesCookie = !authorization && !protocolToken && cookie !== undefined;
  const self = requestOrigin(request);
  const verdict = checkOrigin({ origin }, self, config.allowedOrigins, usesCookie);
  warnOtherSchemeOnce(logger, verdict, self);
  if (!verdict.ok) throw new WsRefusal(403, ApiErrorCode.Forbidden, `WebSocket refused: ${verdict.reason}`);

  const ip = request.ip;
  let recheck: () => Promise<Principal>;
  let credentialKey: string;
  if (authorization) {
    recheck = () => auth.authenticate(authorization, ip);
    credentialKey = `h:${authorization}`;
  } else if (protocolToken) {
    recheck = () =>
      protocolToken.startsWith('fws_')
        ? auth.authenticateSessionToken(protocolToken)
        : auth.authenticate(`Bearer ${protocolToken}`, ip);
    credentialKey = `p:${protocolToken}`;
  } else if (cookie) {
    recheck = () => auth.authenticateSessionToken(cookie, 'cookie');
    credentialKey = `c:${cookie}`;
  } else {
    throw new WsRefusal(
      401,
      ApiErrorCode.Unauthorized,
      `no credential: sign in (session cookie), or send "Authorization: Bearer <token>" or the subprotocols "${WS_PROTOCOL}, <token>"`,
    );
  }
  return { principal: await recheck(), recheck, credentialKey };
}

class WsRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Registers GET /ws (before listen, like the other Fastify-level routes of configureGateway). */
export async function registerWebSocket(
  app: NestFastifyApplication,
  hub: WsHub,
  auth: AuthService,
  config: GatewayConfig,
  logger: Logger,
): Promise<void> {
  await app.register(fastifyWebsocket as never, {
    options: {
      maxPayload: WS_MAX_CLIENT_FRAME_BYTES,
      // Select our protocol when offered; a token offered beside it is never echoed back.
      handleProtocols: (protocols: Set<string>) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
    },
  });
  const fastify = app.getHttpAdapter().getInstance();
  fastify.get(
    WS_PATH,
    {
      websocket: true,
      preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
        try {
          admitted.set(request, await admit(auth, config, logger, request));
        } catch (err) {
          if (err instanceof WsRefusal) return refuse(reply, err.status, err.code, err.message);
          // Anything else as the REST routes answer it (Nest's filter never sees this Fastify route): a database
          // or Redis away is a 503 with Retry-After, not Fastify's 500 in another shape.
          const mapped = mapError(err);
          if (mapped.status >= 500 && mapped.status !== 503)
            logger.error({ err }, 'WebSocket upgrade failed while admitting the request');
          return reply
            .code(mapped.status)
            .headers(mapped.headers ?? {})
            .header('connection', 'close')
            .send(mapped.body);
        }
      },
    } as never,
    ((socket: import('@fastify/websocket').WebSocket, request: FastifyRequest) => {
      const a = admitted.get(request);
      if (!a) {
        socket.close(1011, 'not admitted');
        return;
      }
      hub.attach({
        socket,
        ...a,
        subscriptions: new SocketSubscriptions(),
        expiry: null,
        awaitingPong: false,
        frames: new FrameBudget(),
      });
    }) as never,
  );
}
