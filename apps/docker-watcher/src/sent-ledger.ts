import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { PushLog } from '@fleetwatch/pusher';

/** What the ingest accepted for one container: the (unsalted) state ids, oldest first, and how to name it. */
export interface LedgerEntry {
  history: string[];
  name: string;
  image?: string;
}

const HISTORY_MAX = 32;
const fileSchema = z.object({
  version: z.literal(1),
  containers: z.record(
    z.string().max(128),
    z.object({
      history: z.array(z.string().max(512)).max(HISTORY_MAX),
      name: z.string().max(512),
      image: z.string().max(1024).optional(),
    }),
  ),
});

/**
 * The states the ingest accepted per container, kept on disk across restarts. Docker keeps no
 * time for a pause, so a container paused and unpaused while no watcher ran is back in a state
 * whose update id was stored long ago: without this ledger a restarted watcher resends that id
 * and the ingest drops it as a repeat, leaving the container PAUSED. With it, the watcher knows
 * the state is a return to an earlier one (and salts the id), knows which states it need not
 * send again (no duplicates on restart), and which containers vanished while it was away.
 * Only accepted updates are recorded: one still queued when the process died is sent again.
 */
export class SentLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string | undefined,
    private readonly log: PushLog,
    private readonly debounceMs = 500,
  ) {}

  /** Reads the file; a missing file is an empty ledger, an unreadable one is logged and ignored. */
  async load(): Promise<void> {
    if (!this.file) return;
    let text: string;
    try {
      // Only a file of our own: one planted by another user would choose what this watcher reports.
      const st = await stat(this.file);
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
        this.log.warn('watcher state file belongs to another user: ignored', { file: this.file });
        return;
      }
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn('watcher state file unreadable: starting without it', { error: (e as Error).message });
      return;
    }
    const parsed = fileSchema.safeParse(safeJson(text));
    if (!parsed.success) {
      this.log.warn('watcher state file not understood: starting without it', { file: this.file });
      return;
    }
    for (const [id, entry] of Object.entries(parsed.data.containers)) this.entries.set(id, entry);
  }

  get all(): ReadonlyMap<string, LedgerEntry> {
    return this.entries;
  }

  accepted(id: string, base: string, name: string, image?: string): void {
    const before = this.entries.get(id)?.history ?? [];
    const history = [...before.filter((h) => h !== base), base].slice(-HISTORY_MAX);
    this.entries.set(id, { history, name, ...(image ? { image } : {}) });
    this.schedule();
  }

  forget(id: string): void {
    if (this.entries.delete(id)) this.schedule();
  }

  /** Writes now (at stop) and waits for it. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.write();
  }

  private schedule(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, this.debounceMs);
    this.timer.unref();
  }

  /**
   * Atomic and durable: a new temporary file (exclusive create, random name, 0600) written, synced and
   * renamed over the old one, so a crash mid-write leaves the previous ledger. Writes are serialised.
   */
  private write(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    this.writing = this.writing.then(async () => {
      const body = JSON.stringify({ version: 1, containers: Object.fromEntries(this.entries) });
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
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        this.log.warn('watcher state file not written', { file, error: (e as Error).message });
      }
    });
    return this.writing;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
