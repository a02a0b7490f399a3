import type { StatusChangeDelivery, SubscriptionSpec, TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { compileSelector, type AlertTarget } from './selector';
import {
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  webhookSignature,
} from './channels/webhook';

// Status-change subscriptions (SPEC §7, issue 18), the pure part: which status changes a subscription
// wants, and the signed request a subscriber receives (the webhook channel's signature: HMAC-SHA256 over
// `timestamp + "." + body`, X-Fleetwatch-Timestamp / X-Fleetwatch-Signature, so one verifier serves both).

/** A status change as the bus says it (status.changed). */
export interface StatusChange {
  targetId: string;
  kind: TargetKind;
  /** Null: the target's consensus status; else the one location that saw the change. */
  location: string | null;
  from: TargetStatus;
  to: TargetStatus;
}

export type SubscriptionFilter = Pick<SubscriptionSpec, 'enabled' | 'selector' | 'transitions' | 'perLocation'>;

/**
 * Whether `subscription` wants `change` of `target` (what is known of it: tags, name, locations; a target
 * no longer known is `{id, kind}` with no tags). A per-location change is matched on its own location:
 * a selector naming `lab-1` wants what lab-1 saw, not what another location saw of a target lab-1 watches.
 */
export function subscriptionMatches(
  subscription: SubscriptionFilter,
  change: StatusChange,
  target: AlertTarget,
): boolean {
  if (!subscription.enabled) return false;
  if (change.from === change.to) return false;
  if (change.location !== null && !subscription.perLocation) return false;
  const { from, to } = subscription.transitions;
  if (from.length && !from.includes(change.from)) return false;
  if (to.length && !to.includes(change.to)) return false;
  const seen: AlertTarget =
    change.location === null
      ? { ...target, kind: change.kind }
      : { ...target, kind: change.kind, locations: [change.location] };
  return compileSelector(subscription.selector).matches(seen);
}

/** The headers of one attempt: signed now, so a retry carries a fresh timestamp over the same body. */
export function signedStatusChangeHeaders(
  secret: string,
  body: string,
  deliveryId: string,
  nowMs: number,
): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    'content-type': 'application/json',
    'user-agent': 'Fleetwatch-Subscriptions/1',
    [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
    [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(secret, timestamp, body),
    [WEBHOOK_DELIVERY_HEADER]: deliveryId,
  };
}

/** The JSON body of a delivery (fixed when it is queued: every retry sends the same bytes). */
export function statusChangeBody(d: StatusChangeDelivery): string {
  return JSON.stringify(d);
}
