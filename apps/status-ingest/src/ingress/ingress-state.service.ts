import { Inject, Injectable } from '@nestjs/common';
import type { IngressControlPayload } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import type { IngestConfig } from '../config';
import { INGEST_CONFIG } from '../tokens';

/** Ingress is paused: 503 + Retry-After (counted as `paused`, not as broker trouble). */
export class IngressPausedError extends UnavailableError {}

export interface PauseState {
  reason: string;
  operationId?: string;
  since: Date;
  /** Auto-resume time; null: until `ingress.resume`. */
  until: Date | null;
}

/**
 * Whether this replica takes pushes (SPEC §8 rolling sync pauses ingress while a
 * member applies configuration). A pause with `until` expires by itself, so a
 * crashed orchestrator cannot leave ingress shut.
 */
@Injectable()
export class IngressStateService {
  private paused: PauseState | null = null;

  constructor(@Inject(INGEST_CONFIG) private readonly config: IngestConfig) {}

  pause(payload: IngressControlPayload, now: Date = new Date()): PauseState {
    const until = payload.until ? new Date(payload.until) : null;
    this.paused = { reason: payload.reason, operationId: payload.operationId, since: now, until };
    return this.paused;
  }

  resume(): void {
    this.paused = null;
  }

  /** The pause in force at `now`, if any (an expired one is cleared). */
  current(now: number = Date.now()): PauseState | null {
    const p = this.paused;
    if (p?.until && p.until.getTime() <= now) this.paused = null;
    return this.paused;
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
