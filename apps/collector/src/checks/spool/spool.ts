import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { syncDir } from '../../fs/json-file-writer';
import { decodeRecord, encodeRecord, HEADER_BYTES, MAX_RECORD_BYTES, type SpoolRecord } from './record-codec';
import { acquireSpoolLock, type LockHolder, type SpoolLock, type SpoolLockOptions } from './spool-lock';
import { recoverSegments, segmentName, writeCursor, type Segment, type SpoolPosition } from './spool-recovery';

// The collector's offline spool (SPEC §2): every result goes through it, and leaves it
// only once the broker confirmed it, so a broker outage, a collector crash, or both lose
// nothing. A directory of append-only segment files (`seg-<seq>.log`, records as in
// record-codec.ts) plus `cursor.json`, the position up to which the broker confirmed.
//
// - Order: records are read back in append order and published one batch at a time, so
//   they reach the broker in the order they were spooled.
// - Bounded: the segments together stay under `maxBytes`. When a new record does not fit,
//   the OLDEST segment goes first (whole: ~1/8 of the spool), and what it held that was
//   not confirmed yet is counted as dropped (onDropped → metric and log).
// - Crash-safe: on open every segment is scanned; a torn last record (a crash between
//   writing a length and its bytes) fails its checksum and is cut off, not fatal. Bad bytes
//   with whole records after them (a disk fault, pages written out of order before a power
//   loss) are cut out alone, and what they held unconfirmed is counted ('corrupt'); so is a
//   record read back wrong later. Appends always go to a new segment after a restart, never
//   after a tail that was cut.
// - fsync policy: appends are written to the file within `flushDelayMs` (20 ms: one write
//   for what gathered, so a killed process loses at most its last 20 ms of results, like
//   runs still in flight), and fdatasync'd at most once per `syncIntervalMs` (default 1 s),
//   on every segment change and at close; a new segment's directory is fsync'd once (its
//   name is durable only then). A power loss may thus lose up to about a second
//   of results; syncing each result (≈170/s at 10,000 checks a minute) would cost more
//   than that second is worth for periodic measurements that the next interval repeats.
// - The cursor is rewritten (tmp + fsync + rename + directory fsync: writeJsonFile) at most
//   once per `cursorIntervalMs` (default 1 s) and at close: after a crash, up to that much
//   already-confirmed work is sent again, with the same envelope ids, and consumers drop the
//   duplicates (idempotent by message id). The two fsyncs hold the spool's I/O ~2-3 ms once a
//   second (measured on ext4 on a virtual disk: median 2-3 ms, p99 15-25 ms, against 0.6 ms
//   without): without them a power cut after the rename could leave an empty cursor.json (ext4
//   delayed allocation) or, at recovery, a rewritten segment under the old cursor. An empty,
//   garbled or unknown cursor.json is not fatal: it is logged and every segment sent again; so is one that points
//   past the data (spool-recovery.ts), which would otherwise delete the segments below it.

export type { SpoolPosition };

export interface SpooledEntry {
  record: SpoolRecord;
  /** Pass to confirm() once the broker confirmed this record (and every one before it). */
  end: SpoolPosition;
}

/** Why records left the spool unpublished; `invalid`: the drain found them unpublishable (SpoolDrain.onDiscarded). */
export type DropReason = 'full' | 'corrupt' | 'too-large' | 'io' | 'invalid';

export interface SpoolLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** Segment size at which the next append starts a new one. Default maxBytes/8, within 64 KiB–8 MiB. */
  segmentBytes?: number;
  /** How long appends gather before one write (default 20 ms): 10,000 checks a minute make ~3 records per write, not 1. */
  flushDelayMs?: number;
  syncIntervalMs?: number;
  cursorIntervalMs?: number;
  logger?: SpoolLogger;
  onDropped?: (records: number, reason: DropReason) => void;
  /** The directory's LOCK (spool-lock.ts): heartbeat period, stale window; identity and clock for tests. */
  lock?: Omit<SpoolLockOptions, 'logger' | 'onLost'>;
  /**
   * Another process took the directory's lock over (this one was frozen past the stale window): the spool has
   * stopped writing — appends are dropped, nothing more is confirmed — and the process should stop.
   */
  onLockLost?: (by: LockHolder | undefined) => void;
}

