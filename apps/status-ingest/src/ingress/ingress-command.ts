import { ingressCommandStamp, Messages, type Envelope, type IngressControlPayload } from '@fleetwatch/contracts';
import type { IngressControlRecord } from '@fleetwatch/live-state';

/**
 * The ingress record an `ingress.pause` / `ingress.resume` command asks for,
 * stamped for ordering (libs/contracts ingress-order.ts). Null: not an ingress command.
 */
export function ingressRecordOf(
  envelope: Envelope<IngressControlPayload>,
  now: Date = new Date(),
): IngressControlRecord | null {
  const paused =
    envelope.type === Messages.IngressPause.type ? true : envelope.type === Messages.IngressResume.type ? false : null;
  if (paused === null) return null;
  const p = envelope.payload;
  const record: IngressControlRecord = {
    paused,
    reason: p.reason,
    until: paused && p.until ? new Date(p.until).toISOString() : null,
    stamp: ingressCommandStamp(envelope),
    commandId: envelope.id,
    appliedAt: now.toISOString(),
  };
  if (p.operationId !== undefined) record.operationId = p.operationId;
  return record;
}
