import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  Res,
  UseFilters,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  SubscriptionRpcMethod as M,
  UserRole,
  UUID_PATTERN,
  type Page,
  type Subscription,
  subscriptionDeliveriesQuerySchema,
  type SubscriptionDeliveryView,
} from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { SubscriptionDeliveriesRepository } from '@fleetwatch/persistence';
import { z } from 'zod';
import { RequireRole } from '../auth/access.decorator';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiVersionedWrite } from '../checks/checks.openapi';
import { ConfigApiErrorFilter, etagOf } from '../checks/owner-errors';
import { IdempotencyKeyHeader } from '../checks/idempotency-key.decorator';
import { actorOf, expectedVersionOf, idempotencyKeyOf, objectBody } from '../checks/request-envelope';
import { SubscriptionsOwner } from './subscriptions-owner.service';

// Status-change subscriptions over REST (SPEC §7, issue 18), the alert rules' shape: POST (201, Location,
// ETag) / GET list (paged by id) / GET one (ETag) / PUT (If-Match → 409 when stale; an absent `secret`
// keeps the stored one) / DELETE (204). Viewers read; operators (and API keys with `write`) write. The
// signing secret is write-only: answers carry `secret: {set: true}`.

const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(256).optional(),
});

function subscriptionIdOf(id: string): string {
  if (!UUID_PATTERN.test(id))
    throw new InvalidError(`id: not a subscription id (UUID): "${id.slice(0, 64)}"`, [
      { path: 'id', message: 'a subscription id (UUID)' },
    ]);
  return id;
}

const idParam = ApiParam({ name: 'id', description: 'subscription id (UUID)' });

@ApiTags('subscriptions')
@Controller('api/v1/subscriptions')
@UseFilters(ConfigApiErrorFilter)
export class SubscriptionsController {
  constructor(
    private readonly owner: SubscriptionsOwner,
    private readonly deliveries: SubscriptionDeliveriesRepository,
  ) {}

  @Post()
  @RequireRole(UserRole.Operator)
  @ApiOperation({
    summary: 'Create a status-change subscription (operator)',
    description:
      '`{name, url, secret, selector?, transitions?, perLocation?, enabled?}`; a bad field is a 400 naming it.',
  })
  @ApiVersionedWrite({ notFound: false, idempotencyKey: true })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<Subscription> {
    const params = { actor: actorOf(principal), body: objectBody(body) };
    const { subscription } = await this.owner.call(M.Create, params, idempotencyKeyOf(key));
    void reply
      .status(201)
      .header('location', `/api/v1/subscriptions/${subscription.id}`)
      .header('etag', etagOf(subscription.version));
    return subscription;
  }

  @Get()
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: 'List subscriptions',
    description: 'By id; page with `cursor` = the previous `nextCursor`.',
  })
  list(@Query() query: unknown): Promise<Page<Subscription>> {
    return this.owner.call(M.List, listQuerySchema.parse(query ?? {}));
  }

  @Get(':id')
  @idParam
  @RequireRole(UserRole.Viewer)
  @ApiOperation({ summary: 'One subscription; its version is the ETag' })
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Subscription> {
    const { subscription } = await this.owner.call(M.Get, { id: subscriptionIdOf(id) });
    void reply.header('etag', etagOf(subscription.version));
    return subscription;
  }

  @Get(':id/deliveries')
  @idParam
  @RequireRole(UserRole.Viewer)
  @ApiOperation({
    summary: "A subscription's delivery log",
    description:
      'Newest first (`limit`, default 100): each delivery with its state and every attempt (outcome, HTTP status, error).',
  })
  async deliveryLog(@Param('id') id: string, @Query() query: unknown): Promise<{ items: SubscriptionDeliveryView[] }> {
    const { limit } = subscriptionDeliveriesQuerySchema.parse(query ?? {});
    const { subscription } = await this.owner.call(M.Get, { id: subscriptionIdOf(id) });
    return { items: await this.deliveries.bySubscription(subscription.id, limit) };
  }

  @Put(':id')
  @idParam
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Replace a subscription (operator); If-Match optional; no `secret` keeps the stored one' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async replace(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<Subscription> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const params = { actor: actorOf(principal), id: subscriptionIdOf(id), body: objectBody(body), expectedVersion };
    const { subscription } = await this.owner.call(M.Replace, params, idempotencyKeyOf(key));
    void reply.header('etag', etagOf(subscription.version));
    return subscription;
  }

  @Delete(':id')
  @idParam
  @HttpCode(204)
  @RequireRole(UserRole.Operator)
  @ApiOperation({ summary: 'Delete a subscription (operator); If-Match optional' })
  @ApiVersionedWrite({ idempotencyKey: true })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @IdempotencyKeyHeader() key: string[] | undefined,
  ): Promise<void> {
    const expectedVersion = expectedVersionOf(ifMatch);
    const params = { actor: actorOf(principal), id: subscriptionIdOf(id), expectedVersion };
    await this.owner.call(M.Delete, params, idempotencyKeyOf(key));
  }
}
