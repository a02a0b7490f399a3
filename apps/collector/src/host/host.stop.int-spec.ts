import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { seedAssignment } from '../checks/checks.int-helpers';
import { privateDist, startCollectorProcess, type CollectorProcess } from '../checks/owner.int-helpers';

// A clean stop (SIGTERM) of a collector whose nvidia-smi hangs — a wedged GPU leaves it
// deaf to SIGTERM, or stuck in the kernel. COLLECTOR_NVIDIA_SMI names a stand-in that hangs
// so, for every query. The stop used to wait for the GPU read in flight: the inventory until
// its 5 s deadline, a sample's query for as long as the process lived (the deadline only sent
// it SIGTERM), so the collector overran its shutdown timeout and exited 1, leaving the
// process behind. Now the read ends at once, its process killed, and the stop is prompt.

jest.setTimeout(120_000);

let dist: string;
let vhost: IsolatedVhost;
let dir: string;
let proc: CollectorProcess | undefined;

beforeAll(async () => {
  dist = privateDist('collector-host-stop');
  vhost = await createIsolatedVhost('collector-host-stop');
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-host-stop-'));
});
afterAll(async () => {
  await proc?.kill().catch(() => undefined);
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('stops promptly and cleanly while nvidia-smi hangs, and leaves no nvidia-smi behind', async () => {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const pids = join(bin, 'pids');
  const smi = join(bin, 'nvidia-smi');
  await writeFile(smi, `#!/bin/sh\ntrap '' TERM\necho $$ >> ${JSON.stringify(pids)}\nexec sleep 60\n`);
  await chmod(smi, 0o755);

  // Ready from its last assignment (no owner here); no checks: the stop is about host sampling.
  await seedAssignment(join(dir, 'spool', 'assignment.json'), 'lab-host-stop', []);
  proc = await startCollectorProcess(dist, {
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-host-stop',
    COLLECTOR_SPOOL_DIR: join(dir, 'spool'),
    COLLECTOR_HOST_INTERVAL_SECONDS: '1',
    COLLECTOR_NVIDIA_SMI: smi,
  });
  // Host sampling starts a second after the boot: wait until it is inside nvidia-smi, and a little longer.
  await waitFor(async () => (await readFile(pids, 'utf8').catch(() => '')).trim() !== '', {
    timeoutMs: 15_000,
    description: 'nvidia-smi running',
  });
  await new Promise((r) => setTimeout(r, 500));

  const started = Date.now();
  await proc.stop();
  const tookMs = Date.now() - started;
  expect({ exitCode: proc.exitCode, output: proc.exitCode === 0 ? '' : proc.output() }).toEqual({
    exitCode: 0,
    output: '',
  });
  expect(tookMs).toBeLessThan(2_000);
  const spawned = (await readFile(pids, 'utf8')).split('\n').filter(Boolean).map(Number);
  expect(spawned.length).toBeGreaterThan(0);
  expect(spawned.filter(alive)).toEqual([]);
});
