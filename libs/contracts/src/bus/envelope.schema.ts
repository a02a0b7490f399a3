import { z } from 'zod';
import { isoDateTimeSchema } from '../common/safe-json';
import { uuidv7, UUID_PATTERN } from '../common/ids';

export const serviceNameSchema = z.enum([
  'collector',
  'status-ingest',
  'aggregator',
  'sync-orchestrator',
  'api-gateway',
  'tool',
]);
export type ServiceName = z.infer<typeof serviceNameSchema>;

export const messageSourceSchema = z.object({
  site: z.string().min(1).max(128),
  service: serviceNameSchema,
  location: z.string().min(1).max(128).optional(),
});
export type MessageSource = z.infer<typeof messageSourceSchema>;

/** Every bus message (SPEC §3). The payload is validated by the message's own schema. */
export const envelopeSchema = z.object({
  id: z.string().regex(UUID_PATTERN, 'must be a UUID'),
  type: z.string().min(1).max(128),
  schemaVersion: z.number().int().positive(),
  occurredAt: isoDateTimeSchema,
  source: messageSourceSchema,
  correlationId: z.string().min(1).max(128),
  payload: z.unknown(),
});

export interface Envelope<P = unknown> {
  id: string;
  type: string;
  schemaVersion: number;
  occurredAt: string;
  source: MessageSource;
  correlationId: string;
  payload: P;
}

export interface EnvelopeOptions {
  id?: string;
  occurredAt?: Date | string;
  correlationId?: string;
}

export function buildEnvelope<P>(
  type: string,
  schemaVersion: number,
  source: MessageSource,
  payload: P,
  options: EnvelopeOptions = {},
): Envelope<P> {
  const id = options.id ?? uuidv7();
  const occurredAt =
    options.occurredAt instanceof Date
      ? options.occurredAt.toISOString()
      : (options.occurredAt ?? new Date().toISOString());
  return { id, type, schemaVersion, occurredAt, source, correlationId: options.correlationId ?? id, payload };
}
