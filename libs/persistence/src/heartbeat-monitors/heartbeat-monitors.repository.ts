import { Inject, Injectable } from '@nestjs/common';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient } from '../database';
import { isUuid, rethrow } from '../errors';
import type { HeartbeatMonitor } from '../generated/prisma/client';
import { DATABASE_CLIENT } from '../tokens';

// Heartbeat monitors (SPEC §6 `/ping/{token}`). The gateway creates and deletes them
// (it owns ping credentials, like API keys); status-ingest finds them by token hash
// (ping-token.ts `hashPingToken`). The token itself is never stored, and the hash is
// not part of the record: nothing above this file needs it.

export interface HeartbeatMonitorRecord {
  id: string;
  targetId: string;
  name: string;
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds: number | null;
  lastPingAt: Date | null;
  lastStartAt: Date | null;
  createdAt: Date;
}

export interface NewHeartbeatMonitor {
  /** Chosen by the caller so the target id can embed it; generated when left out. */
  id?: string;
  targetId: string;
  name: string;
  /** `hashPingToken(token)`. */
  tokenHash: string;
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds?: number | null;
}

function toRecord(row: HeartbeatMonitor): HeartbeatMonitorRecord {
  return {
    id: row.id,
    targetId: row.targetId,
    name: row.name,
    periodSeconds: row.periodSeconds,
    graceSeconds: row.graceSeconds,
    maxRuntimeSeconds: row.maxRuntimeSeconds,
    lastPingAt: row.lastPingAt,
    lastStartAt: row.lastStartAt,
    createdAt: row.createdAt,
  };
}

@Injectable()
export class HeartbeatMonitorsRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** The monitor a ping token belongs to (the edge hashes the token from the URL). */
  async findByTokenHash(tokenHash: string): Promise<HeartbeatMonitorRecord | null> {
    const row = await prismaOf(this.db)
      .heartbeatMonitor.findUnique({ where: { tokenHash } })
      .catch((err: unknown) => rethrow(err));
    return row ? toRecord(row) : null;
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
    return row ? toRecord(row) : null;
  }

  /** Throws ConflictError when the id or the token hash already exists. */
  async create(input: NewHeartbeatMonitor, tx?: DatabaseTransaction): Promise<HeartbeatMonitorRecord> {
    try {
      const row = await queryClient(this.db, tx).heartbeatMonitor.create({
        data: {
          ...(input.id ? { id: input.id } : {}),
          targetId: input.targetId,
          name: input.name,
          tokenHash: input.tokenHash,
          periodSeconds: input.periodSeconds,
          graceSeconds: input.graceSeconds,
          maxRuntimeSeconds: input.maxRuntimeSeconds ?? null,
        },
      });
      return toRecord(row);
    } catch (err) {
      rethrow(err, { conflict: 'a heartbeat monitor with this id or token already exists' });
    }
  }

  /** Oldest first. */
  async list(): Promise<HeartbeatMonitorRecord[]> {
    const rows = await prismaOf(this.db)
      .heartbeatMonitor.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
      .catch((err: unknown) => rethrow(err));
    return rows.map(toRecord);
  }

  /** Deletes the monitor and its runs: its token stops working. False when there was none. */
  async delete(id: string, tx?: DatabaseTransaction): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { count } = await queryClient(this.db, tx)
      .heartbeatMonitor.deleteMany({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    return count > 0;
  }
}
