import { Inject, Injectable } from '@nestjs/common';
import {
  statusPageRpcParams,
  type StatusPageRpcMethod,
  type StatusPageRpcParams,
  type StatusPageRpcResults,
} from '@fleetwatch/contracts';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { domainErrorOf } from '../checks/owner-errors';

/**
 * The gateway's line to the owner of status pages (sync-orchestrator), as AlertConfigOwner is for
 * alert configuration: params checked by `statusPageRpcParams` before they leave (a bad one is a 400
 * naming it), one request over the bus within GATEWAY_RPC_TIMEOUT_MS, the owner's refusals as domain
 * errors (`invalid` → 400, `not_found` → 404, `conflict` → 409 with the current version, none in time → 503).
 */
@Injectable()
export class StatusPagesOwner {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'rpcTimeoutMs'>,
  ) {}

  /** `idempotencyKey`: the HTTP client's Idempotency-Key of a write (request-envelope's idempotencyKeyOf). */
  async call<M extends StatusPageRpcMethod>(
    method: M,
    params: StatusPageRpcParams<M>,
    idempotencyKey?: string,
  ): Promise<StatusPageRpcResults[M]> {
    try {
      const parsed = statusPageRpcParams[method].safeParse(params);
      if (!parsed.success)
        throw new RpcError('invalid', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(params)', message: i.message })),
        });
      return (await this.rpc.request(method, parsed.data as Record<string, unknown>, {
        timeoutMs: this.config.rpcTimeoutMs,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      })) as StatusPageRpcResults[M];
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
  }
}
