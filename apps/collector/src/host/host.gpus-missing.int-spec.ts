import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { CollectorHarness } from '../checks/checks.int-helpers';
import { HostService } from './host.service';

// The collector's own /metrics says how many GPUs it lists as missing (fallen off the bus: the host sample's
// `missingGpus`), beside the GPUs it sampled: `fleetwatch_collector_gpu_devices_missing`, 0 while all are there.
// A collector booted as main.ts boots it, its COLLECTOR_NVIDIA_SMI a stand-in printing captured outputs
// (gpu/__fixtures__): 8× H100, then GPU 3 lost (Xid 79: seven rows and the "GPU is lost" line, exit 15), then back.

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

it('/metrics counts the GPUs the last host sample lists as missing: 0, then the one lost, then 0 again', async () => {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const live = join(bin, 'query.out');
  const rc = join(bin, 'query.rc');
  const smi = join(bin, 'nvidia-smi');
  await writeFile(
    smi,
    `#!/bin/sh
case "$1" in
  --query-gpu=*) cat ${JSON.stringify(live)}; exit $(cat ${JSON.stringify(rc)}) ;;
  --query-compute-apps=*) cat ${JSON.stringify(join(FIXTURES, 'compute-apps.h100x8.csv'))} ;;
  -q) cat ${JSON.stringify(join(FIXTURES, 'q-x.h100x8.xml'))} ;;
  *) exit 2 ;;
esac
`,
  );
  await chmod(smi, 0o755);
  const show = async (fixture: string, code: number) => {
    await copyFile(join(FIXTURES, fixture), live);
    await writeFile(rc, String(code));
  };
  await show('query-gpu.h100x8.csv', 0);

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
