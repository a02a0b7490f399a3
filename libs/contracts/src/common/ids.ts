import { v7 } from 'uuid';

/** UUIDv7 (RFC 9562): 48-bit unix ms timestamp, then random bits. Sortable by time; monotonic within this process when `now` is not given. */
export function uuidv7(now?: number): string {
  return now === undefined ? v7() : v7({ msecs: now });
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Target ids are stable strings with a kind prefix (SPEC §11: `instance:{instanceId}`). */
export const TargetIds = {
  instance: (instanceId: string): string => `instance:${instanceId}`,
  check: (checkId: string): string => `check:${checkId}`,
  host: (hostId: string): string => `host:${hostId}`,
} as const;
