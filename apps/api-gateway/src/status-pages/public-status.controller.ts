import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { publicStatusPageSchema, type PublicStatusPage } from '@fleetwatch/contracts';
import { Public } from '../auth/access.decorator';
import { responseSchemaOf } from '../web/openapi';
import { PublicStatusService } from './public-status.service';

/**
 * `GET /api/v1/public/status-pages/{slug}`: a published status page for anyone, no session (issue 17).
 * 404 for unknown and unpublished pages alike; 429 with Retry-After past the per-address budget (120 a minute for
 * answers that read the database, 1,200 for answers from the cache).
 * Shared caches may keep the answer as long as the gateway does.
 */
@ApiTags('status pages')
@Controller('api/v1/public/status-pages')
export class PublicStatusController {
  constructor(private readonly service: PublicStatusService) {}

  @Get(':slug')
  @Public()
  @ApiParam({ name: 'slug', description: 'the page’s URL name' })
  @ApiOperation({
    summary: 'A published status page (no authentication)',
    description:
      'Components with their current state, 90 daily uptime bars (UTC days) and recent incidents; time under a maintenance window is maintenance, not an outage. Cached for 15 s.',
  })
  @ApiOkResponse({ schema: responseSchemaOf(publicStatusPageSchema) })
  async get(
    @Param('slug') slug: string,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PublicStatusPage> {
    this.service.admit(request.ip, slug);
    const { page, ageMs } = await this.service.view(slug);
    void reply.header('cache-control', 'public, max-age=15').header('age', String(Math.floor(ageMs / 1000)));
    return page;
  }
}
