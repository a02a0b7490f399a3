import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { parseString } from 'xml2js';
import type { HostMetricsPayload } from '@fleetwatch/contracts';
import { writeJsonFile } from '../../fs/json-file-writer';
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
// when that began and the problem line naming its bus id, if any. A GPU that shows again leaves the list.
//
// The memory outlives the process: it is kept in a file in the collector's spool directory (`memoryFile`:
// `<COLLECTOR_SPOOL_DIR>/known-gpus.json`; uuid, index, name, bus id, first seen, `since` while missing), read before
// the inventory and the first sample and written (writeJsonFile: atomic, durable, 0600) only when what it holds changes
// — a GPU found, lost, back or forgotten —, never per sample. A lost GPU is named only in nvidia-smi's "GPU is lost"
// line, or nowhere (after a reboot it may not be enumerated at all): without the file a restart (a rolling upgrade, a
// crash, an OOM kill) forgot it and the critical `gpus_missing` alert resolved while the GPU was still dead. A reboot
// changes nothing: a GPU not enumerated after it is still missing since it first was, one back with its UUID is there
// again. A file that cannot be read or holds garbage is logged and left aside (the inventory and samples start the
// memory afresh), as is one written for another host id (a cloned disk, a changed COLLECTOR_HOST_ID). A GPU is
// forgotten on purpose when it has been missing `forgetMissingAfterMs` (COLLECTOR_GPU_FORGET_AFTER_SECONDS, default 7
// days), when the inventory at start shows another GPU at its bus id (the board replaced), or when the operator deletes
// the file and restarts the collector (a board taken out: forget it now rather than in 7 days).
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
  /** Where the GPUs seen are remembered across restarts (`<spool dir>/known-gpus.json`); none: this process only. */
  memoryFile?: string;
  /** The host id the samples go out under, kept in the file: a file written under another host id is not read. */
  hostId?: string;
  /** A GPU missing this long is forgotten (leaves the list, for good). Default 7 days. */
  forgetMissingAfterMs?: number;
  /** Writes the file (tests count the writes). Default writeJsonFile. */
  writeFile?: (path: string, value: unknown) => Promise<void>;
}

/** How long a GPU may be missing before it is forgotten, by default. */
export const DEFAULT_FORGET_MISSING_AFTER_MS = 7 * 24 * 3600_000;

export type GpuState = 'unknown' | 'present' | 'absent' | 'failing';

/** A GPU seen earlier and not in the last nvidia-smi run (the host.metrics `missingGpus` entry). */
export type MissingGpu = NonNullable<HostMetricsPayload['missingGpus']>[number];

interface KnownGpu {
  index: number;
  name?: string;
  busId?: string;
  /** Epoch ms it was first seen (by this collector, this process or one before it). */
  firstSeen: number;
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
/** The memory file holds 256 GPUs at most (~120 KB): a bigger one is not ours, and is not read into memory. */
const MEMORY_MAX_BYTES = 1024 * 1024;

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
  /** Every GPU seen and not forgotten (this process, or earlier ones through the memory file), by UUID. */
  private readonly known = new Map<string, KnownGpu>();
  /** When the current run of consecutive nvidia-smi runs that said nothing of any GPU began; undefined: none. */
  private silentSince: number | undefined;
  /**
   * Whether this process has seen a GPU itself (inventory or sample). GPUs known from the memory file alone do not make
   * "no nvidia-smi" or "no driver" at start a failure: a collector started without the GPUs mounted (no nvidia-smi in
   * its container) is no proof that they are gone, and all of them would be listed missing for 7 days.
   */
  private sawGpu = false;
  /** Whether an inventory was read (it alone gives the bus ids a board replaced is found by); when to try again. */
  private inventoryRead = false;
  private nextInventoryAt = 0;
  private readonly forgetMissingAfterMs: number;
  /** The memory file read (once, before anything else). */
  private loaded: Promise<void> | undefined;
  /** The file's content as last read or written: it is written again only when that changes. */
  private saved: string | undefined;
  /** Saves one after another. */
  private saving: Promise<void> = Promise.resolve();
  private saveFailing = false;

