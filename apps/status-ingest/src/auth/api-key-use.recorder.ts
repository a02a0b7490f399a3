import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Messages } from '@fleetwatch/contracts';
import { BusPublisher, publishRequest } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import type { IngestConfig } from '../config';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';

/** One key's newest use, as reported. */
export interface ApiKeyUse {
  keyId: string;
  at: Date;
}

/** Sends uses; answers, per use in order, whether the broker confirmed it. */
export type ApiKeyUseSender = (uses: readonly ApiKeyUse[]) => Promise<boolean[]>;

/** Uses sent in one pipelined publish. */
const FLUSH_CHUNK = 500;

/**
 * API-key uses at the ingest edge, for the gateway to record as the key's last use (it alone writes `api_keys`,
 * SPEC §2). The request path only notes the time in a Map (key id → newest use): no I/O, no allocation past one
 * entry per key. `flush` (a timer, off the request path, and once more at shutdown) sends each key's newest use as
 * one `apikey.used` and drops the entries the broker confirmed — unless a newer use came meanwhile. A failed
 * send keeps its entry for the next flush (at-least-once; the gateway's write only moves forward, so a repeat is
 * harmless). Only timestamps: what a crash loses is at most one interval of last-use times, which the key's next
 * use reports again.
 */
export class ApiKeyUseRecorder {
  private readonly pending = new Map<string, number>();
  private flushing: Promise<number> | null = null;

  constructor(private readonly send: ApiKeyUseSender) {}

  /** Notes a use (hot path: one Map lookup). */
  record(keyId: string, at: number = Date.now()): void {
    const seen = this.pending.get(keyId);
    if (seen === undefined || at > seen) this.pending.set(keyId, at);
  }

  /** Keys with a use not yet confirmed sent. */
  get size(): number {
    return this.pending.size;
  }

  /** Sends every pending use; resolves with how many are still pending because their send failed. One flush at a time. */
  flush(): Promise<number> {
    this.flushing ??= this.flushNow().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async flushNow(): Promise<number> {
    const taken = [...this.pending];
    let failed = 0;
    for (let i = 0; i < taken.length; i += FLUSH_CHUNK) {
      const chunk = taken.slice(i, i + FLUSH_CHUNK);
      let confirmed: boolean[];
      try {
        confirmed = await this.send(chunk.map(([keyId, at]) => ({ keyId, at: new Date(at) })));
      } catch {
        confirmed = [];
      }
      chunk.forEach(([keyId, at], j) => {
        if (confirmed[j] !== true) failed++;
        // A newer use noted while this one was on its way stays for the next flush.
        else if (this.pending.get(keyId) === at) this.pending.delete(keyId);
      });
      // Nothing of a chunk confirmed (the broker away): the rest waits for the next flush, rather than each chunk
      // waiting out the publish timeout in turn (a shutdown's last flush must fit its deadline).
      if (!confirmed.some((c) => c === true)) {
        failed += taken.length - (i + chunk.length);
        break;
      }
    }
    return failed;
  }
}

/** The recorder wired to the bus: flushed every INGEST_API_KEY_USE_FLUSH_MS and before the publisher closes. */
@Injectable()
export class ApiKeyUseReporter extends ApiKeyUseRecorder implements OnModuleInit, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;

  constructor(
    publisher: BusPublisher,
    @Inject(INGEST_CONFIG) config: IngestConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
  ) {
    super(async (uses) => {
      const outcomes = await publisher.publishManySettled(
        uses.map((u) => publishRequest(Messages.ApiKeyUsed, { keyId: u.keyId, at: u.at.toISOString() })),
      );
      return outcomes.map((o) => o.ok);
    });
    this.intervalMs = config.apiKeyUseFlushMs;
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.report(), this.intervalMs);
    this.timer.unref();
  }

  /** After the HTTP edge drained (onModuleDestroy), before the publisher closes (onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.report();
  }

  private async report(): Promise<void> {
    const failed = await this.flush();
    this.metrics.apiKeyUsesUnreported.set(failed);
    if (failed > 0)
      this.logger.warn({ keys: failed }, 'API-key last-use reports not confirmed by the broker; retried next flush');
  }
}
