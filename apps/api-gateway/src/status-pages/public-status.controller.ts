import { Controller, Get, Logger, Param, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { publicStatusPageSchema, type PublicStatusPage } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';
import { Public } from '../auth/access.decorator';
import { AnonymousOutages } from '../web/anonymous-outage';
import { responseSchemaOf } from '../web/openapi';
import { PUBLIC_STATUS_LIMITS, PublicStatusService } from './public-status.service';

const CACHE_CONTROL = `public, max-age=${PUBLIC_STATUS_LIMITS.cacheMs / 1000}`;

/**
 * `GET /api/v1/public/status-pages/{slug}`: a published status page for anyone, no session (issue 17).
 * 404 for unknown and unpublished pages alike; 429 with Retry-After past the per-address budget (120 a minute for
 * answers that read the database, 1,200 for answers from the cache); 503 with Retry-After when the database fails,
 * saying nothing of it. Shared caches may keep the answer — a 404 too — as long as the gateway does (its Age said).
 */
@ApiTags('status pages')
@Controller('api/v1/public/status-pages')
export class PublicStatusController {
  /** What the database said of a failed answer: logged at most once per 10 s (with a count of the answers since). */
  private readonly outages = new AnonymousOutages(new Logger(PublicStatusController.name), 'public status page');

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
    try {
      const { page, ageMs } = await this.service.view(slug);
      void reply.header('cache-control', CACHE_CONTROL).header('age', String(Math.floor(ageMs / 1000)));
      return page;
    } catch (e) {
      // A 404 with no Cache-Control is cacheable by heuristics (RFC 9111 §4.2.2): a CDN or proxy with a default time
      // for it (an hour on some) kept "no such page" that long after the page was published. The gateway keeps a miss
      // as long as a page, and says so. (A 429 or 503 is not cacheable without one: they carry none.)
      // With its Age (how long the gateway has known the slug missing), as a page's: without it a shared cache kept a
      // miss the gateway had held for 14 s another 15 s — a page published then was "no such page" there for ~30 s.
      if (e instanceof NotFoundError)
        void reply
          .header('cache-control', CACHE_CONTROL)
          .header('age', String(Math.floor(this.service.missAgeMs(slug) / 1000)));
      // An outage's message is the database's own words (`Raw query failed … relation "status_pages" does not exist`,
      // a role or database name): they go to the log (at most once per 10 s), an anonymous visitor gets the 503 and
      // when to retry.
      throw this.outages.hide(e, 'status page temporarily unavailable; try again shortly');
    }
  }
}
