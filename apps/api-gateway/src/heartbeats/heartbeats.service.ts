import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CreateHeartbeatRequest, CreateHeartbeatResponse, HeartbeatView, TargetIds } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';
import {
  generatePingToken,
  hashPingToken,
  HeartbeatMonitorRecord,
  HeartbeatMonitorsRepository,
} from '@fleetwatch/persistence';
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

/**
 * Heartbeat monitors (SPEC §6): the gateway owns their ping credentials as it owns
 * API keys. The token is in the creation answer only; heartbeat_monitors keeps its
 * SHA-256 (persistence `hashPingToken`, which status-ingest uses to find the monitor).
 * A monitor is a `push` check, so its target id is `check:{monitorId}`.
 */
@Injectable()
export class HeartbeatsService {
  constructor(
    private readonly monitors: HeartbeatMonitorsRepository,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async create(input: CreateHeartbeatRequest): Promise<CreateHeartbeatResponse> {
    const id = randomUUID();
    const token = generatePingToken();
    const record = await this.monitors.create({
      id,
      targetId: TargetIds.check(id),
      name: input.name,
      tokenHash: hashPingToken(token),
      periodSeconds: input.periodSeconds,
      graceSeconds: input.graceSeconds,
      maxRuntimeSeconds: input.maxRuntimeSeconds ?? null,
    });
    return { ...toHeartbeatView(record), token, pingUrl: `${this.config.ingestPublicUrl}/ping/${token}` };
  }

  async list(): Promise<HeartbeatView[]> {
    return (await this.monitors.list()).map(toHeartbeatView);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.monitors.delete(id))) throw new NotFoundError(`heartbeat monitor ${id} not found`);
  }
}
