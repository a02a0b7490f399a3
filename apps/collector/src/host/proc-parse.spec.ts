import { devKey, parseDiskstats, parseMeminfo, parseMounts, parseNetDev, parseProcStat } from './proc-parse';

// Inputs are /proc files as Linux 6.x writes them (captured on a VM and a container host, trimmed).

describe('parseProcStat', () => {
  it('reads cpuN lines in core order; iowait counts as idle, softirq and steal as busy', () => {
    const text = [
      'cpu  4705 356 584 3699 23 0 27 5 0 0',
      'cpu1 2000 100 300 1800 10 0 20 5 0 0',
      'cpu0 2705 256 284 1899 13 0 7 0 0 0',
      'intr 114930548 113199788 3 0 5 263 0 4',
      'ctxt 1990473',
      'btime 1062191376',
    ].join('\n');
    expect(parseProcStat(text)).toEqual([
      { user: 2705, nice: 256, sys: 284 + 7 + 0, idle: 1899 + 13, irq: 0 },
      { user: 2000, nice: 100, sys: 300 + 20 + 5, idle: 1800 + 10, irq: 0 },
    ]);
  });

  it('old kernels with four fields still parse; garbage lines are skipped', () => {
    expect(parseProcStat('cpu0 1 2 3 4\ncpu1 x y z w\n')).toEqual([{ user: 1, nice: 2, sys: 3, idle: 4, irq: 0 }]);
  });
});

describe('parseNetDev', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   48798     673    0    0    0     0          0         0    48798     673    0    0    0     0       0          0
  eth0: 393010698   15930    2    0    0     0          0         0  1738514   11369    1    0    0     0       0          0
docker0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
veth1a2b3c@if4: 120 2 0 0 0 0 0 0 3400 7 0 0 0 0 0 0
`;
  it('counters per interface, loopback left out, headers ignored', () => {
    const m = parseNetDev(text);
    expect([...m.keys()]).toEqual(['eth0', 'docker0', 'veth1a2b3c@if4']);
    expect(m.get('eth0')).toEqual({ rxBytes: 393010698, rxErrors: 2, txBytes: 1738514, txErrors: 1 });
  });

  it('a short or unreadable line is skipped', () => {
    expect(parseNetDev('eth1: 1 2 3\neth2: a b c d e f g h i j k l m n o p').size).toBe(0);
  });
});

describe('parseDiskstats', () => {
  it('bytes (512-byte sectors) per device, keyed major:minor', () => {
    const text = [
      '   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0',
      ' 254       0 vda 55014 9574 2435066 14956 28664 71458 3690040 18965 0 12116 36863 9730 28 754904 1553 4728 1388',
      ' 259       1 nvme0n1p1 811 0 61354 128 2 0 2 0 0 160 128 0 0 0 0',
    ].join('\n');
    const m = parseDiskstats(text);
    expect(m.get('254:0')).toEqual({ name: 'vda', readBytes: 2435066 * 512, writeBytes: 3690040 * 512 });
    expect(m.get('259:1')?.name).toBe('nvme0n1p1');
    expect(m.size).toBe(3);
  });
});

describe('parseMounts', () => {
  it('real filesystems once per source, shortest mount first; virtual, overlay and squashfs left out; octal escapes decoded', () => {
    const text = [
      'proc /proc proc rw,relatime 0 0',
      'overlay / overlay rw,relatime,lowerdir=/var/lib/docker/overlay2/l/X 0 0',
      'sysfs /sys sysfs rw,relatime 0 0',
      'tmpfs /dev/shm tmpfs rw,relatime 0 0',
      '/dev/vda /etc/hosts ext4 rw,relatime 0 0',
      '/dev/vda / ext4 rw,relatime 0 0',
      '/dev/nvme0n1p2 /mnt/data\\040disk xfs rw,noatime 0 0',
      '/dev/loop3 /snap/core/1 squashfs ro 0 0',
      'server:/export /mnt/nfs nfs4 rw 0 0',
      'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0',
    ].join('\n');
    expect(parseMounts(text)).toEqual([
      { source: '/dev/vda', mount: '/', fsType: 'ext4' },
      { source: '/dev/nvme0n1p2', mount: '/mnt/data disk', fsType: 'xfs' },
      { source: 'server:/export', mount: '/mnt/nfs', fsType: 'nfs4' },
    ]);
  });

  it('once per filesystem: btrfs subvolumes of one device merge, ZFS datasets and overlay/tmpfs mounts do not', () => {
    const text = [
      // btrfs: one filesystem, two subvolumes. statfs answers for the whole filesystem: one disk, under `/`.
      '/dev/sda2 /home btrfs rw,relatime,subvol=/@home 0 0',
      '/dev/sda2 / btrfs rw,relatime,subvol=/@ 0 0',
      // ZFS: a source per dataset, each its own figures.
      'rpool/ROOT/ubuntu /srv/zfs zfs rw,xattr 0 0',
      'rpool/var/log /var/log zfs rw,xattr 0 0',
      // Every overlay is `overlay`, every tmpfs `tmpfs`: virtual, never merged into one reported disk.
      'overlay /var/lib/docker/overlay2/a/merged overlay rw 0 0',
      'overlay /var/lib/docker/overlay2/b/merged overlay rw 0 0',
      'tmpfs /run tmpfs rw 0 0',
      'tmpfs /var/lib/kubelet/pods/u/volumes/kubernetes.io~projected/t tmpfs rw 0 0',
    ].join('\n');
    expect(parseMounts(text)).toEqual([
      { source: '/dev/sda2', mount: '/', fsType: 'btrfs' },
      { source: 'rpool/ROOT/ubuntu', mount: '/srv/zfs', fsType: 'zfs' },
      { source: 'rpool/var/log', mount: '/var/log', fsType: 'zfs' },
    ]);
  });

  it('a path mounted over is the top mount; two paths as short of one source: the same one in any listing order', () => {
    const lines = [
      'rootfs / rootfs rw 0 0',
      '/dev/vda1 / ext4 rw 0 0',
      '/dev/vdb /var/log ext4 rw 0 0',
      'tmpfs /var/log tmpfs rw 0 0',
      '/dev/vdc /data/b xfs rw 0 0',
      '/dev/vdc /data/a xfs rw 0 0',
    ];
    const expected = [
      { source: '/dev/vda1', mount: '/', fsType: 'ext4' },
      { source: '/dev/vdc', mount: '/data/a', fsType: 'xfs' },
    ];
    expect(parseMounts(lines.join('\n'))).toEqual(expected);
    const swapped = [...lines.slice(0, 4), lines[5], lines[4]];
    expect(parseMounts(swapped.join('\n'))).toEqual(expected);
  });
});

describe('parseMeminfo', () => {
  it('kB lines in bytes, counts as they are', () => {
    const m = parseMeminfo(
      'MemTotal:       24668344 kB\nMemAvailable:   20000000 kB\nHugePages_Total:       0\nSwapTotal:             0 kB\n',
    );
    expect(m.get('MemTotal')).toBe(24668344 * 1024);
    expect(m.get('MemAvailable')).toBe(20000000 * 1024);
    expect(m.get('HugePages_Total')).toBe(0);
    expect(m.get('SwapTotal')).toBe(0);
  });
});

describe('devKey', () => {
  it.each([
    [(254 << 8) | 0, '254:0'],
    [(8 << 8) | 17, '8:17'],
    // Large minors (nvme partitions past 255) use the high bits.
    [(259 << 8) | 3 | (1 << 20), '259:259'],
  ])('%s → %s', (dev, key) => {
    expect(devKey(dev)).toBe(key);
  });
});
