import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { UserRole } from '@fleetwatch/contracts';
import { UnauthorizedError } from '@fleetwatch/domain';

/** Who is calling: a signed-in user (session token) or an API key (role from its scopes). */
export interface Principal {
  kind: 'user' | 'api-key';
  /** User id or API key id. */
  id: string;
  /** Username or key name. */
  name: string;
  role: UserRole;
  /** The session the token belongs to (users only). */
  sessionId?: string;
  /** The key's scopes (API keys only). */
  scopes?: string[];
  /** When the session ends (users only). */
  sessionExpiresAt?: Date;
  /** How the credential came: an Authorization header (or WebSocket protocol), the browser cookie, or HTTP Basic (member reads only). */
  via?: 'bearer' | 'cookie' | 'basic';
}

// Kept beside the request rather than on it, so no Fastify type needs augmenting.
const principals = new WeakMap<object, Principal>();

export function attachPrincipal(request: object, principal: Principal): void {
  principals.set(request, principal);
}

export function principalOf(request: object): Principal | undefined {
  return principals.get(request);
}

/** The authenticated caller (the AuthGuard has run: every non-public route has one). */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const principal = principalOf(ctx.switchToHttp().getRequest<object>());
  if (!principal) throw new UnauthorizedError('not authenticated');
  return principal;
});
