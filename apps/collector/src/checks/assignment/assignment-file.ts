import { readFile } from 'node:fs/promises';
import { writeJsonFile } from '../../fs/json-file-writer';

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

  save(a: StoredAssignment): Promise<void> {
    return writeJsonFile(this.path, a);
  }
}
