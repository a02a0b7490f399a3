import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { z } from 'zod';
import type { PushLog } from './status-pusher';

/**
 * A watcher's state kept on disk across restarts (the Docker watcher's ledger of accepted states, the Kubernetes
 * watcher's pods): read once at start, written within `debounceMs` of a change and at shutdown. Reads only a file of
 * this user's own (one planted by another user would choose what the watcher reports) that `schema` accepts; a
 * missing file is no state; an unreadable, empty (a power cut), garbled or unknown one (another version) is logged and
 * ignored: the watcher starts without it, never refuses to. Writes are atomic and durable: a new temporary file
 * (exclusive create, random name, 0600) written, synced and renamed over the old one, then the directory synced (the
 * rename survives a power cut only then; skipped where the platform refuses: EISDIR, EINVAL, EPERM), so a crash or
 * power cut mid-write leaves the previous state; the directory is created 0700. Writes are serialised. No file
 * (`undefined`): nothing is read or written.
 */
export class JsonStateFile<T> {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** The last write failed: the next failure is not logged again (a read-only path would log twice a second). */
  private failing = false;

  constructor(
    readonly file: string | undefined,
    private readonly schema: z.ZodType<T>,
    /** What to write: the state as it is at write time. */
    private readonly snapshot: () => T,
    private readonly log: PushLog,
    private readonly debounceMs = 500,
  ) {}

  /** The state in the file, or undefined (none, unreadable, not understood, not ours). */
  async load(): Promise<T | undefined> {
    if (!this.file) return undefined;
    let text: string;
    try {
      const st = await stat(this.file);
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
        this.log.warn('watcher state file belongs to another user: ignored', { file: this.file });
        return undefined;
      }
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn('watcher state file unreadable: starting without it', { error: (e as Error).message });
      return undefined;
    }
    const parsed = this.schema.safeParse(safeJson(text));
    if (!parsed.success) {
      this.log.warn('watcher state file not understood: starting without it', { file: this.file });
      return undefined;
    }
    return parsed.data;
  }

  /** The state changed: written within `debounceMs`. */
  changed(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, this.debounceMs);
    this.timer.unref();
  }

  /** Writes now (at stop) and waits for it. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.write();
  }

  private write(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    this.writing = this.writing.then(async () => {
      const body = JSON.stringify(this.snapshot());
      const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        const handle = await open(tmp, 'wx', 0o600);
        try {
          await handle.writeFile(body);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tmp, file);
        // In place, but a power cut may undo it: a failed write (the next one replaces it), whose log says so.
        await syncDir(dirname(file)).catch((e: unknown) => {
          throw new Error(
            `written, but its directory not synced (may not survive a power cut): ${(e as Error).message}`,
          );
        });
        if (this.failing) this.log.info('watcher state file written again', { file });
        this.failing = false;
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        if (!this.failing)
          this.log.warn('watcher state file not written (not logged again until a write works)', {
            file,
            error: (e as Error).message,
          });
        this.failing = true;
      }
    });
    return this.writing;
  }
}

/**
 * A watcher's state file: as set, none for `off`, else one per `identity` (what it watches: its engine or cluster,
 * prefix and filters) in `~/.fleetwatch` as `<daemon>-<digest>.json` (the directory created 0700: a world-writable
 * one such as /tmp would let another user plant or block the file).
 */
export function watcherStateFile(daemon: string, set: string | undefined, identity: string[]): string | undefined {
  if (set === 'off') return undefined;
  if (set) return set;
  const key = createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
  return join(homedir(), '.fleetwatch', `${daemon}-${key}.json`);
}

/** What fsync (or open) of a directory fails with where the platform does not sync directories (Windows, some FUSE). */
const DIR_SYNC_REFUSED = new Set(['EISDIR', 'EINVAL', 'EPERM']);

async function syncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(dir, 'r');
  } catch (e) {
    if (DIR_SYNC_REFUSED.has((e as NodeJS.ErrnoException).code ?? '')) return;
    throw e;
  }
  try {
    await handle.sync();
  } catch (e) {
    if (!DIR_SYNC_REFUSED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await handle.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