const READ_CHUNK = 256 * 1024;
const quiet: SpoolLogger = { warn: () => undefined, error: () => undefined };

export class Spool {
  private readonly segmentBytes: number;
  /** Bytes appended but not yet written that memory may hold (a stalled disk). */
  private readonly pendingLimit: number;
  private readonly logger: SpoolLogger;
  private segments: Segment[] = [];
  private writer: FileHandle | undefined;
  private reader: { seq: number; fh: FileHandle } | undefined;
  private ack: SpoolPosition = { seq: 0, off: 0, index: 0 };
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Taken from `pending` by the write under way, not yet on disk nor dropped: still counted by `stats`. */
  private unwritten = { records: 0, bytes: 0 };
  private flushScheduled = false;
  private io: Promise<unknown> = Promise.resolve();
  private totalBytes = 0;
  private totalRecords = 0;
  private droppedTotal = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private cursorTimer: NodeJS.Timeout | undefined;
  private dataWaiters: Array<() => void> = [];
  private closed = false;
  private lockLost = false;
  private releaseLock: () => Promise<void> = async () => undefined;
  private lock: SpoolLock | undefined;

  private constructor(private readonly options: SpoolOptions) {
    this.segmentBytes =
      options.segmentBytes ?? Math.min(8 * 1024 * 1024, Math.max(64 * 1024, Math.floor(options.maxBytes / 8)));
    if (this.segmentBytes * 2 > options.maxBytes)
      throw new RangeError(
        `spool maxBytes (${options.maxBytes}) must hold at least two segments of ${this.segmentBytes}`,
      );
    this.logger = options.logger ?? quiet;
    this.pendingLimit = Math.min(16 * 1024 * 1024, Math.max(this.segmentBytes * 2, Math.floor(options.maxBytes / 4)));
  }

