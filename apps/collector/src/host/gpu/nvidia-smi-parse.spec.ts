import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { hostMetricsPayloadSchema } from '@fleetwatch/contracts';
import { parseComputeApps, parseGpuQuery, parseInventory } from './nvidia-smi-parse';

const fixture = (name: string) => readFileSync(join(__dirname, '__fixtures__', name), 'utf8');
const MIB = 1024 * 1024;

/** Each parsed device must fit the bus contract as it is. */
function validates(gpus: unknown[]): void {
  const sample = {
    hostId: 'h',
    location: 'l',
    sampledAt: new Date().toISOString(),
    cpu: { usagePct: 0, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 1, usedBytes: 0 },
    disks: [],
    network: [],
    gpus,
  };
  const r = hostMetricsPayloadSchema.safeParse(sample);
  if (!r.success) throw new Error(JSON.stringify(r.error.issues));
}

describe('parseGpuQuery', () => {
  it('one GPU (H200) as captured on one, idle: the figures of the real output', () => {
    const { gpus, problems } = parseGpuQuery(fixture('query-gpu.h200x1.captured.csv'), parseComputeApps(''));
    expect(problems).toEqual([]);
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-5e1f0c2a-7d3b-4c19-9a60-2c4d8e0f1b20',
        name: 'NVIDIA H200',
        utilizationPct: 0,
        memoryUsedBytes: 0,
        memoryTotalBytes: 143771 * MIB,
        temperatureC: 34,
        powerW: 77.71,
        powerLimitW: 700,
        fanPct: null,
        smClockMhz: 345,
        memClockMhz: 3201,
        processCount: 0,
      },
    ]);
    validates(gpus);
  });

  it('one GPU (H200): every figure, with units converted (MiB → bytes); a fan it does not have is null', () => {
    const { gpus, problems } = parseGpuQuery(fixture('query-gpu.h200x1.csv'), new Map());
    expect(problems).toEqual([]);
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-3f1c9a52-7d2e-4b8a-9e61-0c5d7a2b9f14',
        name: 'NVIDIA H200',
        utilizationPct: 87,
        memoryUsedBytes: 121344 * MIB,
        memoryTotalBytes: 143771 * MIB,
        temperatureC: 64,
        powerW: 612.37,
        powerLimitW: 700,
        fanPct: null,
        smClockMhz: 1980,
        memClockMhz: 3201,
        processCount: 0,
      },
    ]);
    validates(gpus);
  });

  it('eight GPUs (8× H100 SXM) with process counts from the compute-apps query', () => {
    const counts = parseComputeApps(fixture('compute-apps.h100x8.csv'));
    const { gpus, problems } = parseGpuQuery(fixture('query-gpu.h100x8.csv'), counts);
    expect(problems).toEqual([]);
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gpus.map((g) => g.processCount)).toEqual([2, 1, 1, 1, 0, 0, 0, 0]);
    expect(gpus.map((g) => g.utilizationPct)).toEqual([100, 99, 100, 98, 0, 0, 0, 0]);
    expect(gpus.every((g) => g.name === 'NVIDIA H100 80GB HBM3' && g.memoryTotalBytes === 81559 * MIB)).toBe(true);
    expect(gpus.every((g) => g.error === undefined && g.fanPct === null)).toBe(true);
    expect(gpus[4]).toMatchObject({ memoryUsedBytes: 4 * MIB, powerW: 71.86, smClockMhz: 345 });
    validates(gpus);
  });

  it('without the compute-apps query, process counts are unknown (null), not zero', () => {
    const { gpus } = parseGpuQuery(fixture('query-gpu.h100x8.csv'));
    expect(gpus.every((g) => g.processCount === null)).toBe(true);
  });

  it('a GPU in an error state keeps its row: the unreadable figures null, `error` saying which and why', () => {
    const { gpus, problems } = parseGpuQuery(fixture('query-gpu.error-state.csv'), new Map());
    expect(gpus).toHaveLength(3);
    expect(gpus[0].error).toBeUndefined();
    expect(gpus[0]).toMatchObject({ utilizationPct: 0, temperatureC: 31, powerW: 62.18 });

    expect(gpus[1]).toMatchObject({
      index: 1,
      name: 'NVIDIA A100-SXM4-80GB',
      utilizationPct: null,
      memoryUsedBytes: null,
      memoryTotalBytes: null,
      temperatureC: null,
      powerW: null,
      fanPct: null,
    });
    expect(gpus[1].error).toContain('utilization.gpu: Unknown Error');
    expect(gpus[1].error).toContain('temperature.gpu: ERR!');
    // "[N/A]" (no fan on SXM) is not an error.
    expect(gpus[1].error).not.toContain('fan.speed');

    expect(gpus[2]).toMatchObject({ memoryTotalBytes: 81920 * MIB, powerLimitW: 400, utilizationPct: null });
    expect(gpus[2].error).toContain('GPU requires reset');

    // A GPU that fell off the bus has no row, only a line nvidia-smi prints about it.
    expect(problems).toEqual(['Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error']);
    validates(gpus);
  });

  it('an index past the safe integers is no GPU row (the contract refuses it): a problem line', () => {
    const { gpus, problems } = parseGpuQuery(
      '99999999999999999999, GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03, Odd GPU, 1, 2, 3, 4, 5, 6, 7, 8, 9\n',
    );
    expect(gpus).toEqual([]);
    expect(problems).toHaveLength(1);
  });

  it.each([
    ['empty output (no GPUs listed)', ''],
    ['the driver-not-loaded message', fixture('driver-not-loaded.txt')],
  ])('%s gives no devices', (_name, text) => {
    expect(parseGpuQuery(text).gpus).toEqual([]);
  });

  it('values out of range are clamped or dropped rather than refused by the contract', () => {
    const { gpus } = parseGpuQuery('0, GPU-x, Odd GPU, 104, -1, 1024, -5, -3.5, 250.00, 120, 1500, 5001\n');
    expect(gpus[0]).toMatchObject({
      utilizationPct: 100,
      memoryUsedBytes: 0,
      temperatureC: -5,
      powerW: null,
      fanPct: 100,
    });
    validates(gpus);
  });
});

