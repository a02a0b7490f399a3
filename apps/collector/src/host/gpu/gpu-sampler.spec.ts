import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { hostMetricsPayloadSchema, storeSafetyIssue } from '@fleetwatch/contracts';
import { HostSampler } from '../host-sampler';
import { busKey, GpuSampler, type GpuSamplerOptions } from './gpu-sampler';
import { parseGpuQuery } from './nvidia-smi-parse';

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
  /** Its directory ('live' outputs are read from there). */
  bin: string;
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
 * An nvidia-smi stand-in: `query`, `apps` and `xml` name fixtures (or absolute paths), or 'fail:<code>' to exit with that code, or
 * 'hang' to hang as a wedged GPU hangs it: deaf to SIGTERM, its pid appended to `<dir>/pids`, or 'live' to print what
 * setLive() put there last, with its exit code (a GPU that falls off the bus between two samples), or to hang when that
 * code is 'hang'.
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
        : spec === 'live'
          ? `if [ "$(cat ${JSON.stringify(join(bin, 'live.rc'))})" = hang ]; then trap '' TERM; echo $$ >> ${JSON.stringify(pids)}; exec sleep 60; fi; cat ${JSON.stringify(join(bin, 'live.out'))}; exit $(cat ${JSON.stringify(join(bin, 'live.rc'))})`
          : spec.startsWith('fail:')
            ? `cat ${JSON.stringify(join(FIXTURES, 'driver-not-loaded.txt'))}; exit ${spec.slice(5)}`
            : `cat ${JSON.stringify(spec.startsWith('/') ? spec : join(FIXTURES, spec))}`;
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
  return { bin, command, runs, pids };
}

/** What a 'live' output prints from now on: a fixture (or nothing) and nvidia-smi's exit code. */
async function setLive(f: FakeSmi, fixture: string | null, code: number | 'hang' = 0): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  await setLiveText(f, fixture ? await readFile(join(FIXTURES, fixture), 'utf8') : '', code);
}

