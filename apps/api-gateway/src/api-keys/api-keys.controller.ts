import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiKeyView, CreateApiKeyResponse, createApiKeyRequestSchema, UserRole } from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, Principal } from '../auth/principal';
import { ApiZodBody, errorBodySchema } from '../web/openapi';
import { apiKeyViewSchema, createApiKeyResponseSchema } from '../web/response.schemas';
import { ApiKeysService } from './api-keys.service';

@ApiTags('api-keys')
@Controller('api/v1/api-keys')
@RequireRole(UserRole.Operator)
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @ApiOperation({
    summary: 'Create an API key (operator; admin for admin/fleet scopes)',
    description:
      'The key is in this answer only; only its hash is stored. Scopes: `ingest` (status-ingest pushes), `read` (gateway as viewer), ' +
      '`write` (gateway as operator), `admin` (gateway as admin), `fleet` (a leader polling this site).',
  })
  @ApiZodBody(createApiKeyRequestSchema)
  @ApiCreatedResponse({ schema: createApiKeyResponseSchema })
  create(@CurrentPrincipal() actor: Principal, @Body() body: unknown): Promise<CreateApiKeyResponse> {
    return this.keys.create(actor, createApiKeyRequestSchema.parse(body));
  }

  @Get()
  @ApiOperation({ summary: 'List unrevoked API keys (prefix only, never the key)' })
  @ApiOkResponse({ schema: { type: 'array', items: apiKeyViewSchema } })
  list(): Promise<ApiKeyView[]> {
    return this.keys.list();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke an API key',
    description:
      'Stops working at once at the gateway replica that revoked it, within 2 s at other gateway replicas (their cached verdicts), and at status-ingest within 5 s.',
  })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ schema: errorBodySchema })
  async revoke(@CurrentPrincipal() actor: Principal, @Param('id') id: string): Promise<void> {
    await this.keys.revoke(actor, id);
  }
}
