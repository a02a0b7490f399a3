import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuSampler, onPath } from './gpu-sampler';

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
}

/** An nvidia-smi stand-in: `query`, `apps` and `xml` name fixtures (or 'fail:<code>' to exit with that code). */
async function fakeSmi(name: string, outputs: { query: string; apps?: string; xml?: string }): Promise<FakeSmi> {
  const bin = join(dir, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(bin, { recursive: true });
  const runs = join(bin, 'runs.log');
  const emit = (spec: string | undefined) =>
    spec === undefined
      ? 'exit 0'
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
  return { command, runs };
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

  /**
   * node-nvidia-smi runs `nvidia-smi -q -x` from PATH through a shell; Jest's sandboxed process.env does not reach
   * child processes, so the library runs in a child Node with the fake first on PATH and hands its result back.
   */
  const nodeNvidiaSmiWithPath = (pathDir: string) => (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const code = `require('node-nvidia-smi')((e, d) => { if (e) { process.stderr.write(String(e.code ?? e)); process.exit(3); } process.stdout.write(JSON.stringify(d)); })`;
      execFile(
        process.execPath,
        ['-e', code],
        { cwd: join(__dirname, '..'), env: { ...process.env, PATH: `${pathDir}:${process.env.PATH}` } },
        (err, stdout, stderr) =>
          err
            ? reject(Object.assign(new Error(stderr), { code: Number(stderr) || stderr }))
            : resolve(JSON.parse(stdout)),
      );
    });

  it.each([
    ['one GPU (H200)', 'q-x.h200x1.xml', '570.172.08', 1, 'NVIDIA H200'],
    ['eight GPUs (8× H100)', 'q-x.h100x8.xml', '535.183.01', 8, 'NVIDIA H100 80GB HBM3'],
  ])('inventory through node-nvidia-smi: %s', async (_name, xml, driver, count, product) => {
    const f = await fakeSmi(`inv-${count}`, { query: 'query-gpu.h200x1.csv', xml });
    const inv = await new GpuSampler({
      command: f.command,
      inventoryReader: nodeNvidiaSmiWithPath(join(f.command, '..')),
    }).inventory();
    expect(inv?.driverVersion).toBe(driver);
    expect(inv?.cudaVersion).toMatch(/^12\./);
    expect(inv?.gpus).toHaveLength(count);
    expect(
      inv?.gpus.every((g) => g.uuid?.startsWith('GPU-') && g.name === product && g.busId?.startsWith('00000000:')),
    ).toBe(true);
  });

  it('an inventory read that hangs (a wedged GPU hangs nvidia-smi -q -x) gives up after the timeout', async () => {
    // HostSampler.init() waits for the inventory before the first host sample, and shutdown waits for init: a read
    // that never ends stopped every host sample for good and hung the collector's shutdown.
    const warnings: unknown[] = [];
    const started = Date.now();
    const inv = await new GpuSampler({
      timeoutMs: 300,
      inventoryReader: () => new Promise(() => undefined),
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    }).inventory();
    expect(inv).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(JSON.stringify(warnings)).toMatch(/300 ms/);
  });

  it('inventory without nvidia-smi on PATH (the shell answers 127): undefined, not an error', async () => {
    const warnings: unknown[] = [];
    const inv = await new GpuSampler({
      inventoryReader: nodeNvidiaSmiWithPath(join(dir, 'empty-path')),
      logger: { warn: (o) => warnings.push(o), info: () => undefined },
    }).inventory();
    expect(inv).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});

describe('onPath (the default inventory reader loads node-nvidia-smi only when nvidia-smi is on PATH)', () => {
  let bin: string;
  let other: string;
  beforeAll(async () => {
    const { mkdir } = await import('node:fs/promises');
    bin = join(dir, 'path-bin');
    other = join(dir, 'path-other');
    await mkdir(bin, { recursive: true });
    await mkdir(other, { recursive: true });
    await writeFile(join(bin, 'nvidia-smi'), '#!/bin/sh\nexit 0\n');
    await chmod(join(bin, 'nvidia-smi'), 0o755);
    await writeFile(join(other, 'nvidia-smi'), 'not executable');
    await chmod(join(other, 'nvidia-smi'), 0o644);
  });

  it.each([
    ['an executable in the only directory', () => bin, true],
    ['an executable in a later directory, empty entries skipped', () => `::${join(dir, 'nowhere')}:${bin}`, true],
    ['a file that is not executable', () => other, false],
    ['a directory without it', () => join(dir, 'nowhere'), false],
    ['an empty PATH', () => '', false],
  ])('%s', async (_name, path, expected) => {
    await expect(onPath('nvidia-smi', path())).resolves.toBe(expected);
  });
});
