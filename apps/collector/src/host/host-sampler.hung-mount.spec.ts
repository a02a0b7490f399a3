import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostSampler } from './host-sampler';

// A local filesystem whose statfs never answers (a wedged disk, a FUSE daemon that stopped, a network filesystem
// under a type the sampler does not know as remote): the sample goes on without that mount, and the mount is not
// asked again until it answers. Before, a sample waited for every statfs — the first hung one stopped host
// sampling for good (each tick waits for its sample).

const mockHung = new Set<string>();
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
      return mockHung.has(String(path)) ? never() : (actual.statfs as (...a: unknown[]) => unknown)(path, ...rest);
    },
  };
});

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fw-proc-hung-'));
  await mkdir(join(root, 'net'));
  await mkdir(join(root, 'self'));
  await writeFile(join(root, 'stat'), 'cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0 0 0\nctxt 1\n');
  await writeFile(join(root, 'meminfo'), 'MemTotal:  4000000 kB\nMemAvailable:  3000000 kB\n');
  await writeFile(join(root, 'net/dev'), 'Inter-|\n face |\n');
  await writeFile(join(root, 'diskstats'), '');
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
