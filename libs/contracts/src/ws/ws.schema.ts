import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { selectableKindSchema, targetStatusSchema, userRoleSchema } from '../common/status';
import type { StatusChangedPayload } from '../events/observations.schema';
import type { HostSampleSummary } from '../http/hosts.schema';
import type { TargetView } from '../http/gateway.schema';

// The gateway's WebSocket at /ws (issue 17). A browser connects with its session cookie;
// another client sends `Authorization: Bearer <token>` or the subprotocols
// `fleetwatch.v1, <session token>`. Every frame is one JSON object, validated here on the
// server (client → server) and typed for the client (server → client).

/** The subprotocol the gateway selects; a client offering a token in the list must offer this too. */
export const WS_PROTOCOL = 'fleetwatch.v1';
export const WS_PATH = '/ws';
/** Most subscriptions one socket may hold at once. */
export const WS_MAX_SUBSCRIPTIONS = 32;
/** Largest client frame the gateway reads, in bytes. */
export const WS_MAX_CLIENT_FRAME_BYTES = 64 * 1024;

/** Close codes the gateway uses (4000–4999 are the application's). */
export const WsCloseCode = {
  /** Shutting down: reconnect to another replica. */
  GoingAway: 1001,
  /** A frame that is not one of the client messages below. */
  BadMessage: 4400,
  /** The session was revoked or expired (or the key revoked): sign in again. */
  SessionEnded: 4401,
  /** The client did not read fast enough: reconnect and catch up with a REST read. */
  TooSlow: 4408,
  /** This session or API key already holds as many sockets as the gateway allows (GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL). */
  TooManySockets: 4429,
  /** The socket kept sending far more frames than the gateway takes (20 a second, 60 at once): a flood. */
  TooManyFrames: 1008,
} as const;

const subscriptionId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/, 'use letters, digits and . _ : -');
const id = storableText(300, 1);

/** Status changes of the targets that match all given fields (absent: any). */
export const wsStatusFilterSchema = z.strictObject({
  /** Target kinds or pushed instances' own kinds (`container`, `pod`, …): the target's kind or instance kind is one. */
  kind: z.array(selectableKindSchema).min(1).max(8).optional(),
  /** The new status (`to`). */
  status: z.array(targetStatusSchema).min(1).max(8).optional(),
  tag: storableText(128, 1).optional(),
  location: storableText(128, 1).optional(),
  targetIds: z.array(id).min(1).max(1000).optional(),
});
export type WsStatusFilter = z.infer<typeof wsStatusFilterSchema>;

const subscribeSchema = z.discriminatedUnion('topic', [
  z.strictObject({
    type: z.literal('subscribe'),
    id: subscriptionId,
    topic: z.literal('status'),
    filter: wsStatusFilterSchema.default({}),
  }),
  /** One target: its status changes, and its live view whenever a new result moves it (lastSeen, latency). */
  z.strictObject({ type: z.literal('subscribe'), id: subscriptionId, topic: z.literal('target'), targetId: id }),
  /** Latest sample summaries of these hosts (collector host ids), when each new sample lands. */
  z.strictObject({
    type: z.literal('subscribe'),
    id: subscriptionId,
    topic: z.literal('host-metrics'),
    hostIds: z.array(storableText(256, 1)).min(1).max(100),
  }),
]);

export const wsClientMessageSchema = z.discriminatedUnion('type', [
  subscribeSchema,
  z.strictObject({ type: z.literal('unsubscribe'), id: subscriptionId }),
  z.strictObject({ type: z.literal('ping') }),
]);
export type WsClientMessage = z.infer<typeof wsClientMessageSchema>;
export type WsTopic = Extract<WsClientMessage, { type: 'subscribe' }>['topic'];

export const wsReadySchema = z.object({
  type: z.literal('ready'),
  user: z.object({ kind: z.enum(['user', 'api-key']), id: z.string(), name: z.string(), role: userRoleSchema }),
  /** When the session ends and the socket with it (null: an API key). */
  expiresAt: z.string().nullable(),
});

/** What the gateway sends. `subscriptions` lists the ids of this socket's subscriptions a message matches. */
export type WsServerMessage =
  | z.infer<typeof wsReadySchema>
  | { type: 'subscribed'; id: string; topic: WsTopic }
  | { type: 'unsubscribed'; id: string }
  | { type: 'status.changed'; subscriptions: string[]; event: StatusChangedPayload }
  | { type: 'target'; subscriptions: string[]; target: TargetView }
  | { type: 'host-metrics'; subscriptions: string[]; hostId: string; sample: HostSampleSummary }
  | { type: 'error'; id?: string; message: string; issues?: { path: string; message: string }[] }
  | { type: 'pong' }
  /**
   * Live updates stopped: the gateway lost its connection to live state (its Redis subscriber), or
   * its reads of live state failed 3 times in a row, so changes are not delivered until it is back. Sent once per outage to the open sockets, and to a
   * socket that opens during one (after `ready`); a `resync` follows once the gateway has
   * subscribed again. The socket and its subscriptions stay.
   */
  | { type: 'degraded'; reason: string }
  /**
   * The gateway's feed of changes was interrupted (its Redis subscriber reconnected): changes
   * published meanwhile were not delivered. Subscriptions stand; re-read what the page shows over REST.
   * After a `degraded`, this says live updates are back.
   */
  | { type: 'resync'; reason: string };