  /** Opens (creating, locking and recovering) the spool in `options.dir`. */
  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    await makeDirDurably(options.dir, spool.logger);
    const lock = await acquireSpoolLock(options.dir, {
      ...options.lock,
      logger: spool.logger,
      onLost: (by) => spool.lostLock(by),
    });
    spool.lock = lock;
    spool.releaseLock = () => lock.release();
    try {
      await spool.recover();
    } catch (e) {
      await spool.releaseLock();
      throw e;
    }
    return spool;
  }

  /** Bytes on disk, records not confirmed yet, records dropped since open. */
  get stats(): { bytes: number; records: number; dropped: number; segments: number } {
    return {
      bytes: this.totalBytes + this.pendingBytes + this.unwritten.bytes,
      records: this.totalRecords - this.ack.index + this.pending.length + this.unwritten.records,
      dropped: this.droppedTotal,
      segments: this.segments.length,
    };
  }

  /** Queues a record; it is written within `flushDelayMs` (see flush()). */
  append(record: SpoolRecord): void {
    if (this.lockLost) return this.dropped(1, 'io', { lockLost: true });
    if (this.closed) throw new Error('spool is closed');
    const buf = encodeRecord(record);
    if (buf.length - HEADER_BYTES > MAX_RECORD_BYTES || buf.length * 2 > this.options.maxBytes) {
      this.dropped(1, 'too-large', { bytes: buf.length });
      return;
    }
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    // A disk that stopped answering must not grow memory without bound: the oldest of those waiting for it go
    // (the disk's own older records cannot be dropped while it does not answer).
    while (this.pendingBytes > this.pendingLimit && this.pending.length > 1) {
      this.pendingBytes -= (this.pending.shift() as Buffer).length;
      this.dropped(1, 'full', { waitingForDisk: true });
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => void this.flush().catch(() => undefined), this.options.flushDelayMs ?? 20).unref();
    }
  }

  /** Writes what append() queued. */
  flush(): Promise<void> {
    return this.serial(() => this.writePending());
  }

  /** Resolves once there is something not yet confirmed (at once if there is). */
  waitForData(): Promise<void> {
    if (this.closed || this.totalRecords > this.ack.index) return Promise.resolve();
    return new Promise((resolve) => this.dataWaiters.push(resolve));
  }

  /** Up to `maxRecords` records after the confirmed position, oldest first. */
  read(maxRecords: number, maxBytes = 1024 * 1024): Promise<SpooledEntry[]> {
    return this.serial(async () => (this.closed ? [] : this.readFromAck(maxRecords, maxBytes)));
  }

  /** Everything up to and including `end` was confirmed by the broker: it may go. */
  confirm(end: SpoolPosition): Promise<void> {
    return this.serial(async () => {
      // A confirm that arrives after close (a publish that outlived the shutdown window) is for the next start to redo.
      if (this.closed || !(await this.stillLocked())) return;
      const a = this.ack;
      if (end.seq < a.seq || (end.seq === a.seq && end.off <= a.off)) return;
      while (this.segments.length > 1 && this.segments[0].seq < end.seq) await this.deleteHead();
      if (this.segments[0]?.seq !== end.seq) return;
      this.ack = { ...end };
      if (this.ack.off >= this.segments[0].bytes && this.segments.length > 1) await this.deleteHead();
      this.scheduleCursor();
    });
  }

  /** Writes what is queued, syncs, records the cursor and releases the directory. */
  close(): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      await this.writePending();
      this.closed = true;
      clearTimeout(this.syncTimer);
      clearTimeout(this.cursorTimer);
      if (this.writer) {
        const path = this.writing.path;
        await this.writer.datasync().catch((e: unknown) => this.syncFailed(e, path, 'close'));
        await this.writer.close();
      }
      await this.reader?.fh.close();
      // A cursor not written (a failing disk: its fsyncs) costs resends, not results: the lock is released all the same
      // (thrown, close left it held — the next container waited out its stale window — and stopped the shutdown).
      await this.writeCursor().catch((e: unknown) =>
        this.logger.error(
          { error: (e as Error).message },
          'spool: could not write cursor at close: what was confirmed since the last one is sent again at the next start',
        ),
      );
      await this.releaseLock();
      for (const w of this.dataWaiters.splice(0)) w();
    });
  }

  /**
   * Whether this process may still write the directory's other files (the stamp file beside the segments): false once
   * its lock was taken over (a process that lost it must not overwrite the new holder's files), also after close.
   */
  ownsDir(): Promise<boolean> {
    if (this.lockLost) return Promise.resolve(false);
    return this.lock?.owns() ?? Promise.resolve(true);
  }

  /** Another process holds the directory now: write nothing more to it (not even the cursor at close). */
  private lostLock(by: LockHolder | undefined): void {
    this.lockLost = true;
    void this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      clearTimeout(this.syncTimer);
      clearTimeout(this.cursorTimer);
      if (this.pending.length > 0) this.dropped(this.pending.length, 'io', { lockLost: true });
      this.pending = [];
      this.pendingBytes = 0;
      await this.writer?.close().catch(() => undefined);
      await this.reader?.fh.close().catch(() => undefined);
      for (const w of this.dataWaiters.splice(0)) w();
    });
    this.options.onLockLost?.(by);
  }

  private async stillLocked(): Promise<boolean> {
    return (await this.lock?.check()) ?? true;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.io.then(fn, fn);
    this.io = next.catch(() => undefined);
    return next;
  }

  private async recover(): Promise<void> {
    const r = await recoverSegments(this.options.dir, this.logger);
    if (r.lost > 0) this.dropped(r.lost, 'corrupt', { dir: this.options.dir, found: 'on open' });
    this.segments = r.segments;
    for (const seg of r.segments) {
      this.totalBytes += seg.bytes;
      this.totalRecords += seg.records;
    }
    this.ack = r.ack;
    await this.startSegment(r.nextSeq);
  }

  private async startSegment(seq: number): Promise<void> {
    const path = join(this.options.dir, segmentName(seq));
    this.writer = await open(path, 'a');
    this.segments.push({ seq, path, bytes: 0, records: 0 });
    // The new file's name is durable only once its directory is synced (fsync(2): the file's own fdatasync does not
    // make it so): else a power cut could take the whole segment, records synced and all (a broker outage confirms
    // nothing, so no cursor write syncs the directory meanwhile). Once per segment (~1 ms). A failure is logged, not
    // thrown: the segment is open and takes records, it may only not survive a power cut.
    await syncDir(this.options.dir).catch((e: unknown) =>
      this.logger.error(
        { segment: path, error: (e as Error).message },
        'spool: directory fsync of a new segment failed',
      ),
    );
  }

  private get writing(): Segment {
    return this.segments[this.segments.length - 1];
  }

  private async writePending(): Promise<void> {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    // After a stall the lock may have been taken over: find that out before writing (the pending are then dropped).
    if (!(await this.stillLocked())) return;
    const bufs = this.pending;
    this.unwritten = { records: bufs.length, bytes: this.pendingBytes };
    this.pending = [];
    this.pendingBytes = 0;
    try {
      await this.writeAll(bufs);
    } finally {
      this.unwritten = { records: 0, bytes: 0 };
    }
  }

  private async writeAll(bufs: Buffer[]): Promise<void> {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let next = 0;
    try {
      for (; next < bufs.length; next++) {
        const b = bufs[next];
        if (this.writing.bytes + batchBytes > 0 && this.writing.bytes + batchBytes + b.length > this.segmentBytes) {
          await this.writeBatch(batch, batchBytes);
          batch = [];
          batchBytes = 0;
          await this.rotate();
        }
        while (this.totalBytes + batchBytes + b.length > this.options.maxBytes && this.segments.length > 1)
          await this.dropHead();
        batch.push(b);
        batchBytes += b.length;
      }
    } catch (e) {
      // A new segment not made (EMFILE, ENOSPC) or the oldest not removed: what was still to be written is dropped,
      // counted (it was lost unseen: the flush timer ignores the rejection). The next write tries the segment again.
      this.dropped(batch.length + bufs.length - next, 'io', { error: (e as Error).message });
      this.written(batch.length + bufs.length - next, batchBytes + bufs.slice(next).reduce((n, b) => n + b.length, 0));
      batch = [];
    }
    await this.writeBatch(batch, batchBytes);
    for (const w of this.dataWaiters.splice(0)) w();
  }

  /** A batch of the write under way is on disk or dropped: `stats` counts it there, no longer as unwritten. */
  private written(records: number, bytes: number): void {
    this.unwritten = {
      records: Math.max(0, this.unwritten.records - records),
      bytes: Math.max(0, this.unwritten.bytes - bytes),
    };
  }

  private async writeBatch(batch: Buffer[], bytes: number): Promise<void> {
    if (batch.length === 0) return;
    const seg = this.writing;
    try {
      await (this.writer as FileHandle).write(batch.length === 1 ? batch[0] : Buffer.concat(batch, bytes));
    } catch (e) {
      this.written(batch.length, bytes);
      // What reached the file past seg.bytes is never read (reads stop at seg.bytes) and is cut at the next open.
      this.dropped(batch.length, 'io', { error: (e as Error).message });
      await this.rotate().catch(() => undefined);
      return;
    }
    this.written(batch.length, bytes);
    seg.bytes += bytes;
    seg.records += batch.length;
    this.totalBytes += bytes;
    this.totalRecords += batch.length;
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = undefined;
      void this.serial(async () => {
        if (!this.closed) await this.writer?.datasync();
      }).catch((e: unknown) => this.logger.error({ error: (e as Error).message }, 'spool: fdatasync failed'));
    }, this.options.syncIntervalMs ?? 1_000);
    this.syncTimer.unref();
  }

  private async rotate(): Promise<void> {
    const old = this.writer;
    const seg = this.writing;
    this.writer = undefined;
    if (old) {
      // Not retried (after a failed fdatasync the kernel may have marked the pages clean: a second one says success),
      // not thrown (the records are written and read back from the file, and the next segment takes new ones), but
      // logged as the periodic fdatasync's failure is: swallowed, a failing disk went unseen until a power cut.
      await old.datasync().catch((e: unknown) => this.syncFailed(e, seg.path, 'rotation'));
      await old.close();
    }
    await this.startSegment(seg.seq + 1);
  }

  /** An fdatasync of a segment failed (EIO, ENOSPC): its records may not survive a power cut. */
  private syncFailed(e: unknown, segment: string, when: string): void {
    this.logger.error(
      { segment, when, error: (e as Error).message, code: (e as NodeJS.ErrnoException).code },
      'spool: fdatasync failed',
    );
  }

  /** Spool full: the oldest segment goes, and what it held unconfirmed is counted. */
  private async dropHead(): Promise<void> {
    const head = this.segments[0];
    const lost = head.records - (this.ack.seq === head.seq ? this.ack.index : 0);
    await this.deleteHead();
    if (lost > 0) this.dropped(lost, 'full', { segment: head.path });
  }

  /** Removes the head segment (never the one being written) and moves the cursor to the next one. */
  private async deleteHead(): Promise<void> {
    const head = this.segments[0];
    if (this.reader?.seq === head.seq) {
      const reader = this.reader;
      this.reader = undefined;
      await reader.fh.close().catch(() => undefined);
    }
    // Forgotten only once removed: a failed rm (the drain retries it) left the counts and the cursor on a segment
    // no longer listed — the spool read fuller than it was and dropped its oldest early.
    await rm(head.path, { force: true });
    this.segments.shift();
    this.totalBytes -= head.bytes;
    this.totalRecords -= head.records;
    this.ack = { seq: this.segments[0].seq, off: 0, index: 0 };
    this.scheduleCursor();
  }

  private async readFromAck(maxRecords: number, maxBytes: number): Promise<SpooledEntry[]> {
    const out: SpooledEntry[] = [];
    let bytes = 0;
    let pos = { ...this.ack };
    let i = 0;
    while (out.length < maxRecords && bytes < maxBytes && i < this.segments.length) {
      const seg = this.segments[i];
      if (pos.seq !== seg.seq) pos = { seq: seg.seq, off: 0, index: 0 };
      if (pos.off >= seg.bytes) {
        i++;
        continue;
      }
      const fh = await this.readerFor(seg);
      const length = Math.min(seg.bytes - pos.off, READ_CHUNK);
      let buf = Buffer.allocUnsafe(length);
      await fh.read(buf, 0, length, pos.off);
      let off = 0;
      let index = pos.index;
      let skipped = false;
      for (;;) {
        let d = decodeRecord(buf, off);
        if (d.kind === 'incomplete' && off === 0 && buf.length >= HEADER_BYTES) {
          // One record larger than the chunk: read exactly it.
          const need = HEADER_BYTES + buf.readUInt32LE(0);
          if (need <= seg.bytes - pos.off && need <= HEADER_BYTES + MAX_RECORD_BYTES) {
            buf = Buffer.allocUnsafe(need);
            await fh.read(buf, 0, need, pos.off);
            d = decodeRecord(buf, 0);
          }
        }
        if (d.kind === 'incomplete') {
          // Every byte up to seg.bytes belongs to a whole record (written so): one that does not fit in them — its
          // length read back wrong — is corruption, counted below; skipped as "incomplete", the rest of the segment
          // went uncounted once a later segment was confirmed.
          const at = pos.off + off;
          const left = seg.bytes - at;
          const header = buf.length - off >= HEADER_BYTES;
          if (left > 0 && (header ? HEADER_BYTES + buf.readUInt32LE(off) > left : pos.off + buf.length >= seg.bytes))
            d = { kind: 'corrupt', reason: 'record runs past the end of its segment' };
        }
        if (d.kind === 'record') {
          const end = { seq: seg.seq, off: pos.off + d.end, index: ++index };
          out.push({ record: d.record, end });
          bytes += d.end - off;
          off = d.end;
          if (out.length >= maxRecords || bytes >= maxBytes) return out;
          continue;
        }
        if (d.kind === 'corrupt') {
          // Our own bytes, read back wrong (disk fault): what remains of this segment is unreadable.
          // Hand out what came before it first; the next read starts here, skips the rest and goes on after it.
          if (out.length > 0) return out;
          while (this.segments[0].seq < seg.seq) await this.deleteHead();
          this.dropped(seg.records - pos.index, 'corrupt', { segment: seg.path, offset: pos.off, why: d.reason });
          this.ack = { seq: seg.seq, off: seg.bytes, index: seg.records };
          if (this.segments.length > 1) await this.deleteHead();
          skipped = true;
        }
        break;
      }
      if (skipped) {
        pos = { ...this.ack };
        i = 0;
        continue;
      }
      pos = { seq: seg.seq, off: pos.off + off, index };
      if (off === 0) i++;
    }
    return out;
  }

  private async readerFor(seg: Segment): Promise<FileHandle> {
    if (this.reader?.seq === seg.seq) return this.reader.fh;
    // Forgotten before it is closed: a close or open that fails leaves no handle of another segment to read from.
    const old = this.reader;
    this.reader = undefined;
    await old?.fh.close().catch(() => undefined);
    this.reader = { seq: seg.seq, fh: await open(seg.path, 'r') };
    return this.reader.fh;
  }

  private scheduleCursor(): void {
    if (this.cursorTimer || this.closed) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = undefined;
      void this.serial(() => this.writeCursor()).catch((e: unknown) =>
        this.logger.error({ error: (e as Error).message }, 'spool: could not write cursor'),
      );
    }, this.options.cursorIntervalMs ?? 1_000);
    this.cursorTimer.unref();
  }

  private async writeCursor(): Promise<void> {
    if (!(await this.stillLocked())) return;
    await writeCursor(this.options.dir, this.ack);
  }

  private dropped(records: number, reason: DropReason, detail: object): void {
    this.droppedTotal += records;
    this.options.onDropped?.(records, reason);
    this.logger.warn({ records, reason, droppedTotal: this.droppedTotal, ...detail }, 'spool: records dropped');
  }
}

