import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { SubscriptionRpcMethod as M, subscriptionRpcParams, type SubscriptionRpcResults } from '@fleetwatch/contracts';
import { RpcServer, type RpcContext } from '@fleetwatch/messaging';
import type { z } from 'zod';
import { requestOf } from '../config/write-request';
import { SubscriptionsService } from './subscriptions.service';
import type { SecretSealer } from '@fleetwatch/persistence';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';

type Params<K extends M> = z.output<(typeof subscriptionRpcParams)[K]>;

/**
 * The subscriptions' RPC methods (contracts' SubscriptionRpcMethod) on the RpcServer the checks and alert
 * configuration use: params validated by `subscriptionRpcParams[method]` (→ `invalid`), one service call
 * each; writes pass the request's id along (idempotent on redelivery), or the id of the HTTP client's
 * Idempotency-Key (write-request.ts: a keyed retry is answered as the first request was).
 */
@Injectable()
export class SubscriptionsRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    private readonly subscriptions: SubscriptionsService,
    /** Keys the request ids of Idempotency-Key writes (write-request.ts); null without FLEETWATCH_ENCRYPTION_KEY. */
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
  ) {}

  private on<K extends M>(method: K, run: (p: Params<K>, ctx: RpcContext) => Promise<SubscriptionRpcResults[K]>) {
    const schema = subscriptionRpcParams[method] as z.ZodType;
    this.rpc.register(method, (params, ctx) => run(schema.parse(params) as Params<K>, ctx));
  }

  onModuleInit(): void {
    this.on(M.Create, (p, ctx) => this.subscriptions.create(p.actor, p.body, requestOf(ctx, p, this.sealer)));
    this.on(M.Replace, (p, ctx) =>
      this.subscriptions.replace(p.actor, p.id, p.body, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.Delete, (p, ctx) =>
      this.subscriptions.delete(p.actor, p.id, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.List, (p) => this.subscriptions.list(p));
    this.on(M.Get, async (p) => ({ subscription: await this.subscriptions.get(p.id) }));
  }
}