/** What a 'live' output prints from now on: this text, and nvidia-smi's exit code (or 'hang'). */
async function setLiveText(f: FakeSmi, text: string, code: number | 'hang' = 0): Promise<void> {
  await writeFile(join(f.bin, 'live.out'), text);
  await writeFile(join(f.bin, 'live.rc'), String(code));
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

describe('GpuSampler: GPUs seen earlier and missing now (fallen off the bus)', () => {
  const H100 = 'NVIDIA H100 80GB HBM3';
  const LOST = 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03';
  const LOST_LINE = 'Unable to determine the device handle for GPU 0000:5D:00.0: GPU is lost.';
  const T0 = Date.parse('2026-12-07T10:00:00.000Z');
  const quiet = { warn: () => undefined, info: () => undefined };

  /** An 8× H100 host with its inventory read and one full sample taken at T0. */
  async function h100Host(name: string, logger: GpuSamplerOptions['logger'] = quiet) {
    const f = await fakeSmi(name, { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'q-x.h100x8.xml' });
    await setLive(f, 'query-gpu.h100x8.csv');
    const s = new GpuSampler({ command: f.command, reprobeMs: 60_000, logger });
    await s.inventory();
    expect(await s.sample(T0)).toHaveLength(8);
    expect(s.missing).toEqual([]);
    return { f, s };
  }

  it('one GPU lost (Xid 79): the others report, the lost one is listed with its inventory identity and problem line', async () => {
    const warnings: Array<[object, string]> = [];
    const { f, s } = await h100Host('lost-one', { warn: (o, m) => warnings.push([o, m]), info: () => undefined });
    // nvidia-smi prints the seven others and a line for the eighth, exiting non-zero.
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    const gpus = await s.sample(T0 + 5_000);
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(s.status).toBe('present');
    const missing = s.missing ?? [];
    expect(missing).toEqual([
      {
        index: 3,
        uuid: LOST,
        name: H100,
        busId: '00000000:5D:00.0',
        since: new Date(T0 + 5_000).toISOString(),
        problem: expect.stringContaining(LOST_LINE) as string,
      },
    ]);
    expect(hostMetricsPayloadSchema.shape.missingGpus.parse(missing)).toEqual(missing);
    expect(warnings.filter(([, m]) => m.includes('missing'))).toHaveLength(1);
    // Still lost at the next sample: listed since the first, not warned about again.
    await s.sample(T0 + 10_000);
    expect(s.missing).toEqual(missing);
    expect(warnings.filter(([, m]) => m.includes('missing'))).toHaveLength(1);
  });

  it('a GPU coming back leaves the list', async () => {
    const { f, s } = await h100Host('lost-back');
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    await s.sample(T0 + 5_000);
    expect(s.missing?.map((g) => g.index)).toEqual([3]);
    await setLive(f, 'query-gpu.h100x8.csv');
    expect(await s.sample(T0 + 10_000)).toHaveLength(8);
    expect(s.missing).toEqual([]);
    // Lost again later: missing since then, not since the first time.
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    await s.sample(T0 + 15_000);
    expect(s.missing?.map((g) => g.since)).toEqual([new Date(T0 + 15_000).toISOString()]);
  });

  it('every GPU lost (nvidia-smi gives no readings, twice): all eight listed since the first, until they are back', async () => {
    const { f, s } = await h100Host('lost-all');
    await setLive(f, null, 15);
    expect(await s.sample(T0 + 5_000)).toEqual([]);
    expect(s.status).toBe('failing');
    // One silent run is no proof (a timeout, a driver reload): nothing listed yet.
    expect(s.missing).toEqual([]);
    // Within the back-off nvidia-smi is not run: still nothing listed.
    const runs = await runCount(f);
    expect(await s.sample(T0 + 10_000)).toEqual([]);
    expect(await runCount(f)).toBe(runs);
    expect(s.missing).toEqual([]);
    // The run after the back-off says nothing either: every GPU is missing, since the first silent run.
    expect(await s.sample(T0 + 40_000)).toEqual([]);
    const missing = s.missing ?? [];
    expect(missing.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(missing.every((g) => g.since === new Date(T0 + 5_000).toISOString() && g.name === H100)).toBe(true);
    await setLive(f, 'query-gpu.h100x8.csv');
    expect(await s.sample(T0 + 200_000)).toHaveLength(8);
    expect(s.status).toBe('present');
    expect(s.missing).toEqual([]);
  });

  it('every GPU named lost by nvidia-smi (no rows, a "GPU is lost" line each): listed at once', async () => {
    const { f, s } = await h100Host('lost-all-named');
    const { readFile } = await import('node:fs/promises');
    const xml = await readFile(join(FIXTURES, 'q-x.h100x8.xml'), 'utf8');
    const buses = [...xml.matchAll(/<pci_bus_id>0000(.+?)<\/pci_bus_id>/g)].map((m) => m[1]);
    expect(buses).toHaveLength(8);
    await setLiveText(
      f,
      buses.map((b) => `Unable to determine the device handle for GPU ${b}: GPU is lost.`).join('\n') + '\n',
      15,
    );
    expect(await s.sample(T0 + 5_000)).toEqual([]);
    expect(s.missing?.map((g) => [g.index, g.since])).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, new Date(T0 + 5_000).toISOString()]),
    );
  });

  it('the driver gone (exit 9) on a host that had GPUs: failing, looked at again soon; missing when it stays gone', async () => {
    const { f, s } = await h100Host('lost-driver');
    await setLive(f, 'driver-not-loaded.txt', 9);
    expect(await s.sample(T0 + 5_000)).toEqual([]);
    expect(s.status).toBe('failing');
    expect(s.missing).toEqual([]);
    // Not the 10-minute (here 60 s) re-probe of a host without GPUs: the short back-off.
    expect(await s.sample(T0 + 36_000)).toEqual([]);
    expect(s.missing?.map((g) => g.since)).toEqual(Array(8).fill(new Date(T0 + 5_000).toISOString()));
  });

  it('a driver reload or GPU reset (exit 9 once) raises nothing, and the GPUs are read again after the short back-off', async () => {
    const { f, s } = await h100Host('reload-driver');
    await setLive(f, 'driver-not-loaded.txt', 9);
    expect(await s.sample(T0 + 5_000)).toEqual([]);
    expect(s.missing).toEqual([]);
    await setLive(f, 'query-gpu.h100x8.csv');
    // 30 s later, not the re-probe time (60 s here, 10 minutes by default) of a host without GPUs.
    expect(await s.sample(T0 + 36_000)).toHaveLength(8);
    expect(s.status).toBe('present');
    expect(s.missing).toEqual([]);
  });

  it('one nvidia-smi run timing out (a loaded host) lists no GPU missing; the next run that answers clears it', async () => {
    const f = await fakeSmi('timeout-once', { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'q-x.h100x8.xml' });
    await setLive(f, 'query-gpu.h100x8.csv');
    const s = new GpuSampler({ command: f.command, reprobeMs: 60_000, timeoutMs: 1_000, logger: quiet });
    await s.inventory();
    expect(await s.sample(T0)).toHaveLength(8);
    await setLive(f, null, 'hang');
    expect(await s.sample(T0 + 5_000)).toEqual([]);
    expect(s.missing).toEqual([]);
    await setLive(f, 'query-gpu.h100x8.csv');
    expect(await s.sample(T0 + 36_000)).toHaveLength(8);
    // A later silent run starts over: one is still no proof.
    await setLive(f, null, 15);
    await s.sample(T0 + 40_000);
    expect(s.missing).toEqual([]);
    expect(await alive(f)).toEqual([]);
  });

  it("a row whose UUID nvidia-smi cannot read is that index's GPU: not missing", async () => {
    const { f, s } = await h100Host('unnamed-row');
    const { readFile } = await import('node:fs/promises');
    const csv = (await readFile(join(FIXTURES, 'query-gpu.h100x8.csv'), 'utf8')).replace(
      /^3, GPU-[^,]+,/m,
      '3, [Unknown Error],',
    );
    await setLiveText(f, csv, 0);
    expect((await s.sample(T0 + 5_000)).map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(s.missing).toEqual([]);
  });

  it('an inventory UUID that names no GPU (N/A, only NUL) is not remembered: no false "missing", no refused sample', async () => {
    const f = await fakeSmi('odd-inventory', { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'live' });
    const { readFile } = await import('node:fs/promises');
    let n = 0;
    const xml = (await readFile(join(FIXTURES, 'q-x.h100x8.xml'), 'utf8')).replace(/<uuid>[^<]+<\/uuid>/g, (m) =>
      n++ === 3 ? '<uuid>\u0000</uuid>' : n === 6 ? '<uuid>N/A</uuid>' : m,
    );
    await setLiveText(f, xml);
    const s = new GpuSampler({ command: f.command, reprobeMs: 60_000, logger: quiet });
    expect((await s.inventory())?.gpus).toHaveLength(8);
    await setLive(f, 'query-gpu.h100x8.csv');
    const host = new HostSampler({ hostId: 'gpu-1', location: 'lab', intervalSeconds: 5, gpu: s });
    const sample = hostMetricsPayloadSchema.parse(await host.sample());
    expect(sample.gpus).toHaveLength(8);
    expect(sample.missingGpus).toEqual([]);
  });

  it('more than 64 GPUs missing (the contract lists 64 a sample): the host sample carries the first 64 and still validates', async () => {
    const s = new GpuSampler({ command: join(dir, 'nowhere', 'nvidia-smi'), logger: quiet });
    s['remember']({ gpus: Array.from({ length: 70 }, (_, i) => ({ uuid: `GPU-${1000 + i}`, name: H100 })) });
    // Two silent runs: all 70 missing.
    s['seen']([], [], T0);
    s['seen']([], [], T0 + 30_000);
    expect(s.missing).toHaveLength(70);
    const host = new HostSampler({ hostId: 'gpu-70', location: 'lab', intervalSeconds: 5, gpu: s });
    const sample = hostMetricsPayloadSchema.parse(await host.sample());
    expect(sample.missingGpus?.map((g) => g.index)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  it('property: whatever nvidia-smi prints (inventory and runs), the missing list fits the contract and the stores', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.constantFrom('\u0000', '\ud800', 'N/A', '', ' ', 'GPU-\udc00', 'x'.repeat(400)),
    );
    const uuid = fc.oneof(
      fc.uuid().map((u) => `GPU-${u}`),
      text,
    );
    const inventoryGpu = fc.record({ uuid: fc.option(uuid, { nil: undefined }), name: text, busId: text });
    const row = fc.record({ index: fc.nat(200), uuid, name: text });
    const run = fc.record({ rows: fc.array(row, { maxLength: 70 }), problems: fc.array(text, { maxLength: 5 }) });
    fc.assert(
      fc.property(fc.array(inventoryGpu, { maxLength: 80 }), fc.array(run, { maxLength: 4 }), (inventory, runs) => {
        const s = new GpuSampler({ logger: quiet });
        s['remember']({ gpus: inventory });
        runs.forEach((r, i) => {
          const csv = r.rows.map((g) => `${g.index}, ${g.uuid.replaceAll(',', ' ')}, ${g.name.replaceAll(',', ' ')}`);
          // Rows as the parser makes them (it sanitizes), the problems raw (the sampler sanitizes them).
          const { gpus } = parseGpuQuery(csv.map((l) => `${l}, 1, 2, 3, 4, 5, 6, 7, 8, 9`).join('\n'));
          s['seen'](gpus, r.problems, T0 + i * 60_000);
        });
        const missing = s.missing?.slice(0, 64);
        const parsed = hostMetricsPayloadSchema.shape.missingGpus.safeParse(missing);
        expect(parsed.success ? null : parsed.error.issues[0]).toBeNull();
        expect(storeSafetyIssue(missing ?? [])).toBeNull();
        expect(new Set(missing?.map((g) => g.uuid)).size).toBe(missing?.length ?? 0);
      }),
      { numRuns: 300 },
    );
  });

  it('a host that never had a GPU sends no list; one seen in samples only is listed without inventory facts', async () => {
    expect(new GpuSampler({ command: join(dir, 'nowhere', 'nvidia-smi') }).missing).toBeUndefined();
    const none = new GpuSampler({ command: join(dir, 'nowhere', 'nvidia-smi') });
    await none.sample(T0);
    expect(none.missing).toBeUndefined();

    const f = await fakeSmi('lost-no-inventory', { query: 'live', apps: 'compute-apps.h100x8.csv' });
    await setLive(f, 'query-gpu.h100x8.csv');
    const s = new GpuSampler({ command: f.command, logger: quiet });
    expect(s.missing).toBeUndefined();
    await s.sample(T0);
    expect(s.missing).toEqual([]);
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    await s.sample(T0 + 5_000);
    // No bus id known: the problem line cannot be told to be this GPU's.
    expect(s.missing).toEqual([{ index: 3, uuid: LOST, name: H100, since: new Date(T0 + 5_000).toISOString() }]);
  });

  it('without a memory file the memory lasts as long as the sampler: after a restart a lost GPU counts only if the inventory lists it', async () => {
    // The inventory at start lists all eight (the board is still enumerated), the first sample shows seven.
    const f = await fakeSmi('lost-restart', { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'q-x.h100x8.xml' });
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    const withInventory = new GpuSampler({ command: f.command, logger: quiet });
    await withInventory.inventory();
    expect(withInventory.missing).toEqual([]);
    await withInventory.sample(T0);
    expect(withInventory.missing?.map((g) => [g.index, g.uuid, g.busId])).toEqual([[3, LOST, '00000000:5D:00.0']]);
    // Without the inventory (it failed, or no longer lists the GPU) the lost GPU was never seen: nothing is missing.
    const without = new GpuSampler({ command: f.command, logger: quiet });
    await without.sample(T0);
    expect(without.missing).toEqual([]);
  });

  it('the host sample carries the list (missingGpus), and it fits the contract', async () => {
    const { f, s } = await h100Host('lost-host-sample');
    const host = new HostSampler({ hostId: 'gpu-1', location: 'lab', intervalSeconds: 5, gpu: s });
    expect(hostMetricsPayloadSchema.parse(await host.sample()).missingGpus).toEqual([]);
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    const sample = hostMetricsPayloadSchema.parse(await host.sample());
    expect(sample.gpus).toHaveLength(7);
    expect(sample.missingGpus?.map((g) => [g.index, g.uuid])).toEqual([[3, LOST]]);
    // A host without GPUs: no list at all (as from an older collector).
    const plain = new HostSampler({ hostId: 'cpu-1', location: 'lab', intervalSeconds: 5 });
    expect(hostMetricsPayloadSchema.parse(await plain.sample()).missingGpus).toBeUndefined();
  });
});

describe('GpuSampler: the GPUs remembered across restarts (the memory file)', () => {
  const H100 = 'NVIDIA H100 80GB HBM3';
  const LOST = 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03';
  const LOST_BUS = '00000000:5D:00.0';
  const T0 = Date.parse('2026-12-07T10:00:00.000Z');
  type Logged = Array<[string, object]>;

  async function fixture(name: string): Promise<string> {
    const { readFile } = await import('node:fs/promises');
    return readFile(join(FIXTURES, name), 'utf8');
  }

  /** A file beside the stand-ins holding `text`: its absolute path (a fixture the stand-in prints). */
  async function written(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  /** The 8× H100 inventory without GPU 3 (after a reboot a GPU fallen off the bus may not be enumerated at all). */
  async function inventoryWithoutLost(): Promise<string> {
    const xml = await fixture('q-x.h100x8.xml');
    const out = xml.replace(/<gpu id="00000000:5D:00.0">[\s\S]*?<\/gpu>\s*/, '');
    expect(out).not.toContain(LOST);
    return written('q-x.h100x7.xml', out);
  }

  /**
   * The stand-in `name` after a reboot: the lost GPU in neither the inventory nor any row (its rows written to
   * `queryFile`), nor named by a line.
   */
  async function afterReboot(name: string, queryFile: string): Promise<FakeSmi> {
    const rows = (await fixture('query-gpu.h100x8.gpu-lost.csv')).replace(/^Unable.*\n?/m, '');
    return fakeSmi(name, {
      query: await written(queryFile, rows),
      apps: 'compute-apps.h100x8.csv',
      xml: await inventoryWithoutLost(),
    });
  }

  /** A first process (stand-in `name`) that saw the eight, all there; returns its memory file. */
  async function sawAllEight(name: string): Promise<string> {
    const file = join(dir, name, 'known-gpus.json');
    const f = await fakeSmi(name, {
      query: 'query-gpu.h100x8.csv',
      apps: 'compute-apps.h100x8.csv',
      xml: 'q-x.h100x8.xml',
    });
    const first = sampler(f, file);
    await first.s.inventory();
    expect(await first.s.sample(T0)).toHaveLength(8);
    first.s.stop();
    return file;
  }

  /** A sampler on a stand-in (`xml` the inventory), its memory in `file`, logging into `log`, writes counted. */
  function sampler(f: FakeSmi, file: string, log: Logged = [], extra: Partial<GpuSamplerOptions> = {}) {
    const writes: unknown[] = [];
    const s = new GpuSampler({
      command: f.command,
      reprobeMs: 60_000,
      logger: { warn: (o, m) => log.push([m, o]), info: (o, m) => log.push([m, o]) },
      memoryFile: file,
      writeFile: async (path, value) => {
        writes.push(value);
        const { writeJsonFile } = await import('../../fs/json-file-writer');
        await writeJsonFile(path, value);
      },
      ...extra,
    });
    return { s, writes };
  }

  /** A first collector process: 8× H100, inventory read, all there at T0, GPU 3 lost at T0 + 5 s. */
  async function lostBeforeRestart(name: string, extra: Partial<GpuSamplerOptions> = {}) {
    const file = join(dir, name, 'spool', 'known-gpus.json');
    const f = await fakeSmi(name, { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'q-x.h100x8.xml' });
    await setLive(f, 'query-gpu.h100x8.csv');
    const first = sampler(f, file, [], extra);
    await first.s.inventory();
    expect(await first.s.sample(T0)).toHaveLength(8);
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    await first.s.sample(T0 + 5_000);
    expect(first.s.missing?.map((g) => [g.index, g.uuid, g.since])).toEqual([
      [3, LOST, new Date(T0 + 5_000).toISOString()],
    ]);
    first.s.stop();
    return { f, file, first };
  }

  it('a restart (and a reboot that no longer enumerates it) keeps the lost GPU missing, since when it first was', async () => {
    const { file } = await lostBeforeRestart('mem-restart');
    // The next process, after a reboot: the dead GPU is in neither the inventory nor any row, nor named by a line.
    const f = await afterReboot('mem-restart-2', 'query-gpu.h100x7.csv');
    const log: Logged = [];
    const { s } = sampler(f, file, log);
    await s.inventory();
    expect(await s.sample(T0 + 3_600_000)).toHaveLength(7);
    expect(s.missing).toEqual([
      { index: 3, uuid: LOST, name: H100, busId: LOST_BUS, since: new Date(T0 + 5_000).toISOString() },
    ]);
    expect(hostMetricsPayloadSchema.shape.missingGpus.parse(s.missing)).toEqual(s.missing);
    expect(log.map(([m]) => m)).toContain('gpu: remembered GPUs read');
    expect(log.filter(([m]) => m.includes('not read'))).toEqual([]);
  });

  it('a GPU back after the restart (same UUID) is not missing, and the file says so', async () => {
    const { file, f } = await lostBeforeRestart('mem-back');
    await setLive(f, 'query-gpu.h100x8.csv');
    const { s, writes } = sampler(f, file);
    await s.inventory();
    expect(await s.sample(T0 + 60_000)).toHaveLength(8);
    expect(s.missing).toEqual([]);
    expect(writes).toHaveLength(1);
    const { readFile } = await import('node:fs/promises');
    const kept = JSON.parse(await readFile(file, 'utf8')) as { gpus: Array<{ uuid: string; since?: string }> };
    expect(kept.gpus).toHaveLength(8);
    expect(kept.gpus.filter((g) => g.since)).toEqual([]);
  });

  it.each([
    ['not JSON', 'not json {'],
    ['JSON of something else', '{"installId":"0f6c2a4e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"}'],
    ['an entry without a time', '{"version":1,"gpus":[{"uuid":"GPU-1","index":0}]}'],
    [
      'a since no sample can carry',
      `{"version":1,"gpus":[{"uuid":"GPU-1","index":0,"firstSeen":"2026-01-01T00:00:00Z","since":"0000-01-01T00:00:00Z"}]}`,
    ],
  ])('a garbage file (%s): a warning, and the memory starts afresh from the inventory', async (_name, text) => {
    const file = join(dir, `mem-garbage-${text.length}`, 'known-gpus.json');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, text);
    const f = await fakeSmi(`mem-garbage-${text.length}`, {
      query: 'query-gpu.h100x8.gpu-lost.csv',
      apps: 'compute-apps.h100x8.csv',
      xml: 'q-x.h100x8.xml',
    });
    const log: Logged = [];
    const { s, writes } = sampler(f, file, log);
    await s.inventory();
    await s.sample(T0);
    // The inventory's GPU 3, not in the run: missing now — nothing of the garbage is.
    expect(s.missing?.map((g) => [g.uuid, g.since])).toEqual([[LOST, new Date(T0).toISOString()]]);
    expect(log.filter(([m]) => m.includes('not read'))).toHaveLength(1);
    expect(writes.length).toBeGreaterThan(0);
  });

  it('an unreadable file and one that cannot be written: warnings (the write failure once), sampling goes on', async () => {
    // A directory where the file should be: reading it fails (EISDIR), writing over it too.
    const file = join(dir, 'mem-unreadable', 'known-gpus.json');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(file, { recursive: true });
    const f = await fakeSmi('mem-unreadable', {
      query: 'live',
      apps: 'compute-apps.h100x8.csv',
      xml: 'q-x.h100x8.xml',
    });
    await setLive(f, 'query-gpu.h100x8.csv');
    const log: Logged = [];
    const { s } = sampler(f, file, log);
    await s.inventory();
    expect(await s.sample(T0)).toHaveLength(8);
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    expect(await s.sample(T0 + 5_000)).toHaveLength(7);
    expect(s.missing?.map((g) => g.uuid)).toEqual([LOST]);
    expect(log.filter(([m]) => m.includes('not read'))).toHaveLength(1);
    expect(log.filter(([m]) => m.includes('not written'))).toHaveLength(1);
  });

  it('a file written under another host id (a cloned disk, a changed COLLECTOR_HOST_ID) is left aside', async () => {
    const { file } = await lostBeforeRestart('mem-host', { hostId: 'lab/gpu-1' });
    const f = await afterReboot('mem-host-2', 'q7.csv');
    // The host id that wrote it reads it: GPU 3 is still missing.
    const same = sampler(f, file, [], { hostId: 'lab/gpu-1' });
    await same.s.inventory();
    await same.s.sample(T0 + 60_000);
    expect(same.s.missing?.map((g) => g.uuid)).toEqual([LOST]);
    same.s.stop();
    // Another host id does not: its GPUs are not that host's.
    const log: Logged = [];
    const clone = sampler(f, file, log, { hostId: 'lab/gpu-2' });
    await clone.s.inventory();
    await clone.s.sample(T0 + 60_000);
    expect(clone.s.missing).toEqual([]);
    expect(log.filter(([m]) => m.includes('another host id'))).toHaveLength(1);
  });

  it('a GPU missing for the configured time is forgotten, for good (the next process does not list it either)', async () => {
    const { file, f } = await lostBeforeRestart('mem-forget', { forgetMissingAfterMs: 60_000 });
    const log: Logged = [];
    const { s, writes } = sampler(f, file, log, { forgetMissingAfterMs: 60_000 });
    await s.inventory();
    await s.sample(T0 + 64_999);
    expect(s.missing?.map((g) => g.uuid)).toEqual([LOST]);
    expect(writes).toHaveLength(0);
    await s.sample(T0 + 65_000);
    expect(s.missing).toEqual([]);
    expect(writes).toHaveLength(1);
    expect(log.filter(([m]) => m.includes('forgotten'))).toHaveLength(1);
    // Still lost (its line still printed), but forgotten: a new process from the file does not list it.
    const f2 = await fakeSmi('mem-forget-2', {
      query: 'query-gpu.h100x8.gpu-lost.csv',
      apps: 'compute-apps.h100x8.csv',
      xml: await inventoryWithoutLost(),
    });
    const next = sampler(f2, file, [], { forgetMissingAfterMs: 60_000 });
    await next.s.inventory();
    await next.s.sample(T0 + 70_000);
    expect(next.s.missing).toEqual([]);
  });

  it('a board replaced (another UUID at its bus id in the inventory at start): the old one is forgotten', async () => {
    const { file } = await lostBeforeRestart('mem-replaced');
    const NEW = 'GPU-00000000-aaaa-bbbb-cccc-000000000003';
    const xml = (await fixture('q-x.h100x8.xml')).replace(LOST, NEW);
    const csv = (await fixture('query-gpu.h100x8.csv')).replace(LOST, NEW);
    const f = await fakeSmi('mem-replaced-2', {
      query: await written('q-new.csv', csv),
      apps: 'compute-apps.h100x8.csv',
      xml: await written('q-x-new.xml', xml),
    });
    const { s } = sampler(f, file);
    await s.inventory();
    expect(await s.sample(T0 + 60_000)).toHaveLength(8);
    expect(s.missing).toEqual([]);
  });

  it('the file is written when the remembered set changes, never per sample', async () => {
    const file = join(dir, 'mem-writes', 'known-gpus.json');
    const f = await fakeSmi('mem-writes', { query: 'live', apps: 'compute-apps.h100x8.csv', xml: 'q-x.h100x8.xml' });
    await setLive(f, 'query-gpu.h100x8.csv');
    const { s, writes } = sampler(f, file);
    await s.inventory();
    // The eight found.
    expect(writes).toHaveLength(1);
    for (let i = 0; i < 5; i++) await s.sample(T0 + i * 5_000);
    expect(writes).toHaveLength(1);
    await setLive(f, 'query-gpu.h100x8.gpu-lost.csv', 15);
    for (let i = 5; i < 10; i++) await s.sample(T0 + i * 5_000);
    // Lost once: one write, not one a sample.
    expect(writes).toHaveLength(2);
    await setLive(f, 'query-gpu.h100x8.csv');
    for (let i = 10; i < 15; i++) await s.sample(T0 + i * 5_000);
    expect(writes).toHaveLength(3);
    // A restart that finds the file as it left it writes nothing.
    const next = sampler(f, file);
    await next.s.inventory();
    await next.s.sample(T0 + 100_000);
    expect(next.writes).toHaveLength(0);
  });

  it.each([
    ['no nvidia-smi (a container started without the GPUs mounted)', 'ENOENT'],
    ['no driver (exit 9)', 'fail:9'],
  ])(
    'a restart whose nvidia-smi has no GPU view at all (%s): nothing goes missing from the file alone',
    async (_name, how) => {
      // A first process saw the eight, all there.
      const file = await sawAllEight(`mem-noview-${how}`);
      // The next process cannot look at the GPUs: it is no proof that they are gone (a healthy host).
      const blind =
        how === 'ENOENT'
          ? { command: join(dir, 'nowhere', 'nvidia-smi') }
          : await fakeSmi(`mem-noview-${how}-2`, { query: how, apps: how, xml: how });
      const log: Logged = [];
      const { s } = sampler(blind as FakeSmi, file, log);
      await s.inventory();
      for (const t of [60_000, 90_000, 150_000, 300_000]) {
        expect(await s.sample(T0 + t)).toEqual([]);
        expect(s.missing ?? []).toEqual([]);
      }
      expect(s.status).toBe('absent');
    },
  );

  it('a board replaced while the inventory at start failed: read again at the first unknown GPU, the old one forgotten', async () => {
    const file = await sawAllEight('mem-replaced-noinv');
    // After a reboot GPU 3 is another board; `-q -x` gives garbage at start (a timeout, a loaded host), then works.
    const NEW = 'GPU-00000000-aaaa-bbbb-cccc-000000000003';
    const xml = await written('q-x-noinv.xml', 'not xml <');
    const csv = (await fixture('query-gpu.h100x8.csv')).replace(LOST, NEW);
    const f2 = await fakeSmi('mem-replaced-noinv-2', {
      query: await written('q-noinv.csv', csv),
      apps: 'compute-apps.h100x8.csv',
      xml,
    });
    const log: Logged = [];
    const { s } = sampler(f2, file, log);
    expect(await s.inventory()).toBeUndefined();
    await writeFile(xml, (await fixture('q-x.h100x8.xml')).replace(LOST, NEW));
    expect(await s.sample(T0 + 60_000)).toHaveLength(8);
    expect(s.missing).toEqual([]);
    expect(log.filter(([m]) => m.includes('the old one is forgotten'))).toHaveLength(1);
  });

  it('a memory file too big for one (1 MiB and more) is left aside unread, with a warning', async () => {
    const { file } = await lostBeforeRestart('mem-huge');
    const { readFile } = await import('node:fs/promises');
    // Still a sound memory file, padded past the bound: read, it would list GPU 3 as missing.
    await writeFile(file, (await readFile(file, 'utf8')) + ' '.repeat(1024 * 1024));
    const f = await afterReboot('mem-huge-2', 'q7-huge.csv');
    const log: Logged = [];
    const { s } = sampler(f, file, log);
    await s.inventory();
    await s.sample(T0 + 60_000);
    expect(s.missing).toEqual([]);
    expect(log.filter(([m]) => m.includes('not read'))).toHaveLength(1);
  });
});

describe('busKey', () => {
  it.each([
    ['00000000:3B:00.0', '0:3b:00.0'],
    ['Unable to determine the device handle for GPU 0000:3B:00.0: GPU is lost.', '0:3b:00.0'],
    ['Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error', '0:c1:00.0'],
    ['0001:c1:00.1', '1:c1:00.1'],
    ['no bus id here, GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03', undefined],
  ])('%s → %s', (text, key) => {
    expect(busKey(text)).toBe(key);
  });
});
