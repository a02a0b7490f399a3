import { Inject, Injectable } from '@nestjs/common';
import { BoundedLookups } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import { INGEST_CONFIG } from '../tokens';

/** The one BoundedLookups of this replica, shared by API keys and ping tokens (they share the pool). */
@Injectable()
export class KeyLookups extends BoundedLookups {
  constructor(@Inject(INGEST_CONFIG) config: IngestConfig) {
    super({
      timeoutMs: config.keyLookupTimeoutMs,
      maxConcurrent: config.keyLookupMaxConcurrent,
      retryAfterSeconds: config.retryAfterSeconds,
    });
  }
}
