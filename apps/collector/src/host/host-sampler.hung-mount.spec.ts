import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostSampler } from './host-sampler';
import { fakeProcRoot } from './host-sampler.spec-helpers';

// A local filesystem whose statfs never answers (a wedged disk, a FUSE daemon that stopped, a network filesystem
// under a type the sampler does not know as remote): the sample goes on without that mount, and the mount is not
// asked again until it answers. Before, a sample waited for every statfs — the first hung one stopped host
// sampling for good (each tick waits for its sample).

const mockHung = new Set<string>();
/** Paths whose stat/statfs answer only after this many ms (a slow FUSE or cloud-backed mount). */
const mockSlow = new Map<string, number>();
const mockAsked: string[] = [];
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  const never = () => new Promise<never>(() => undefined);
  return {
    ...actual,
    stat: (path: string, ...rest: unknown[]) => {
      mockAsked.push(String(path));
      return mockHung.has(String(path)) ? never() : (actual.stat as (...a: unknown[]) => unknown)(path, ...rest);
    },
    statfs: (path: string, ...rest: unknown[]) => {
      mockAsked.push(String(path));
      if (mockHung.has(String(path))) return never();
      const answer = () => (actual.statfs as (...a: unknown[]) => unknown)(path, ...rest);
      const delay = mockSlow.get(String(path));
      return delay === undefined ? answer() : new Promise((r) => setTimeout(r, delay)).then(answer);
    },
  };
});

let root: string;
beforeAll(async () => {
  root = await fakeProcRoot('fw-proc-hung-');
  await writeFile(
    join(root, 'self/mounts'),
    `/dev/fake ${tmpdir()} ext4 rw 0 0\nwedged /mnt/wedged fuse.other rw 0 0\n`,
  );
  mockHung.add('/mnt/wedged');
});
afterAll(() => rm(root, { recursive: true, force: true }));

it('a mount whose statfs hangs is left out of the sample, which still comes in time; it is not asked again', async () => {
  const s = new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 1, procRoot: root, linux: true });
  for (let i = 0; i < 2; i++) {
    const started = Date.now();
    const sample = await Promise.race([
      s.sample(),
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3_000).unref()),
    ]);
    expect(sample).not.toBe('hung');
    expect(Date.now() - started).toBeLessThan(1_000);
    if (sample === 'hung') return;
    expect(sample.disks.map((d) => d.mount)).toEqual([tmpdir()]);
  }
  // Asked once (its stat, which hangs first), never again while that is pending.
  expect(mockAsked.filter((p) => p === '/mnt/wedged')).toHaveLength(1);
});

it('a mount that answers after the wait is in the next sample with that answer, not left out for good', async () => {
  // Its statfs takes 800 ms, the sample waits 500 ms (half the 1-s interval): each answer comes late. Dropped, the
  // mount was asked again at the next tick, late again, and never reported.
  const slowRoot = await fakeProcRoot('fw-proc-slow-');
  try {
    const slowMount = await mkdtemp(join(tmpdir(), 'fw-slow-mount-'));
    await writeFile(join(slowRoot, 'self/mounts'), `slow ${slowMount} fuse.other rw 0 0\n`);
    mockSlow.set(slowMount, 800);
    const s = new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 1, procRoot: slowRoot, linux: true });
    const seen: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      seen.push((await s.sample()).disks.map((d) => d.mount));
      expect(Date.now() - started).toBeLessThan(1_000);
      await new Promise((r) => setTimeout(r, 1_000 - (Date.now() - started)));
    }
    expect(seen[0]).toEqual([]);
    expect(seen[1]).toEqual([slowMount]);
    expect(seen[2]).toEqual([slowMount]);
    await rm(slowMount, { recursive: true, force: true });
  } finally {
    await rm(slowRoot, { recursive: true, force: true });
  }
});
