import {
  applyDecorators,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Res,
  UseFilters,
} from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  AlertConfigRpcMethod as M,
  channelTestResultSchema,
  silenceStateSchema,
  UserRole,
  UUID_PATTERN,
  type Page,
  type SilenceDefinition,
} from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ConfigApiErrorFilter } from '../checks/owner-errors';
import { IDEMPOTENCY_KEY_DESCRIPTION } from '../checks/checks.openapi';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';
import { actorOf, idempotencyKeyOf, objectBody } from '../checks/request-envelope';
import { AlertConfigOwner } from './alert-config-owner.service';
import { errorBodySchema, responseSchemaOf } from '../web/openapi';
import { CHANNEL_TEST_SENDER, type ChannelTestSender, type ChannelTestResult } from './channel-test-sender';
import { configController, configIdOf, listQuerySchema } from './config-routes.factory';

// Alert configuration over REST (issue 18, SPEC §7): each route one request to the owner
// (sync-orchestrator) over the bus. Viewers read; operators and API keys with `write` write.

export const AlertRulesController = configController({
  className: 'AlertRulesController',
  path: 'alert-rules',
  noun: 'alert rule',
  key: 'rule',
  methods: {
    create: M.RulesCreate,
    replace: M.RulesReplace,
    patch: M.RulesPatch,
    delete: M.RulesDelete,
    list: M.RulesList,
    get: M.RulesGet,
  },
});

export const ChannelsController = configController({
  className: 'ChannelsController',
  path: 'channels',
  noun: 'channel',
  key: 'channel',
  methods: {
    create: M.ChannelsCreate,
    replace: M.ChannelsReplace,
    patch: M.ChannelsPatch,
    delete: M.ChannelsDelete,
    list: M.ChannelsList,
    get: M.ChannelsGet,
  },
});

export const MaintenanceWindowsController = configController({
  className: 'MaintenanceWindowsController',
  path: 'maintenance-windows',
  noun: 'maintenance window',
  key: 'window',
  methods: {
    create: M.WindowsCreate,
    replace: M.WindowsReplace,
    patch: M.WindowsPatch,
    delete: M.WindowsDelete,
    list: M.WindowsList,
    get: M.WindowsGet,
  },
});

/** `GET /api/v1/alert-rules/prometheus`: a static path, matched before the rules' `:id`. */
@ApiTags('alerts')
@Controller('api/v1/alert-rules')
@UseFilters(ConfigApiErrorFilter)
export class AlertRulesExportController {
  constructor(private readonly owner: AlertConfigOwner) {}

  @Get('prometheus')
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'The stored rules as a Prometheus rule file',
    description:
      'Over the series `/metrics` exposes (libs/alerting). Rules that cannot be said in PromQL over them are left ' +
      'out: `X-Fleetwatch-Rules-Skipped` counts them.',
  })
  @ApiProduces('text/yaml')
  async prometheus(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const r = await this.owner.call(M.RulesPrometheus, {});
    void reply
      .header('content-type', 'text/yaml; charset=utf-8')
      .header('x-fleetwatch-rules-exported', String(r.exported.length))
      .header('x-fleetwatch-rules-skipped', String(r.skipped.length));
    return r.yaml;
  }
}

/** A channel's test-send, by the aggregator over the bus (channel-test-sender.ts). */
@ApiTags('alerts')
@Controller('api/v1/channels')
@UseFilters(ConfigApiErrorFilter)
export class ChannelTestController {
  constructor(@Inject(CHANNEL_TEST_SENDER) private readonly testSender: ChannelTestSender) {}

  @Post(':id/test')
  @HttpCode(200)
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Send a test notification through a channel now (operator)',
    description:
      'Sent once by the aggregator, never retried, and logged in the delivery log as a test. The answer says how it ' +
      'went: `ok`, `outcome`, the receiver status, the error (secrets scrubbed). 404: no such channel; 503: the ' +
      'aggregator did not answer in time.',
  })
  @ApiOkResponse({ schema: responseSchemaOf(channelTestResultSchema) })
  async test(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<ChannelTestResult> {
    return this.testSender.send(configIdOf(id, 'channel'), actorOf(principal));
  }
}

const silencesQuerySchema = listQuerySchema.extend({ state: silenceStateSchema.optional() });

function silenceIdOf(id: string): string {
  if (!UUID_PATTERN.test(id))
    throw new InvalidError(`id: not a silence id (UUID): "${id.slice(0, 64)}"`, [
      { path: 'id', message: 'a silence id (UUID)' },
    ]);
  return id;
}

/** A silence write's `Idempotency-Key` (silences have no version to match: no If-Match, as ApiVersionedWrite has). */
const ApiIdempotencyKey = () =>
  applyDecorators(
    ApiHeader({ name: 'Idempotency-Key', required: false, description: IDEMPOTENCY_KEY_DESCRIPTION }),
    ApiResponse({
      status: 422,
      description:
        'the Idempotency-Key was already used by this caller for another request of this kind (`denied`, issue path `Idempotency-Key`)',
      schema: errorBodySchema,
    }),
  );

/** Silences: created by the caller (the author), listed by state, expired (kept) or deleted. */
@ApiTags('alerts')
@Controller('api/v1/silences')
@UseFilters(ConfigApiErrorFilter)
export class SilencesController {
  constructor(private readonly owner: AlertConfigOwner) {}

  @Post()
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Create a silence (operator)',
    description: '`{matchers, startsAt, endsAt, comment}`; the author (`createdBy`) is the caller.',
  })
  @ApiIdempotencyKey()
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<SilenceDefinition> {
    const params = { actor: actorOf(principal), body: objectBody(body) };
    const { silence } = await this.owner.call(M.SilencesCreate, params, idempotencyKeyOf(key));
    void reply.header('location', `/api/v1/silences/${silence.id}`);
    return silence;
  }

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'List silences, newest first; `state` = active, pending or expired' })
  list(@Query() query: unknown): Promise<Page<SilenceDefinition>> {
    return this.owner.call(M.SilencesList, silencesQuerySchema.parse(query ?? {}));
  }

  @Get(':id')
  @RequireRole(UserRole.Viewer)
  async get(@Param('id') id: string): Promise<SilenceDefinition> {
    return (await this.owner.call(M.SilencesGet, { id: silenceIdOf(id) })).silence;
  }

  @Post(':id/expire')
  @HttpCode(200)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'End a silence now (operator); it stays listed as expired' })
  @ApiIdempotencyKey()
  async expire(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<SilenceDefinition> {
    const params = { actor: actorOf(principal), id: silenceIdOf(id) };
    return (await this.owner.call(M.SilencesExpire, params, idempotencyKeyOf(key))).silence;
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireRole(UserRole.Operator)
  @ApiIdempotencyKey()
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<void> {
    const params = { actor: actorOf(principal), id: silenceIdOf(id) };
    await this.owner.call(M.SilencesDelete, params, idempotencyKeyOf(key));
  }
}
