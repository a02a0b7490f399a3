import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { appendFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Spool, type DropReason, type SpoolOptions } from './spool';
import type { SpoolRecord } from './record-codec';
import { tempDirs } from './spool.spec-helpers';

const freshDir = tempDirs('fw-spool-');

const record = (n: number, pad = 0): SpoolRecord => ({
  id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
  type: 'check.result',
  occurredAt: new Date(1_700_000_000_000 + n).toISOString(),
  payload: { n, pad: 'x'.repeat(pad) },
});
const numberOf = (r: SpoolRecord): number => (r.payload as { n: number }).n;

/** Each open is a new process in this one's pid namespace (a crash and restart): same host and pid, another nonce. */
async function open(dir: string, extra: Partial<SpoolOptions> = {}) {
  const drops: Array<{ records: number; reason: DropReason }> = [];
  const warnings: string[] = [];
  const spool = await Spool.open({
    dir,
    maxBytes: 16 * 1024 * 1024,
    cursorIntervalMs: 0,
    logger: { warn: (_o, m) => warnings.push(m), error: (_o, m) => warnings.push(m) },
    onDropped: (records, reason) => drops.push({ records, reason }),
    ...extra,
    lock: { self: { host: hostname(), pid: process.pid, nonce: randomUUID() }, ...extra.lock },
  });
  return { spool, drops, warnings };
}

/** Reads and confirms everything, in as many batches as it takes; returns the record numbers in order. */
async function drainAll(spool: Spool, batch = 7): Promise<number[]> {
  const out: number[] = [];
  for (;;) {
    const entries = await spool.read(batch);
    if (entries.length === 0) return out;
    out.push(...entries.map((e) => numberOf(e.record)));
    await spool.confirm(entries[entries.length - 1].end);
  }
}

/**
 * Once the cursor write that the last confirm scheduled (cursorIntervalMs 0) is done: its timer fires before one set
 * after it, and the write it queues goes before a flush queued then. (A 20 ms sleep was short of a write that fsyncs
 * the file and its directory: p99 ~20 ms on a virtual disk.)
 */
const cursorWritten = async (spool: Spool) => {
  await new Promise((r) => setTimeout(r, 0));
  await spool.flush();
};

