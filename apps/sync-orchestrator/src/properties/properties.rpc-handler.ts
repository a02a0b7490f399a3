import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { PropertyRpcMethod as M, propertyRpcParams, type PropertyRpcResults } from '@fleetwatch/contracts';
import { RpcServer, type RpcContext } from '@fleetwatch/messaging';
import type { z } from 'zod';
import { requestOf } from '../config/write-request';
import { PropertiesService } from './properties.service';
import type { SecretSealer } from '@fleetwatch/persistence';
import { CHANNEL_SEALER } from '../alerting/alerting.tokens';

type Params<K extends M> = z.output<(typeof propertyRpcParams)[K]>;

/**
 * The properties' RPC methods (contracts' PropertyRpcMethod) on the RpcServer the checks and alert
 * configuration use: params validated by `propertyRpcParams[method]` (→ `invalid`), one service call
 * each; writes pass the request's id along (idempotent on redelivery).
 */
@Injectable()
export class PropertiesRpcHandler implements OnModuleInit {
  constructor(
    private readonly rpc: RpcServer,
    private readonly properties: PropertiesService,
    /** Keys the request ids of Idempotency-Key writes (write-request.ts); null without FLEETWATCH_ENCRYPTION_KEY. */
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
  ) {}

  private on<K extends M>(method: K, run: (p: Params<K>, ctx: RpcContext) => Promise<PropertyRpcResults[K]>) {
    const schema = propertyRpcParams[method] as z.ZodType;
    this.rpc.register(method, (params, ctx) => run(schema.parse(params) as Params<K>, ctx));
  }

  onModuleInit(): void {
    this.on(M.Put, (p, ctx) =>
      this.properties.put(p.actor, p.key, p.body, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.Delete, (p, ctx) =>
      this.properties.delete(p.actor, p.key, p.expectedVersion, requestOf(ctx, p, this.sealer)),
    );
    this.on(M.List, (p) => this.properties.list(p));
    this.on(M.Get, (p) => this.properties.get(p.key));
  }
}
