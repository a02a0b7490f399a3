import { crc32 } from 'node:zlib';

// One spooled message on disk: an 8-byte header — payload length and CRC-32 of the
// payload, both u32 little-endian — then the payload, UTF-8 JSON. The checksum is what
// tells a whole record from the torn tail a crash leaves behind (a length that was
// written before its bytes, or bytes cut short).

export const HEADER_BYTES = 8;
/** No record is larger (a check result is at most ~20 KB: 16 KB of metadata plus its fields). */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** What the spool keeps per message: the envelope's identity is fixed here, so a resend carries the same id. */
export interface SpoolRecord {
  /** Envelope id (UUIDv7), assigned once when the message entered the spool. */
  id: string;
  /** Envelope type (`check.result`). */
  type: string;
  occurredAt: string;
  payload: unknown;
}

export function encodeRecord(record: SpoolRecord): Buffer {
  const body = Buffer.from(
    JSON.stringify({ id: record.id, type: record.type, occurredAt: record.occurredAt, payload: record.payload }),
  );
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt32LE(crc32(body), 4);
  body.copy(out, HEADER_BYTES);
  return out;
}

export type Decoded =
  | { kind: 'record'; record: SpoolRecord; end: number }
  /** Not enough bytes for the record that starts here (yet, or ever: a torn tail). */
  | { kind: 'incomplete' }
  /** The bytes here are not a record: corruption or a torn write. */
  | { kind: 'corrupt'; reason: string };

/** Decodes the record starting at `offset` of `buf`. */
export function decodeRecord(buf: Buffer, offset: number): Decoded {
  if (buf.length - offset < HEADER_BYTES) return { kind: 'incomplete' };
  const length = buf.readUInt32LE(offset);
  if (length === 0 || length > MAX_RECORD_BYTES) return { kind: 'corrupt', reason: `implausible length ${length}` };
  const end = offset + HEADER_BYTES + length;
  if (end > buf.length) return { kind: 'incomplete' };
  const body = buf.subarray(offset + HEADER_BYTES, end);
  if (crc32(body) !== buf.readUInt32LE(offset + 4)) return { kind: 'corrupt', reason: 'checksum mismatch' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { kind: 'corrupt', reason: 'not JSON' };
  }
  const r = parsed as Partial<SpoolRecord> | null;
  if (!r || typeof r.id !== 'string' || typeof r.type !== 'string' || typeof r.occurredAt !== 'string')
    return { kind: 'corrupt', reason: 'not a spool record' };
  return { kind: 'record', record: r as SpoolRecord, end };
}

/**
 * The offset of the first whole record after `offset` in `buf`, or undefined: where reading can go on after bytes
 * that are not a record. A record's header holds zero bytes (lengths are under 16 MiB) that JSON text never does,
 * and it must pass its checksum and parse, so random bytes are not taken for one.
 */
export function nextRecordAfter(buf: Buffer, offset: number): number | undefined {
  for (let at = offset + 1; at + HEADER_BYTES < buf.length; at++)
    if (decodeRecord(buf, at).kind === 'record') return at;
  return undefined;
}
