import type { Envelope } from '../bus/envelope.schema';
import type { IngressControlPayload } from './commands.schema';

/**
 * The ordering rule of `ingress.pause` / `ingress.resume`: every ingest replica
 * applies a command only when its stamp is newer than the stamp of the state in
 * force, so a redelivered (or late) older command cannot undo a newer one.
 *
 * A stamp is when the command was issued — the payload's `issuedAt`, else the
 * envelope's `occurredAt` (which a redelivery keeps) — then the envelope id as a
 * tie-break. It is written with a fixed width (`000001735689600000:<uuid>`), so
 * stamps order as plain strings compared character by character; the Redis
 * script that stores the state (libs/live-state) compares them the same way.
 */
export type IngressStamp = string;

const MS_WIDTH = 15;

/** The stamp of an ingress command (its envelope; the payload's `issuedAt` wins over `occurredAt`). */
export function ingressCommandStamp(envelope: Pick<Envelope, 'id' | 'occurredAt' | 'payload'>): IngressStamp {
  const payload = envelope.payload as Partial<Pick<IngressControlPayload, 'issuedAt'>> | null | undefined;
  const issued =
    (typeof payload === 'object' && payload !== null ? payload.issuedAt : undefined) ?? envelope.occurredAt;
  const ms = Date.parse(issued);
  if (!Number.isFinite(ms)) throw new Error(`ingress command ${envelope.id}: "${issued}" is not a time`);
  return `${String(Math.max(0, ms)).padStart(MS_WIDTH, '0')}:${envelope.id.toLowerCase()}`;
}

/** The issue time (epoch ms) a stamp carries. */
export function ingressStampTime(stamp: IngressStamp): number {
  return Number(stamp.slice(0, MS_WIDTH));
}

/** Whether a command stamped `candidate` replaces the state stamped `current` (none: always). */
export function isNewerIngressStamp(candidate: IngressStamp, current: IngressStamp | null | undefined): boolean {
  if (current === null || current === undefined) return true;
  return candidate > current;
}
