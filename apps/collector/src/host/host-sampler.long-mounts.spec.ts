import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetricsPayloadSchema } from '@fleetwatch/contracts';
import { HostSampler } from './host-sampler';

// Mount paths longer than the contract's 512 characters are cut to 512 in the sample. Two mounts whose paths share
// their first 512 characters then came out under one name: one mount twice in a sample, which every consumer keys
// by (an alert per mount, a rollup series per mount, a /metrics series per mount) — the second figure silently
// replacing, or averaging with, or (for alerts) undoing the first. Each name a sample gives is one mount's (and
// one interface's: names are cut to 128 characters).

describe('HostSampler: mounts whose paths are longer than the contract keeps', () => {
  let root: string;
  let deep: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fw-long-mounts-'));
    await mkdir(join(root, 'proc', 'net'), { recursive: true });
    await mkdir(join(root, 'proc', 'self'));
    // Two real directories (statfs answers for them) whose paths share well over 512 characters.
    deep = join(root, 'd'.repeat(200), 'e'.repeat(200), 'f'.repeat(200));
    await mkdir(join(deep, 'one'), { recursive: true });
    await mkdir(join(deep, 'two'), { recursive: true });
    const proc = join(root, 'proc');
    await writeFile(join(proc, 'stat'), 'cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n');
    await writeFile(join(proc, 'meminfo'), 'MemTotal:  4000 kB\nMemAvailable:  3000 kB\n');
    // Interface names as long (other platforms name interfaces at length; the contract keeps 128 characters).
    const counters = '1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0';
    await writeFile(
      join(proc, 'net/dev'),
      `Inter-|\n face |\n  ${'n'.repeat(130)}a: ${counters}\n  ${'n'.repeat(130)}b: ${counters}\n  eth0: ${counters}\n`,
    );
    await writeFile(join(proc, 'diskstats'), '');
    await writeFile(
      join(proc, 'self/mounts'),
      // Listed out of path order: the one kept is the first by path, whatever order the kernel lists them in.
      `/dev/fake-two ${join(deep, 'two')} ext4 rw 0 0\n/dev/fake-one ${join(deep, 'one')} ext4 rw 0 0\n`,
    );
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('never gives one mount name twice; what it gives fits the contract', async () => {
    expect(join(deep, 'one').length).toBeGreaterThan(512);
    const s = new HostSampler({
      hostId: 'h',
      location: 'l',
      intervalSeconds: 5,
      procRoot: join(root, 'proc'),
      linux: true,
    });
    const sample = hostMetricsPayloadSchema.parse(await s.sample());
    const mounts = sample.disks.map((d) => d.mount);
    expect(mounts.length).toBeGreaterThan(0);
    expect(new Set(mounts).size).toBe(mounts.length);
    expect(mounts.every((m) => m.length <= 512 && join(deep, 'one').startsWith(m))).toBe(true);
    expect(sample.network.map((n) => n.iface)).toEqual(['n'.repeat(128), 'eth0']);
    // The same mount every sample (else its series would switch disks from one sample to the next).
    expect(sample.disks.map((d) => d.device)).toEqual(['/dev/fake-one']);
    const next = hostMetricsPayloadSchema.parse(await s.sample());
    expect(next.disks.map((d) => [d.mount, d.device])).toEqual(sample.disks.map((d) => [d.mount, d.device]));
  });
});
