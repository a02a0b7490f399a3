import { Inject, Injectable } from '@nestjs/common';
import { ConfigRpcMethod, type ConfigRpcParams, type ConfigRpcResults } from '@fleetwatch/contracts';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';
import { domainErrorOf } from './owner-errors';

/**
 * Calls whose work grows with the site (1,000 checks in one version, a whole configuration
 * planned or written out): they wait GATEWAY_RPC_BULK_TIMEOUT_MS, the rest GATEWAY_RPC_TIMEOUT_MS.
 */
export const BULK_METHODS: ReadonlySet<ConfigRpcMethod> = new Set([
  ConfigRpcMethod.ChecksBulkCreate,
  ConfigRpcMethod.ConfigImport,
  ConfigRpcMethod.ConfigExport,
]);

/**
 * The gateway's line to the configuration owner (sync-orchestrator, SPEC §2): every
 * configuration read and write is a call over the bus, and its failures come back as
 * domain errors — `invalid` (the owner's issues naming fields) → 400, `denied` → 422,
 * `not_found` → 404, `conflict` → 409 with the current version, no answer by the call's
 * deadline → 503 with Retry-After. The deadline travels in the request, and the owner does
 * not start a request past it: a long import given the bulk timeout is run to the end there
 * too, while a single-check call gives up (and is not run late) after the short one.
 */
@Injectable()
export class ConfigOwner {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'rpcTimeoutMs' | 'rpcBulkTimeoutMs'>,
  ) {}

  /** How long a call of `method` waits for its answer (ms). */
  timeoutOf(method: ConfigRpcMethod): number {
    return BULK_METHODS.has(method) ? this.config.rpcBulkTimeoutMs : this.config.rpcTimeoutMs;
  }

  /** `idempotencyKey`: the HTTP client's Idempotency-Key of a write (request-envelope's idempotencyKeyOf). */
  async call<M extends ConfigRpcMethod>(
    method: M,
    params: ConfigRpcParams<M>,
    idempotencyKey?: string,
  ): Promise<ConfigRpcResults[M]> {
    try {
      return await this.rpc.call(method, params, {
        timeoutMs: this.timeoutOf(method),
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      });
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
  }
}
