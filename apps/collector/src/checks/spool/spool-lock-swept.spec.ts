import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireSpoolLock, type LockHolder, type SpoolLock } from './spool-lock';
import { recoverSegments } from './spool-recovery';

/** Runs `run` once, just before the lock's temporary file `path` is touched (between its write and its link). */
const mockBeforeTouch: { path?: string; run?: () => Promise<void> } = {};
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return {
    ...actual,
    utimes: async (p: string, a: number, m: number) => {
      const run = String(p) === mockBeforeTouch.path ? mockBeforeTouch.run : undefined;
      delete mockBeforeTouch.run;
      await run?.();
      return actual.utimes(p, a, m);
    },
  };
});

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'fw-lock-swept-'))));
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('SpoolLock: its temporary file swept by the process that took the lock', () => {
  it('a holder re-creating its deleted LOCK meanwhile judges the lock lost, not still its own', async () => {
    const y: LockHolder = { host: 'y', pid: 1, nonce: '11111111-1111-4111-8111-111111111111', pidns: 'pid:[1]' };
    const x: LockHolder = { host: 'x', pid: 1, nonce: '22222222-2222-4222-8222-222222222222', pidns: 'pid:[2]' };
    let t = Date.now();
    const lockY = await acquireSpoolLock(dir, { self: y, heartbeatMs: 60_000, staleAfterMs: 1_000, now: () => t });
    // y stalls past its stale window; x's take-over removes y's LOCK, so y's next heartbeat finds none and writes it again.
    t += 5_000;
    await rm(join(dir, 'LOCK'));
    mockBeforeTouch.path = join(dir, `LOCK.${y.nonce}.tmp`);
    let lockX: SpoolLock | undefined;
    mockBeforeTouch.run = async () => {
      // Meanwhile x links its LOCK and opens the spool: its recovery sweeps y's LOCK.<nonce>.tmp.
      lockX = await acquireSpoolLock(dir, { self: x, heartbeatMs: 60_000 });
      await recoverSegments(dir, { warn: () => undefined, error: () => undefined } as never);
      expect(await readdir(dir)).toEqual(['LOCK']);
    };
    expect(await lockY.check()).toBe(false);
    expect(await lockY.owns()).toBe(false);
    await lockY.release();
    await lockX?.release();
  });
});