describe('Spool', () => {
  it('hands records back in append order across segments, and forgets them once confirmed', async () => {
    const dir = await freshDir();
    const { spool } = await open(dir, { maxBytes: 1024 * 1024, segmentBytes: 4 * 1024 });
    for (let i = 0; i < 500; i++) spool.append(record(i, 50));
    await spool.flush();
    expect(spool.stats.records).toBe(500);
    expect(spool.stats.segments).toBeGreaterThan(10);
    expect(await drainAll(spool)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(spool.stats.records).toBe(0);
    // Confirmed segments are deleted (the one being written stays).
    expect(spool.stats.segments).toBe(1);
    await spool.close();
    const again = await open(dir);
    expect(await again.spool.read(10)).toEqual([]);
    await again.spool.close();
  });

  it('keeps the envelope identity: a record read twice (not confirmed in between) is the same', async () => {
    const { spool } = await open(await freshDir());
    spool.append(record(1));
    await spool.flush();
    const a = await spool.read(10);
    const b = await spool.read(10);
    expect(b).toEqual(a);
    expect(a[0].record.id).toBe(record(1).id);
    await spool.close();
  });

  it('loses nothing unconfirmed across a crash (no close) and resends nothing confirmed before it', async () => {
    const dir = await freshDir();
    const first = await open(dir, { segmentBytes: 8 * 1024, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 300; i++) first.spool.append(record(i, 40));
    await first.spool.flush();
    let confirmed = 0;
    while (confirmed < 120) {
      const entries = await first.spool.read(40);
      await first.spool.confirm(entries[entries.length - 1].end);
      confirmed += entries.length;
    }
    await cursorWritten(first.spool);
    for (let i = 300; i < 350; i++) first.spool.append(record(i, 40));
    await first.spool.flush();
    // Crash: the process dies here — no close(), no final cursor write, the lock file stays.
    const second = await open(dir, { segmentBytes: 8 * 1024, maxBytes: 1024 * 1024 });
    expect(second.spool.stats.records).toBe(350 - confirmed);
    expect(await drainAll(second.spool)).toEqual(Array.from({ length: 350 - confirmed }, (_, i) => confirmed + i));
    await second.spool.close();
  });

  it('is bounded: when full the oldest records go first and are counted', async () => {
    const dir = await freshDir();
    const maxBytes = 64 * 1024;
    const { spool, drops } = await open(dir, { maxBytes, segmentBytes: 8 * 1024 });
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      spool.append(record(i, 100));
      if (i % 50 === 0) await spool.flush();
    }
    await spool.flush();
    const onDisk = (await readdir(dir)).filter((f) => f.startsWith('seg-'));
    let bytes = 0;
    for (const f of onDisk) bytes += (await stat(join(dir, f))).size;
    expect(bytes).toBeLessThanOrEqual(maxBytes);
    expect(spool.stats.bytes).toBe(bytes);
    const kept = await drainAll(spool);
    const dropped = drops.reduce((s, d) => s + d.records, 0);
    expect(drops.every((d) => d.reason === 'full')).toBe(true);
    expect(spool.stats.dropped).toBe(dropped);
    // What is left is the newest, contiguous and in order; the count says exactly how many went.
    expect(kept.length + dropped).toBe(n);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => n - kept.length + i));
    expect(kept.length).toBeGreaterThan(200);
    await spool.close();
  });

  it('drops only what was not confirmed yet from a full head segment', async () => {
    const { spool, drops } = await open(await freshDir(), { maxBytes: 32 * 1024, segmentBytes: 8 * 1024 });
    for (let i = 0; i < 40; i++) spool.append(record(i, 100));
    await spool.flush();
    const firstTen = await spool.read(10);
    await spool.confirm(firstTen[9].end);
    for (let i = 40; i < 400; i++) {
      spool.append(record(i, 100));
      if (i % 20 === 0) await spool.flush();
    }
    await spool.flush();
    const kept = await drainAll(spool);
    const dropped = drops.reduce((s, d) => s + d.records, 0);
    expect(10 + dropped + kept.length).toBe(400);
    expect(kept[0]).toBe(400 - kept.length);
    await spool.close();
  });

  it('skips a torn last record after a kill and goes on appending in order', async () => {
    const dir = await freshDir();
    const first = await open(dir);
    for (let i = 0; i < 20; i++) first.spool.append(record(i));
    await first.spool.flush();
    await first.spool.close();
    const segment = (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()[0];
    // A record whose header says 500 bytes but only 11 made it to disk.
    const torn = Buffer.alloc(8 + 11);
    torn.writeUInt32LE(500, 0);
    torn.writeUInt32LE(0x12345678, 4);
    await appendFile(join(dir, segment), torn);
    const second = await open(dir);
    expect(second.warnings).toContain('spool: cut an incomplete record after a crash');
    expect(second.spool.stats.records).toBe(20);
    for (let i = 20; i < 30; i++) second.spool.append(record(i));
    await second.spool.flush();
    expect(await drainAll(second.spool)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await second.spool.close();
  });

  it('on open, a record whose checksum does not match loses only itself, counted; the records after it are kept', async () => {
    // Bytes written out of order before a power loss, or a disk fault: the segment used to be cut there, and the whole
    // records after the bad one (up to a segment, ~10,000 results) went with it, counted nowhere.
    const dir = await freshDir();
    const first = await open(dir);
    for (let i = 0; i < 10; i++) first.spool.append(record(i));
    await first.spool.flush();
    await first.spool.close();
    const segment = join(dir, (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()[0]);
    const bytes = await readFile(segment);
    // Flip one byte inside the 8th record's body.
    const recordLength = bytes.length / 10;
    bytes[Math.floor(7.5 * recordLength)] ^= 0xff;
    await writeFile(segment, bytes);
    const second = await open(dir);
    expect(second.drops).toEqual([{ records: 1, reason: 'corrupt' }]);
    expect(second.spool.stats.records).toBe(9);
    expect(await drainAll(second.spool)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9]);
    await second.spool.close();
    // The segment was rewritten without the bad bytes: nothing to cut or count at the next open.
    const third = await open(dir);
    expect(third.drops).toEqual([]);
    await third.spool.close();
  });

  it('on open, a zeroed stretch inside a segment: the records it covered are counted, the ones after it kept', async () => {
    const dir = await freshDir();
    const first = await open(dir);
    for (let i = 0; i < 10; i++) first.spool.append(record(i));
    await first.spool.flush();
    // The 2 first records confirmed: the cursor is in this segment.
    const two = await first.spool.read(2);
    await first.spool.confirm(two[1].end);
    await first.spool.close();
    const segment = join(dir, (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()[0]);
    const bytes = await readFile(segment);
    const recordLength = bytes.length / 10;
    // From the middle of the 4th record to the middle of the 7th: records 3, 4, 5 and 6 are gone.
    bytes.fill(0, Math.floor(3.5 * recordLength), Math.floor(6.5 * recordLength));
    await writeFile(segment, bytes);
    const second = await open(dir);
    expect(second.drops).toEqual([{ records: 4, reason: 'corrupt' }]);
    expect(await drainAll(second.spool)).toEqual([2, 7, 8, 9]);
    await second.spool.close();
  });

  it('on open, bad bytes among records already confirmed are cut out uncounted, and nothing confirmed is resent', async () => {
    const dir = await freshDir();
    const first = await open(dir);
    for (let i = 0; i < 10; i++) first.spool.append(record(i));
    await first.spool.flush();
    const six = await first.spool.read(6);
    await first.spool.confirm(six[5].end);
    await first.spool.close();
    const segment = join(dir, (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()[0]);
    const bytes = await readFile(segment);
    bytes[Math.floor(2.5 * (bytes.length / 10))] ^= 0xff;
    await writeFile(segment, bytes);
    const second = await open(dir);
    expect(second.drops).toEqual([]);
    expect(await drainAll(second.spool)).toEqual([6, 7, 8, 9]);
    await second.spool.close();
  });

  it('bad bytes cut out before the cursor: a crash before the next confirm resends nothing lost and skips nothing', async () => {
    // The cut moves every later record back by the bad bytes. cursor.json held the old offset until the next confirm or
    // close wrote it again: a crash meanwhile (the broker still away, so nothing confirmed) and the next open read the
    // old offset against the rewritten segment, taking as confirmed as many unsent records as the cut bytes covered.
    const dir = await freshDir();
    const first = await open(dir);
    for (let i = 0; i < 10; i++) first.spool.append(record(i));
    await first.spool.flush();
    const six = await first.spool.read(6);
    await first.spool.confirm(six[5].end);
    await first.spool.close();
    const segment = join(dir, (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()[0]);
    const bytes = await readFile(segment);
    bytes[Math.floor(2.5 * (bytes.length / 10))] ^= 0xff;
    await writeFile(segment, bytes);
    const second = await open(dir);
    // What a crash of this process, now, leaves on disk as the cursor (close() writes it again).
    const cursorAtCrash = await readFile(join(dir, 'cursor.json'), 'utf8');
    await second.spool.close();
    await writeFile(join(dir, 'cursor.json'), cursorAtCrash);
    const third = await open(dir);
    expect(third.drops).toEqual([]);
    expect(await drainAll(third.spool)).toEqual([6, 7, 8, 9]);
    await third.spool.close();
  });

  it('a record whose length, read back, runs past its segment is corrupt: the loss is counted, not skipped silently', async () => {
    const dir = await freshDir();
    const { spool, drops } = await open(dir, { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 400; i++) spool.append(record(i, 200));
    await spool.flush();
    const segments = (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort();
    expect(segments.length).toBeGreaterThan(1);
    // A disk fault in a sealed segment: the 3rd record's length now says ~900 KB (under the 1 MiB limit, past the
    // segment's end). Its checksum is never reached.
    const first = join(dir, segments[0]);
    const bytes = await readFile(first);
    const recordBytes = bytes.readUInt32LE(0) + 8;
    const fh = await (await import('node:fs/promises')).open(first, 'r+');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(900 * 1024, 0);
    await fh.write(length, 0, 4, 2 * recordBytes);
    await fh.close();
    const kept = await drainAll(spool, 50);
    const dropped = drops.filter((d) => d.reason === 'corrupt').reduce((n, d) => n + d.records, 0);
    expect(kept.slice(0, 2)).toEqual([0, 1]);
    expect(dropped).toBeGreaterThan(0);
    expect(kept.length + dropped).toBe(400);
    await spool.close();
  });

  it('refuses a directory that a live process holds, takes over one whose owner is gone', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'LOCK'), String(process.ppid));
    await expect(open(dir)).rejects.toThrow(/in use by process .*COLLECTOR_SPOOL_DIR/);
    await writeFile(join(dir, 'LOCK'), '999999999');
    const { spool } = await open(dir);
    await spool.close();
    expect((await readdir(dir)).includes('LOCK')).toBe(false);
  });

  it('waitForData resolves when something is appended', async () => {
    const { spool } = await open(await freshDir());
    let woke = false;
    const waiting = spool.waitForData().then(() => (woke = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(woke).toBe(false);
    spool.append(record(1));
    await waiting;
    expect(woke).toBe(true);
    await spool.close();
  });

  it('counts a record while it is being written: stats never show a queued record as gone', async () => {
    // The write took the queue before the file had the records: stats.records read 0 meanwhile, and a drain waiting for
    // "nothing left" (the collector's, a test's) passed before anything was published.
    const { spool } = await open(await freshDir());
    spool.append(record(1, 64 * 1024));
    const seen = new Set<number>();
    let done = false;
    const writing = spool.flush().finally(() => (done = true));
    while (!done) {
      seen.add(spool.stats.records);
      await new Promise((r) => setImmediate(r));
    }
    await writing;
    expect([...seen]).toEqual([1]);
    expect(spool.stats.records).toBe(1);
    await spool.close();
  });

  it('matches a model queue under any sequence of appends, partial confirms, restarts and crashes', async () => {
    type Op =
      | { kind: 'append'; n: number; pad: number }
      | { kind: 'consume'; n: number; confirm: boolean }
      | { kind: 'restart' }
      | { kind: 'crash' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('append' as const),
          n: fc.integer({ min: 1, max: 40 }),
          pad: fc.integer({ min: 0, max: 400 }),
        }),
      },
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('consume' as const),
          n: fc.integer({ min: 1, max: 30 }),
          confirm: fc.boolean(),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const dir = await freshDir();
        const options = { maxBytes: 1024 * 1024, segmentBytes: 2 * 1024 };
        let { spool } = await open(dir, options);
        // Unconfirmed records in order; a crash may resend at most what was confirmed since the last cursor write.
        let model: number[] = [];
        let next = 0;
        for (const o of ops) {
          if (o.kind === 'append') {
            for (let i = 0; i < o.n; i++) {
              model.push(next);
              spool.append(record(next++, o.pad));
            }
            await spool.flush();
          } else if (o.kind === 'consume') {
            const entries = await spool.read(o.n);
            expect(entries.map((e) => numberOf(e.record))).toEqual(model.slice(0, o.n));
            if (o.confirm && entries.length > 0) {
              await spool.confirm(entries[entries.length - 1].end);
              model = model.slice(entries.length);
            }
          } else if (o.kind === 'restart') {
            await spool.close();
            ({ spool } = await open(dir, options));
          } else {
            await cursorWritten(spool);
            ({ spool } = await open(dir, options));
          }
          expect(spool.stats.records).toBe(model.length);
        }
        expect(await drainAll(spool)).toEqual(model);
        await spool.close();
        await rm(dir, { recursive: true, force: true });
      }),
      { numRuns: 40 },
    );
  });
});

