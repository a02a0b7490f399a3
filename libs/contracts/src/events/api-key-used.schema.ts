import { z } from 'zod';
import { UUID_PATTERN } from '../common/ids';
import { storableDateTimeSchema } from '../common/safe-json';

/**
 * `apikey.used`: status-ingest's report that an API key authenticated a push, for the gateway (the only writer of
 * `api_keys`, SPEC §2) to record as the key's last use. Coalesced at the sender: at most one per key per flush
 * interval (INGEST_API_KEY_USE_FLUSH_MS), carrying the newest use. Only moves `last_used_at` forward, so a
 * redelivered, duplicated or out-of-order report is harmless. Not strict: keep new fields optional.
 */
export const apiKeyUsedPayloadSchema = z.object({
  /** `api_keys.id` (never the secret or its prefix). */
  keyId: z.string().regex(UUID_PATTERN, 'must be a UUID'),
  /** The newest use the sender saw (its clock). */
  at: storableDateTimeSchema,
});
export type ApiKeyUsedPayload = z.infer<typeof apiKeyUsedPayloadSchema>;
