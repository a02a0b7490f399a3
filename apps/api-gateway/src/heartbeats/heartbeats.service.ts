import { Inject, Injectable } from '@nestjs/common';
import {
  ConfigRpcMethod,
  UUID_PATTERN,
  type CheckDefinition,
  type CreateHeartbeatRequest,
  type CreateHeartbeatResponse,
  type HeartbeatView,
} from '@fleetwatch/contracts';
import { NotFoundError, UnavailableError } from '@fleetwatch/domain';
import { HeartbeatMonitorRecord, HeartbeatMonitorsRepository } from '@fleetwatch/persistence';
import type { Principal } from '../auth/principal';
import { ConfigOwner } from '../checks/config-owner.service';
import { actorOf } from '../checks/request-envelope';
import type { GatewayConfig } from '../config';
import { GATEWAY_CONFIG } from '../tokens';

export function toHeartbeatView(m: HeartbeatMonitorRecord): HeartbeatView {
  return {
    id: m.id,
    targetId: m.targetId,
    name: m.name,
    periodSeconds: m.periodSeconds,
    graceSeconds: m.graceSeconds,
    maxRuntimeSeconds: m.maxRuntimeSeconds,
    lastPingAt: m.lastPingAt?.toISOString() ?? null,
    lastStartAt: m.lastStartAt?.toISOString() ?? null,
    createdAt: m.createdAt.toISOString(),
  };
}

type PushCheck = Extract<CheckDefinition, { type: 'push' }>;

/**
 * Heartbeat monitors (SPEC §6) are checks of type `push` (issue 15): creating and deleting
 * one is a configuration write, so it goes to the configuration owner (sync-orchestrator)
 * over the bus like any check — versioned, audited, and heartbeat_monitors written there
 * with the check. The owner issues the ping token (in its answer only; it keeps the hash
 * status-ingest resolves `/ping/{token}` against). The list reads heartbeat_monitors,
 * which carries the run state (last ping, last start) the configuration does not.
 */
@Injectable()
export class HeartbeatsService {
  constructor(
    private readonly owner: ConfigOwner,
    private readonly monitors: HeartbeatMonitorsRepository,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'ingestPublicUrl'>,
  ) {}

  /** A name another check has → 409 (ConflictError from the owner). */
  async create(principal: Principal, input: CreateHeartbeatRequest, key?: string): Promise<CreateHeartbeatResponse> {
    const { check, pingToken } = await this.owner.call(
      ConfigRpcMethod.ChecksCreate,
      {
        actor: actorOf(principal),
        check: {
          name: input.name,
          type: 'push',
          periodSeconds: input.periodSeconds,
          graceSeconds: input.graceSeconds,
          ...(input.maxRuntimeSeconds === undefined ? {} : { maxRuntimeSeconds: input.maxRuntimeSeconds }),
        },
      },
      key,
    );
    if (check.type !== 'push' || !pingToken)
      throw new Error(`the configuration owner answered check ${check.id} without a push check's ping token`);
    const push = check as PushCheck;
    return {
      id: push.id,
      targetId: push.targetId,
      name: push.name,
      periodSeconds: push.periodSeconds,
      graceSeconds: push.graceSeconds,
      maxRuntimeSeconds: push.maxRuntimeSeconds ?? null,
      lastPingAt: null,
      lastStartAt: null,
      createdAt: push.createdAt,
      token: pingToken,
      pingUrl: `${this.config.ingestPublicUrl}/ping/${pingToken}`,
    };
  }

  async list(): Promise<HeartbeatView[]> {
    return (await this.monitors.list()).map(toHeartbeatView);
  }

  /** Deletes the push check (its ping URL stops working); any other id, or another type of check, is 404. */
  async delete(principal: Principal, id: string): Promise<void> {
    const missing = () => new NotFoundError(`heartbeat monitor ${id} not found`);
    if (!UUID_PATTERN.test(id)) throw missing();
    const check = await this.owner.call(ConfigRpcMethod.ChecksGet, { id }).then(
      (r) => r.check,
      async (e: unknown) => {
        if (!(e instanceof NotFoundError)) throw e;
        // A monitor made before monitors were checks: the owner adopts it at start and every minute.
        if (await this.monitors.findById(id))
          throw new UnavailableError(`heartbeat monitor ${id} is being adopted as a push check; retry in a minute`, 60);
        throw missing();
      },
    );
    if (check.type !== 'push') throw missing();
    await this.owner.call(ConfigRpcMethod.ChecksDelete, { actor: actorOf(principal), id });
  }
}
