import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register, type Counter } from 'prom-client';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { CollectorHarness } from '../checks/checks.int-helpers';
import { HostService } from './host.service';

// The collector's own /metrics says how many GPUs it lists as missing (fallen off the bus: the host sample's
// `missingGpus`), beside the GPUs it sampled: `fleetwatch_collector_gpu_devices_missing`, 0 while all are there.
// A collector booted as main.ts boots it, its COLLECTOR_NVIDIA_SMI a stand-in printing captured outputs
// (gpu/__fixtures__): 8× H100, then GPU 3 lost (Xid 79: seven rows and the "GPU is lost" line, exit 15), then back.
// And across a restart: the collector remembers the GPUs in its spool directory (known-gpus.json), so a GPU lost
// before it — after a reboot enumerated nowhere, in no row, no line — is still listed, since when it first was.

jest.setTimeout(60_000);

const FIXTURES = join(__dirname, 'gpu', '__fixtures__');
let vhost: IsolatedVhost;
let dir: string;
let c: CollectorHarness | undefined;

beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-gpus-missing');
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-gpus-missing-'));
});
afterAll(async () => {
  await c?.stop();
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in nvidia-smi in `<dir>/<name>`: `show` sets what its query prints (and exit code), `inventory` -q -x. */
async function standIn(name: string) {
  const bin = join(dir, name);
  await mkdir(bin, { recursive: true });
  const live = join(bin, 'query.out');
  const rc = join(bin, 'query.rc');
  const xml = join(bin, 'q-x.xml');
  const smi = join(bin, 'nvidia-smi');
  await writeFile(
    smi,
    `#!/bin/sh
case "$1" in
  --query-gpu=*) cat ${JSON.stringify(live)}; exit $(cat ${JSON.stringify(rc)}) ;;
  --query-compute-apps=*) cat ${JSON.stringify(join(FIXTURES, 'compute-apps.h100x8.csv'))} ;;
  -q) cat ${JSON.stringify(xml)} ;;
  *) exit 2 ;;
esac
`,
  );
  await chmod(smi, 0o755);
  await copyFile(join(FIXTURES, 'q-x.h100x8.xml'), xml);
  const showText = async (text: string, code: number) => {
    await writeFile(live, text);
    await writeFile(rc, String(code));
  };
  const show = async (fixture: string, code: number) => showText(await readFile(join(FIXTURES, fixture), 'utf8'), code);
  const inventory = (text: string) => writeFile(xml, text);
  await show('query-gpu.h100x8.csv', 0);
  return { smi, show, showText, inventory };
}

it('/metrics counts the GPUs the last host sample lists as missing: 0, then the one lost, then 0 again', async () => {
  const { smi, show } = await standIn('bin');

  c = await CollectorHarness.start({
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-gpus',
    COLLECTOR_SPOOL_DIR: join(dir, 'spool'),
    COLLECTOR_HOST_ID: 'gpu-box',
    // One sample at boot (after the inventory); the test takes the others itself.
    COLLECTOR_HOST_INTERVAL_SECONDS: '3600',
    COLLECTOR_NVIDIA_SMI: smi,
  });
  const harness = c;
  const host = c.service.app.get(HostService);
  const gauges = async () => [
    await harness.metric('fleetwatch_collector_gpu_devices'),
    await harness.metric('fleetwatch_collector_gpu_devices_missing'),
  ];
  await waitFor(async () => (await harness.metric('fleetwatch_collector_gpu_devices')) === 8, {
    timeoutMs: 15_000,
    description: 'the boot sample with eight GPUs',
  });
  expect(await gauges()).toEqual([8, 0]);
  expect(await (await fetch(`${c.url}/metrics`)).text()).toMatch(
    /^# TYPE fleetwatch_collector_gpu_devices_missing gauge\nfleetwatch_collector_gpu_devices_missing 0$/m,
  );

  await show('query-gpu.h100x8.gpu-lost.csv', 15);
  const lost = await host.sampleOnce();
  expect(lost?.missingGpus?.map((g) => g.index)).toEqual([3]);
  expect(await gauges()).toEqual([7, 1]);

  await show('query-gpu.h100x8.csv', 0);
  expect((await host.sampleOnce())?.missingGpus).toEqual([]);
  expect(await gauges()).toEqual([8, 0]);
});

it('restarted after a GPU was lost (a reboot between: it is enumerated nowhere), the collector still lists it, same since', async () => {
  const { smi, show, showText, inventory } = await standIn('bin-restart');
  const env = {
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-gpus-restart',
    COLLECTOR_SPOOL_DIR: join(dir, 'spool-restart'),
    COLLECTOR_HOST_ID: 'gpu-box-restart',
    COLLECTOR_HOST_INTERVAL_SECONDS: '3600',
    COLLECTOR_NVIDIA_SMI: smi,
  };
  // The series live in the process's registry, an earlier collector's values in them: wait for one more sample.
  const samplesTaken = async () => {
    const counter = register.getSingleMetric('fleetwatch_collector_host_samples_total') as Counter | undefined;
    return (await counter?.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;
  };
  const startAndSample = async () => {
    const before = await samplesTaken();
    const h = await CollectorHarness.start(env);
    await waitFor(async () => (await samplesTaken()) > before, { timeoutMs: 15_000, description: 'the boot sample' });
    return h;
  };
  let first: CollectorHarness | undefined = await startAndSample();
  let since: string | undefined;
  try {
    expect(await first.metric('fleetwatch_collector_gpu_devices')).toBe(8);
    await show('query-gpu.h100x8.gpu-lost.csv', 15);
    const lost = await first.service.app.get(HostService).sampleOnce();
    expect(lost?.missingGpus?.map((g) => g.index)).toEqual([3]);
    since = lost?.missingGpus?.[0]?.since;
  } finally {
    await first.stop();
    first = undefined;
  }
  // Owner only, as install-id.json.
  expect((await stat(join(dir, 'spool-restart', 'known-gpus.json'))).mode & 0o777).toBe(0o600);

  // The reboot: GPU 3 is in neither the inventory nor the rows, and no line names it.
  const xml = await readFile(join(FIXTURES, 'q-x.h100x8.xml'), 'utf8');
  await inventory(xml.replace(/<gpu id="00000000:5D:00.0">[\s\S]*?<\/gpu>\s*/, ''));
  const rows = await readFile(join(FIXTURES, 'query-gpu.h100x8.gpu-lost.csv'), 'utf8');
  await showText(rows.replace(/^Unable.*\n?/m, ''), 0);
  const second = await startAndSample();
  try {
    expect(await second.metric('fleetwatch_collector_gpu_devices')).toBe(7);
    expect(await second.metric('fleetwatch_collector_gpu_devices_missing')).toBe(1);
    const sample = await second.service.app.get(HostService).sampleOnce();
    expect(sample?.missingGpus).toEqual([
      {
        index: 3,
        uuid: 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03',
        name: 'NVIDIA H100 80GB HBM3',
        busId: '00000000:5D:00.0',
        since,
      },
    ]);
  } finally {
    await second.stop();
  }
});
