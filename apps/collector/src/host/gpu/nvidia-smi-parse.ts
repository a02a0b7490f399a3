import { toStorable, truncateText, type HostMetricsPayload } from '@fleetwatch/contracts';

// Parsers for what nvidia-smi prints: the periodic CSV query (cheap, one line per GPU),
// the compute-apps query (process count per GPU) and the `-q -x` inventory read once at
// start (as xml2js reads it). Pure, so captured outputs (__fixtures__) test them.

export type GpuSample = HostMetricsPayload['gpus'][number];

/** The fields of the periodic query, in the order the parser reads them. */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'utilization.gpu',
  'memory.used',
  'memory.total',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'fan.speed',
  'clocks.sm',
  'clocks.mem',
] as const;

export const GPU_QUERY_ARGS = [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'];
export const COMPUTE_APPS_ARGS = ['--query-compute-apps=gpu_uuid,pid', '--format=csv,noheader,nounits'];
/** The whole device report as XML: driver and CUDA versions, each GPU's identity. */
export const INVENTORY_ARGS = ['-q', '-x'];

const MIB = 1024 * 1024;

/** A value nvidia-smi could not read: the device does not have it (null, fine) or failed reading it (an error). */
type Cell = { value: number | null; error?: string };

/** `[N/A]`, `[Not Supported]`: the device has no such sensor. Bracketed others and `ERR!`: it failed. */
function cell(raw: string): Cell {
  const s = raw.trim();
  if (s === '' || s === '[N/A]' || s === 'N/A' || s === '[Not Supported]') return { value: null };
  if (s === 'ERR!') return { value: null, error: 'ERR!' };
  const bracketed = /^\[(.*)\]$/.exec(s);
  if (bracketed) return { value: null, error: bracketed[1] };
  const n = Number(s);
  if (!Number.isFinite(n)) return { value: null, error: `unreadable "${s.slice(0, 40)}"` };
  return { value: n };
}

const pct = (n: number | null): number | null => (n === null ? null : Math.min(100, Math.max(0, n)));
const nonNeg = (n: number | null): number | null => (n === null || n < 0 ? null : n);
/** MiB → bytes; a figure too large to be one (a garbled line) is unknown rather than Infinity. */
const mib = (n: number | null): number | null => {
  if (n === null) return null;
  const b = Math.max(0, n) * MIB;
  return Number.isFinite(b) ? b : null;
};

/** Text from a process's output as the contract can store it: no NUL, no lone surrogate, at most `max` long. */
export const storable = (s: string, max: number): string => truncateText(toStorable(s), max);

export interface GpuQueryResult {
  gpus: GpuSample[];
  /** Lines that were not a GPU row (e.g. "Unable to determine the device handle for GPU…: Unknown Error"). */
  problems: string[];
}

/**
 * Parses `nvidia-smi --query-gpu=<GPU_QUERY_FIELDS> --format=csv,noheader,nounits`. A device whose
 * figures could not be read keeps its row with those figures null and `error` saying which and why.
 */
export function parseGpuQuery(stdout: string, processCounts?: ReadonlyMap<string, number>): GpuQueryResult {
  const gpus: GpuSample[] = [];
  const problems: string[] = [];
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.trim();
    if (!line) continue;
    const f = line.split(',').map((x) => x.trim());
    const index = Number(f[0]);
    // A safe integer (the contract's): a garbled index (`99999999999999999999`) would fail the sample, and every later
    // one once the sampler remembers the GPU by it.
    if (f.length !== GPU_QUERY_FIELDS.length || !Number.isSafeInteger(index) || index < 0) {
      problems.push(storable(line, 300));
      continue;
    }
    const cells = f.slice(3).map(cell);
    const [util, memUsed, memTotal, temp, power, powerLimit, fan, smClock, memClock] = cells;
    const errors = cells
      .map((c, i) => (c.error ? `${GPU_QUERY_FIELDS[i + 3]}: ${c.error}` : undefined))
      .filter((x): x is string => x !== undefined);
    const uuid = f[1] && !f[1].startsWith('[') ? storable(f[1], 128) : undefined;
    const gpu: GpuSample = {
      index,
      name: (f[2] && !f[2].startsWith('[') ? storable(f[2], 256) : '') || `GPU ${index}`,
      ...(uuid ? { uuid } : {}),
      utilizationPct: pct(util.value),
      memoryUsedBytes: mib(memUsed.value),
      memoryTotalBytes: mib(memTotal.value),
      temperatureC: temp.value,
      powerW: nonNeg(power.value),
      powerLimitW: nonNeg(powerLimit.value),
      fanPct: pct(fan.value),
      smClockMhz: nonNeg(smClock.value),
      memClockMhz: nonNeg(memClock.value),
      processCount: processCounts && uuid ? (processCounts.get(uuid) ?? 0) : null,
    };
    if (errors.length > 0) gpu.error = storable(errors.join('; '), 512);
    gpus.push(gpu);
  }
  return { gpus, problems };
}

/** Parses `nvidia-smi --query-compute-apps=gpu_uuid,pid --format=csv,noheader,nounits`: processes per GPU uuid. */
export function parseComputeApps(stdout: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.trim();
    // "No running processes found" in older drivers; nothing at all in newer ones.
    if (!line || !line.startsWith('GPU-')) continue;
    const uuid = line.split(',')[0].trim();
    counts.set(uuid, (counts.get(uuid) ?? 0) + 1);
  }
  return counts;
}

export interface GpuInventory {
  driverVersion?: string;
  cudaVersion?: string;
  gpus: Array<{ uuid?: string; name?: string; busId?: string; memoryTotal?: string }>;
}

/** A text field of the xml2js tree (`explicitArray: false`): a string, or an object when the element had attributes. */
function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() || undefined;
  if (v && typeof v === 'object' && typeof (v as { _?: unknown })._ === 'string') return text((v as { _: string })._);
  return undefined;
}

/** The `-q -x` document as xml2js reads it with `explicitArray: false` (as node-nvidia-smi handed it over). */
export function parseInventory(doc: unknown): GpuInventory {
  const log = (doc as { nvidia_smi_log?: Record<string, unknown> } | null)?.nvidia_smi_log;
  if (!log || typeof log !== 'object') return { gpus: [] };
  const raw = log.gpu;
  const list = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<Record<string, unknown>>;
  return {
    driverVersion: text(log.driver_version),
    cudaVersion: text(log.cuda_version),
    gpus: list.map((g) => ({
      uuid: text(g.uuid),
      name: text(g.product_name),
      busId: text((g.$ as { id?: unknown } | undefined)?.id) ?? text((g.pci as Record<string, unknown>)?.pci_bus_id),
      memoryTotal: text((g.fb_memory_usage as Record<string, unknown> | undefined)?.total),
    })),
  };
}
