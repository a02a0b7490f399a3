import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// One process per spool directory: two collectors appending to the same segments would
// interleave records and confirm each other's. The lock file holds the owner's pid; a
// lock whose process is gone (a crash) is taken over, one held by a live process is a
// configuration mistake and stops the collector with a message that says so.

export async function acquireSpoolLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  try {
    const fh = await open(path, 'wx');
    await fh.writeFile(String(process.pid));
    await fh.close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner))
      throw new Error(
        `spool directory ${dir} is in use by process ${owner}: give each collector its own COLLECTOR_SPOOL_DIR`,
      );
    await writeFile(path, String(process.pid));
  }
  return async () => {
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (owner === process.pid) await rm(path, { force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
