import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** The file-system calls writeJsonFile makes (tests pass their own). */
export interface JsonFileFs {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  open(path: string, flags: string, mode?: number): Promise<Pick<fsp.FileHandle, 'writeFile' | 'sync' | 'close'>>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

const nodeFs: JsonFileFs = {
  mkdir: (path, options) => fsp.mkdir(path, options),
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
};

/** What fsync (or open) of a directory fails with where the platform does not sync directories (Windows, some FUSE). */
const DIR_SYNC_REFUSED = new Set(['EISDIR', 'EINVAL', 'EPERM']);

/**
 * The written file's mode: owner only. The assignment file carries the http checks' credential headers (the collector
 * probes with them), and a file made with the default mode (0644 under the usual umask) let every local user read them.
 */
const FILE_MODE = 0o600;

/**
 * Temporary files this process is writing now (writeJsonFile), as absolute normalized paths: a sweep of crash leftovers
 * must leave them, whichever way it and the writer spell the directory (COLLECTOR_ASSIGNMENT_FILE is taken as given:
 * relative, `./`, `//`).
 */
const writing = new Set<string>();

/** Whether `tmp` is the temporary file of a writeJsonFile of this process still in progress. */
export function isBeingWritten(tmp: string): boolean {
  return writing.has(resolve(tmp));
}

/**
 * Writes `value` as JSON to `path` atomically and durably: whole to a new temporary file beside it (its directory made
 * when missing), fsync'd, renamed over the old one, then the directory fsync'd (the rename itself survives a power cut
 * only once the directory is synced, on ext4 and xfs among others). A crash leaves the old file or the new one, never
 * half of one. The file is readable by its owner only (0600), whatever mode the old one had. The temporary file
 * (`<path>.<12 random hex digits>.tmp`) is created exclusively: a name from the pid and a counter was the same in two
 * collectors sharing a directory (pid 1 in every container), and the one that opened it second truncated and wrote over
 * the other's (the stamp file written at shutdown by a collector whose spool lock was taken over). On failure before
 * the rename the temporary file is removed and the error thrown (the old file is kept); a directory fsync refused by
 * the platform (EISDIR, EINVAL, EPERM) is skipped, any other failure of it is thrown — the new file is in place then,
 * but may not survive a power cut (the error says so).
 */
export async function writeJsonFile(path: string, value: unknown, fs: JsonFileFs = nodeFs): Promise<void> {
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const key = resolve(tmp);
  writing.add(key);
  try {
    await writeAndRename(path, tmp, value, fs);
  } finally {
    writing.delete(key);
  }
  try {
    await syncDir(dir, fs);
  } catch (e) {
    const { code, message } = e as NodeJS.ErrnoException;
    throw Object.assign(
      new Error(`${path} written, but its directory not synced (may not survive a power cut): ${message}`, {
        cause: e,
      }),
      { code },
    );
  }
}

async function writeAndRename(path: string, tmp: string, value: unknown, fs: JsonFileFs): Promise<void> {
  // Not removed when this fails: a file of that name (EEXIST) is not ours.
  const fh = await fs.open(tmp, 'wx', FILE_MODE);
  try {
    try {
      await fh.writeFile(JSON.stringify(value));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * fsyncs the directory `dir`, so that a rename or a file made or removed in it survives a power cut; skipped where the
 * platform refuses to sync a directory (EISDIR, EINVAL, EPERM), any other failure thrown.
 */
export async function syncDir(dir: string, fs: JsonFileFs = nodeFs): Promise<void> {
  let fh: Awaited<ReturnType<JsonFileFs['open']>>;
  try {
    fh = await fs.open(dir, 'r');
  } catch (e) {
    if (DIR_SYNC_REFUSED.has((e as NodeJS.ErrnoException).code ?? '')) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    if (!DIR_SYNC_REFUSED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await fh.close();
  }
}
