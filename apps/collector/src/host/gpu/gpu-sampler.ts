import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import {
  COMPUTE_APPS_ARGS,
  GPU_QUERY_ARGS,
  parseComputeApps,
  parseGpuQuery,
  parseInventory,
  type GpuInventory,
  type GpuSample,
} from './nvidia-smi-parse';

// GPUs through nvidia-smi: the inventory (`-q -x`, through node-nvidia-smi) once, the
// cheap CSV query every tick. A host without nvidia-smi (ENOENT, a shell's 127) or without
// a loaded driver has no GPU: that is not an error, and the binary is not run every tick
// to find that out again — only every `reprobeMs` (a driver installed later is found).
// A query that fails otherwise (a hung or crashing nvidia-smi) backs off the same way.

export interface GpuSamplerOptions {
  /** The binary (default `nvidia-smi` from PATH). */
  command?: string;
  /** How long to leave a host without GPUs before looking again. Default 10 minutes. */
  reprobeMs?: number;
  /** One nvidia-smi run at most this long (a wedged GPU can hang it). Default 5 s. */
  timeoutMs?: number;
  /** `-q -x` as node-nvidia-smi reads it (tests may read through another PATH). */
  inventoryReader?: () => Promise<unknown>;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export type GpuState = 'unknown' | 'present' | 'absent' | 'failing';

interface RunResult {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/** Exit codes that mean "no usable NVIDIA stack here": 127 command not found (shell), 9 driver not loaded. */
const ABSENT_CODES = new Set<number | string>(['ENOENT', 'EACCES', 127, 9]);

export class GpuSampler {
  private state: GpuState = 'unknown';
  private nextProbeAt = 0;
  private failures = 0;
  private readonly command: string;
  private readonly reprobeMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: GpuSamplerOptions = {}) {
    this.command = options.command ?? 'nvidia-smi';
    this.reprobeMs = options.reprobeMs ?? 10 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  get status(): GpuState {
    return this.state;
  }

  /** Driver and devices, once at start; undefined without GPUs (or when `-q -x` fails: the samples still work). */
  async inventory(): Promise<GpuInventory | undefined> {
    const read = this.options.inventoryReader ?? readInventory;
    // node-nvidia-smi runs `-q -x` without a deadline, and a wedged GPU hangs it: the first host sample (and the
    // shutdown) wait for this, so it is bounded like every other run (the stuck process is left to its fate).
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`nvidia-smi -q -x gave no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      timer.unref();
    });
    try {
      const inv = parseInventory(await Promise.race([read(), deadline]));
      return inv.gpus.length > 0 || inv.driverVersion ? inv : undefined;
    } catch (e) {
      const code = (e as { code?: number | string } | null)?.code;
      if (code === undefined || !ABSENT_CODES.has(code))
        this.options.logger?.warn(
          { error: describe(e) },
          'gpu: nvidia-smi -q -x failed; sampling goes on without the inventory',
        );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The GPUs now: [] on a host without them, or while a failing nvidia-smi is left alone. Never throws.
   * `now` decides when a host found without GPUs is probed again.
   */
  async sample(now = Date.now()): Promise<GpuSample[]> {
    if ((this.state === 'absent' || this.state === 'failing') && now < this.nextProbeAt) return [];
    const query = await this.run(GPU_QUERY_ARGS);
    if (query.code !== 0 && ABSENT_CODES.has(query.code ?? '')) {
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
    const counts = query.stdout.trim() ? await this.processCounts() : undefined;
    const { gpus, problems } = parseGpuQuery(query.stdout, counts);
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

  private async processCounts(): Promise<Map<string, number> | undefined> {
    const r = await this.run(COMPUTE_APPS_ARGS);
    return r.code === 0 ? parseComputeApps(r.stdout) : undefined;
  }

  private run(args: string[]): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile(
        this.command,
        args,
        { timeout: this.timeoutMs, maxBuffer: 1024 * 1024, windowsHide: true, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (!error) return resolve({ code: 0, stdout, stderr });
          const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
          resolve({ code: e.killed ? 'TIMEOUT' : (e.code ?? null), stdout: stdout ?? '', stderr: stderr ?? '' });
        },
      );
    });
  }
}

async function readInventory(): Promise<unknown> {
  // node-nvidia-smi runs `nvidia-smi -q -x` through the shell, which answers 127 when it is not on PATH. Looked up
  // first, so a host without it never loads node-nvidia-smi with xml2js, xmlbuilder and sax (~1 MB of heap).
  if (!(await onPath('nvidia-smi')))
    throw Object.assign(new Error('nvidia-smi: not found on PATH'), { code: 'ENOENT' });
  const nvidiaSmi = require('node-nvidia-smi') as typeof import('node-nvidia-smi');
  return new Promise((resolve, reject) => nvidiaSmi((err, data) => (err ? reject(err) : resolve(data))));
}

/** Whether `command` is an executable file in one of PATH's directories (as a shell would find it). */
export async function onPath(command: string, path = process.env.PATH ?? ''): Promise<boolean> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'string' ? e.slice(0, 300) : String(e);
}
