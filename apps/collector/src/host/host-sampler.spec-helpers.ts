// Shared by HostSampler's unit specs (host-sampler.*.spec.ts): a fake /proc for `procRoot`.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A new temporary directory (named from `prefix`) laid out as the /proc a HostSampler reads: one idle CPU, 4 GB of
 * memory (3 GB available), no interfaces, no disk counters and an empty `self/` (the caller writes `self/mounts`).
 * The caller removes it.
 */
export async function fakeProcRoot(prefix: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(root, 'net'));
  await mkdir(join(root, 'self'));
  await writeFile(join(root, 'stat'), 'cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0 0 0\nctxt 1\n');
  await writeFile(join(root, 'meminfo'), 'MemTotal:  4000000 kB\nMemAvailable:  3000000 kB\n');
  await writeFile(join(root, 'net/dev'), 'Inter-|\n face |\n');
  await writeFile(join(root, 'diskstats'), '');
  return root;
}
