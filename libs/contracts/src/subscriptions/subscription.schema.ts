import { z } from 'zod';
import { loneSurrogateProblem, storableText } from '../common/store-safe';
import { targetStatusSchema, TargetStatus } from '../common/status';
import { actorSchema, type Page, type WriteResult } from '../checks/config-rpc.schema';
import { httpUrlSchema } from '../alerts/channel.schema';
import { alertRuleIdSchema, alertSelectorSchema } from '../alerts/rule.schema';

// Status-change subscriptions (SPEC §7, issue 18): a signed webhook for every status change that matches a
// selector (targets by id, tag, site, location, kind) and the transitions asked for. Configuration, so written by
// sync-orchestrator through the versioned, audited path (config.changed area `subscriptions`); delivered by the
// aggregator from status.changed, retried with backoff, every attempt logged. The signing secret is write-only:
// sent in a body, sealed at rest, answered as `{set: true}` only.

const distinct = (values: readonly unknown[]) => new Set(values).size === values.length;
const statuses = () =>
  z.array(targetStatusSchema).max(Object.keys(TargetStatus).length).refine(distinct, 'each status once').default([]);

/** Which transitions are sent: `from` and `to` empty mean any. */
export const subscriptionTransitionsSchema = z.strictObject({
  from: statuses(),
  to: statuses(),
});

/** A subscription as a client writes it, without its secret. */
export const subscriptionSpecSchema = z.strictObject({
  name: storableText(256).trim().min(1),
  enabled: z.boolean().default(true),
  url: httpUrlSchema(),
  selector: alertSelectorSchema.default({ targetIds: [], tags: [], sites: [], locations: [], kinds: [] }),
  transitions: subscriptionTransitionsSchema.default({ from: [], to: [] }),
  /**
   * Also the changes seen from one location (`location` set in the event). Default: the target's consensus
   * status only — one request per change of what the dashboard shows.
   */
  perLocation: z.boolean().default(false),
});
export type SubscriptionInput = z.input<typeof subscriptionSpecSchema>;
export type SubscriptionSpec = z.output<typeof subscriptionSpecSchema>;

export const SUBSCRIPTION_SECRET_MIN = 16;
/**
 * The signing secret (HMAC-SHA256 key): required on create; on a replace absent keeps the stored one. Sealed as UTF-8,
 * where a lone surrogate becomes U+FFFD: deliveries would be signed with another key than the one accepted, so it is
 * refused (as a channel's secrets are, storableText).
 */
export const subscriptionSecretSchema = z
  .string()
  .min(SUBSCRIPTION_SECRET_MIN, `at least ${SUBSCRIPTION_SECRET_MIN} characters`)
  .max(512)
  .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), 'no control characters')
  .superRefine((s, ctx) => {
    const problem = loneSurrogateProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** The body of POST and PUT: the spec and (write-only) `secret`. */
export const subscriptionWriteSchema = subscriptionSpecSchema.extend({ secret: subscriptionSecretSchema.optional() });
export type SubscriptionWrite = z.output<typeof subscriptionWriteSchema>;

/** A stored subscription as the API answers it: the secret only as whether it is set. */
export type Subscription = SubscriptionSpec & {
  id: string;
  secret: { set: boolean };
  version: number;
  createdAt: string;
  updatedAt: string;
  /**
   * Read-only (not accepted on writes): when the subscription's rate-limit pause ends (ISO) — its receiver answered
   * 429, or 503 with Retry-After, and none of its deliveries is sent before then — or null when it is not paused. A
   * change, a disabling or a delete of the subscription ends the pause.
   */
  pausedUntil: string | null;
};

/** Ids are keyed like alert rules: a UUID given by the owner. */
export const subscriptionIdSchema = alertRuleIdSchema;

export enum SubscriptionRpcMethod {
  Create = 'subscriptions.create',
  Replace = 'subscriptions.replace',
  Delete = 'subscriptions.delete',
  List = 'subscriptions.list',
  Get = 'subscriptions.get',
}

const expectedVersion = z.number().int().nonnegative().max(2_147_483_647).optional();
export const subscriptionRpcParams = {
  [SubscriptionRpcMethod.Create]: z.strictObject({ actor: actorSchema, body: z.unknown() }),
  [SubscriptionRpcMethod.Replace]: z.strictObject({
    actor: actorSchema,
    id: subscriptionIdSchema,
    body: z.unknown(),
    expectedVersion,
  }),
  [SubscriptionRpcMethod.Delete]: z.strictObject({ actor: actorSchema, id: subscriptionIdSchema, expectedVersion }),
  [SubscriptionRpcMethod.List]: z.strictObject({
    limit: z.number().int().min(1).max(1000).default(100),
    cursor: storableText(256).optional(),
  }),
  [SubscriptionRpcMethod.Get]: z.strictObject({ id: subscriptionIdSchema }),
} as const satisfies Record<SubscriptionRpcMethod, z.ZodType>;
export type SubscriptionRpcParams<M extends SubscriptionRpcMethod> = z.input<(typeof subscriptionRpcParams)[M]>;

export interface SubscriptionRpcResults {
  [SubscriptionRpcMethod.Create]: { subscription: Subscription } & WriteResult;
  [SubscriptionRpcMethod.Replace]: { subscription: Subscription } & WriteResult;
  [SubscriptionRpcMethod.Delete]: WriteResult;
  [SubscriptionRpcMethod.List]: Page<Subscription>;
  [SubscriptionRpcMethod.Get]: { subscription: Subscription };
}

/** What a subscriber receives (JSON), signed like the webhook channel (X-Fleetwatch-Timestamp / -Signature). */
export interface StatusChangeDelivery {
  version: '1';
  type: 'status.changed';
  /** The status event's id: the same on a retry (receivers de-duplicate by it). */
  eventId: string;
  subscriptionId: string;
  site: string;
  targetId: string;
  kind: string;
  /** Null: the consensus status; else the location that saw the change. */
  location: string | null;
  from: string;
  to: string;
  reason: string;
  at: string;
  sequence: number;
  target: { name: string | null; tags: string[] };
}

/** One delivery of a subscription and its attempts (`GET /api/v1/subscriptions/{id}/deliveries`, newest first). */
export interface SubscriptionDeliveryView {
  id: string;
  subscriptionId: string;
  eventId: string;
  targetId: string;
  /** `pending` (queued or waiting for a retry), `delivered`, `failed` (for good). */
  state: string;
  attempts: number;
  lastError: string | null;
  log: Array<{
    attempt: number;
    at: string;
    outcome: 'delivered' | 'retry' | 'failed';
    httpStatus: number | null;
    error: string | null;
    durationMs: number;
  }>;
}

export const subscriptionDeliveriesQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
