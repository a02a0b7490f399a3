import { Inject, Injectable } from '@nestjs/common';
import { DatabaseClient, prismaOf } from '../database';
import { isUuid, rethrow } from '../errors';
import type { HeartbeatMonitor, HeartbeatMonitorState } from '../generated/prisma/client';
import { DATABASE_CLIENT } from '../tokens';

// Heartbeat monitors (SPEC §6 `/ping/{token}`): the ping credential and schedule of a
// `push` check, read here. Their one writer is sync-orchestrator, with the check
// (PushMonitorsRepository, issue 15); status-ingest finds them by token hash (ping-token.ts
// `hashPingToken`); the gateway lists them (and creates/deletes them as push checks, over the bus). Their run state (last ping, last start) is the aggregator's, in
// heartbeat_monitor_state, joined here. The token itself is never stored, and the hash is
// not part of the record: nothing above this file needs it.

export interface HeartbeatMonitorRecord {
  id: string;
  targetId: string;
  name: string;
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds: number | null;
  /**
   * The config version of the check the schedule belongs to (`checks.version`), read with it in one statement: the
   * schedule as that version configured it. Read by findByTokenHash (status-ingest sends it with each ping: the
   * aggregator counts a ping read at a version newer than the window it holds with the ping's own schedule); null
   * there for a monitor with no check row (made before monitors were checks); absent from the other reads.
   */
  configVersion?: number | null;
  lastPingAt: Date | null;
  lastStartAt: Date | null;
  createdAt: Date;
}

/** A monitor row as findByTokenHash reads it, with its check's config version. */
interface MonitorWithVersionRow {
  id: string;
  target_id: string;
  name: string;
  token_hash: string;
  period_seconds: number;
  grace_seconds: number;
  max_runtime_seconds: number | null;
  created_at: Date;
  config_version: number | null;
}

function toRecord(row: HeartbeatMonitor, state?: HeartbeatMonitorState | null): HeartbeatMonitorRecord {
  return {
    id: row.id,
    targetId: row.targetId,
    name: row.name,
    periodSeconds: row.periodSeconds,
    graceSeconds: row.graceSeconds,
    maxRuntimeSeconds: row.maxRuntimeSeconds,
    lastPingAt: state?.lastPingAt ?? null,
    lastStartAt: state?.lastStartAt ?? null,
    createdAt: row.createdAt,
  };
}

@Injectable()
export class HeartbeatMonitorsRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** The monitors with their run state (a second query: the state table has no foreign key to join by relation). */
  private async withState(rows: HeartbeatMonitor[]): Promise<HeartbeatMonitorRecord[]> {
    if (rows.length === 0) return [];
    const states = await prismaOf(this.db)
      .heartbeatMonitorState.findMany({ where: { monitorId: { in: rows.map((r) => r.id) } } })
      .catch((err: unknown) => rethrow(err));
    const byId = new Map(states.map((s) => [s.monitorId, s]));
    return rows.map((r) => toRecord(r, byId.get(r.id)));
  }

  /**
   * The monitor a ping token belongs to (the edge hashes the token from the URL), with the config version of its check
   * (`configVersion`). One statement, so the schedule and the version are of one moment: read apart, a write between
   * the two gave the old schedule the new version, and the aggregator took it for the new one.
   */
  async findByTokenHash(tokenHash: string): Promise<HeartbeatMonitorRecord | null> {
    const [r] = await prismaOf(this.db)
      .$queryRawUnsafe<MonitorWithVersionRow[]>(
        `SELECT m.id::text AS id, m.target_id, m.name, m.token_hash, m.period_seconds, m.grace_seconds,
                m.max_runtime_seconds, m.created_at, c.version AS config_version
         FROM heartbeat_monitors m LEFT JOIN checks c ON c.id = m.id
         WHERE m.token_hash = $1`,
        tokenHash,
      )
      .catch((err: unknown) => rethrow(err));
    if (!r) return null;
    const row: HeartbeatMonitor = {
      id: r.id,
      targetId: r.target_id,
      name: r.name,
      tokenHash: r.token_hash,
      periodSeconds: r.period_seconds,
      graceSeconds: r.grace_seconds,
      maxRuntimeSeconds: r.max_runtime_seconds,
      createdAt: r.created_at,
    };
    const [monitor] = await this.withState([row]);
    return monitor ? { ...monitor, configVersion: r.config_version } : null;
  }

  /** Every monitor's token hash (PingTokenResolver's set for tokens issued before checksums). */
  async listTokenHashes(): Promise<string[]> {
    const rows = await prismaOf(this.db)
      .heartbeatMonitor.findMany({ select: { tokenHash: true } })
      .catch((err: unknown) => rethrow(err));
    return rows.map((r) => r.tokenHash);
  }

  async findById(id: string): Promise<HeartbeatMonitorRecord | null> {
    if (!isUuid(id)) return null;
    const row = await prismaOf(this.db)
      .heartbeatMonitor.findUnique({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    return row ? ((await this.withState([row]))[0] ?? null) : null;
  }

  /** Oldest first. */
  async list(): Promise<HeartbeatMonitorRecord[]> {
    const rows = await prismaOf(this.db)
      .heartbeatMonitor.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
      .catch((err: unknown) => rethrow(err));
    return this.withState(rows);
  }
}
