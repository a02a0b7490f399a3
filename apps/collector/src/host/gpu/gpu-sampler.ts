import { execFile } from 'node:child_process';
import { parseString } from 'xml2js';
import type { HostMetricsPayload } from '@fleetwatch/contracts';
import {
  COMPUTE_APPS_ARGS,
  GPU_QUERY_ARGS,
  INVENTORY_ARGS,
  parseComputeApps,
  parseGpuQuery,
  parseInventory,
  storable,
  type GpuInventory,
  type GpuSample,
} from './nvidia-smi-parse';

// GPUs through nvidia-smi — the configured one (COLLECTOR_NVIDIA_SMI), for every run: the
// inventory (`-q -x`, parsed with xml2js as node-nvidia-smi did; that library runs
// `nvidia-smi` from PATH, through a shell, without a deadline) once, the cheap CSV query
// every tick. A host without nvidia-smi (ENOENT) or without a loaded driver has no GPU: that
// is not an error, and the binary is not run every tick to find that out again — only every
// `reprobeMs` (a driver installed later is found). A query that fails otherwise (a hung or
// crashing nvidia-smi) backs off the same way.
//
// Every run ends by its deadline: a wedged GPU leaves nvidia-smi deaf to SIGTERM (or stuck in
// the kernel, deaf to everything), so at the deadline it gets SIGKILL and the run is over
// without waiting for the process or its pipes to close — else the sample, every later one and
// the collector's shutdown waited for it. stop() ends the runs in flight the same way at once.
//
// Lost GPUs: a GPU that falls off the bus (Xid 79) is simply left out of nvidia-smi's rows (a line "Unable to
// determine the device handle for GPU 0000:3B:00.0: GPU is lost …" instead, the exit code non-zero), and when every
// GPU is gone there are no rows at all. So the sampler remembers every GPU it has seen, by UUID — from the inventory
// (`-q -x`, read at start) and from each sample — and `missing` lists those the last nvidia-smi run did not show, with
// when that began and the problem line naming its bus id, if any. A GPU that shows again leaves the list. The memory
// lives as long as the sampler (the collector process): a restart forgets a GPU already lost by then unless the
// inventory at start still lists it, and that is also how a GPU removed on purpose is forgotten.
//
// One run that says nothing of any GPU — no rows and no line naming a GPU's bus id: a timeout on a loaded host, the
// driver being reloaded or a GPU reset (NVML briefly failing, exit 9) — is not taken for every GPU lost: it would
// raise `gpus_missing` (an alert rule's `for` defaults to 0 s) on every such hiccup. The GPUs are missing when the
// next run, after the back-off (30 s), still says nothing, since the first silent run. A GPU a line names as lost,
// or one left out of a run that showed others, is missing at once. A row whose UUID nvidia-smi could not read is
// the GPU of that index: it is there. A host that had GPUs and then answers "no driver" (exit 9, no nvidia-smi) is
// failing, looked at again after the short back-off, not a GPU-less host probed every 10 minutes.

