import type { ChannelConfig } from '@fleetwatch/contracts';

// Shapes of the delivery side (issue 18): a channel as the sender needs it, and what one attempt gave.

/** A channel with its secrets unsealed: what the configuration owner stores, read for one delivery. */
export interface ResolvedChannel {
  id: string;
  config: ChannelConfig;
  /** Plaintext secrets by field (CHANNEL_SECRET_FIELDS): held in memory for the send, never logged or stored. */
  secrets: Readonly<Record<string, string>>;
}

/**
 * Where the sender finds channels by id (null: deleted). The aggregator's implementation reads the
 * configuration tables and unseals the secrets; tests give their own.
 */
export interface ChannelSource {
  get(channelId: string): Promise<ResolvedChannel | null>;
}

/** Nest token of the ChannelSource the delivery module uses. */
export const CHANNEL_SOURCE = Symbol('fleetwatch.aggregator.ChannelSource');

/** What one send gave. `error` may still hold secrets: the caller scrubs it before it goes anywhere. */
export interface SendResult {
  ok: boolean;
  /** Worth another try (network error, timeout, 408/425/429/5xx, SMTP 4xx). */
  transient: boolean;
  httpStatus: number | null;
  /** From a Retry-After header, in ms. */
  retryAfterMs: number | null;
  error: string | null;
  durationMs: number;
  /** E-mail: the recipients a relay refused for now (SMTP 4xx) while it took the others — the ones to try again. */
  retryRecipients?: string[];
}
