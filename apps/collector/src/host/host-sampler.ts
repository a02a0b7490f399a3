import { readFile, stat, statfs } from 'node:fs/promises';
import { arch, cpus, freemem, hostname, loadavg, platform, release, totalmem, uptime, version } from 'node:os';
import { join } from 'node:path';
import type { HostMetricsPayload } from '@fleetwatch/contracts';
import type { Logger } from 'pino';
import { storable } from './gpu/nvidia-smi-parse';
import type { GpuSampler } from './gpu/gpu-sampler';
import { chooseMounts } from './mount-choice';
import {
  devKey,
  parseDiskstats,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  type BlockDevice,
  type MountEntry,
} from './proc-parse';
import { cpuUsage, diskRates, networkRates, round2, type CpuTimes, type DiskCounters, type NetCounters } from './rates';

// One host sample (SPEC §5). What changes is read each tick from cheap sources — on Linux
// four /proc files, statfs per mount and os.loadavg(); elsewhere os.* and two
// systeminformation calls (loaded only there). What does not change (OS, versions, the GPU inventory) is read
// once by init(), without blocking calls. systeminformation's own per-call functions (fsSize, networkStats,
// currentLoad) spawn processes or keep their own rate state; we keep ours, so the first
// sample's rates are null (unknown), never zero, and every later one is a number.

export type HostSample = HostMetricsPayload;
type Disk = HostSample['disks'][number];
type Net = HostSample['network'][number];

export interface HostSamplerOptions {
  hostId: string;
  location: string;
  intervalSeconds: number;
  gpu?: GpuSampler;
  /** Where /proc is (tests and containers that mount the host's /proc elsewhere). Default `/proc`. */
  procRoot?: string;
  collectorVersion?: string;
  /** Who sends the samples (reporter-identity.ts): the aggregator tells two collectors claiming one host id by it. */
  reporter?: HostSample['reporter'];
  /** Read the Linux files (default: on Linux). */
  linux?: boolean;
  /**
   * A sample's time (`sampledAt`, epoch ms): the collector's stamps (stamps/stamp-clock.ts), never before an earlier
   * sample's though the wall clock steps back. Default: the wall clock.
   */
  now?(): number;
  /** Where "more mounts than a sample reports" is said (once each time the count changes). */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/** Filesystems on another machine: a dead server would hang statfs (and a thread) for minutes. */
const REMOTE_FS = /^(nfs4?|cifs|smb3?|ceph|glusterfs|9p|afs|lustre|fuse\.sshfs|fuse\.s3fs|fuse\.rclone)$/;

const LIMITS = { disks: 256, network: 256, cores: 4096 } as const;
/** How long a sample waits for the mounts' statfs (at most half the interval). */
const STATFS_WAIT_MS = 2_000;

export class HostSampler {
  private readonly procRoot: string;
  private readonly linux: boolean;
  private system: HostSample['system'];
  private prev:
    { at: number; cpu: CpuTimes[]; net: Map<string, NetCounters>; disks: Map<string, DiskCounters> } | undefined;
  /** stat().dev of each mount, found once per (mount, source): the key into /proc/diskstats. */
  private readonly devOf = new Map<string, string | null>();
  /** Mounts whose statfs has not answered yet: not asked again until it does. */
  private readonly statfsPending = new Set<string>();
  /** Answers that came after their sample's wait, for the next sample (each used once). */
  private readonly lateFigures = new Map<string, MountFigures>();
  /** The mounts the last choice kept (mount-choice.ts): at equal depth they keep their place. */
  private keptMounts: ReadonlySet<string> = new Set();
  private leftOut = 0;

  constructor(private readonly options: HostSamplerOptions) {
    this.procRoot = options.procRoot ?? '/proc';
    this.linux = options.linux ?? process.platform === 'linux';
  }