export interface GpuSamplerOptions {
  /** The binary (default `nvidia-smi` from PATH). */
  command?: string;
  /** How long to leave a host without GPUs before looking again. Default 10 minutes. */
  reprobeMs?: number;
  /** One nvidia-smi run at most this long (a wedged GPU can hang it). Default 5 s. */
  timeoutMs?: number;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export type GpuState = 'unknown' | 'present' | 'absent' | 'failing';

/** A GPU seen earlier and not in the last nvidia-smi run (the host.metrics `missingGpus` entry). */
export type MissingGpu = NonNullable<HostMetricsPayload['missingGpus']>[number];

interface KnownGpu {
  index: number;
  name?: string;
  busId?: string;
  /** Epoch ms it was first found missing (this time); undefined while it is seen. */
  missingSince?: number;
  problem?: string;
}

/** How many GPUs are remembered at most (the contract lists 64 a sample; room for swapped boards). */
const MAX_KNOWN_GPUS = 256;

interface RunResult {
  /** The exit code, a spawn error's code, 'TIMEOUT' (killed at the deadline) or 'STOPPED' (by stop()). */
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/** Exit codes that mean "no usable NVIDIA stack here": 127 command not found (shell), 9 driver not loaded. */
const ABSENT_CODES = new Set<number | string>(['ENOENT', 'EACCES', 127, 9]);
/** `-q -x` lists every field of every GPU and its processes: ~40 KB for 8 GPUs; room for many more. */
const INVENTORY_MAX_BYTES = 16 * 1024 * 1024;

export class GpuSampler {
  private state: GpuState = 'unknown';
  private nextProbeAt = 0;
  private failures = 0;
  private readonly command: string;
  private readonly reprobeMs: number;
  private readonly timeoutMs: number;
  /** Runs in flight: stop() ends them. */
  private readonly running = new Set<() => void>();
  private stopped = false;
  /** Every GPU seen since the sampler started, by UUID (in the order first seen). */
  private readonly known = new Map<string, KnownGpu>();
  /** When the current run of consecutive nvidia-smi runs that said nothing of any GPU began; undefined: none. */
  private silentSince: number | undefined;

