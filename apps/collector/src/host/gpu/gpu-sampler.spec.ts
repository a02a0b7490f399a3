import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuSampler } from './gpu-sampler';

// The sampler runs a real process each time: an `nvidia-smi` script in a temporary
// directory that prints a captured output (__fixtures__) for the arguments it is given,
// with nvidia-smi's exit code, and counts its runs — so the absent/present/failing states,
// the re-probe timing and node-nvidia-smi's `-q -x` path are exercised end to end.

const FIXTURES = join(__dirname, '__fixtures__');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-gpu-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface FakeSmi {
  command: string;
  runs: string;
  /** Pids of the runs that hung. */
  pids: string;
}

/** The pids of `f`'s hung runs that are still alive. */
async function alive(f: FakeSmi): Promise<number[]> {
  const { readFile } = await import('node:fs/promises');
  const pids = (await readFile(f.pids, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * An nvidia-smi stand-in: `query`, `apps` and `xml` name fixtures, or 'fail:<code>' to exit with that code, or
 * 'hang' to hang as a wedged GPU hangs it: deaf to SIGTERM, its pid appended to `<dir>/pids`.
 */
async function fakeSmi(name: string, outputs: { query: string; apps?: string; xml?: string }): Promise<FakeSmi> {
  const bin = join(dir, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(bin, { recursive: true });
  const runs = join(bin, 'runs.log');
  const pids = join(bin, 'pids');
  const emit = (spec: string | undefined) =>
    spec === undefined
      ? 'exit 0'
      : spec === 'hang'
        ? `trap '' TERM; echo $$ >> ${JSON.stringify(pids)}; exec sleep 60`
        : spec.startsWith('fail:')
          ? `cat ${JSON.stringify(join(FIXTURES, 'driver-not-loaded.txt'))}; exit ${spec.slice(5)}`
          : `cat ${JSON.stringify(join(FIXTURES, spec))}`;
  const script = `#!/bin/sh
echo "$*" >> ${JSON.stringify(runs)}
case "$1" in
  --query-gpu=*) ${emit(outputs.query)} ;;
  --query-compute-apps=*) ${emit(outputs.apps)} ;;
  -q) ${emit(outputs.xml)} ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
`;
  const command = join(bin, 'nvidia-smi');
  await writeFile(command, script);
  await chmod(command, 0o755);
  return { command, runs, pids };
}

async function runCount(f: FakeSmi): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(f.runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

describe('GpuSampler', () => {
  it('nvidia-smi missing (ENOENT): no GPU, no error, and it is not run again until the re-probe time', async () => {
    const warnings: unknown[] = [];
    const s = new GpuSampler({
      command: join(dir, 'nowhere', 'nvidia-smi'),
      reprobeMs: 60_000,
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    });
    expect(await s.sample(1_000)).toEqual([]);
    expect(s.status).toBe('absent');
    // Within the re-probe window nothing is spawned; afterwards it is looked for again (and still absent).
    expect(await s.sample(30_000)).toEqual([]);
    expect(await s.sample(62_000)).toEqual([]);
    expect(s.status).toBe('absent');
    expect(warnings).toEqual([]);
  });

  it('nvidia-smi present but the driver not loaded (exit 9) counts as no GPU too, probed rarely', async () => {
    const f = await fakeSmi('nodriver', { query: 'fail:9' });
    const s = new GpuSampler({ command: f.command, reprobeMs: 60_000 });
    expect(await s.sample(0)).toEqual([]);
    expect(await s.sample(5_000)).toEqual([]);
    expect(await s.sample(10_000)).toEqual([]);
    expect(s.status).toBe('absent');
    expect(await runCount(f)).toBe(1);
    await s.sample(60_001);
    expect(await runCount(f)).toBe(2);
  });

  it('eight GPUs: every device with its process count, each tick', async () => {
    const f = await fakeSmi('h100x8', { query: 'query-gpu.h100x8.csv', apps: 'compute-apps.h100x8.csv' });
    const s = new GpuSampler({ command: f.command });
    const gpus = await s.sample();
    expect(s.status).toBe('present');
    expect(gpus).toHaveLength(8);
    expect(gpus[0]).toMatchObject({ index: 0, processCount: 2, utilizationPct: 100 });
    await s.sample();
    expect(await runCount(f)).toBe(4);
  });

  it('a GPU in an error state: the others still report, the broken one carries its error', async () => {
    const warnings: Array<{ problems?: string[] }> = [];
    const f = await fakeSmi('errstate', { query: 'query-gpu.error-state.csv', apps: 'compute-apps.empty.csv' });
    const s = new GpuSampler({
      command: f.command,
      logger: { warn: (o) => warnings.push(o as never), info: () => undefined },
    });
    const gpus = await s.sample();
    expect(gpus.map((g) => g.error === undefined)).toEqual([true, false, false]);
    expect(warnings[0].problems?.[0]).toContain('Unable to determine the device handle');
  });

  it('an nvidia-smi that prints nothing usable backs off instead of running every tick', async () => {
    const f = await fakeSmi('broken', { query: 'compute-apps.empty.csv' });
    const s = new GpuSampler({ command: f.command, logger: { warn: () => undefined, info: () => undefined } });
    expect(await s.sample(0)).toEqual([]);
    expect(s.status).toBe('failing');
    await s.sample(10_000);
    expect(await runCount(f)).toBe(1);
    await s.sample(31_000);
    expect(await runCount(f)).toBe(2);
  });

  it.each([
    ['one GPU (H200)', 'q-x.h200x1.xml', '570.172.08', 1, 'NVIDIA H200'],
    [
      'one GPU (H200), captured on one (driver 580, nvsmi v13 DTD)',
      'q-x.h200x1.captured.xml',
      '580.159.04',
      1,
      'NVIDIA H200',
    ],
    ['eight GPUs (8× H100)', 'q-x.h100x8.xml', '535.183.01', 8, 'NVIDIA H100 80GB HBM3'],
  ])(
    'inventory from the configured nvidia-smi (`-q -x`), not one from PATH: %s',
    async (_name, xml, driver, count, product) => {
      // The fake is in a directory of its own, not on PATH: COLLECTOR_NVIDIA_SMI=/opt/nvidia/bin/nvidia-smi and the like.
      const f = await fakeSmi(`inv-${xml}`, { query: 'query-gpu.h200x1.csv', xml });
      const inv = await new GpuSampler({ command: f.command }).inventory();
      expect(inv?.driverVersion).toBe(driver);
      expect(inv?.cudaVersion).toMatch(/^1[23]\./);
      expect(inv?.gpus).toHaveLength(count);
      expect(
        inv?.gpus.every((g) => g.uuid?.startsWith('GPU-') && g.name === product && g.busId?.startsWith('00000000:')),
      ).toBe(true);
      const { readFile } = await import('node:fs/promises');
      expect(await readFile(f.runs, 'utf8')).toBe('-q -x\n');
    },
  );

  it('inventory from a configured nvidia-smi that does not exist: undefined, not an error', async () => {
    const warnings: unknown[] = [];
    const inv = await new GpuSampler({
      command: join(dir, 'nowhere', 'nvidia-smi'),
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    }).inventory();
    expect(inv).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('inventory output that is not XML: undefined, with a warning', async () => {
    const warnings: unknown[] = [];
    const f = await fakeSmi('inv-garbage', { query: 'query-gpu.h200x1.csv', xml: 'query-gpu.h200x1.csv' });
    const inv = await new GpuSampler({
      command: f.command,
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    }).inventory();
    expect(inv).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  it.each([
    ['the inventory (`-q -x`)', (s: GpuSampler) => s.inventory()],
    ['a sample (`--query-gpu`)', (s: GpuSampler) => s.sample()],
  ])('%s hanging deaf to SIGTERM (a wedged GPU): given up at the timeout, the process killed', async (name, read) => {
    const f = await fakeSmi(`hang-${name.length}`, { query: 'hang', xml: 'hang' });
    const warnings: unknown[] = [];
    const s = new GpuSampler({
      command: f.command,
      timeoutMs: 300,
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    });
    const started = Date.now();
    const out = await read(s);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(out === undefined || (Array.isArray(out) && out.length === 0)).toBe(true);
    expect(warnings).toHaveLength(1);
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(f.pids, 'utf8')).trim()).not.toBe('');
    for (let i = 0; i < 50 && (await alive(f)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await alive(f)).toEqual([]);
  });

  it('stop(): a run in flight ends at once with its process killed, and nothing runs after it', async () => {
    const f = await fakeSmi('hang-stop', { query: 'hang', xml: 'hang' });
    const s = new GpuSampler({ command: f.command, timeoutMs: 30_000 });
    const sampling = s.sample();
    const inventory = s.inventory();
    const { readFile } = await import('node:fs/promises');
    for (let i = 0; i < 100 && (await readFile(f.pids, 'utf8').catch(() => '')).trim().split('\n').length < 2; i++)
      await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    s.stop();
    await expect(sampling).resolves.toEqual([]);
    await expect(inventory).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(500);
    for (let i = 0; i < 50 && (await alive(f)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await alive(f)).toEqual([]);
    const runs = await runCount(f);
    expect(await s.sample()).toEqual([]);
    expect(await s.inventory()).toBeUndefined();
    expect(await runCount(f)).toBe(runs);
  });
});