  /**
   * Static facts, once: OS and versions, the GPU driver. Failures leave them out; sampling does not depend on them.
   * Not through systeminformation's osInfo(): it runs `hostname -f` (a DNS lookup) and more with execSync, which
   * would stop the collector's event loop — and its checks — for as long as they take.
   */
  async init(): Promise<void> {
    const [osRelease, inventory] = await Promise.all([
      this.linux ? readFile('/etc/os-release', 'utf8').catch(() => '') : Promise.resolve(''),
      this.options.gpu?.inventory() ?? Promise.resolve(undefined),
    ]);
    const rel = parseOsRelease(osRelease);
    const clip = (s: string | undefined, n: number) => (s ? storable(s, n) : undefined);
    const system: NonNullable<HostSample['system']> = {
      hostname: clip(hostname(), 256),
      platform: clip(platform(), 64),
      distro: clip(rel.get('NAME') ?? (this.linux ? undefined : version()), 128),
      release: clip(rel.get('VERSION_ID') ?? rel.get('VERSION') ?? release(), 128),
      kernel: clip(release(), 128),
      arch: clip(arch(), 32),
      collectorVersion: clip(this.options.collectorVersion, 64),
      nodeVersion: process.versions.node,
      gpuDriverVersion: clip(inventory?.driverVersion, 64),
    };
    this.system = Object.fromEntries(Object.entries(system).filter(([, v]) => v)) as HostSample['system'];
  }

  /**
   * Local mounts the last sample left out because there were more than the contract's 256 (the deepest paths go
   * first: mount-choice.ts). Mounts left out for other reasons (network filesystems, no answer yet) are not counted.
   */
  get mountsLeftOut(): number {
    return this.leftOut;
  }

  /** Reads everything and computes rates against the previous sample. */
  async sample(): Promise<HostSample> {
    const r = this.linux ? await this.readLinux() : await this.readPortable();
    const elapsedMs = this.prev ? r.at - this.prev.at : 0;
    const usage = cpuUsage(this.prev?.cpu, r.cpu);
    const [load1, load5, load15] = loadavg();
    const network: Net[] = networkRates(this.prev?.net, r.net, elapsedMs)
      .slice(0, LIMITS.network)
      .map((n): Net => ({
        iface: storable(n.iface, 128),
        rxBytesPerSec: roundRate(n.rxBytesPerSec),
        txBytesPerSec: roundRate(n.txBytesPerSec),
        rxErrorsPerSec: roundRate(n.rxErrorsPerSec),
        txErrorsPerSec: roundRate(n.txErrorsPerSec),
      }))
      .filter(firstOf((n) => n.iface));
    // r.disks is at most LIMITS.disks already: chooseMounts' choice (see choose()).
    const allDisks: Disk[] = r.disks.map((d) => {
      const out: Disk = {
        mount: storable(d.mount, 512),
        totalBytes: d.totalBytes,
        usedBytes: d.usedBytes,
        fsType: storable(d.fsType, 64),
        device: storable(d.device, 256),
      };
      const io = d.ioKey ? r.io.get(d.ioKey) : undefined;
      if (io) {
        const rates = diskRates(this.prev?.disks.get(d.ioKey as string), io, elapsedMs);
        out.readBytesPerSec = roundRate(rates.readBytesPerSec);
        out.writeBytesPerSec = roundRate(rates.writeBytesPerSec);
      }
      return out;
    });
    // Names cut to the contract's length can meet (two mount paths alike in their first 512 characters): every
    // consumer keys a disk by its mount (alerts, rollups, /metrics), so each name is given once, for the first.
    const disks = allDisks.filter(firstOf((d) => d.mount));
    const gpus = this.options.gpu ? (await this.options.gpu.sample()).slice(0, 64) : [];
    this.prev = { at: r.at, cpu: r.cpu, net: r.net, disks: r.io };
    const sample: HostSample = {
      hostId: this.options.hostId,
      location: this.options.location,
      sampledAt: new Date(this.options.now?.() ?? Date.now()).toISOString(),
      intervalSeconds: this.options.intervalSeconds,
      ...(this.options.reporter ? { reporter: this.options.reporter } : {}),
      cpu: {
        usagePct: usage.totalPct,
        cores: Math.max(1, r.cpu.length),
        load1: round2(Math.max(0, load1)),
        load5: round2(Math.max(0, load5)),
        load15: round2(Math.max(0, load15)),
        perCorePct: usage.perCorePct.slice(0, LIMITS.cores),
      },
      memory: r.memory,
      disks,
      network,
      gpus,
      uptimeSeconds: Math.round(uptime()),
    };
    // GPUs seen earlier and not now (fallen off the bus): sent once a GPU has been seen here, [] while none is missing.
    const missingGpus = this.options.gpu?.missing;
    if (missingGpus) sample.missingGpus = missingGpus.slice(0, 64);
    if (this.system) sample.system = this.system;
    return sample;
  }

