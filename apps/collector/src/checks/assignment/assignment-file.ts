import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

// The last assignment this collector received, on disk, so it starts and keeps checking
// with the bus, the database and sync-orchestrator all away (SPEC §2). Written whole to
// a temporary file, fsync'd, then renamed over the old one (and the directory fsync'd):
// a crash leaves either the old file or the new one, never half of one.

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

export class AssignmentFile {
  constructor(readonly path: string) {}

  /** The stored assignment, undefined when there is none; throws when the file exists but cannot be read as one. */
  async load(): Promise<StoredAssignment | undefined> {
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

  async save(a: StoredAssignment): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(a));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    // The rename itself is durable only once the directory is synced.
    const dir = await open(dirname(this.path), 'r');
    await dir.sync().catch(() => undefined);
    await dir.close();
  }
}
