import { Injectable } from '@nestjs/common';
import type { ConfigRpcMethod, ConfigRpcParams, ConfigRpcResults } from '@fleetwatch/contracts';
import { RpcClient, RpcError } from '@fleetwatch/messaging';
import { domainErrorOf } from './owner-errors';

/**
 * The gateway's line to the configuration owner (sync-orchestrator, SPEC §2): every
 * configuration read and write is a call over the bus, and its failures come back as
 * domain errors — `invalid` (the owner's issues naming fields) → 400, `denied` → 422,
 * `not_found` → 404, `conflict` → 409 with the current version, no answer within the
 * RPC timeout (5 s) → 503 with Retry-After.
 */
@Injectable()
export class ConfigOwner {
  constructor(private readonly rpc: RpcClient) {}

  async call<M extends ConfigRpcMethod>(method: M, params: ConfigRpcParams<M>): Promise<ConfigRpcResults[M]> {
    try {
      return await this.rpc.call(method, params);
    } catch (e) {
      throw e instanceof RpcError ? domainErrorOf(e) : e;
    }
  }
}