  private async readLinux(): Promise<Reading> {
    const p = (f: string) => readFile(join(this.procRoot, f), 'utf8');
    const [statText, meminfoText, netText, diskText, mountsText] = await Promise.all([
      p('stat'),
      p('meminfo'),
      p('net/dev'),
      p('diskstats').catch(() => ''),
      p('self/mounts').catch(() => undefined),
    ]);
    const at = performance.now();
    const mem = parseMeminfo(meminfoText);
    const total = mem.get('MemTotal') ?? totalmem();
    const available =
      mem.get('MemAvailable') ??
      (mem.get('MemFree') ?? 0) + (mem.get('Buffers') ?? 0) + (mem.get('Cached') ?? 0) + (mem.get('SReclaimable') ?? 0);
    const swapTotal = mem.get('SwapTotal');
    const swapFree = mem.get('SwapFree');
    const blocks = parseDiskstats(diskText);
    // An unreadable mount table (EMFILE, …) gives no disks this sample and leaves the last choice as it was: an empty
    // list would forget which mounts hold their places (mount-choice.ts), and the next sample hand them to others.
    const disks = mountsText === undefined ? [] : await this.mountFigures(parseMounts(mountsText), blocks);
    const io = new Map<string, DiskCounters>();
    for (const d of disks) {
      const b = d.ioKey ? blocks.get(d.ioKey) : undefined;
      if (b && d.ioKey) io.set(d.ioKey, { readBytes: b.readBytes, writeBytes: b.writeBytes });
    }
    return {
      at,
      cpu: parseProcStat(statText),
      memory: {
        totalBytes: total,
        // What applications hold: total less what they could still get (page cache is not "used").
        usedBytes: Math.max(0, total - available),
        availableBytes: available,
        ...(swapTotal !== undefined ? { swapTotalBytes: swapTotal } : {}),
        ...(swapTotal !== undefined && swapFree !== undefined
          ? { swapUsedBytes: Math.max(0, swapTotal - swapFree) }
          : {}),
      },
      net: parseNetDev(netText),
      disks,
      io,
    };
  }

