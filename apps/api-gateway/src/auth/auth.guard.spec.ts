import { Controller, ExecutionContext, Get } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { UserRole } from '@fleetwatch/contracts';
import { ForbiddenError, UnauthorizedError } from '@fleetwatch/domain';
import { HealthController } from '@fleetwatch/observability';
import { Public, RequireRole } from './access.decorator';
import { AuthGuard } from './auth.guard';
import type { AuthService } from './auth.service';
import { Principal, principalOf } from './principal';

@Controller('x')
class Undeclared {
  @Get()
  open(): string {
    return 'should never be reachable';
  }
}

@Controller('y')
@RequireRole(UserRole.Operator)
class OperatorRoutes {
  @Get()
  list(): string {
    return '';
  }
  @Get('admin')
  @RequireRole(UserRole.Admin)
  adminOnly(): string {
    return '';
  }
  @Get('login')
  @Public()
  login(): string {
    return '';
  }
}

function contextFor(
  cls: new (...args: never[]) => object,
  handler: (...args: never[]) => unknown,
  request: object,
): ExecutionContext {
  return {
    getType: () => 'http',
    getClass: () => cls,
    getHandler: () => handler,
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => ({}), getNext: () => undefined }),
  } as unknown as ExecutionContext;
}

function guardAs(principal: Principal | null): AuthGuard {
  const auth = {
    authenticateRequest: async () => {
      if (!principal) throw new UnauthorizedError('no token');
      return principal;
    },
  } as unknown as AuthService;
  return new AuthGuard(new Reflector(), auth);
}

const viewer: Principal = { kind: 'user', id: 'u1', name: 'v', role: UserRole.Viewer };
const operator: Principal = { kind: 'user', id: 'u2', name: 'o', role: UserRole.Operator };
const admin: Principal = { kind: 'api-key', id: 'k1', name: 'k', role: UserRole.Admin, scopes: ['admin'] };
const request = () => ({ method: 'GET', url: '/x', routeOptions: { url: '/x' }, headers: {}, ip: '127.0.0.1' });

describe('AuthGuard', () => {
  it('refuses a route that declares no role, even to an admin (deny by default)', async () => {
    await expect(
      guardAs(admin).canActivate(contextFor(Undeclared, Undeclared.prototype.open, request())),
    ).rejects.toThrow(ForbiddenError);
    await expect(
      guardAs(admin).canActivate(contextFor(Undeclared, Undeclared.prototype.open, request())),
    ).rejects.toThrow(/declares no role/);
  });

  it('asks for a token before anything else', async () => {
    await expect(
      guardAs(null).canActivate(contextFor(OperatorRoutes, OperatorRoutes.prototype.list, request())),
    ).rejects.toThrow(UnauthorizedError);
    await expect(
      guardAs(null).canActivate(contextFor(Undeclared, Undeclared.prototype.open, request())),
    ).rejects.toThrow(UnauthorizedError);
  });

  it.each([
    ['class role, viewer', OperatorRoutes.prototype.list, viewer, false],
    ['class role, operator', OperatorRoutes.prototype.list, operator, true],
    ['class role, admin key', OperatorRoutes.prototype.list, admin, true],
    ['method role overrides class, operator', OperatorRoutes.prototype.adminOnly, operator, false],
    ['method role overrides class, admin key', OperatorRoutes.prototype.adminOnly, admin, true],
  ])('%s → %s', async (_name, handler, principal, allowed) => {
    const req = request();
    const outcome = guardAs(principal).canActivate(
      contextFor(OperatorRoutes, handler as (...args: never[]) => unknown, req),
    );
    if (allowed) {
      await expect(outcome).resolves.toBe(true);
      expect(principalOf(req)).toBe(principal);
    } else {
      await expect(outcome).rejects.toThrow(ForbiddenError);
    }
  });

  it('lets @Public routes and the health endpoints through without a token', async () => {
    await expect(
      guardAs(null).canActivate(contextFor(OperatorRoutes, OperatorRoutes.prototype.login, request())),
    ).resolves.toBe(true);
    await expect(
      guardAs(null).canActivate(contextFor(HealthController, HealthController.prototype.metrics, request())),
    ).resolves.toBe(true);
  });

  it.each([
    ['GET', '/api/v1/status/report', true],
    ['GET', '/api/v1/metrics/flow', true],
    ['POST', '/api/v1/status/report', false],
    ['GET', '/y', false],
  ])('tells the auth service whether %s %s is a member read (Basic and fleet keys)', async (method, url, expected) => {
    const seen: unknown[] = [];
    const auth = {
      authenticateRequest: async (credentials: { memberRead?: boolean }) => {
        seen.push(credentials.memberRead);
        return viewer;
      },
    } as unknown as AuthService;
    const req = { ...request(), method, url, routeOptions: { url } };
    await new AuthGuard(new Reflector(), auth)
      .canActivate(contextFor(OperatorRoutes, OperatorRoutes.prototype.list, req))
      .catch(() => undefined);
    expect(seen).toEqual([expected]);
  });

  it('refuses what is not HTTP', async () => {
    const ctx = {
      ...contextFor(OperatorRoutes, OperatorRoutes.prototype.login, request()),
      getType: () => 'rpc',
    } as unknown as ExecutionContext;
    await expect(guardAs(admin).canActivate(ctx)).resolves.toBe(false);
  });
});
