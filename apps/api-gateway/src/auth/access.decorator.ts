import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { UserRole } from '@fleetwatch/contracts';

export const ACCESS_METADATA = 'fleetwatch:access';

export type RouteAccess = { public: true } | { public: false; role: UserRole };

/**
 * The least role a route needs (admin > operator > viewer). Every gateway route
 * declares one (or @Public): the AuthGuard refuses routes that declare neither.
 */
export function RequireRole(role: UserRole): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(ACCESS_METADATA, { public: false, role } satisfies RouteAccess),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No, unknown, expired or revoked bearer token' }),
    ApiForbiddenResponse({ description: `Needs role ${role} or higher` }),
  );
}

/** Reachable without a token (login). */
export function Public(): MethodDecorator & ClassDecorator {
  return SetMetadata(ACCESS_METADATA, { public: true } satisfies RouteAccess);
}