  /** Size and use of each mount (statfs), and which block device is behind it (stat().dev → diskstats). */
  private async mountFigures(mounts: MountEntry[], blocks: Map<string, BlockDevice>): Promise<MountFigures[]> {
    // The mounts this sample reports are chosen first, from every local mount: one whose statfs is still pending
    // keeps its place (its late answer, or nothing), rather than handing it to the next mount for one sample.
    const chosen = this.choose(mounts.filter((m) => !REMOTE_FS.test(m.fsType)));
    // A mount that has not answered by then is left out of this sample (and not asked again until it answers):
    // waiting for a statfs that hangs — a wedged disk, a stopped FUSE daemon — would stop host sampling for good.
    // Its answer, when it comes, goes into the next sample: a mount that is only slow (a FUSE or cloud-backed
    // filesystem) is then reported an interval late rather than never.
    let timer: NodeJS.Timeout | undefined;
    let waited = false;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(
        () => {
          waited = true;
          resolve(undefined);
        },
        Math.min(STATFS_WAIT_MS, this.options.intervalSeconds * 500),
      );
      timer.unref();
    });
    const figures = await Promise.all(
      chosen
        .filter((m) => !this.statfsPending.has(m.mount))
        .map(async (m): Promise<MountFigures | undefined> => {
          this.statfsPending.add(m.mount);
          try {
            const key = `${m.mount}\0${m.source}`;
            if (!this.devOf.has(key)) {
              const dev = await stat(m.mount).then(
                (s) => devKey(s.dev),
                () => null,
              );
              this.devOf.set(key, dev);
            }
            const s = await statfs(m.mount);
            const totalBytes = s.blocks * s.bsize;
            if (!(totalBytes > 0)) return undefined;
            const ioKey = this.devOf.get(key) ?? undefined;
            const block = ioKey ? blocks.get(ioKey) : undefined;
            return {
              mount: m.mount,
              fsType: m.fsType,
              device: block?.name ?? m.source,
              totalBytes,
              usedBytes: Math.max(0, (s.blocks - s.bfree) * s.bsize),
              ioKey: block ? ioKey : undefined,
            };
          } catch {
            return undefined;
          } finally {
            this.statfsPending.delete(m.mount);
          }
        })
        .map((figure) => {
          void figure.then((f) => {
            if (waited && f) this.lateFigures.set(f.mount, f);
          });
          return Promise.race([figure, late]);
        }),
    );
    clearTimeout(timer);
    if (this.devOf.size > 4 * LIMITS.disks) this.devOf.clear();
    const byMount = new Map(figures.filter((f): f is MountFigures => f !== undefined).map((f) => [f.mount, f]));
    // Late answers of earlier samples, for chosen mounts this sample has no answer of (a mount no longer chosen
    // is not reported, late answer or not).
    for (const m of chosen) {
      const earlier = this.lateFigures.get(m.mount);
      if (earlier && !byMount.has(m.mount)) byMount.set(m.mount, earlier);
    }
    this.lateFigures.clear();
    return chosen.map((m) => byMount.get(m.mount)).filter((f): f is MountFigures => f !== undefined);
  }

  /** The mounts a sample reports (chooseMounts: shallow paths first, the last choice kept among equals); counts the rest. */
  private choose<T extends { mount: string }>(mounts: readonly T[]): T[] {
    const { kept, leftOut, dropped } = chooseMounts(mounts, LIMITS.disks, this.keptMounts);
    this.keptMounts = new Set(kept.map((m) => m.mount));
    if (leftOut !== this.leftOut) {
      if (leftOut > 0)
        this.options.logger?.warn(
          {
            mounts: kept.length + leftOut,
            reported: kept.length,
            leftOut,
            firstLeftOut: dropped.slice(0, 5).map((m) => m.mount),
          },
          `host: more local mounts than a sample reports (${LIMITS.disks}); the deepest paths are left out`,
        );
      else this.options.logger?.info({ mounts: kept.length }, 'host: every local mount is reported again');
    }
    this.leftOut = leftOut;
    return kept;
  }

  /** Not Linux: os.* for CPU and memory, systeminformation for filesystems and interface counters (no disk IO). */
  private async readPortable(): Promise<Reading> {
    // Loaded here only: on Linux the module (and its memory) is never needed.
    const si = await import('systeminformation');
    const [fs, nets] = await Promise.all([si.fsSize().catch(() => []), si.networkStats('*').catch(() => [])]);
    const at = performance.now();
    const cpu = cpus().map((c) => ({ ...c.times }));
    const net = new Map<string, NetCounters>();
    for (const n of nets)
      if (n.iface && !/^lo\d*$/.test(n.iface))
        net.set(n.iface, { rxBytes: n.rx_bytes, txBytes: n.tx_bytes, rxErrors: n.rx_errors, txErrors: n.tx_errors });
    const total = totalmem();
    return {
      at,
      cpu,
      memory: { totalBytes: total, usedBytes: Math.max(0, total - freemem()), availableBytes: freemem() },
      net,
      disks: this.choose(portableDisks(fs)),
      io: new Map(),
    };
  }
}

interface MountFigures {
  mount: string;
  fsType: string;
  device: string;
  totalBytes: number;
  usedBytes: number;
  ioKey?: string;
}

interface Reading {
  /** performance.now() when the counters were read. */
  at: number;
  cpu: CpuTimes[];
  memory: HostSample['memory'];
  net: Map<string, NetCounters>;
  disks: MountFigures[];
  io: Map<string, DiskCounters>;
}

/** `/etc/os-release`: `KEY=value` lines, values optionally quoted. */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2'));
  }
  return out;
}

/** A filter keeping the first item of each key. */
function firstOf<T>(key: (item: T) => string): (item: T) => boolean {
  const seen = new Set<string>();
  return (item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  };
}

function roundRate(x: number | null): number | null {
  return x === null ? null : round2(x);
}

/**
 * The disks systeminformation's fsSize gave, as the sample's figures. One it could not read (a size or used figure
 * NaN, a size of 0) is left out and a negative used figure is 0: either failed the contract and dropped the whole
 * sample, every interval.
 */
export function portableDisks(
  fs: ReadonlyArray<{ mount: string; type: string; fs: string; size: number; used: number }>,
): Array<Pick<MountFigures, 'mount' | 'fsType' | 'device' | 'totalBytes' | 'usedBytes'>> {
  return fs
    .filter((f) => f.mount && Number.isFinite(f.size) && f.size > 0 && Number.isFinite(f.used))
    .map((f) => ({
      mount: f.mount,
      fsType: f.type,
      device: f.fs,
      totalBytes: f.size,
      usedBytes: Math.max(0, f.used),
    }));
}
