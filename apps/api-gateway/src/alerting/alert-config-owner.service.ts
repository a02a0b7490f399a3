import { Inject, Injectable } from '@nestjs/common';
import {
  alertConfigRpcParams,
  type AlertConfigRpcMethod,
  type AlertConfigRpcParams,
  type AlertConfigRpcResults,
} from '@fleetwatch/contracts';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { domainErrorOf } from '../checks/owner-errors';

/**
 * The gateway's line to the owner of alert configuration (sync-orchestrator, SPEC §2), as ConfigOwner
 * is for checks: params checked by the contract's `alertConfigRpcParams` before they leave (a bad one
 * is a 400 naming it), one request over the bus with the correlation id and GATEWAY_RPC_TIMEOUT_MS,
 * and the owner's refusals as domain errors: `invalid` → 400, `denied` → 422, `not_found` → 404,
 * `conflict` → 409 with the current version, no answer in time → 503 with Retry-After.
 */
@Injectable()
export class AlertConfigOwner {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'rpcTimeoutMs'>,
  ) {}

  /** `idempotencyKey`: the HTTP client's Idempotency-Key of a write (request-envelope's idempotencyKeyOf). */
  async call<M extends AlertConfigRpcMethod>(
    method: M,
    params: AlertConfigRpcParams<M>,
    idempotencyKey?: string,
  ): Promise<AlertConfigRpcResults[M]> {
    try {
      const parsed = alertConfigRpcParams[method].safeParse(params);
      if (!parsed.success)
        throw new RpcError('invalid', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(params)', message: i.message })),
        });
      return (await this.rpc.request(method, parsed.data as Record<string, unknown>, {
        timeoutMs: this.config.rpcTimeoutMs,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      })) as AlertConfigRpcResults[M];
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
  }
}