describe('a segment that cannot be removed when it is confirmed', () => {
  it('the confirm fails and changes nothing: counts and position stay right, the next confirm removes it', async () => {
    const dir = await freshDir();
    const { spool } = await open(dir, { segmentBytes: 4096 });
    for (let n = 0; n < 200; n++) spool.append(record(n, 100));
    await spool.flush();
    const before = spool.stats;
    expect(before.segments).toBeGreaterThan(2);
    const entries = await spool.read(1000, 16 * 1024 * 1024);
    expect(entries).toHaveLength(200);
    // Through the first record of the second segment: the first segment goes.
    const firstOfSecond = entries.findIndex((e) => e.end.seq !== entries[0].end.seq);
    const fs = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
    const rm = jest
      .spyOn(fs, 'rm')
      .mockRejectedValueOnce(Object.assign(new Error('EBUSY: simulated'), { code: 'EBUSY' }));
    try {
      await expect(spool.confirm(entries[firstOfSecond].end)).rejects.toThrow(/EBUSY/);
      expect(spool.stats).toEqual(before);
      await spool.confirm(entries[firstOfSecond].end);
      expect(spool.stats).toMatchObject({ segments: before.segments - 1, records: 200 - firstOfSecond - 1 });
      const rest = await spool.read(1000, 16 * 1024 * 1024);
      expect(rest.map((e) => numberOf(e.record))).toEqual(
        entries.slice(firstOfSecond + 1).map((e) => numberOf(e.record)),
      );
    } finally {
      rm.mockRestore();
      await spool.close();
    }
  });
});
