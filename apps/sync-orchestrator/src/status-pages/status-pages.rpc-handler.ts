import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { StatusPageRpcMethod as M, statusPageRpcParams, type StatusPageRpcResults } from '@fleetwatch/contracts';
import { RpcServer, type RpcContext } from '@fleetwatch/messaging';
import type { z } from 'zod';
import { requestOf } from '../config/write-request';
import { StatusPagesService } from './status-pages.service';
import type { SecretSealer } from '@fleetwatch/persistence';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';

type Params<K extends M> = z.output<(typeof statusPageRpcParams)[K]>;

/**
 * The status pages' RPC methods (contracts' StatusPageRpcMethod) on the RpcServer the checks and
 * alert configuration use: params validated by `statusPageRpcParams[method]` (→ `invalid`), one
 * service call each; writes pass the request's id along (idempotent on redelivery).
 */
@Injectable()
export class StatusPagesRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    private readonly pages: StatusPagesService,
    /** Keys the request ids of Idempotency-Key writes (write-request.ts); null without FLEETWATCH_ENCRYPTION_KEY. */
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
  ) {}

  private on<K extends M>(method: K, run: (p: Params<K>, ctx: RpcContext) => Promise<StatusPageRpcResults[K]>) {
    const schema = statusPageRpcParams[method] as z.ZodType;
    this.rpc.register(method, (params, ctx) => run(schema.parse(params) as Params<K>, ctx));
  }

  onModuleInit(): void {
    this.on(M.Create, (p, ctx) => this.pages.create(p.actor, p.body, requestOf(ctx, p, this.sealer)));
    this.on(M.Replace, (p, ctx) =>
      this.pages.change(p.actor, p.id, { replace: p.body }, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.Patch, (p, ctx) =>
      this.pages.change(p.actor, p.id, { patch: p.patch }, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.Delete, (p, ctx) => this.pages.delete(p.actor, p.id, p.expectedVersion, requestOf(ctx, p, this.sealer)));
    this.on(M.List, (p) => this.pages.list(p));
    this.on(M.Get, async (p) => ({ page: await this.pages.get(p.id) }));
  }
}
