import { execFile } from 'node:child_process';
import { parseString } from 'xml2js';
import {
  COMPUTE_APPS_ARGS,
  GPU_QUERY_ARGS,
  INVENTORY_ARGS,
  parseComputeApps,
  parseGpuQuery,
  parseInventory,
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

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'string' ? e.slice(0, 300) : String(e);
}