  constructor(private readonly options: GpuSamplerOptions = {}) {
    this.command = options.command ?? 'nvidia-smi';
    this.reprobeMs = options.reprobeMs ?? 10 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  get status(): GpuState {
    return this.state;
  }

  /**
   * The GPUs seen earlier (inventory or sample) that the last nvidia-smi run did not show, in index order; [] when
   * none is missing; undefined while no GPU has ever been seen (a host without GPUs sends no list).
   */
  get missing(): MissingGpu[] | undefined {
    if (this.known.size === 0) return undefined;
    const out: MissingGpu[] = [];
    for (const [uuid, g] of this.known) {
      if (g.missingSince === undefined) continue;
      out.push({
        index: g.index,
        uuid,
        ...(g.name ? { name: g.name } : {}),
        ...(g.busId ? { busId: g.busId } : {}),
        since: new Date(g.missingSince).toISOString(),
        ...(g.problem ? { problem: g.problem } : {}),
      });
    }
    return out.sort((a, b) => a.index - b.index || a.uuid.localeCompare(b.uuid));
  }

  /** Driver and devices, once at start; undefined without GPUs (or when `-q -x` fails: the samples still work). */
  async inventory(): Promise<GpuInventory | undefined> {
    const r = await this.run(INVENTORY_ARGS, INVENTORY_MAX_BYTES);
    if (r.code === 'STOPPED' || (r.code !== 0 && ABSENT_CODES.has(r.code ?? ''))) return undefined;
    try {
      if (r.code !== 0)
        throw new Error(
          r.code === 'TIMEOUT'
            ? `nvidia-smi -q -x gave no answer within ${this.timeoutMs} ms`
            : `exit ${String(r.code)}: ${firstLine(r.stderr || r.stdout)}`,
        );
      const inv = parseInventory(await parseXml(r.stdout));
      this.remember(inv);
      return inv.gpus.length > 0 || inv.driverVersion ? inv : undefined;
    } catch (e) {
      this.options.logger?.warn(
        { command: this.command, error: describe(e) },
        'gpu: nvidia-smi -q -x failed; sampling goes on without the inventory',
      );
      return undefined;
    }
  }

  /** Ends the runs in flight now (their processes killed) and runs nothing more: shutdown. */
  stop(): void {
    this.stopped = true;
    for (const end of [...this.running]) end();
  }

  /**
   * The GPUs now: [] on a host without them, or while a failing nvidia-smi is left alone. Never throws.
   * `now` decides when a host found without GPUs is probed again.
   */
  async sample(now = Date.now()): Promise<GpuSample[]> {
    if ((this.state === 'absent' || this.state === 'failing') && now < this.nextProbeAt) return [];
    const query = await this.run(GPU_QUERY_ARGS);
    if (query.code === 'STOPPED') return [];
    // "No driver" on a host that had GPUs is a failure (a driver reload, a GPU reset), below: not "no GPU here".
    if (query.code !== 0 && ABSENT_CODES.has(query.code ?? '') && this.known.size === 0) {
      if (this.state !== 'absent')
        this.options.logger?.info(
          { command: this.command, why: query.code === 9 ? firstLine(query.stdout || query.stderr) : query.code },
          'gpu: no NVIDIA GPU here (no nvidia-smi or no driver); looking again later',
        );
      this.state = 'absent';
      this.nextProbeAt = now + this.reprobeMs;
      return [];
    }
    // A lost GPU makes nvidia-smi exit non-zero while it still prints the others: keep what it printed.
    const counts = query.stdout.trim() && !ABSENT_CODES.has(query.code ?? '') ? await this.processCounts() : undefined;
    const { gpus, problems } = parseGpuQuery(query.stdout, counts);
    // stderr too: where nvidia-smi writes "Unable to determine the device handle for GPU …" depends on its version.
    this.seen(gpus, [...problems, ...query.stderr.split('\n')], now);
    if (gpus.length === 0) {
      this.failures++;
      this.state = 'failing';
      this.nextProbeAt = now + Math.min(this.reprobeMs, 30_000 * this.failures);
      this.options.logger?.warn(
        { code: query.code, output: firstLine(query.stderr || query.stdout), failures: this.failures },
        'gpu: nvidia-smi gave no readings; trying again later',
      );
      return [];
    }
    if (problems.length > 0) this.options.logger?.warn({ problems }, 'gpu: nvidia-smi reported problems');
    this.failures = 0;
    this.state = 'present';
    return gpus;
  }

  /** The inventory's GPUs, remembered: its order is nvidia-smi's index order (both enumerate by PCI bus id). */
  private remember(inv: GpuInventory): void {
    inv.gpus.forEach((g, index) => {
      const uuid = g.uuid ? gpuUuid(storable(g.uuid, 128)) : undefined;
      if (!uuid) return;
      const held = this.known.get(uuid);
      if (!held && this.known.size >= MAX_KNOWN_GPUS) return;
      this.known.set(uuid, {
        ...held,
        index: held?.index ?? index,
        name: held?.name ?? (g.name ? storable(g.name, 256) : undefined),
        busId: g.busId ? storable(g.busId, 64) : held?.busId,
      });
    });
  }

  /**
   * One nvidia-smi run's answer: the GPUs it showed are remembered (and no longer missing); every other GPU seen
   * before is missing from `now` on (if it was not already), with the problem line naming its bus id when there is one.
   */
  private seen(gpus: readonly GpuSample[], problems: readonly string[], now: number): void {
    const shown = new Set<string>();
    /** Rows whose UUID nvidia-smi could not read (`[Unknown Error]`): the GPU of that index is there. */
    const unnamed = new Set<number>();
    for (const g of gpus) {
      if (!g.uuid || !gpuUuid(g.uuid)) {
        unnamed.add(g.index);
        continue;
      }
      shown.add(g.uuid);
      const held = this.known.get(g.uuid);
      if (!held && this.known.size >= MAX_KNOWN_GPUS) continue;
      if (held?.missingSince !== undefined)
        this.options.logger?.info({ index: g.index, uuid: g.uuid }, 'gpu: a GPU missing earlier is back');
      this.known.set(g.uuid, { index: g.index, name: g.name, busId: held?.busId });
    }
    const byBus = new Map<string, string>();
    for (const line of problems) {
      const bus = busKey(line);
      if (bus && !byBus.has(bus)) byBus.set(bus, storable(line.trim(), 300));
    }
    // A run that showed no GPU and named none: one such run is no proof (see the top of this file).
    const silent = gpus.length === 0;
    const firstSilent = silent && this.silentSince === undefined;
    this.silentSince = silent ? (this.silentSince ?? now) : undefined;
    for (const [uuid, g] of this.known) {
      if (shown.has(uuid)) continue;
      if (unnamed.has(g.index)) {
        if (g.missingSince !== undefined)
          this.options.logger?.info({ index: g.index, uuid }, 'gpu: a GPU missing earlier is back');
        g.missingSince = undefined;
        g.problem = undefined;
        continue;
      }
      const problem = g.busId ? byBus.get(busKey(g.busId) ?? '') : undefined;
      if (problem) g.problem = problem;
      if (g.missingSince !== undefined) continue;
      if (firstSilent && !problem) continue;
      g.missingSince = problem || !silent ? now : (this.silentSince ?? now);
      this.options.logger?.warn(
        { index: g.index, uuid, busId: g.busId, problem: g.problem },
        'gpu: a GPU seen earlier is missing (fallen off the bus?)',
      );
    }
  }

  private async processCounts(): Promise<Map<string, number> | undefined> {
    const r = await this.run(COMPUTE_APPS_ARGS);
    return r.code === 0 ? parseComputeApps(r.stdout) : undefined;
  }

  private run(args: string[], maxBuffer = 1024 * 1024): Promise<RunResult> {
    if (this.stopped) return Promise.resolve({ code: 'STOPPED', stdout: '', stderr: '' });
    return new Promise((resolve) => {
      // Called back only after this function returned: `end` and `timer` are set by then.
      const done = (r: RunResult): void => {
        if (!this.running.delete(end)) return;
        clearTimeout(timer);
        resolve(r);
      };
      const child = execFile(
        this.command,
        args,
        { maxBuffer, windowsHide: true, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (!error) return done({ code: 0, stdout, stderr });
          const e = error as NodeJS.ErrnoException & { code?: number | string };
          done({ code: e.code ?? null, stdout: stdout ?? '', stderr: stderr ?? '' });
        },
      );
      // Over, whether or not the process goes: SIGKILL, and neither it nor its pipes keep this process alive.
      const abandon = (code: 'TIMEOUT' | 'STOPPED'): void => {
        if (!this.running.has(end)) return;
        child.kill('SIGKILL');
        child.unref();
        for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
        done({ code, stdout: '', stderr: '' });
      };
      const end = (): void => abandon('STOPPED');
      this.running.add(end);
      const timer = setTimeout(() => abandon('TIMEOUT'), this.timeoutMs);
    });
  }
}

/** `-q -x` as node-nvidia-smi read it (xml2js, one element is a value, not an array; text trimmed). */
function parseXml(xml: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    parseString(xml, { explicitArray: false, trim: true }, (err, data) => (err ? reject(err) : resolve(data))),
  );
}

/**
 * A PCI bus id as one key whatever its spelling: the inventory's `00000000:3B:00.0`, nvidia-smi's error lines'
 * `0000:3b:00.0` (sometimes glued to "GPU"). Undefined when the text names none.
 */
export function busKey(s: string): string | undefined {
  const m = /([0-9a-f]{4,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])/i.exec(s);
  return m ? `${parseInt(m[1], 16).toString(16)}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase() : undefined;
}

/**
 * A UUID as nvidia-smi prints one (`GPU-1c9b7e45-…`): letters, digits, `-` and `_`. Anything else — `N/A`,
 * `Unknown Error`, nothing left once NUL is taken out — names no GPU: remembered, it would never be seen again (a GPU
 * missing for good), and an empty one would fail the contract in every later sample. Undefined for those.
 */
function gpuUuid(uuid: string): string | undefined {
  return /^[A-Za-z0-9_-]+$/.test(uuid) ? uuid : undefined;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'string' ? e.slice(0, 300) : String(e);
}