describe('parseComputeApps', () => {
  it.each([
    ['no processes (empty output)', 'compute-apps.empty.csv', 0],
    ['several processes on several GPUs', 'compute-apps.h100x8.csv', 4],
  ])('%s', (_name, file, gpusWithProcesses) => {
    expect(parseComputeApps(fixture(file)).size).toBe(gpusWithProcesses);
  });

  it('the old "No running processes found" line counts nothing', () => {
    expect(parseComputeApps('No running processes found\n').size).toBe(0);
  });
});

describe('parseInventory', () => {
  it('reads driver, CUDA and devices from the xml2js tree; a single <gpu> is not an array there', () => {
    const doc = {
      nvidia_smi_log: {
        driver_version: '570.172.08',
        cuda_version: '12.8',
        attached_gpus: '1',
        gpu: {
          $: { id: '00000000:19:00.0' },
          product_name: 'NVIDIA H200',
          uuid: 'GPU-3f1c9a52-7d2e-4b8a-9e61-0c5d7a2b9f14',
          fb_memory_usage: { total: '143771 MiB' },
        },
      },
    };
    expect(parseInventory(doc)).toEqual({
      driverVersion: '570.172.08',
      cudaVersion: '12.8',
      gpus: [
        {
          uuid: 'GPU-3f1c9a52-7d2e-4b8a-9e61-0c5d7a2b9f14',
          name: 'NVIDIA H200',
          busId: '00000000:19:00.0',
          memoryTotal: '143771 MiB',
        },
      ],
    });
  });

  it.each([[null], [{}], ['<xml/>'], [{ nvidia_smi_log: 'x' }]])('%p is no inventory', (doc) => {
    expect(parseInventory(doc)).toEqual({ gpus: [] });
  });
});

describe('whatever nvidia-smi prints, the parsed devices fit the contract (they are stored as they are)', () => {
  const value = fc.oneof(
    fc.constantFrom('[N/A]', '[Not Supported]', '[Unknown Error]', 'ERR!', '[GPU is lost]', '', 'nan', 'inf', '1e309'),
    fc.double({ noNaN: false }).map(String),
    fc.integer({ min: -1_000_000, max: 10_000_000 }).map(String),
    fc.string({ maxLength: 20 }),
  );
  const row = fc
    .tuple(
      fc.oneof(
        fc.nat(100).map(String),
        fc.string({ maxLength: 4 }),
        // Past the safe integers: the contract refuses them (and the sampler would remember the GPU by it).
        fc.constantFrom('99999999999999999999', '9007199254740993', '1e21'),
      ),
      fc.oneof(
        fc.uuid().map((u) => `GPU-${u}`),
        fc.string({ maxLength: 200 }),
      ),
      fc.string({ maxLength: 300 }),
      fc.array(value, { minLength: 9, maxLength: 9 }),
    )
    .map(([i, uuid, name, vals]) => [i, uuid, name, ...vals].join(', '));

  it('property: parseGpuQuery output always validates, and never throws', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 8 }), fc.string({ maxLength: 200 }), (rows, junk) => {
        const { gpus } = parseGpuQuery([...rows, junk].join('\n'), new Map([['GPU-x', 1]]));
        validates(gpus);
      }),
      { numRuns: 300 },
    );
  });
});
