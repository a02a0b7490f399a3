import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import {
  changeRoleRequestSchema,
  createUserRequestSchema,
  setPasswordRequestSchema,
  setUserDisabledRequestSchema,
  UserAdminView,
  userAdminViewSchema,
  UserRole,
  UserView,
} from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, Principal } from '../auth/principal';
import { ApiZodBody, errorBodySchema, responseSchemaOf } from '../web/openapi';
import { userViewSchema } from '../web/response.schemas';
import { UsersService } from './users.service';

@ApiTags('users')
@Controller('api/v1/users')
@RequireRole(UserRole.Admin)
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @ApiOperation({ summary: 'List users (admin)', description: "With each user's disabled state." })
  @ApiOkResponse({ schema: responseSchemaOf(userAdminViewSchema.array()) })
  list(): Promise<UserAdminView[]> {
    return this.users.list();
  }

  @Put(':id/disabled')
  @ApiOperation({
    summary: 'Disable or enable a user (admin)',
    description:
      'Disabling refuses sign-in and revokes every session of the user (live sockets close within seconds). ' +
      'Nobody disables themselves or the last enabled admin (409).',
  })
  @ApiZodBody(setUserDisabledRequestSchema)
  @ApiOkResponse({ schema: responseSchemaOf(userAdminViewSchema) })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiConflictResponse({ description: 'Yourself, or the last enabled admin', schema: errorBodySchema })
  setDisabled(
    @CurrentPrincipal() actor: Principal,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<UserAdminView> {
    return this.users.setDisabled(actor, id, setUserDisabledRequestSchema.parse(body).disabled);
  }

  @Post()
  @ApiOperation({ summary: 'Create a user (admin)' })
  @ApiZodBody(createUserRequestSchema)
  @ApiCreatedResponse({ schema: userViewSchema })
  @ApiConflictResponse({
    description: 'Username taken, in any case (`Admin` when `admin` exists)',
    schema: errorBodySchema,
  })
  create(@Body() body: unknown): Promise<UserView> {
    return this.users.create(createUserRequestSchema.parse(body));
  }

  @Put(':id/role')
  @ApiOperation({ summary: "Change a user's role (admin)", description: 'Revokes every session of the user.' })
  @ApiZodBody(changeRoleRequestSchema)
  @ApiOkResponse({ schema: userViewSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiConflictResponse({ description: 'Would remove the last admin', schema: errorBodySchema })
  changeRole(@Param('id') id: string, @Body() body: unknown): Promise<UserView> {
    return this.users.changeRole(id, changeRoleRequestSchema.parse(body).role);
  }

  @Put(':id/password')
  @HttpCode(204)
  @ApiOperation({
    summary: "Set a user's password (admin)",
    description: 'Revokes every session of the user. To change your own, use PUT /api/v1/auth/password.',
  })
  @ApiZodBody(setPasswordRequestSchema)
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ schema: errorBodySchema })
  async setPassword(@Param('id') id: string, @Body() body: unknown): Promise<void> {
    await this.users.setPassword(id, setPasswordRequestSchema.parse(body).password);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a user (admin)' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiConflictResponse({ description: 'Yourself, or the last admin', schema: errorBodySchema })
  async delete(@CurrentPrincipal() actor: Principal, @Param('id') id: string): Promise<void> {
    await this.users.delete(actor, id);
  }
}
