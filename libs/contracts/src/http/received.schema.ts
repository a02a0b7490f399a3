import { z } from 'zod';
import { targetStatusSchema } from '../common/status';

// What a target received, as stored (SPEC §6 "a 202 is a promise"): the pushed status updates of an instance and the
// pings of a heartbeat monitor, each field as it was accepted — so what was promised can be read back.

/** `GET /api/v1/targets/{id}/updates` and `/pings` query. */
export const receivedQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** The previous page's `nextCursor`. */
  cursor: z
    .string()
    .regex(/^\d{1,15}_\d{1,19}$/, 'must be a nextCursor from the previous page')
    // Its time goes to Postgres as an ISO text (a year past 9999 it refuses), its id as a bigint.
    .refine((c) => {
      // Not of the shape: the regex above says so (and BigInt would throw).
      if (!/^\d{1,15}_\d{1,19}$/.test(c)) return true;
      const [at, id] = c.split('_');
      return Number(at) <= Date.UTC(10_000, 0, 1) - 1 && BigInt(id) <= 9_223_372_036_854_775_807n;
    }, 'must be a nextCursor from the previous page')
    .optional(),
});
export type ReceivedQuery = z.infer<typeof receivedQuerySchema>;

/** One pushed status update as stored. */
export const pushedUpdateViewSchema = z.object({
  /** The client's update id (its `id`, or the one the edge gave it). */
  updateId: z.string(),
  /** The bus message's id (the idempotency key). */
  messageId: z.string(),
  instanceId: z.string(),
  kind: z.string(),
  /** `status` as sent, lower-cased (`running`, `exited` …). */
  lifecycle: z.string(),
  /** What it maps to. */
  status: targetStatusSchema,
  source: z.string().nullable(),
  location: z.string().nullable(),
  occurredAt: z.iso.datetime(),
  receivedAt: z.iso.datetime(),
  labels: z.record(z.string(), z.string()).nullable(),
  message: z.string().nullable(),
  metadata: z.unknown().nullable(),
});
export type PushedUpdateView = z.infer<typeof pushedUpdateViewSchema>;

export const pushedUpdatesResponseSchema = z.object({
  targetId: z.string(),
  items: z.array(pushedUpdateViewSchema),
  nextCursor: z.string().nullable(),
});
export type PushedUpdatesResponse = z.infer<typeof pushedUpdatesResponseSchema>;

/** One heartbeat ping as stored. */
export const pingViewSchema = z.object({
  messageId: z.string(),
  signal: z.enum(['success', 'start', 'fail']),
  /** The exit code sent as `/ping/{token}/{code}` (0–255), or null (`/ping/{token}`, `/start`, `/fail`). */
  exitCode: z.number().int().nullable(),
  runId: z.string().nullable(),
  location: z.string(),
  receivedAt: z.iso.datetime(),
  /** What the job sent with it (its first 10,000 characters), or null. */
  body: z.string().nullable(),
});
export type PingView = z.infer<typeof pingViewSchema>;

export const pingsResponseSchema = z.object({
  targetId: z.string(),
  items: z.array(pingViewSchema),
  nextCursor: z.string().nullable(),
});
export type PingsResponse = z.infer<typeof pingsResponseSchema>;
