import { Inject, Injectable } from '@nestjs/common';
import { NotFoundError } from '@fleetwatch/domain';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient } from '../database';
import { isForeignKeyViolation, isUuid, rethrow } from '../errors';
import { isLegacyApiKeyPrefix } from './api-key-secret';
import type { ApiKey } from '../generated/prisma/client';
import { DATABASE_CLIENT } from '../tokens';

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** First characters of the key: the lookup index, and what lists show. Not secret. */
  prefix: string;
  keyHash: string;
  scopes: string[];
  /** Empty: any address. */
  allowedCidrs: string[];
  /** Subject CN a verified client certificate must carry (ingest mutual TLS); null: no certificate needed. */
  clientCertSubject: string | null;
  createdBy: string | null;
  /** The creator's username when the key was made (kept after the user is deleted; null for keys from before). */
  createdByName: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiKey {
  name: string;
  prefix: string;
  keyHash: string;
  scopes: string[];
  allowedCidrs?: string[];
  clientCertSubject?: string | null;
  /** User id of the creator. */
  createdBy?: string | null;
  /** The creator's username (kept when the user is deleted). */
  createdByName?: string | null;
}

function toRecord(row: ApiKey): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    keyHash: row.keyHash,
    scopes: row.scopes ?? [],
    allowedCidrs: row.allowedCidrs ?? [],
    clientCertSubject: row.clientCertSubject,
    createdBy: row.createdBy,
    createdByName: row.createdByName,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
  };
}

@Injectable()
export class ApiKeysRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  async create(input: NewApiKey, tx?: DatabaseTransaction): Promise<ApiKeyRecord> {
    try {
      const row = await queryClient(this.db, tx).apiKey.create({
        data: {
          name: input.name,
          prefix: input.prefix,
          keyHash: input.keyHash,
          scopes: input.scopes,
          allowedCidrs: input.allowedCidrs ?? [],
          clientCertSubject: input.clientCertSubject ?? null,
          createdBy: input.createdBy ?? null,
          createdByName: input.createdByName ?? null,
        },
      });
      return toRecord(row);
    } catch (err) {
      // Its creator deleted meanwhile (a user removed while their request was on its way): not a database fault.
      if (isForeignKeyViolation(err)) throw new NotFoundError(`user ${input.createdBy ?? ''} not found`);
      rethrow(err);
    }
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    if (!isUuid(id)) return null;
    const row = await prismaOf(this.db)
      .apiKey.findUnique({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    return row ? toRecord(row) : null;
  }

  /**
   * Unrevoked keys with this prefix: the candidates whose hash the caller verifies.
   * Usually one; prefixes are not unique by constraint.
   */
  async findActiveByPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    const rows = await prismaOf(this.db)
      .apiKey.findMany({ where: { prefix, revokedAt: null } })
      .catch((err: unknown) => rethrow(err));
    return rows.map(toRecord);
  }

  /** Prefixes of the unrevoked keys issued before checksums (ApiKeyVerifier's legacy set). */
  async listActiveLegacyPrefixes(): Promise<string[]> {
    const rows = await prismaOf(this.db)
      .apiKey.findMany({ where: { revokedAt: null }, select: { prefix: true } })
      .catch((err: unknown) => rethrow(err));
    return rows.map((r) => r.prefix).filter(isLegacyApiKeyPrefix);
  }

  /** Newest first. */
  async list(options: { includeRevoked?: boolean } = {}): Promise<ApiKeyRecord[]> {
    const rows = await prismaOf(this.db)
      .apiKey.findMany({ where: options.includeRevoked ? {} : { revokedAt: null }, orderBy: { createdAt: 'desc' } })
      .catch((err: unknown) => rethrow(err));
    return rows.map(toRecord);
  }

  /** False when the key does not exist or was already revoked. */
  async revoke(id: string, at: Date = new Date(), tx?: DatabaseTransaction): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { count } = await queryClient(this.db, tx)
      .apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } })
      .catch((err: unknown) => rethrow(err));
    return count > 0;
  }

  /** Records use; only moves forward, so out-of-order calls are harmless. Throttle in the caller. */
  async touchLastUsed(id: string, at: Date = new Date()): Promise<void> {
    if (!isUuid(id)) return;
    await prismaOf(this.db)
      .apiKey.updateMany({
        where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: at } }] },
        data: { lastUsedAt: at },
      })
      .catch((err: unknown) => rethrow(err));
  }
}
