import type { CpuTimes, DiskCounters, NetCounters } from './rates';

// Parsers for the Linux /proc files the sampler reads each tick. Reading them directly
// costs a file read each; systeminformation spawns `df`, `cat` or `lsblk` for the same
// figures, which is most of its per-sample cost.

/**
 * `/proc/stat` `cpuN` lines, in core order. iowait counts as idle (the core was free to run something);
 * softirq and steal count as busy (steal: a hypervisor took the core; softirq: network and block work).
 */
export function parseProcStat(text: string): CpuTimes[] {
  const cores: Array<{ n: number; t: CpuTimes }> = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    if (![user, nice, system, idle].every(Number.isFinite)) continue;
    cores.push({
      n: Number(m[1]),
      t: { user, nice, sys: system + softirq + steal, idle: idle + iowait, irq },
    });
  }
  return cores.sort((a, b) => a.n - b.n).map((c) => c.t);
}

/** `/proc/net/dev`: counters per interface (loopback left out: traffic a host sends itself is no network). */
export function parseNetDev(text: string): Map<string, NetCounters> {
  const out = new Map<string, NetCounters>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    if (!iface || iface === 'lo' || iface.includes('|')) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    // rx: bytes packets errs drop fifo frame compressed multicast | tx: bytes packets errs …
    if (f.length < 16 || !f.every(Number.isFinite)) continue;
    out.set(iface, { rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10] });
  }
  return out;
}

export interface BlockDevice extends DiskCounters {
  name: string;
}

/** `/proc/diskstats`: bytes read and written per block device, keyed `major:minor` (sectors are 512 bytes here, whatever the device's own). */
export function parseDiskstats(text: string): Map<string, BlockDevice> {
  const out = new Map<string, BlockDevice>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [major, minor, name] = f;
    const sectorsRead = Number(f[5]);
    const sectorsWritten = Number(f[9]);
    if (!Number.isFinite(sectorsRead) || !Number.isFinite(sectorsWritten)) continue;
    out.set(`${major}:${minor}`, { name, readBytes: sectorsRead * 512, writeBytes: sectorsWritten * 512 });
  }
  return out;
}

export interface MountEntry {
  source: string;
  mount: string;
  fsType: string;
}

/** Filesystems with no disk behind them: never reported as disks. */
const VIRTUAL_FS = new Set([
  'proc',
  'sysfs',
  'devtmpfs',
  'devpts',
  'tmpfs',
  'ramfs',
  'cgroup',
  'cgroup2',
  'securityfs',
  'debugfs',
  'tracefs',
  'pstore',
  'bpf',
  'mqueue',
  'hugetlbfs',
  'configfs',
  'fusectl',
  'autofs',
  'binfmt_misc',
  'rpc_pipefs',
  'nsfs',
  'efivarfs',
  'selinuxfs',
  'squashfs',
  'fuse.lxcfs',
  'fuse.gvfsd-fuse',
  'fuse.portal',
  'overlay',
  'nfsd',
]);

/** `/proc/self/mounts` escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The mounts worth reporting as disks: real filesystems, once per source (a bind mount of the same
 * device or directory, as containers have for /etc/hosts, is the same disk: the shortest mount path wins, the
 * first in code-unit order between two as short, whatever order the kernel lists them in).
 * Overlay roots are left out: their figures are those of the disk below, reported under its own mount.
 *
 * Once per source is right for btrfs too (`/dev/sda2` at `/` and at `/home`, two subvolumes): its statfs answers
 * for the whole filesystem, so both would give the same figures twice. Sources that do not name one filesystem —
 * `overlay`, `tmpfs`, `shm`, and `none` as most virtual types have it — are left out with their types before; ZFS
 * sources are dataset names, one per dataset (each with its own statfs). A path mounted over (listed again, later) is the later mount's: statfs
 * and stat reach only the top one.
 */
export function parseMounts(text: string): MountEntry[] {
  const byPath = new Map<string, MountEntry | undefined>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    const [source, mountRaw, fsType] = f;
    const mount = unescapeMount(mountRaw);
    if (!mount.startsWith('/')) continue;
    byPath.delete(mount);
    byPath.set(mount, VIRTUAL_FS.has(fsType) ? undefined : { source, mount, fsType });
  }
  const bySource = new Map<string, MountEntry>();
  for (const m of byPath.values()) {
    if (!m) continue;
    const prev = bySource.get(m.source);
    if (!prev || m.mount.length < prev.mount.length || (m.mount.length === prev.mount.length && m.mount < prev.mount))
      bySource.set(m.source, m);
  }
  return [...bySource.values()].sort((a, b) => a.mount.localeCompare(b.mount));
}

/** `/proc/meminfo` figures in bytes (kB lines), by field name. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (m) out.set(m[1], Number(m[2]) * (line.trimEnd().endsWith('kB') ? 1024 : 1));
  }
  return out;
}

/** Linux dev_t (from stat().dev) as `major:minor`, the key /proc/diskstats uses. */
export function devKey(dev: number | bigint): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}
