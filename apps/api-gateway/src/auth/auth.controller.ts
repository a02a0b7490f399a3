import { Body, Controller, Get, HttpCode, Post, Put, Req, Res } from '@nestjs/common';
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
  changeOwnPasswordRequestSchema,
  LoginResponse,
  loginRequestSchema,
  PrincipalView,
  UserRole,
} from '@fleetwatch/contracts';
import { UsersService } from '../users/users.service';
import { ApiZodBody, errorBodySchema } from '../web/openapi';
import { loginResponseSchema, principalSchema } from '../web/response.schemas';
import { Public, RequireRole } from './access.decorator';
import { AuthService } from './auth.service';
import { CurrentPrincipal, Principal } from './principal';
import { clearSessionCookies } from './session.controller';

@ApiTags('auth')
@Controller('api/v1/auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UsersService,
  ) {}

  @Post('login')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Sign in',
    description:
      'Returns a session token to send as `Authorization: Bearer <token>`. Rate-limited per client address and username.',
  })
  @ApiZodBody(loginRequestSchema)
  @ApiOkResponse({ schema: loginResponseSchema })
  @ApiUnauthorizedResponse({ description: 'Wrong username or password', schema: errorBodySchema })
  @ApiTooManyRequestsResponse({ description: 'Too many attempts: see Retry-After', schema: errorBodySchema })
  login(@Body() body: unknown, @Req() request: FastifyRequest): Promise<LoginResponse> {
    return this.auth.login(loginRequestSchema.parse(body), request.ip);
  }

  @Post('logout')
  @RequireRole(UserRole.Viewer)
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke the session of the token in use' })
  @ApiNoContentResponse()
  async logout(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    await this.auth.logout(principal);
    if (principal.via === 'cookie') clearSessionCookies(request, reply);
  }

  @Get('me')
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'Who the token belongs to' })
  @ApiOkResponse({ schema: principalSchema })
  me(@CurrentPrincipal() principal: Principal): PrincipalView {
    return {
      kind: principal.kind,
      id: principal.id,
      name: principal.name,
      role: principal.role,
      ...(principal.scopes ? { scopes: principal.scopes } : {}),
    };
  }

  @Put('password')
  @RequireRole(UserRole.Viewer)
  @HttpCode(204)
  @ApiOperation({
    summary: 'Change your own password',
    description:
      'Any role. Revokes every session of the user, this one included: log in again. Wrong current passwords count against the sign-in rate limit (429 + Retry-After).',
  })
  @ApiZodBody(changeOwnPasswordRequestSchema)
  @ApiNoContentResponse()
  @ApiTooManyRequestsResponse({
    description: 'Too many attempts (counted with sign-in, per address and username): see Retry-After',
    schema: errorBodySchema,
  })
  async changeOwnPassword(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
  ): Promise<void> {
    const input = changeOwnPasswordRequestSchema.parse(body);
    const change = () => this.users.changeOwnPassword(principal, input);
    // An API key has no password (refused inside, unlimited); a user's current password is guessed no faster than at
    // sign-in.
    if (principal.kind !== 'user') return change();
    await this.auth.limitPasswordCheck(request.ip, principal.name, change);
  }
}
