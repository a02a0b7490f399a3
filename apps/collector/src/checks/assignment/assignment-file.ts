import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isBeingWritten, writeJsonFile } from '../../fs/json-file-writer';

// The last assignment this collector received, on disk, so it starts and keeps checking
// with the bus, the database and sync-orchestrator all away (SPEC §2). Written by
// writeJsonFile (temporary file, fsync, rename, directory fsync): a crash leaves either
// the old file or the new one, never half of one.

export interface StoredAssignment {
  location: string;
  /** Config version and content hash the owner answered with. */
  version: number;
  hash: string;
  /** When it was received from the owner. */
  receivedAt: string;
  /** As the owner sent them; validated again when loaded. */
  checks: unknown[];
}

/**
 * A temporary file a crash left older than this is swept at load (one being written now is milliseconds old: another
 * collector given the same COLLECTOR_ASSIGNMENT_FILE by mistake may be writing one).
 */
const LEFTOVER_AGE_MS = 60_000;

export class AssignmentFile {
  /**
   * `mayWrite`: whether this process may still write the file (ChecksService: its spool directory's lock is still its
   * own). A collector whose lock was taken over (frozen past its stale window, stopping now) must not put the assignment
   * it received last over the one the new holder stored.
   */
  constructor(
    readonly path: string,
    private readonly mayWrite: () => Promise<boolean> = async () => true,
  ) {}

  /**
   * The stored assignment, undefined when there is none; throws when the file exists but cannot be read as one. Removes
   * first the temporary files of writes a crash interrupted (see sweepLeftovers).
   */
  async load(): Promise<StoredAssignment | undefined> {
    if (await this.mayWrite().catch(() => false)) await this.sweepLeftovers().catch(() => undefined);
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const v = JSON.parse(text) as Partial<StoredAssignment> | null;
    if (
      !v ||
      typeof v.location !== 'string' ||
      typeof v.hash !== 'string' ||
      !Number.isInteger(v.version) ||
      !Array.isArray(v.checks)
    )
      throw new Error(`${this.path} is not an assignment file`);
    return v as StoredAssignment;
  }

  /** Stores `a`; nothing is written once mayWrite says the file is no longer this process's to write. */
  async save(a: StoredAssignment): Promise<void> {
    if (!(await this.mayWrite())) return;
    await writeJsonFile(this.path, a);
  }

  /**
   * writeJsonFile's temporary files of this file (`<name>.<12 hex digits>.tmp`) that a crash left. The spool's open
   * sweeps them only in the spool directory: a file that COLLECTOR_ASSIGNMENT_FILE puts elsewhere (each as large as the
   * assignment) kept one per interrupted write, for good. Only those older than a minute and not being written by this
   * process; any other name is not ours and left — older collectors' `<name>.<pid>.tmp` forms too, since the directory
   * may be shared with other tools (/etc) whose temporary files look the same.
   */
  private async sweepLeftovers(): Promise<void> {
    const dir = dirname(this.path);
    const name = basename(this.path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const ours = new RegExp(`^${name}\\.[0-9a-f]{12}\\.tmp$`);
    for (const n of await readdir(dir)) {
      const tmp = join(dir, n);
      if (!ours.test(n) || isBeingWritten(tmp)) continue;
      const st = await stat(tmp).catch(() => undefined);
      if (st?.isFile() && Date.now() - st.mtimeMs > LEFTOVER_AGE_MS) await rm(tmp, { force: true });
    }
  }
}
