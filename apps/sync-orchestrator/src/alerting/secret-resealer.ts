import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AlertConfigRepository,
  channelSecretContext,
  SubscriptionsRepository,
  subscriptionSecretContext,
  type SecretSealer,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { Gauge, register, type Metric } from 'prom-client';
import { CHANNEL_SEALER, RESEAL_INTERVAL_MS } from './alerting.tokens';

// Key rotation (docs/runbooks/configuration.md): FLEETWATCH_ENCRYPTION_KEY seals, FLEETWATCH_ENCRYPTION_KEY_PREVIOUS
// only opens. A value written again unchanged keeps its seal (no change, no version), so without this the values
// sealed before a rotation would stay under the old key for good, and the old key could never be dropped. The owner
// (the single writer of these tables, SPEC §2) re-seals them in the background: after start and every hour (a pass with
// nothing left is two queries that find no row), in batches of BATCH rows, each batch one compare-and-set statement
// through the repositories — a row is written only where its sealed column still holds what was read, so a user's
// write meanwhile wins (the row waits for the next pass), and two replicas doing the same pass is harmless.
// Secrets are outside config versions, snapshots and the config hash: a re-seal is no configuration change.

type ResealLogger = Pick<Logger, 'info' | 'warn'>;

/** Rows re-sealed per statement (one transaction). */
export const RESEAL_BATCH = 100;
const DEFAULT_INTERVAL_MS = 3_600_000;
/** After a pass that failed (the database away): the next one sooner than the interval. */
const RETRY_AFTER_FAILURE_MS = 60_000;

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

const withPreviousKeyGauge = lookup(
  'fleetwatch_secrets_sealed_with_previous_key',
  () =>
    new Gauge({
      name: 'fleetwatch_secrets_sealed_with_previous_key',
      help:
        'Sealed secrets (channel fields, subscription secrets) that only a key of FLEETWATCH_ENCRYPTION_KEY_PREVIOUS ' +
        'opens, as the last re-seal pass left them: the previous key may go once this is 0.',
    }),
);
const unopenableGauge = lookup(
  'fleetwatch_secrets_unopenable',
  () =>
    new Gauge({
      name: 'fleetwatch_secrets_unopenable',
      help:
        'Sealed secrets not under the current key that no key held opens (left as they are; write them again), ' +
        'as the last re-seal pass saw.',
    }),
);

export interface ResealSummary {
  /** The current key's id: what the values were re-sealed under. */
  keyId: string;
  /** Values re-sealed by this pass. */
  channelSecrets: number;
  subscriptionSecrets: number;
  /** After the pass: values a previous key still opens (written meanwhile, or by another replica's pass). */
  withPreviousKey: number;
  /** After the pass: values no held key opens (another key, changed or moved), by where they are. */
  unopenable: string[];
}

