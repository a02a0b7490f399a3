import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseFilters } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { UserRole, type ConfigRpcMethod, type ConfigRpcResults } from '@fleetwatch/contracts';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import {
  ApiOwnerUnavailable,
  ApiVersionedWrite,
  auditPageSchema,
  importResultSchema,
  versionListSchema,
  versionSchema,
} from '../checks/checks.openapi';
import type { PingUrls } from '../checks/checks.service';
import { ConfigApiErrorFilter, etagOf } from '../checks/owner-errors';
import {
  auditQuerySchema,
  expectedVersionOf,
  importQuerySchema,
  versionNumberOf,
  versionsQuerySchema,
} from '../checks/request-envelope';
import { ApiZodQuery, errorBodySchema } from '../web/openapi';
import { ConfigAsCodeService, yamlBodyOf } from './config-as-code.service';
import { YAML_MEDIA_TYPES } from './yaml-body.parser';

type Results = ConfigRpcResults;

/**
 * Config as code (issue 15): the site's checks as one YAML document, imported as one
 * versioned, audited change; its versions and audit log. Owned by sync-orchestrator.
 */
@ApiTags('config')
@Controller('api/v1/config')
@UseFilters(ConfigApiErrorFilter)
export class ConfigAsCodeController {
  constructor(private readonly config: ConfigAsCodeService) {}

  @Get('export')
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'The configuration as YAML',
    description:
      'Importing it again changes nothing. The ETag is the config version (the If-Match of an import); ' +
      '`X-Fleetwatch-Config-Hash` is the content hash.',
  })
  @ApiProduces('application/yaml')
  @ApiOkResponse({ schema: { type: 'string' }, description: 'YAML document' })
  @ApiOwnerUnavailable()
  async export(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const { yaml, version, hash } = await this.config.export();
    void reply
      .type('application/yaml; charset=utf-8')
      .header('etag', etagOf(version))
      .header('x-fleetwatch-config-hash', hash);
    return yaml;
  }

  @Post('import')
  @HttpCode(200)
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'Import a YAML configuration (operator; a dry run: viewer)',
    description:
      'The file is the truth: checks are matched by `name`, created, changed, and (with `prune`, the default) the ' +
      'checks not in the file deleted — all as one config version. `dryRun=true` answers the plan and changes nothing. ' +
      'A bad check is a 400 naming it (`checks.<name>.conditions.0: …`).',
  })
  @ApiConsumes(...YAML_MEDIA_TYPES, 'application/json')
  @ApiBody({
    schema: { type: 'string', description: 'YAML document (as exported); JSON clients may send {"yaml": "…"}' },
  })
  @ApiZodQuery(importQuerySchema)
  @ApiOkResponse({ schema: importResultSchema })
  @ApiVersionedWrite({ denied: true, notFound: false })
  async import(
    @CurrentPrincipal() principal: Principal,
    @Query() query: unknown,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Results[ConfigRpcMethod.ConfigImport] & PingUrls> {
    const q = importQuerySchema.parse(query ?? {});
    const expected = expectedVersionOf(ifMatch);
    const result = await this.config.import(principal, yamlBodyOf(body), q, expected);
    void reply.header('etag', etagOf(result.version));
    return result;
  }

  @Get('versions')
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'Config versions, newest first',
    description: 'Page with `before` = the last version seen.',
  })
  @ApiZodQuery(versionsQuerySchema)
  @ApiOkResponse({ schema: versionListSchema })
  @ApiOwnerUnavailable()
  versions(@Query() query: unknown): Promise<Results[ConfigRpcMethod.ConfigVersions]> {
    return this.config.versions(versionsQuerySchema.parse(query ?? {}));
  }

  @Get('versions/:n')
  @RequireRole(UserRole.Viewer)
  @ApiParam({ name: 'n', description: 'Config version' })
  @ApiOperation({ summary: 'One config version with its snapshot' })
  @ApiOkResponse({ schema: versionSchema })
  @ApiNotFoundResponse({ schema: errorBodySchema })
  @ApiOwnerUnavailable()
  version(@Param('n') n: string): Promise<Results[ConfigRpcMethod.ConfigVersion]> {
    return this.config.version(versionNumberOf(n));
  }

  @Get('audit')
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Audit log of configuration changes (operator)',
    description:
      'Who, when, what changed (a diff), newest first. `subject` filters by what changed (a check id); page with `cursor`.',
  })
  @ApiZodQuery(auditQuerySchema)
  @ApiOkResponse({ schema: auditPageSchema })
  @ApiOwnerUnavailable()
  audit(@Query() query: unknown): Promise<Results[ConfigRpcMethod.ConfigAudit]> {
    return this.config.audit(auditQuerySchema.parse(query ?? {}));
  }
}
