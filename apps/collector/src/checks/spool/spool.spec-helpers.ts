// Shared by the Spool's unit specs (spool.spec.ts, spool-crash-files.spec.ts): temporary spool directories.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Returns a function that makes a new temporary directory (named from `prefix`) at each call; all of them are removed
 * after the calling spec file's tests (an `afterAll` registered here, so call this at the top level of the spec).
 */
export function tempDirs(prefix: string): () => Promise<string> {
  let dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    dirs = [];
  });
  return async () => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}