/**
 * Makes `dir` (and its missing parents) and fsyncs the parent of each directory made: a new directory's entry survives
 * a power cut only once its parent is synced (the host samples' `host/` made at a first start, and every segment
 * synced into it, could otherwise vanish whole). A failed sync is logged, not thrown, as for a new segment.
 */
async function makeDirDurably(dir: string, logger: SpoolLogger): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const top = resolve(first);
  for (let d = resolve(dir); ; d = dirname(d)) {
    await syncDir(dirname(d)).catch((e: unknown) =>
      logger.error({ dir: d, error: (e as Error).message }, 'spool: directory fsync of a new spool directory failed'),
    );
    if (d === top || dirname(d) === d) return;
  }
}

/**
 * What a collector does when another process took its spool's lock over (Spool onLockLost): it logs who has the
 * directory now and stops, with exit code 1, through the usual graceful shutdown (SIGTERM to itself), so that one
 * process writes the spool and the orchestrator's restart policy decides what runs next.
 */
export function stopOnLostSpoolLock(logger: SpoolLogger, dir: string): (by: LockHolder | undefined) => void {
  let stopping = false;
  return (by) => {
    if (stopping) return;
    stopping = true;
    logger.error(
      { dir, holder: by ? { host: by.host, pid: by.pid } : undefined },
      `the spool at ${dir} is now locked by ${by ? `pid ${by.pid} on ${by.host}` : 'another process'}: stopping`,
    );
    process.exitCode = 1;
    process.kill(process.pid, 'SIGTERM');
  };
}
