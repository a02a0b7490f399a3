import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Spool } from '../checks/spool/spool';
import type { LockHolder } from '../checks/spool/spool-lock';
import { loadCollectorConfig } from '../config';
import { systemTime } from './stamp-clock';
import { STAMP_FILE, StampFile, StampService } from './stamp.service';

// The stamp file lies in the spool directory, which two collectors (containers on one volume) may take from each
// other: one frozen past the lock's stale window loses it. Real files, real locks; injected identities stand in
// for the containers (pid 1 in each).

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-stamp-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const container = (host: string): LockHolder => ({ host, pid: 1, nonce: randomUUID(), pidns: 'pid:[1]' });
const fast = { heartbeatMs: 100, staleAfterMs: 1_500 };

function stampService(lines: string[]): StampService {
  const config = loadCollectorConfig({
    FLEETWATCH_SITE: 'test-site',
    FLEETWATCH_LOCATION: 'lab',
    COLLECTOR_SPOOL_DIR: dir,
  });
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return new StampService(config, logger, systemTime);
}

describe('stamp file and the spool lock', () => {
  it('a collector whose spool lock was taken over does not overwrite the new holder’s stamp file (shutdown included)', async () => {
    const lost: Array<LockHolder | undefined> = [];
    const a = await Spool.open({
      dir,
      maxBytes: 1024 * 1024,
      lock: { self: container('container-a'), ...fast },
      onLockLost: (by) => lost.push(by),
    });
    const lines: string[] = [];
    const stamps = stampService(lines);
    stamps.writeOnlyWhile(() => a.ownsDir());
    await stamps.onModuleInit();
    stamps.now();
    await stamps.save();
    const file = new StampFile(join(dir, STAMP_FILE));
    expect(await file.load()).toBeDefined();

    // container-b's clock says a's heartbeat is an hour old: it takes the directory and writes its own stamp.
    const b = await Spool.open({
      dir,
      maxBytes: 1024 * 1024,
      lock: { self: container('container-b'), ...fast, now: () => Date.now() + 3_600_000 },
    });
    const bStamp = 1_000;
    await file.save(bStamp);
    for (const t0 = Date.now(); lost.length === 0 && Date.now() - t0 < 10_000;)
      await new Promise((r) => setTimeout(r, fast.heartbeatMs));
    expect(lost.map((h) => h?.host)).toEqual(['container-b']);

    // a goes on stamping until it has stopped, then shuts down: its stamps must not replace b's.
    stamps.now();
    await stamps.save();
    await a.close();
    stamps.now();
    await stamps.onApplicationShutdown();
    expect(await file.load()).toBe(bStamp);
    expect(lines.some((l) => l.includes('locked by another process'))).toBe(true);
    await b.close();
  });

  it('a collector that released its lock cleanly still saves its last stamp at shutdown', async () => {
    const a = await Spool.open({ dir, maxBytes: 1024 * 1024, lock: { self: container('container-a'), ...fast } });
    const stamps = stampService([]);
    stamps.writeOnlyWhile(() => a.ownsDir());
    await stamps.onModuleInit();
    await a.close();
    const last = stamps.now();
    await stamps.onApplicationShutdown();
    expect(JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8'))).toMatchObject({ stamp: last });
  });
});