@Injectable()
export class SecretResealer implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ResealSummary | null> | null = null;
  private stopped = false;
  /** Unopenable values already warned of (by where): each is warned of once per process. */
  private readonly warned = new Set<string>();

  constructor(
    @Inject(CHANNEL_SEALER) private readonly sealer: SecretSealer | null,
    private readonly channels: AlertConfigRepository,
    private readonly subscriptions: SubscriptionsRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: ResealLogger,
    @Optional() @Inject(RESEAL_INTERVAL_MS) private readonly intervalMs: number = DEFAULT_INTERVAL_MS,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.sealer) return; // no key: nothing sealed can be opened, nothing to re-seal
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pass().then((summary) => this.schedule(summary ? this.intervalMs : RETRY_AFTER_FAILURE_MS));
    }, delayMs);
    this.timer.unref();
  }

  /**
   * One pass: every value not sealed under the current key that a held key opens is sealed again under the current
   * key, in the same context; then counts what is left (the gauges). null when it failed (logged) or there is no key.
   * One pass at a time: a call meanwhile shares it.
   */
  pass(): Promise<ResealSummary | null> {
    const sealer = this.sealer;
    if (!sealer) return Promise.resolve(null);
    this.running ??= this.runPass(sealer)
      .catch((err: unknown) => {
        this.logger.warn({ err: (err as Error).message }, 're-sealing secrets failed; tried again in a minute');
        return null;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  private async runPass(sealer: SecretSealer): Promise<ResealSummary> {
    const channelSecrets = await this.resealChannels(sealer);
    const subscriptionSecrets = await this.resealSubscriptions(sealer);
    const left = await this.census(sealer);
    const summary: ResealSummary = { keyId: sealer.keyId, channelSecrets, subscriptionSecrets, ...left };
    withPreviousKeyGauge.set(left.withPreviousKey);
    unopenableGauge.set(left.unopenable.length);
    const fresh = left.unopenable.filter((where) => !this.warned.has(where));
    if (channelSecrets + subscriptionSecrets > 0 || fresh.length > 0)
      this.logger.info(
        { keyId: sealer.keyId, channelSecrets, subscriptionSecrets, withPreviousKey: left.withPreviousKey },
        `re-sealed ${channelSecrets} channel secrets, ${subscriptionSecrets} subscription secrets under key ` +
          `${sealer.keyId}; ${left.unopenable.length} left that no held key opens`,
      );
    if (fresh.length > 0) {
      for (const where of fresh) this.warned.add(where);
      this.logger.warn(
        { secrets: fresh.slice(0, 20), count: fresh.length },
        `${fresh.length} sealed secrets open with no key held (sealed under another key, or changed): left as they ` +
          'are; write them again (docs/runbooks/configuration.md, "Lost key")',
      );
    }
    return summary;
  }

  private async resealChannels(sealer: SecretSealer): Promise<number> {
    let done = 0;
    for (let afterId: string | undefined; ;) {
      const page = await this.channels.secretsNotSealedWith(sealer.sealedPrefix, { afterId, limit: RESEAL_BATCH });
      const writes: { id: string; before: Record<string, string>; after: Record<string, string> }[] = [];
      const counts = new Map<string, number>();
      for (const row of page) {
        const after = { ...row.secrets };
        let n = 0;
        for (const [field, sealed] of Object.entries(row.secrets)) {
          if (sealed.startsWith(sealer.sealedPrefix)) continue;
          const plain = openOrNull(sealer, sealed, channelSecretContext(row.id, field));
          if (plain === null) continue;
          after[field] = sealer.seal(plain, channelSecretContext(row.id, field));
          n++;
        }
        if (n === 0) continue;
        writes.push({ id: row.id, before: row.secrets, after });
        counts.set(row.id, n);
      }
      for (const id of await this.channels.resealSecrets(writes)) done += counts.get(id) ?? 0;
      if (page.length < RESEAL_BATCH || this.stopped) return done;
      afterId = page[page.length - 1].id;
    }
  }

  private async resealSubscriptions(sealer: SecretSealer): Promise<number> {
    let done = 0;
    for (let afterId: string | undefined; ;) {
      const page = await this.subscriptions.secretsNotSealedWith(sealer.sealedPrefix, { afterId, limit: RESEAL_BATCH });
      const writes: { id: string; before: string; after: string }[] = [];
      for (const row of page) {
        const context = subscriptionSecretContext(row.id);
        const plain = openOrNull(sealer, row.secret, context);
        if (plain !== null) writes.push({ id: row.id, before: row.secret, after: sealer.seal(plain, context) });
      }
      done += (await this.subscriptions.resealSecrets(writes)).length;
      if (page.length < RESEAL_BATCH || this.stopped) return done;
      afterId = page[page.length - 1].id;
    }
  }

  /** What is left under other keys: values a previous key opens, and where those are that no held key opens. */
  private async census(sealer: SecretSealer): Promise<{ withPreviousKey: number; unopenable: string[] }> {
    let withPreviousKey = 0;
    const unopenable: string[] = [];
    const tally = (sealed: string, context: string) => {
      if (openOrNull(sealer, sealed, context) === null) unopenable.push(context);
      else withPreviousKey++;
    };
    for (let afterId: string | undefined; ;) {
      const page = await this.channels.secretsNotSealedWith(sealer.sealedPrefix, { afterId, limit: RESEAL_BATCH });
      for (const row of page)
        for (const [field, sealed] of Object.entries(row.secrets))
          if (!sealed.startsWith(sealer.sealedPrefix)) tally(sealed, channelSecretContext(row.id, field));
      if (page.length < RESEAL_BATCH) break;
      afterId = page[page.length - 1].id;
    }
    for (let afterId: string | undefined; ;) {
      const page = await this.subscriptions.secretsNotSealedWith(sealer.sealedPrefix, { afterId, limit: RESEAL_BATCH });
      for (const row of page) tally(row.secret, subscriptionSecretContext(row.id));
      if (page.length < RESEAL_BATCH) break;
      afterId = page[page.length - 1].id;
    }
    return { withPreviousKey, unopenable };
  }
}

/** The value opened, or null where no held key opens it (never the error: it says nothing a caller needs). */
function openOrNull(sealer: SecretSealer, sealed: string, context: string): string | null {
  try {
    return sealer.open(sealed, context);
  } catch {
    return null;
  }
}
