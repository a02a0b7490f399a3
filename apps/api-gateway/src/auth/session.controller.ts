import { Body, Controller, Delete, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import {
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  BrowserSessionResponse,
  browserSessionResponseSchema,
  loginRequestSchema,
  UserRole,
} from '@fleetwatch/contracts';
import { ForbiddenError, NotFoundError } from '@fleetwatch/domain';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { ApiZodBody, errorBodySchema, responseSchemaOf } from '../web/openapi';
import { Public, RequireRole } from './access.decorator';
import { AuthService } from './auth.service';
import {
  checkOrigin,
  cookieAttributes,
  requestOrigin,
  CSRF_COOKIE,
  csrfTokenFor,
  SESSION_COOKIE,
} from './browser-session';
import { parseCookies, serializeCookie } from './cookies';
import { CurrentPrincipal, Principal } from './principal';

/** Sets both cookies of a browser session; Secure when the request came over TLS (directly or from a trusted proxy). */
export function setSessionCookies(request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: Date): void {
  const options = {
    secure: request.protocol === 'https',
    maxAgeSeconds: Math.max(1, Math.floor((expiresAt.getTime() - Date.now()) / 1000)),
  };
  appendSetCookie(reply, serializeCookie(SESSION_COOKIE, token, cookieAttributes(options, true)));
  appendSetCookie(reply, serializeCookie(CSRF_COOKIE, csrfTokenFor(token), cookieAttributes(options, false)));
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function appendSetCookie(reply: FastifyReply, value: string): void {
  const prior = reply.getHeader('set-cookie');
  const list = prior === undefined ? [] : Array.isArray(prior) ? prior.map(String) : [String(prior)];
  void reply.header('set-cookie', [...list, value]);
}

export function clearSessionCookies(request: FastifyRequest, reply: FastifyReply): void {
  const options = { secure: request.protocol === 'https', maxAgeSeconds: 0 };
  appendSetCookie(reply, serializeCookie(SESSION_COOKIE, '', cookieAttributes(options, true)));
  appendSetCookie(reply, serializeCookie(CSRF_COOKIE, '', cookieAttributes(options, false)));
}

/**
 * The dashboard's sign-in (issue 17). The same credentials, rate limits and sessions as
 * POST /api/v1/auth/login, but the session token goes into an HttpOnly, SameSite=Strict
 * cookie instead of the body; the answer carries the CSRF token for writes.
 */
@ApiTags('auth')
@Controller('api/v1/auth/session')
export class SessionController {
  constructor(
    private readonly auth: AuthService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post()
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Sign in from a browser (session cookie)',
    description:
      'Sets `fw_session` (HttpOnly, SameSite=Strict, Secure over TLS) and `fw_csrf` (readable by the page). ' +
      'Cookie-authenticated writes must send `X-CSRF-Token: <csrfToken>`; a foreign `Origin` is refused. ' +
      'API clients keep using POST /api/v1/auth/login and `Authorization: Bearer`.',
  })
  @ApiZodBody(loginRequestSchema)
  @ApiOkResponse({ schema: responseSchemaOf(browserSessionResponseSchema) })
  @ApiUnauthorizedResponse({ description: 'Wrong username or password', schema: errorBodySchema })
  @ApiTooManyRequestsResponse({ description: 'Too many attempts: see Retry-After', schema: errorBodySchema })
  async signIn(
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<BrowserSessionResponse> {
    // A page elsewhere must not sign the browser in to an account of its choosing (login CSRF).
    const origin = checkOrigin(
      { origin: headerOf(request, 'origin'), referer: headerOf(request, 'referer') },
      requestOrigin(request),
      this.config.allowedOrigins,
      false,
    );
    if (!origin.ok) throw new ForbiddenError(`cross-origin sign-in refused: ${origin.reason}`);
    const { token, expiresAt, user } = await this.auth.login(loginRequestSchema.parse(body), request.ip);
    setSessionCookies(request, reply, token, new Date(expiresAt));
    return { expiresAt, user, csrfToken: csrfTokenFor(token) };
  }

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'The browser session in use',
    description: 'For a page reloaded with its cookie: who is signed in, until when, and the CSRF token.',
  })
  @ApiOkResponse({ schema: responseSchemaOf(browserSessionResponseSchema) })
  current(@CurrentPrincipal() principal: Principal, @Req() request: FastifyRequest): BrowserSessionResponse {
    const token = parseCookies(request.headers.cookie)[SESSION_COOKIE];
    if (principal.via !== 'cookie' || !token || !principal.sessionExpiresAt)
      throw new NotFoundError('no browser session: this request has no session cookie (POST /api/v1/auth/session)');
    return {
      expiresAt: principal.sessionExpiresAt.toISOString(),
      user: { id: principal.id, username: principal.name, role: principal.role },
      csrfToken: csrfTokenFor(token),
    };
  }

  @Delete()
  @RequireRole(UserRole.Viewer)
  @HttpCode(204)
  @ApiOperation({
    summary: 'Sign out from a browser',
    description: 'Revokes the session (its live sockets close within seconds) and clears both cookies.',
  })
  @ApiNoContentResponse()
  async signOut(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    await this.auth.logout(principal);
    clearSessionCookies(request, reply);
  }
}
