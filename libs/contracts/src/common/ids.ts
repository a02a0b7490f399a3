/** UUIDv7 (RFC 9562): 48-bit unix ms timestamp, then random bits. Sortable by time. */
export function uuidv7(now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let ts = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ts % 256;
    ts = Math.floor(ts / 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Target ids are stable strings with a kind prefix (SPEC §11: `instance:{instanceId}`). */
export const TargetIds = {
  instance: (instanceId: string): string => `instance:${instanceId}`,
  check: (checkId: string): string => `check:${checkId}`,
  host: (hostId: string): string => `host:${hostId}`,
} as const;