  constructor(private readonly options: GpuSamplerOptions = {}) {
    this.command = options.command ?? 'nvidia-smi';
    this.reprobeMs = options.reprobeMs ?? 10 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.forgetMissingAfterMs = options.forgetMissingAfterMs ?? DEFAULT_FORGET_MISSING_AFTER_MS;
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
    await this.load();
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
      this.inventoryRead = true;
      await this.save();
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
    await this.load();
    if ((this.state === 'absent' || this.state === 'failing') && now < this.nextProbeAt) return [];
    const query = await this.run(GPU_QUERY_ARGS);
    if (query.code === 'STOPPED') return [];
    // "No driver" on a host that had GPUs is a failure (a driver reload, a GPU reset), below: not "no GPU here".
    if (query.code !== 0 && ABSENT_CODES.has(query.code ?? '') && !this.sawGpu) {
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
    // A GPU not known while GPUs are remembered and no inventory was read (`-q -x` failed at start): it may be a board
    // put in at a remembered one's bus id, which only the inventory tells (the rows carry no bus id) — else the old one
    // stayed listed missing for COLLECTOR_GPU_FORGET_AFTER_SECONDS on a healthy host. Read it now (then every reprobeMs).
    const unknown = gpus.some((g) => g.uuid && gpuUuid(g.uuid) && !this.known.has(g.uuid));
    if (unknown && this.known.size > 0 && !this.inventoryRead && now >= this.nextInventoryAt) {
      this.nextInventoryAt = now + this.reprobeMs;
      await this.inventory();
    }
    // stderr too: where nvidia-smi writes "Unable to determine the device handle for GPU …" depends on its version.
    this.seen(gpus, [...problems, ...query.stderr.split('\n')], now);
    await this.save();
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
  private remember(inv: GpuInventory, now = Date.now()): void {
    /** Bus id → the UUID the inventory shows there. */
    const atBus = new Map<string, string>();
    inv.gpus.forEach((g, index) => {
      const uuid = g.uuid ? gpuUuid(storable(g.uuid, 128)) : undefined;
      if (!uuid) return;
      this.sawGpu = true;
      const busId = g.busId ? storable(g.busId, 64) : undefined;
      const bus = busId ? busKey(busId) : undefined;
      if (bus) atBus.set(bus, uuid);
      const held = this.known.get(uuid);
      if (!held && this.known.size >= MAX_KNOWN_GPUS) return;
      this.known.set(uuid, {
        ...held,
        // The inventory's place is the index now (one remembered from before a reboot may have moved).
        index,
        name: held?.name ?? (g.name ? storable(g.name, 256) : undefined),
        busId: busId ?? held?.busId,
        firstSeen: held?.firstSeen ?? now,
      });
    });
    // Another GPU where a remembered one was: that board was replaced, the old one is gone for good.
    for (const [uuid, g] of this.known) {
      const other = g.busId ? atBus.get(busKey(g.busId) ?? '') : undefined;
      if (!other || other === uuid) continue;
      this.known.delete(uuid);
      this.options.logger?.info(
        { index: g.index, uuid, busId: g.busId, replacedBy: other },
        'gpu: another GPU is at the bus id of one remembered: the old one is forgotten',
      );
    }
  }

  /**
   * One nvidia-smi run's answer: the GPUs it showed are remembered (and no longer missing); every other GPU seen
   * before is missing from `now` on (if it was not already), with the problem line naming its bus id when there is one.
   */
  private seen(gpus: readonly GpuSample[], problems: readonly string[], now: number): void {
    const shown = new Set<string>();
    /** Rows whose UUID nvidia-smi could not read (`[Unknown Error]`): the GPU of that index is there. */
    const unnamed = new Set<number>();
    if (gpus.length > 0) this.sawGpu = true;
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
      this.known.set(g.uuid, { index: g.index, name: g.name, busId: held?.busId, firstSeen: held?.firstSeen ?? now });
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
      if (g.missingSince !== undefined && now - g.missingSince >= this.forgetMissingAfterMs) {
        this.known.delete(uuid);
        this.options.logger?.warn(
          { index: g.index, uuid, busId: g.busId, since: new Date(g.missingSince).toISOString() },
          'gpu: a GPU missing longer than COLLECTOR_GPU_FORGET_AFTER_SECONDS is forgotten',
        );
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

  /** Reads the memory file, once (later calls wait for that read). Never throws: a bad file is logged, left aside. */
  private load(): Promise<void> {
    this.loaded ??= this.readMemory();
    return this.loaded;
  }

  private async readMemory(): Promise<void> {
    const file = this.options.memoryFile;
    if (!file) return;
    let text: string;
    try {
      const fh = await open(file, 'r');
      try {
        const { size } = await fh.stat();
        if (size > MEMORY_MAX_BYTES) throw new Error(`${size} bytes, more than ${MEMORY_MAX_BYTES}`);
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.options.logger?.warn(
          { file, error: describe(e) },
          'gpu: remembered GPUs not read; starting afresh from the inventory',
        );
      return;
    }
    let memory: ReturnType<typeof parseMemory>;
    try {
      memory = parseMemory(JSON.parse(text));
    } catch (e) {
      this.options.logger?.warn(
        { file, error: describe(e) },
        'gpu: remembered GPUs not read (not a GPU memory file); starting afresh from the inventory',
      );
      return;
    }
    if (this.options.hostId !== undefined && memory.hostId !== undefined && memory.hostId !== this.options.hostId) {
      this.options.logger?.warn(
        { file, hostId: this.options.hostId, fileHostId: memory.hostId },
        'gpu: remembered GPUs are another host id’s (a cloned disk or a changed COLLECTOR_HOST_ID); starting afresh',
      );
      return;
    }
    for (const [uuid, g] of memory.gpus) if (!this.known.has(uuid)) this.known.set(uuid, g);
    this.saved = text;
    const missing = [...this.known.values()].filter((g) => g.missingSince !== undefined).length;
    this.options.logger?.info({ file, gpus: this.known.size, missing }, 'gpu: remembered GPUs read');
  }

  /** Writes the memory file when what it holds changed since last read or written. Never throws (failures logged). */
  private save(): Promise<void> {
    const file = this.options.memoryFile;
    if (!file) return Promise.resolve();
    this.saving = this.saving.then(async () => {
      try {
        const gpus = [...this.known].map(([uuid, g]) => ({
          uuid,
          index: g.index,
          ...(g.name ? { name: g.name } : {}),
          ...(g.busId ? { busId: g.busId } : {}),
          firstSeen: new Date(g.firstSeen).toISOString(),
          ...(g.missingSince !== undefined ? { since: new Date(g.missingSince).toISOString() } : {}),
        }));
        const hostId = this.options.hostId;
        const value = { version: 1, ...(hostId !== undefined ? { hostId } : {}), gpus };
        const text = JSON.stringify(value);
        if (text === this.saved) return;
        await (this.options.writeFile ?? writeJsonFile)(file, value);
        this.saved = text;
        if (this.saveFailing) this.options.logger?.info({ file }, 'gpu: remembered GPUs written again');
        this.saveFailing = false;
      } catch (e) {
        // Tried again at the next sample; warned about once until it works.
        if (!this.saveFailing)
          this.options.logger?.warn(
            { file, error: describe(e) },
            'gpu: remembered GPUs not written (a restart would forget a missing GPU)',
          );
        this.saveFailing = true;
      }
    });
    return this.saving;
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

/** The memory file's content, checked: throws on anything but a version-1 file whose every entry is sound. */
function parseMemory(v: unknown): { hostId?: string; gpus: Map<string, KnownGpu> } {
  const o = v as { version?: unknown; hostId?: unknown; gpus?: unknown } | null;
  if (!o || typeof o !== 'object' || o.version !== 1 || !Array.isArray(o.gpus))
    throw new Error('expected {"version":1,"gpus":[…]}');
  if (o.hostId !== undefined && typeof o.hostId !== 'string') throw new Error('hostId is not text');
  if (o.gpus.length > MAX_KNOWN_GPUS) throw new Error(`more than ${MAX_KNOWN_GPUS} GPUs`);
  const gpus = new Map<string, KnownGpu>();
  for (const [i, e] of (o.gpus as unknown[]).entries()) {
    const g = e as {
      uuid?: unknown;
      index?: unknown;
      name?: unknown;
      busId?: unknown;
      firstSeen?: unknown;
      since?: unknown;
    };
    const bad = (what: string) => new Error(`gpus[${i}]: ${what}`);
    if (!g || typeof g !== 'object') throw bad('not an object');
    const uuid = typeof g.uuid === 'string' ? gpuUuid(storable(g.uuid, 128)) : undefined;
    if (!uuid || uuid !== g.uuid) throw bad('no GPU uuid');
    if (typeof g.index !== 'number' || !Number.isSafeInteger(g.index) || g.index < 0) throw bad('no index');
    if (g.name !== undefined && typeof g.name !== 'string') throw bad('name is not text');
    if (g.busId !== undefined && typeof g.busId !== 'string') throw bad('busId is not text');
    const firstSeen = time(g.firstSeen);
    if (firstSeen === undefined) throw bad('no firstSeen time');
    const since = g.since === undefined ? undefined : time(g.since);
    if (g.since !== undefined && since === undefined) throw bad('since is not a time');
    gpus.set(uuid, {
      index: g.index,
      ...(g.name ? { name: storable(g.name, 256) } : {}),
      ...(g.busId ? { busId: storable(g.busId, 64) } : {}),
      firstSeen,
      ...(since !== undefined ? { missingSince: since } : {}),
    });
  }
  return { ...(typeof o.hostId === 'string' ? { hostId: o.hostId } : {}), gpus };
}

/** An ISO time the contract can carry (1970–9999) as epoch ms; undefined otherwise. */
function time(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return ms >= 0 && ms < Date.UTC(10_000, 0, 1) ? ms : undefined;
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
