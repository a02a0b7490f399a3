import { CHANNEL_SECRET_FIELDS, channelConfigSchema, type ChannelConfig } from '@fleetwatch/contracts';
import { InvalidError, UnavailableError } from '@fleetwatch/domain';
import {
  channelSecretContext,
  SecretSealingError,
  type AlertConfigRepository,
  type SecretSealer,
} from '@fleetwatch/persistence';
import type { ChannelSource, ResolvedChannel } from './delivery.types';

// Channels as sync-orchestrator stores them (notification_channels): the public spec, and the secrets
// sealed per field under FLEETWATCH_ENCRYPTION_KEY, bound to `channel:<id>:<field>` (channelSecretContext,
// shared with the writer in libs/persistence). Read
// at each attempt, so an edited URL or a rotated secret is used by the next retry. The plaintexts live
// only in the returned object, for the one send.

export class StoredChannelSource implements ChannelSource {
  constructor(
    private readonly store: AlertConfigRepository,
    /** Null when the aggregator has no FLEETWATCH_ENCRYPTION_KEY: channels with secrets cannot be sent. */
    private readonly sealer: SecretSealer | null,
  ) {}

  async get(channelId: string): Promise<ResolvedChannel | null> {
    const record = await this.store.find<ChannelConfig>('channels', channelId);
    if (!record) return null;
    const parsed = channelConfigSchema.safeParse(record.spec);
    if (!parsed.success) throw new InvalidError(`channel ${channelId}: stored configuration is not valid`);
    const config = parsed.data;
    const sealed = (await this.store.sealedSecrets(channelId)) ?? {};
    const secrets: Record<string, string> = {};
    for (const field of Object.keys(CHANNEL_SECRET_FIELDS[config.type])) {
      const value = sealed[field];
      if (value === undefined) continue;
      // Both are worth waiting for (retried): an operator adds the key or the previous one and restarts.
      if (!this.sealer)
        throw new UnavailableError(
          'channel secrets cannot be opened: the aggregator has no FLEETWATCH_ENCRYPTION_KEY',
          60,
        );
      try {
        secrets[field] = this.sealer.open(value, channelSecretContext(channelId, field));
      } catch (err) {
        if (err instanceof SecretSealingError)
          throw new UnavailableError(`channel ${channelId}: its ${field} cannot be opened (${err.message})`, 60);
        throw err;
      }
    }
    return { id: channelId, config, secrets };
  }
}
