import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostMetricsPayloadSchema } from '@fleetwatch/contracts';
import { register } from 'prom-client';
import { HostMetrics } from './host.metrics';
import { HostSampler } from './host-sampler';
import { fakeProcRoot } from './host-sampler.spec-helpers';

// A node with more local mounts than a sample reports (the contract's 256): a Kubernetes node with hundreds of
// CSI/PVC volumes under /var/lib/kubelet/pods/…. The first 256 by path were kept, so every mount sorting after
// /var/lib/kubelet — /var/log, /var/tmp, … — was left out, and which pod volumes were reported changed as pods
// came and went. Now the shallowest paths are kept, a mount reported stays reported while only its equals or deeper
// ones come, and the count left out is logged once per change and kept in a gauge.

/** Paths whose statfs answers only after this many ms (a slow FUSE or cloud-backed mount). */
const mockSlow = new Map<string, number>();
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return {
    ...actual,
    // Every mount in these tests answers (none of their paths exists here): one 4 MB filesystem each.
    stat: () => Promise.resolve({ dev: 0 }),
    statfs: (path: string) => {
      const answer = { blocks: 1000, bsize: 4096, bfree: 400 };
      const delay = mockSlow.get(String(path));
      return new Promise((r) => setTimeout(() => r(answer), delay ?? 0));
    },
  };
});

const SYSTEM = ['/', '/boot', '/home', '/srv', '/var', '/var/log', '/var/lib/docker'];
const pod = (i: number, uid = `p${String(i).padStart(4, '0')}`) =>
  `/var/lib/kubelet/pods/${uid}/volumes/kubernetes.io~csi/pvc-${i}/mount`;

let root: string;
beforeAll(async () => {
  root = await fakeProcRoot('fw-many-mounts-');
});
afterAll(() => rm(root, { recursive: true, force: true }));
afterEach(() => mockSlow.clear());

/** /proc/self/mounts with these paths, each its own device (in the order given: the kernel's is mount order). */
function mountsFile(paths: string[]): Promise<void> {
  const lines = paths.map((p, i) => `/dev/rbd${i}-${p.length} ${p} ext4 rw 0 0`);
  // Virtual and network filesystems, never reported and never counted.
  lines.push('overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0', 'tmpfs /run tmpfs rw 0 0');
  lines.push('server:/export /mnt/nfs nfs4 rw 0 0');
  return writeFile(join(root, 'self/mounts'), lines.join('\n') + '\n');
}

function sampler(logger?: { warn: jest.Mock; info: jest.Mock }): HostSampler {
  return new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 1, procRoot: root, linux: true, logger });
}

async function reported(s: HostSampler): Promise<string[]> {
  return hostMetricsPayloadSchema.parse(await s.sample()).disks.map((d) => d.mount);
}

it('keeps /var/log and the other system mounts among 400 deep kubelet mounts; the deepest are left out', async () => {
  const pods = Array.from({ length: 400 }, (_, i) => pod(i));
  await mountsFile([...pods, ...SYSTEM]);
  const s = sampler();
  const mounts = await reported(s);
  expect(mounts).toHaveLength(256);
  expect(mounts).toEqual(expect.arrayContaining(SYSTEM));
  expect(new Set(mounts).size).toBe(256);
  // The pod volumes kept are the first 249 by path (all at one depth), reported in path order.
  expect(mounts.filter((m) => m.startsWith('/var/lib/kubelet/'))).toEqual(pods.slice(0, 249));
  expect(mounts).toEqual([...mounts].sort((a, b) => a.localeCompare(b)));
  expect(s.mountsLeftOut).toBe(400 + SYSTEM.length - 256);
});

it('the choice holds from sample to sample: pods that come do not push out reported volumes; a shallower mount does', async () => {
  const pods = Array.from({ length: 300 }, (_, i) => pod(i));
  await mountsFile([...SYSTEM, ...pods]);
  const s = sampler();
  const first = await reported(s);
  expect(await reported(s)).toEqual(first);

  // 20 new pods whose volumes sort before every reported one, and 5 reported volumes gone (their pods deleted).
  const gone = new Set(first.filter((m) => m.startsWith('/var/lib/kubelet/')).slice(10, 15));
  const added = Array.from({ length: 20 }, (_, i) => pod(1000 + i, `a${String(i).padStart(2, '0')}`));
  await mountsFile([...SYSTEM, ...added, ...pods.filter((p) => !gone.has(p))]);
  const second = await reported(s);
  expect(second).toHaveLength(256);
  // Every mount still there that was reported is reported still …
  expect(second).toEqual(expect.arrayContaining(first.filter((m) => !gone.has(m))));
  // … and the 5 places the gone ones left go to newcomers (first by path among those not reported), not to more.
  expect(second.filter((m) => !first.includes(m))).toEqual(added.slice(0, 5).sort((a, b) => a.localeCompare(b)));
  expect(s.mountsLeftOut).toBe(SYSTEM.length + 20 + 295 - 256);
  expect(await reported(s)).toEqual(second);

  // A shallow mount comes (a new data disk): it is kept; one pod volume (the last by path) makes room.
  await mountsFile(['/data', ...SYSTEM, ...added, ...pods.filter((p) => !gone.has(p))]);
  const third = await reported(s);
  expect(third).toContain('/data');
  expect(second.filter((m) => !third.includes(m))).toEqual([second.filter((m) => m.includes('/kubelet/')).at(-1)]);
});

