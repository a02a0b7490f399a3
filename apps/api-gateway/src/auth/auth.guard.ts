import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError, roleAtLeast } from '@fleetwatch/domain';
import { HealthController } from '@fleetwatch/observability';
import { ACCESS_METADATA, RouteAccess } from './access.decorator';
import { AuthService } from './auth.service';
import { isMemberRead } from './basic-auth';
import { CSRF_HEADER, SESSION_COOKIE } from './browser-session';
import { parseCookies } from './cookies';
import { attachPrincipal } from './principal';
import type { CredentialsOfRequest } from './auth.service';

/**
 * The one guard in front of every Nest route (registered as APP_GUARD). Deny by
 * default: a route that declares neither @Public() nor @RequireRole(...) is refused,
 * so a forgotten decorator closes a route instead of opening it. The only routes
 * exempt are the infrastructure endpoints of observability's HealthController
 * (/healthz, /readyz, /metrics), which probes and Prometheus call without credentials.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    if (context.getClass() === HealthController) return true;
    const access = this.reflector.getAllAndOverride<RouteAccess | undefined>(ACCESS_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (access?.public) return true;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = await this.auth.authenticateRequest(credentialsOf(request));
    attachPrincipal(request, principal);

    if (!access)
      throw new ForbiddenError(
        `${request.method} ${request.routeOptions.url ?? request.url} declares no role: refused by default`,
      );
    if (!roleAtLeast(principal.role, access.role)) {
      throw new ForbiddenError(
        `needs role ${access.role} or higher; ${principal.kind === 'user' ? 'you are' : 'this API key acts as'} ${principal.role}`,
      );
    }
    return true;
  }
}

export function credentialsOf(request: FastifyRequest): CredentialsOfRequest {
  const header = (name: string): string | undefined => {
    const v = request.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  return {
    method: request.method,
    ip: request.ip,
    host: request.host,
    protocol: request.protocol,
    authorization: request.headers.authorization,
    memberRead: isMemberRead(request.method, request.routeOptions?.url),
    sessionCookie: parseCookies(request.headers.cookie)[SESSION_COOKIE],
    csrfToken: header(CSRF_HEADER),
    origin: header('origin'),
    referer: header('referer'),
  };
}
