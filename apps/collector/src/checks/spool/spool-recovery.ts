import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isBeingWritten, syncDir, writeJsonFile } from '../../fs/json-file-writer';
import { decodeRecord, nextRecordAfter } from './record-codec';

// Opening a spool after a stop or a crash (spool.ts): every segment is scanned, a torn or
// corrupt tail is cut off, bad bytes with whole records after them are cut out (the segment
// rewritten without them, what they held counted as lost), segments the cursor moved past
// are removed, and the confirmed position is found again from `cursor.json`. A cursor.json that
// is empty (a power cut after a rename whose data never reached the disk), garbled, not
// understood or pointing past the spooled data (pastTheData: not a power cut's) is logged and ignored: every
// segment is sent again from its start (duplicates, which consumers drop by message id),
// never dropped, never a reason not to start.

export interface SpoolPosition {
  /** Segment sequence number. */
  seq: number;
  /** Byte offset in that segment, just after a record. */
  off: number;
  /** Records in that segment up to `off`. */
  index: number;
}

export interface Segment {
  seq: number;
  path: string;
  bytes: number;
  records: number;
}

const SEGMENT_NAME = /^seg-(\d{12})\.log$/;
/**
 * Temporary files of a segment rewrite, or of a write of the cursor or of the collector's other files in its spool
 * directory (the stamp file, the installation id, the GPUs seen, the assignment where COLLECTOR_ASSIGNMENT_FILE leaves
 * it there): exactly the names a collector, this version or an older one, wrote them under. writeJsonFile's
 * `<12 hex digits>.tmp` for all; before it `<pid>.<n>.tmp` (all but known-gpus.json, which came after); before that
 * `.tmp` (the cursor, a segment rewrite) and `<pid>.tmp` (stamp, install id, assignment). Any other name (a hand-made
 * `assignment.json.tmp`) is not ours and left. Also the LOCK's own `LOCK.<nonce>.tmp` (spool-lock.ts: a crash between
 * its write and its removal; the nonce is new in every process, so each such crash left another). Removed at open,
 * under the lock (only a process that lost it could still be writing one), except those this process is writing.
 */
const LEFT_BY_A_CRASH = new RegExp(
  [
    /^seg-\d{12}\.log\.tmp$/,
    /^cursor\.json(\.[0-9a-f]{12}|\.\d+\.\d+)?\.tmp$/,
    /^(last-stamp|install-id|assignment)\.json\.([0-9a-f]{12}|\d+\.\d+|\d+)\.tmp$/,
    /^known-gpus\.json\.[0-9a-f]{12}\.tmp$/,
    /^LOCK\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/,
  ]
    .map((r) => r.source)
    .join('|'),
);
export const segmentName = (seq: number): string => `seg-${String(seq).padStart(12, '0')}.log`;
/** The largest segment number a 12-digit segment name holds. */
const MAX_SEQ = 999_999_999_999;

interface RecoveryLogger {
  warn(obj: object, msg: string): void;
}

/**
 * The segments worth keeping (oldest first), the confirmed position in the first of them,
 * and the number the next segment gets: after anything the cursor names, so an old cursor
 * never covers new appends (they always go to a new segment, never after a tail that was cut).
 */
