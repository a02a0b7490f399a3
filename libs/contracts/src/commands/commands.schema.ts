import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { isoDateTimeSchema } from '../common/safe-json';

export const configSnapshotSchema = z.object({
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex'),
  /** Canonical JSON document: checks, rules, channels, properties, versions. */
  document: z.record(z.string(), z.unknown()),
});

export const configApplyPayloadSchema = z.object({
  operationId: z.string().min(1).max(128),
  snapshot: configSnapshotSchema,
  /** Hash the member must currently have (optimistic concurrency); null skips the check. */
  expectedHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  dryRun: z.boolean().default(false),
  actor: storableText(256),
});
export type ConfigApplyPayload = z.infer<typeof configApplyPayloadSchema>;

export const ingressControlPayloadSchema = z.object({
  operationId: z.string().min(1).max(128).optional(),
  reason: storableText(1024),
  /** Pause auto-expires so a crashed orchestrator cannot leave ingress shut forever. */
  until: isoDateTimeSchema.optional(),
  /**
   * When the issuer decided this command; orders pause/resume across replicas
   * (ingress-order.ts: a command older than the state in force is ignored).
   * Optional: without it the envelope's `occurredAt` orders. Keep it when sending
   * the same command again in a new envelope.
   */
  issuedAt: isoDateTimeSchema.optional(),
});
export type IngressControlPayload = z.infer<typeof ingressControlPayloadSchema>;

export const syncStepSchema = z.enum([
  'PENDING',
  'PAUSING_INGRESS',
  'DRAINING',
  'APPLYING',
  'RESUMING',
  'VERIFYING',
  'DONE',
  'FAILED',
  'SKIPPED',
  'CANCELLED',
]);
export const syncStepPayloadSchema = z.object({
  operationId: z.string().min(1).max(128),
  memberId: z.string().min(1).max(128),
  step: syncStepSchema,
});
export type SyncStepPayload = z.infer<typeof syncStepPayloadSchema>;

/** Request/response over the bus (gateway → owning service); the reply goes to `replyTo`. */
export const rpcRequestPayloadSchema = z.object({
  method: z.string().min(1).max(128),
  params: z.record(z.string(), z.unknown()),
  deadline: isoDateTimeSchema,
  /**
   * The HTTP client's `Idempotency-Key` (a write the caller may send again after a 503): the owner answers a
   * request with the same key, caller, method and params as it answered the first, writing nothing again.
   * Optional and ignored by owners older than it (the payload is not strict).
   */
  idempotencyKey: z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional(),
});
export type RpcRequestPayload = z.infer<typeof rpcRequestPayloadSchema>;
