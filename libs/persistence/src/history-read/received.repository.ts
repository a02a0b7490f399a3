import { Inject, Injectable } from '@nestjs/common';
import { DATABASE_CLIENT } from '../tokens';
import { DatabaseClient, prismaOf } from '../database';
import { rethrow } from '../errors';

// What a target received, as stored (status_updates, heartbeat_pings): read back newest first, a page at a time by
// (time, id) — served by the (target_id, occurred_at) and (target_id, received_at) indexes.

export interface ReceivedPage {
  limit: number;
  /** The last row of the previous page. */
  before?: { at: number; id: bigint };
}

export interface StoredUpdate {
  id: bigint;
  messageId: string;
  updateId: string;
  instanceId: string;
  kind: string;
  lifecycleStatus: string;
  status: string;
  source: string | null;
  location: string | null;
  occurredAt: Date;
  receivedAt: Date;
  labels: unknown;
  message: string | null;
  metadata: unknown;
}

export interface StoredPing {
  id: bigint;
  messageId: string;
  signal: string;
  exitCode: number | null;
  runId: string | null;
  location: string;
  receivedAt: Date;
  body: string | null;
}

@Injectable()
export class ReceivedRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** An instance's pushed updates, newest first (by when they happened, then by arrival). */
  async updates(targetId: string, page: ReceivedPage): Promise<StoredUpdate[]> {
    const b = page.before;
    return prismaOf(this.db)
      .statusUpdate.findMany({
        where: {
          targetId,
          ...(b
            ? {
                OR: [{ occurredAt: { lt: new Date(b.at) } }, { occurredAt: new Date(b.at), id: { lt: b.id } }],
              }
            : {}),
        },
        orderBy: [{ occurredAt: 'desc' }, { id: 'desc' }],
        take: page.limit,
      })
      .catch((err: unknown) => rethrow(err)) as Promise<StoredUpdate[]>;
  }

  /** A heartbeat monitor's pings, newest first. */
  async pings(targetId: string, page: ReceivedPage): Promise<StoredPing[]> {
    const b = page.before;
    return prismaOf(this.db)
      .heartbeatPing.findMany({
        where: {
          targetId,
          ...(b
            ? {
                OR: [{ receivedAt: { lt: new Date(b.at) } }, { receivedAt: new Date(b.at), id: { lt: b.id } }],
              }
            : {}),
        },
        orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }],
        take: page.limit,
      })
      .catch((err: unknown) => rethrow(err)) as Promise<StoredPing[]>;
  }
}