export async function recoverSegments(
  dir: string,
  logger: RecoveryLogger,
): Promise<{ segments: Segment[]; ack: SpoolPosition; nextSeq: number; lost: number }> {
  const named = await readCursor(dir, logger);
  let lost = 0;
  const names = await readdir(dir);
  // A rewrite (below) or a cursor write that a crash interrupted: the segment or cursor itself is whole, old or new.
  for (const n of names)
    if (LEFT_BY_A_CRASH.test(n) && !isBeingWritten(join(dir, n))) await rm(join(dir, n), { force: true });
  const seqs = names
    .map((n) => SEGMENT_NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const cursor = named && (await pastTheData(dir, named, seqs, logger)) ? undefined : named;
  const segments: Segment[] = [];
  let ack: SpoolPosition | undefined;
  for (const seq of seqs) {
    const path = join(dir, segmentName(seq));
    // Wholly confirmed before the crash (the cursor moved past it, the unlink did not happen).
    if (cursor && seq < cursor.seq) {
      await rm(path, { force: true });
      continue;
    }
    let buf = await readFile(path);
    let off = 0;
    let records = 0;
    // The last record boundary at or before the cursor (a cursor between boundaries rounds down: resent, not lost).
    let atCursor: SpoolPosition | undefined;
    const kept: Array<[number, number]> = [];
    let keptFrom = 0;
    let cutBytes = 0;
    let gapBytes = 0;
    for (;;) {
      if (cursor && seq === cursor.seq && off <= cursor.off) atCursor = { seq, off: off - cutBytes, index: records };
      const d = decodeRecord(buf, off);
      if (d.kind === 'record') {
        off = d.end;
        records++;
        continue;
      }
      if (off >= buf.length) break;
      const next = nextRecordAfter(buf, off);
      if (next === undefined) {
        // A torn or garbled tail (a crash between writing a length and its bytes): nothing whole after it.
        logger.warn(
          { segment: path, validBytes: off, cutBytes: buf.length - off, why: d.kind === 'corrupt' ? d.reason : 'torn' },
          'spool: cut an incomplete record after a crash',
        );
        break;
      }
      // Bad bytes with whole records after them (a disk fault, or pages written out of order before a power loss):
      // only the bad bytes go. Cut here, the records after them were lost too, uncounted.
      const unconfirmed = !(cursor && seq === cursor.seq && next <= cursor.off);
      logger.warn(
        { segment: path, offset: off, badBytes: next - off, why: d.kind === 'corrupt' ? d.reason : 'torn' },
        'spool: skipped corrupt bytes in a segment; the records after them are kept',
      );
      if (unconfirmed) gapBytes += next - off;
      kept.push([keptFrom, off]);
      cutBytes += next - off;
      keptFrom = off = next;
    }
    if (kept.length > 0 || off < buf.length) {
      kept.push([keptFrom, off]);
      buf = Buffer.concat(kept.map(([a, b]) => buf.subarray(a, b)));
      off = buf.length;
      if (kept.length > 1) {
        // The cursor (cursor.json: offsets of the segment as it was) is written in the rewritten segment's offsets
        // first: read against the new bytes, the old offset would take as confirmed as many unsent records as the
        // cut bytes covered, at an open after a crash that came before the next confirm. A crash between the two
        // writes leaves the new cursor over the old bytes: an earlier position, only confirmed records resent. The
        // cursor is durable (file and directory fsync'd) before the rename: after a power cut the rewritten segment
        // never comes back under the old cursor.
        if (cursor && seq === cursor.seq && atCursor) await writeCursor(dir, atCursor);
        await rewrite(path, buf);
      } else {
        const fh = await open(path, 'r+');
        await fh.truncate(off);
        await fh.close();
      }
    }
    // What the bad bytes held, unconfirmed: at least one record; as many as records of this segment's average size fit.
    if (gapBytes > 0) lost += Math.max(1, Math.round(gapBytes / (records > 0 ? off / records : gapBytes)));
    if (off === 0) {
      await rm(path, { force: true });
      continue;
    }
    if (atCursor) ack = atCursor;
    segments.push({ seq, path, bytes: off, records });
  }
  // After a cursor ignored as past the data too: its segment number may be one the directory had before.
  const nextSeq = Math.max(segments.at(-1)?.seq ?? 0, named?.seq ?? 0) + 1;
  let position = segments.length > 0 ? (ack ?? { seq: segments[0].seq, off: 0, index: 0 }) : undefined;
  // A head segment confirmed to its end is gone too.
  while (position && segments.length > 0 && position.off >= segments[0].bytes) {
    await rm((segments.shift() as Segment).path, { force: true });
    position = segments.length > 0 ? { seq: segments[0].seq, off: 0, index: 0 } : undefined;
  }
  return { segments, ack: position ?? { seq: nextSeq, off: 0, index: 0 }, nextSeq, lost };
}

/**
 * Whether the cursor points past the spooled data, logged when it does: a segment that is not there while older ones
 * are, or an offset beyond the end of its segment's file while a newer segment holds data. The spool never writes one
 * (a cursor moves only over records written, segments go before the cursor moves past them, and rotation and close
 * fdatasync a segment before a newer one is written), but another spool's cursor.json or a directory restored from a
 * backup can: believed, it deletes the segments below it — unconfirmed records lost, uncounted. Ignored instead: every
 * segment is sent again (at worst confirmed records resent, which consumers drop by message id).
 *
 * An offset beyond the end of the newest segment holding data is believed: a power cut's. Records are published
 * before their bytes are fdatasync'd (every second) and the cursor is written durably every second, so the cursor can
 * name bytes confirmed by the broker that the cut took back. Every record left in that segment lies before it, and no
 * newer segment holds any: the segment is taken as confirmed to its end, nothing unconfirmed deleted (records after
 * the cursor are in a newer segment, which makes this one not the newest: ignored as above).
 */
async function pastTheData(
  dir: string,
  cursor: SpoolPosition,
  seqs: number[],
  logger: RecoveryLogger,
): Promise<boolean> {
  const size = async (seq: number) => (await stat(join(dir, segmentName(seq)))).size;
  let why: string | undefined;
  if (seqs.includes(cursor.seq)) {
    const bytes = await size(cursor.seq);
    if (cursor.off <= bytes) return false;
    const newer = seqs.filter((s) => s > cursor.seq);
    const newerBytes = await Promise.all(newer.map(size));
    const holding = newer.filter((_s, i) => newerBytes[i] > 0);
    if (holding.length === 0) {
      logger.warn(
        { cursor: join(dir, 'cursor.json'), position: cursor, segment: segmentName(cursor.seq), bytes },
        CURSOR_PAST_UNSYNCED,
      );
      return false;
    }
    why = `offset ${cursor.off} past the end of ${segmentName(cursor.seq)} (${bytes} bytes), which is not the newest (${segmentName(holding[0])} holds data)`;
  } else if (seqs.some((s) => s < cursor.seq))
    why = `its segment ${segmentName(cursor.seq)} is missing, older ones are there`;
  if (why === undefined) return false;
  logger.warn({ cursor: join(dir, 'cursor.json'), position: cursor, why }, CURSOR_PAST_DATA);
  return true;
}

const CURSOR_PAST_DATA =
  "spool: cursor.json points past the spooled data (another spool's cursor, or a directory restored from a backup?): every segment is sent again from its start";
const CURSOR_PAST_UNSYNCED =
  'spool: cursor.json points past the end of the newest segment (bytes confirmed, then lost unsynced in a power cut): that segment is taken as confirmed';

/**
 * Replaces the segment at `path` by `bytes` (tmp + fsync + rename + directory fsync: a crash or power cut leaves the
 * old one or the new one, and the new one once this returned).
 */
async function rewrite(path: string, bytes: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(bytes);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** cursor.json, as Spool writes it too (writeJsonFile: tmp + fsync + rename + directory fsync). */
export function writeCursor(dir: string, position: SpoolPosition): Promise<void> {
  return writeJsonFile(join(dir, 'cursor.json'), position);
}

/**
 * The position in cursor.json, or undefined: none (a first start, or a crash before the first cursor write), or one
 * that cannot be read or understood (empty after a power cut, garbled, another format), logged. Either way recovery
 * starts from the oldest segment: records already confirmed are sent again, none is skipped (at-least-once).
 */
async function readCursor(dir: string, logger: RecoveryLogger): Promise<SpoolPosition | undefined> {
  const path = join(dir, 'cursor.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn({ cursor: path, error: (e as Error).message }, CURSOR_IGNORED);
    return undefined;
  }
  let c: Partial<SpoolPosition> | null = null;
  try {
    c = JSON.parse(text) as Partial<SpoolPosition> | null;
  } catch {
    // Not JSON: logged below.
  }
  const seq = c?.seq;
  const off = c?.off;
  // A segment number past what segmentName's 12 digits hold (another spool's cursor, garbled): the next segment, named
  // after it, would be left out of the next recovery (SEGMENT_NAME) with every record appended to it.
  if (
    Number.isSafeInteger(seq) &&
    Number.isSafeInteger(off) &&
    (seq as number) >= 0 &&
    (seq as number) < MAX_SEQ &&
    (off as number) >= 0
  )
    return { seq: seq as number, off: off as number, index: 0 };
  logger.warn(
    { cursor: path, bytes: Buffer.byteLength(text), head: JSON.stringify(text.slice(0, 80)) },
    CURSOR_IGNORED,
  );
  return undefined;
}

const CURSOR_IGNORED =
  'spool: cursor.json unreadable or not understood (a crash or power cut?): every segment is sent again from its start';
