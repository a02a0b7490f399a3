import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetricsPayloadSchema } from '@fleetwatch/contracts';
import { HostSampler, parseOsRelease, portableDisks } from './host-sampler';

// The sampler on this machine's own /proc (real figures), and on a /proc of our own
// making whose counters the test moves, to check what the second sample reports.

describe('HostSampler on this machine', () => {
  it('samples that fit the contract: real figures; the first has null network and disk rates, the next numbers', async () => {
    const s = new HostSampler({ hostId: 'unit-host', location: 'lab', intervalSeconds: 5 });
    await s.init();
    const first = hostMetricsPayloadSchema.parse(await s.sample());
    expect(first.cpu.cores).toBeGreaterThan(0);
    expect(first.cpu.perCorePct).toHaveLength(first.cpu.cores);
    expect(first.memory.totalBytes).toBeGreaterThan(first.memory.usedBytes);
    expect(first.memory.availableBytes).toBeGreaterThan(0);
    expect(first.disks.length).toBeGreaterThan(0);
    expect(first.disks.every((d) => d.totalBytes >= d.usedBytes)).toBe(true);
    expect(first.uptimeSeconds).toBeGreaterThan(0);
    expect(first.system?.nodeVersion).toBe(process.versions.node);
    expect(first.system?.platform).toBeTruthy();
    expect(first.network.length).toBeGreaterThan(0);
    expect(first.network.every((n) => n.rxBytesPerSec === null && n.txBytesPerSec === null)).toBe(true);
    expect(first.disks.filter((d) => 'readBytesPerSec' in d).every((d) => d.readBytesPerSec === null)).toBe(true);

    await new Promise((r) => setTimeout(r, 300));
    const second = hostMetricsPayloadSchema.parse(await s.sample());
    expect(
      second.network.every((n) => typeof n.rxBytesPerSec === 'number' && typeof n.txBytesPerSec === 'number'),
    ).toBe(true);
    expect(second.cpu.usagePct).toBeGreaterThanOrEqual(0);
  });
});

describe('HostSampler on a /proc the test controls', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fw-proc-'));
    await mkdir(join(root, 'net'));
    await mkdir(join(root, 'self'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  async function write(o: { cpu: [number, number][]; rx: number; tx: number; memAvailKb: number }): Promise<void> {
    const cpuLines = o.cpu.map(([busy, idle], i) => `cpu${i} ${busy} 0 0 ${idle} 0 0 0 0 0 0`);
    await writeFile(join(root, 'stat'), ['cpu  0 0 0 0 0 0 0 0 0 0', ...cpuLines, 'ctxt 1'].join('\n'));
    await writeFile(
      join(root, 'meminfo'),
      `MemTotal:  4000000 kB\nMemFree:  100000 kB\nMemAvailable:  ${o.memAvailKb} kB\nSwapTotal:  1000 kB\nSwapFree:  250 kB\n`,
    );
    await writeFile(
      join(root, 'net/dev'),
      `Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 9 9 0 0 0 0 0 0 9 9 0 0 0 0 0 0\n  eth0: ${o.rx} 1 0 0 0 0 0 0 ${o.tx} 1 0 0 0 0 0 0\n`,
    );
    await writeFile(join(root, 'diskstats'), '');
    // The one real mount: the temporary directory's filesystem, under its real path.
    await writeFile(join(root, 'self/mounts'), `/dev/fake ${tmpdir()} ext4 rw 0 0\nproc /proc proc rw 0 0\n`);
  }

  it('rates from the counters it read: null first, then bytes per second; CPU per core; used memory excludes cache', async () => {
    const s = new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 1, procRoot: root, linux: true });
    await write({
      cpu: [
        [100, 100],
        [0, 200],
      ],
      rx: 1000,
      tx: 5000,
      memAvailKb: 3000000,
    });
    const first = await s.sample();
    expect(first.network).toEqual([
      { iface: 'eth0', rxBytesPerSec: null, txBytesPerSec: null, rxErrorsPerSec: null, txErrorsPerSec: null },
    ]);
    expect(first.cpu).toMatchObject({ cores: 2, perCorePct: [50, 0], usagePct: 25 });
    expect(first.memory).toEqual({
      totalBytes: 4000000 * 1024,
      usedBytes: 1000000 * 1024,
      availableBytes: 3000000 * 1024,
      swapTotalBytes: 1000 * 1024,
      swapUsedBytes: 750 * 1024,
    });
    expect(first.disks).toEqual([expect.objectContaining({ mount: tmpdir(), fsType: 'ext4', device: '/dev/fake' })]);

    await new Promise((r) => setTimeout(r, 200));
    await write({
      cpu: [
        [200, 100],
        [0, 300],
      ],
      rx: 1000,
      tx: 1_000_000_000,
      memAvailKb: 3000000,
    });
    const second = await s.sample();
    expect(second.network[0].rxBytesPerSec).toBe(0);
    expect(second.network[0].txBytesPerSec).toBeGreaterThan(0);
    expect(second.cpu).toMatchObject({ perCorePct: [100, 0], usagePct: 50 });
    hostMetricsPayloadSchema.parse(second);
  });
});

describe('parseOsRelease', () => {
  it('KEY=value lines, quotes removed, comments and junk ignored', () => {
    const m = parseOsRelease(
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n# c\nID=debian\nbad line\n',
    );
    expect(Object.fromEntries(m)).toEqual({
      PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)',
      NAME: 'Debian GNU/Linux',
      VERSION_ID: '12',
      ID: 'debian',
    });
  });
});

describe('HostSampler elsewhere than Linux (os.* and systeminformation)', () => {
  it('gives a sample that fits the contract, rates null first', async () => {
    const s = new HostSampler({ hostId: 'p', location: 'l', intervalSeconds: 5, linux: false });
    await s.init();
    const first = hostMetricsPayloadSchema.parse(await s.sample());
    expect(first.cpu.cores).toBeGreaterThan(0);
    expect(first.network.every((n) => n.rxBytesPerSec === null)).toBe(true);
  });

  it('a disk whose figures did not read (NaN, negative) is left out or held in range', () => {
    const disk = (mount: string, size: number, used: number) => ({ fs: '/dev/x', type: 'apfs', size, used, mount });
    expect(
      portableDisks([
        disk('/', 100, 40),
        disk('/nan', Number.NaN, 1),
        disk('/unread', 100, Number.NaN),
        disk('/neg', 100, -5),
        disk('/over', 100, 120),
      ]).map((d) => [d.mount, d.totalBytes, d.usedBytes]),
    ).toEqual([
      ['/', 100, 40],
      ['/neg', 100, 0],
      ['/over', 100, 120],
    ]);
  });
});
