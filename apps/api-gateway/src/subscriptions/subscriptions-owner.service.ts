import { Inject, Injectable } from '@nestjs/common';
import {
  subscriptionRpcParams,
  type SubscriptionRpcMethod,
  type SubscriptionRpcParams,
  type SubscriptionRpcResults,
} from '@fleetwatch/contracts';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { domainErrorOf } from '../checks/owner-errors';

/**
 * The gateway's line to the owner of status-change subscriptions (sync-orchestrator), as AlertConfigOwner
 * is for alert configuration: params checked before they leave (a bad one is a 400 naming it), one request
 * over the bus within GATEWAY_RPC_TIMEOUT_MS, the owner's refusals as domain errors (400 / 404 / 409 / 503).
 */
@Injectable()
export class SubscriptionsOwner {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'rpcTimeoutMs'>,
  ) {}

  /** `idempotencyKey`: the HTTP client's Idempotency-Key of a write (request-envelope's idempotencyKeyOf). */
  async call<M extends SubscriptionRpcMethod>(
    method: M,
    params: SubscriptionRpcParams<M>,
    idempotencyKey?: string,
  ): Promise<SubscriptionRpcResults[M]> {
    try {
      const parsed = subscriptionRpcParams[method].safeParse(params);
      if (!parsed.success)
        throw new RpcError('invalid', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(params)', message: i.message })),
        });
      return (await this.rpc.request(method, parsed.data as Record<string, unknown>, {
        timeoutMs: this.config.rpcTimeoutMs,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      })) as SubscriptionRpcResults[M];
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
  }
}
