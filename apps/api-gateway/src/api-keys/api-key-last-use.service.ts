import { Injectable } from '@nestjs/common';
import { ApiKeysRepository } from '@fleetwatch/persistence';
import { LRUCache } from 'lru-cache';

/** A key's `last_used_at` is written at most this often (per gateway replica). */
export const TOUCH_EVERY_MS = 60_000;

/**
 * Records API-key use in `api_keys.last_used_at` (the gateway owns the table, SPEC §2), for both sources: keys
 * used at the gateway itself (`touch`, off the request path) and uses status-ingest reports over the bus
 * (`record`, awaited: the message is acked after the write). One throttle for both: a key is written at most
 * once a minute, so `last_used_at` may trail the newest use by up to that (on top of ingest's own flush
 * interval). The write only moves forward (ApiKeysRepository.touchLastUsed), so order does not matter.
 */
@Injectable()
export class ApiKeyLastUse {
  /** Key id → the use time last written (or being written), for a minute. */
  private readonly written = new LRUCache<string, number>({ max: 10_000, ttl: TOUCH_EVERY_MS });

  constructor(private readonly apiKeys: ApiKeysRepository) {}

  /** A use at the gateway: fire-and-forget, never delays or fails the request. */
  touch(id: string, at: Date = new Date()): void {
    if (!this.due(id, at)) return;
    void this.apiKeys.touchLastUsed(id, at).catch(() => undefined);
  }

  /**
   * A reported use: resolves once written (or skipped: written within the minute, or an unknown key, which
   * updates nothing); rejects when the database fails, so the report is retried.
   */
  async record(id: string, at: Date): Promise<void> {
    if (!this.due(id, at)) return;
    try {
      await this.apiKeys.touchLastUsed(id, at);
    } catch (err) {
      this.written.delete(id);
      throw err;
    }
  }

  /** True (and remembered) when `at` is at least TOUCH_EVERY_MS past the use last written for this key. */
  private due(id: string, at: Date): boolean {
    const last = this.written.get(id);
    if (last !== undefined && at.getTime() - last < TOUCH_EVERY_MS) return false;
    this.written.set(id, at.getTime());
    return true;
  }
}
