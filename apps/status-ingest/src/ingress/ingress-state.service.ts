import { Inject, Injectable } from '@nestjs/common';
import { isNewerIngressStamp } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import type { IngressControlRecord } from '@fleetwatch/live-state';
import type { IngestConfig } from '../config';
import { INGEST_CONFIG } from '../tokens';

/** Ingress is paused: 503 + Retry-After (counted as `paused`, not as broker trouble). */
export class IngressPausedError extends UnavailableError {
  /** On purpose, not an outage: the error filter does not log it as one. */
  override readonly outage = false;
}

export interface PauseState {
  reason: string;
  operationId?: string;
  since: Date;
  /** Auto-resume time; null: until `ingress.resume`. */
  until: Date | null;
}

/**
 * Whether this replica takes pushes (SPEC §8 rolling sync pauses ingress while a
 * member applies configuration): this replica's copy of the site-wide ingress
 * record (kept in Redis, IngressStateSync). A record replaces the copy only when
 * its command's stamp is newer, so neither a redelivered older command nor a late
 * notification can undo a newer one. A pause with `until` expires by itself, so a
 * crashed orchestrator cannot leave ingress shut. Reading it is local and cheap:
 * it is asked on every request.
 */
@Injectable()
export class IngressStateService {
  private record: IngressControlRecord | null = null;
  private paused: PauseState | null = null;

  constructor(@Inject(INGEST_CONFIG) private readonly config: IngestConfig) {}

  /** Takes `record` when it is newer than the one held; returns whether it did. */
  adopt(record: IngressControlRecord): boolean {
    if (!isNewerIngressStamp(record.stamp, this.record?.stamp)) return false;
    this.record = record;
    this.paused = record.paused
      ? {
          reason: record.reason,
          operationId: record.operationId,
          since: new Date(record.appliedAt),
          until: record.until ? new Date(record.until) : null,
        }
      : null;
    return true;
  }

  /** The record in force here (null: no command seen yet, ingress open). */
  get held(): IngressControlRecord | null {
    return this.record;
  }

  /** The pause in force at `now`, if any (an expired one no longer counts). */
  current(now: number = Date.now()): PauseState | null {
    const p = this.paused;
    if (p?.until && p.until.getTime() <= now) return null;
    return p;
  }

  /** Throws IngressPausedError while paused. Cheap: called on every request. */
  assertOpen(now: number = Date.now()): void {
    if (this.paused === null) return;
    const p = this.current(now);
    if (!p) return;
    const retryAfter = p.until
      ? Math.max(1, Math.ceil((p.until.getTime() - now) / 1000))
      : this.config.retryAfterSeconds;
    throw new IngressPausedError(`ingress is paused (${p.reason}); retry later`, Math.min(retryAfter, 3600));
  }
}