it('says how many were left out: a warning once per change, an info line when all fit again, and a gauge', async () => {
  const logger = { warn: jest.fn(), info: jest.fn() };
  const s = sampler(logger);
  const pods = Array.from({ length: 300 }, (_, i) => pod(i));
  await mountsFile([...SYSTEM, ...pods]);
  for (let i = 0; i < 3; i++) await s.sample();
  expect(logger.warn).toHaveBeenCalledTimes(1);
  expect(logger.warn.mock.calls[0][0]).toMatchObject({ mounts: 307, reported: 256, leftOut: 51 });
  expect(logger.warn.mock.calls[0][0].firstLeftOut).toHaveLength(5);

  await mountsFile([...SYSTEM, ...pods.slice(0, 280)]);
  await s.sample();
  await s.sample();
  expect(logger.warn).toHaveBeenCalledTimes(2);
  expect(s.mountsLeftOut).toBe(31);

  const metrics = new HostMetrics();
  metrics.mountsLeftOut.set(s.mountsLeftOut);
  expect(await register.getSingleMetricAsString('fleetwatch_collector_host_mounts_left_out')).toMatch(
    /^fleetwatch_collector_host_mounts_left_out 31$/m,
  );

  await mountsFile(SYSTEM);
  expect(await reported(s)).toEqual([...SYSTEM].sort((a, b) => a.localeCompare(b)));
  expect(s.mountsLeftOut).toBe(0);
  expect(logger.info).toHaveBeenCalledTimes(1);
  expect(logger.warn).toHaveBeenCalledTimes(2);
});

it('a sample that cannot read the mount table forgets no place: the same mounts come back, nothing is logged', async () => {
  const logger = { warn: jest.fn(), info: jest.fn() };
  const s = sampler(logger);
  // 200 pod volumes first (all fit), then 100 that sort before them: the first 200 hold their places.
  const pods = Array.from({ length: 300 }, (_, i) => pod(i));
  await mountsFile([...SYSTEM, ...pods.slice(100)]);
  await s.sample();
  await mountsFile([...SYSTEM, ...pods]);
  const held = await reported(s);
  expect(held).toEqual(expect.arrayContaining(pods.slice(100)));
  expect(logger.warn).toHaveBeenCalledTimes(1);

  // /proc/self/mounts unreadable for one sample (EMFILE, …): no disks in it, and no "all fit again".
  await rm(join(root, 'self/mounts'));
  expect(await reported(s)).toEqual([]);
  expect(s.mountsLeftOut).toBe(51);
  expect(logger.info).not.toHaveBeenCalled();

  // Readable again: the same choice, not the first 249 by path (51 reported volumes handed to others).
  await mountsFile([...SYSTEM, ...pods]);
  expect(await reported(s)).toEqual(held);
  expect(logger.warn).toHaveBeenCalledTimes(1);
});

it('a late statfs answer is reported only for a mount still chosen; a pending mount keeps its place', async () => {
  // 256 mounts fit; one of them answers 800 ms late against the sample's 500 ms wait.
  const pods = Array.from({ length: 256 - SYSTEM.length }, (_, i) => pod(i));
  const slow = pods.at(-1) as string;
  mockSlow.set(slow, 800);
  await mountsFile([...SYSTEM, ...pods]);
  const s = sampler();
  const first = await reported(s);
  expect(first).toHaveLength(255);
  expect(first).not.toContain(slow);
  // Its answer is pending: the 257th mount (which comes now) does not take its place for one sample.
  await mountsFile([...SYSTEM, ...pods, pod(999, 'zzz')]);
  const second = await reported(s);
  expect(second).not.toContain(pod(999, 'zzz'));
  await new Promise((r) => setTimeout(r, 900));
  // A shallower mount comes while the slow one's late answer waits: the slow one is the deepest last and goes out;
  // its late answer is not reported (the sample stays at 256, its choice).
  await mountsFile(['/data', ...SYSTEM, ...pods, pod(999, 'zzz')]);
  const third = await reported(s);
  expect(third).toHaveLength(256);
  expect(third).toContain('/data');
  expect(third).not.toContain(slow);
});
