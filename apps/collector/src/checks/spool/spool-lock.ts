import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { link, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

// One process per spool directory: two collectors appending to the same segments would
// interleave records and confirm each other's. The directory may be a volume that several
// containers (or pods, on several machines) mount, and each container has its own pid
// namespace — the collector is pid 1 in all of them — so a pid alone names no process.
// The LOCK file names its holder: host (the container id in docker, the pod in Kubernetes),
// pid namespace, pid and a random per-process nonce; and the holder touches its mtime every
// `heartbeatMs` (the heartbeat). Another process takes the lock over when:
// - its heartbeat is older than `staleAfterMs` (the holder is gone, whatever host it was on);
// - same host and pid namespace, same pid, another nonce: that pid is now this process,
//   so the one that wrote the lock is gone;
// - same host and pid namespace, another pid that no longer runs (the pid check is valid there);
// - another host/namespace whose heartbeat stands still for `staleAfterMs` while we watch it
//   (a crashed predecessor in a recreated container: the new one waits, then starts).
// A holder that is alive (its pid runs, or its heartbeat moves) is a configuration mistake:
// open fails with a message naming it. Take-overs are serialised by `LOCK.takeover` (created
// exclusively) and re-check the lock under it; the lock itself is only ever created
// exclusively (link of a complete file), so two processes never both hold it. A holder whose
// lock was taken from it (it was frozen past the stale window) sees that at its next
// heartbeat and stops writing (onLost). Lock files of older collectors (just a pid) are
// read as before: taken over unless that pid is another live process.

export interface LockHolder {
  host: string;
  pid: number;
  nonce: string;
  /** The pid namespace ('pid:[4026531836]' on Linux): a pid is comparable only within one. */
  pidns?: string;
}

export interface SpoolLockOptions {
  /** Who this process is (tests inject one per simulated process). Default: this process. */
  self?: LockHolder;
  now?: () => number;
  /** How often the holder refreshes the lock (default 5 s). */
  heartbeatMs?: number;
  /** A lock whose heartbeat is older is stale (default 4 heartbeats). */
  staleAfterMs?: number;
  isAlive?: (pid: number) => boolean;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** The lock was taken over by `by` (or could not be refreshed): stop writing. */
  onLost?: (by: LockHolder | undefined) => void;
}

export interface SpoolLock {
  readonly holder: LockHolder;
  /** Refreshes the lock now; false once it is lost. */
  heartbeat(): Promise<boolean>;
  /**
   * Before a write: true at once if the last heartbeat is recent, else (the process stalled — its heartbeat may have
   * gone stale and the lock been taken over meanwhile) a heartbeat now, which finds a take-over before anything is written.
   */
  check(): Promise<boolean>;
  /**
   * Whether this process may write the directory's other files (the stamp file, beside the spool): as check() while
   * held; false once lost; after release, true only while no other process has taken the lock since.
   */
  owns(): Promise<boolean>;
  release(): Promise<void>;
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

const thisProcess: LockHolder = { host: hostname(), pid: process.pid, nonce: randomUUID(), pidns: pidNamespace() };
/** Locks this process holds (path → nonce): a second Spool on the same directory is refused, not given it. */
const heldHere = new Map<string, string>();

type Seen =
  | { kind: 'none' }
  | { kind: 'legacy'; pid: number; raw: string; mtimeMs: number }
  | { kind: 'holder'; holder: LockHolder; raw: string; mtimeMs: number }
  | { kind: 'garbage'; raw: string; mtimeMs: number };

function parse(raw: string): LockHolder | number | undefined {
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text);
  try {
    const o = JSON.parse(text) as Partial<LockHolder>;
    if (typeof o.host === 'string' && Number.isInteger(o.pid) && typeof o.nonce === 'string' && o.nonce !== '')
      return {
        host: o.host,
        pid: o.pid as number,
        nonce: o.nonce,
        pidns: typeof o.pidns === 'string' ? o.pidns : undefined,
      };
  } catch {
    // garbage
  }
  return undefined;
}

async function look(path: string): Promise<Seen> {
  try {
    const [raw, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const p = parse(raw);
    if (typeof p === 'number') return { kind: 'legacy', pid: p, raw, mtimeMs: st.mtimeMs };
    if (p) return { kind: 'holder', holder: p, raw, mtimeMs: st.mtimeMs };
    return { kind: 'garbage', raw, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireSpoolLock(dir: string, options: SpoolLockOptions = {}): Promise<SpoolLock> {
  const self = options.self ?? thisProcess;
  const now = options.now ?? Date.now;
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const staleAfterMs = options.staleAfterMs ?? 4 * heartbeatMs;
  const alive = options.isAlive ?? isAlive;
  const path = join(dir, 'LOCK');
  const content = JSON.stringify({ ...self, since: new Date(now()).toISOString() }) + '\n';
  const touch = (p: string) => utimes(p, now() / 1000, now() / 1000);

  /** Creates the lock exclusively, whole (a reader never sees it half written). */
  const create = async (): Promise<boolean> => {
    const tmp = `${path}.${self.nonce}.tmp`;
    await writeFile(tmp, content);
    try {
      await touch(tmp);
      await link(tmp, path);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: our temporary file is gone — the open of a process that took the lock meanwhile swept it
      // (spool-recovery.ts), so the lock is another's (thrown, a lost holder's check() took it for still held).
      if (code === 'EEXIST' || code === 'ENOENT') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw e;
      // A filesystem without hard links: exclusive create, then write (a reader may see it empty for a moment).
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(content);
        await fh.close();
        await touch(path);
        return true;
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e2;
      }
    } finally {
      await rm(tmp, { force: true });
    }
  };

  /** Replaces `seen` (judged stale or dead) by our lock, unless it changed meanwhile. */
  const takeOver = async (seen: Exclude<Seen, { kind: 'none' }>): Promise<boolean> => {
    const mutex = `${path}.takeover`;
    try {
      const fh = await open(mutex, 'wx');
      await fh.writeFile(content);
      await fh.close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // Another process is taking over right now (milliseconds); one that died doing it left this behind.
      const st = await stat(mutex).catch(() => undefined);
      if (st && now() - st.mtimeMs > Math.max(10_000, staleAfterMs)) await rm(mutex, { force: true });
      else await sleep(20);
      return false;
    }
    try {
      const again = await look(path);
      if (again.kind !== 'none' && (again.raw !== seen.raw || again.mtimeMs !== seen.mtimeMs)) return false;
      await rm(path, { force: true });
      return await create();
    } finally {
      await rm(mutex, { force: true });
    }
  };

  const describe = (h: LockHolder, mtimeMs: number) =>
    `process ${h.pid} on host ${h.host} (last heartbeat ${Math.round((now() - mtimeMs) / 1000)} s ago)`;
  const refuse = (who: string): never => {
    throw new Error(
      `spool directory ${dir} is in use by ${who}: give each collector its own COLLECTOR_SPOOL_DIR ` +
        `(one volume per collector). If that process is gone, its lock goes stale ${Math.round(staleAfterMs / 1000)} s ` +
        `after its last heartbeat and the next start takes it over — or delete ${path} once it is surely stopped`,
    );
  };

  let watched: { raw: string; mtimeMs: number; since: number } | undefined;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 1_000)
      throw new Error(`spool directory ${dir}: could not take its lock (${path}) — it keeps changing`);
    const seen = await look(path);
    if (seen.kind === 'none') {
      if (await create()) break;
      continue;
    }
    if (seen.kind === 'garbage') {
      // Possibly being written (a filesystem without hard links): look again before taking it.
      if (attempt < 3) {
        await sleep(50);
        continue;
      }
      if (await takeOver(seen)) break;
      continue;
    }
    if (seen.kind === 'legacy') {
      // An older collector's lock (just a pid): as it always was read.
      if (seen.pid > 0 && seen.pid !== self.pid && alive(seen.pid)) refuse(`process ${seen.pid}`);
      if (await takeOver(seen)) break;
      continue;
    }
    const h = seen.holder;
    const sameNamespace =
      h.host === self.host && (h.pidns === undefined || self.pidns === undefined || h.pidns === self.pidns);
    let gone: boolean;
    if (h.nonce === self.nonce) {
      // Written by this very process: refused if a Spool here still holds it, else left over from one that did.
      if (heldHere.get(path) === self.nonce) refuse(`this process (another Spool in it has it open)`);
      gone = true;
    } else if (now() - seen.mtimeMs > staleAfterMs) gone = true;
    else if (sameNamespace && h.pid === self.pid) gone = true;
    else if (sameNamespace) {
      if (alive(h.pid)) refuse(describe(h, seen.mtimeMs));
      gone = true;
    } else {
      // Another host or pid namespace, heartbeat fresh: alive if it moves, gone if it stands still.
      if (watched && watched.raw === seen.raw && watched.mtimeMs !== seen.mtimeMs) refuse(describe(h, seen.mtimeMs));
      if (!watched || watched.raw !== seen.raw) {
        watched = { raw: seen.raw, mtimeMs: seen.mtimeMs, since: now() };
        options.logger?.warn(
          { dir, holder: h, heartbeatAgeMs: now() - seen.mtimeMs, waitMs: staleAfterMs },
          'spool: directory locked by another host; waiting to see whether its heartbeat moves',
        );
      }
      gone = now() - watched.since > staleAfterMs;
      if (!gone) {
        await sleep(Math.max(10, Math.min(250, heartbeatMs / 4)));
        attempt = Math.min(attempt, 10);
        continue;
      }
    }
    if (await takeOver(seen)) break;
  }
  heldHere.set(path, self.nonce);

  let lost = false;
  let released = false;
  let beating: Promise<boolean> | undefined;
  let lastBeatAt = now();
  const beat = async (): Promise<boolean> => {
    if (lost) return false;
    const seen = await look(path);
    if (seen.kind === 'holder' && seen.holder.nonce === self.nonce) {
      await touch(path);
      lastBeatAt = now();
      return true;
    }
    // Deleted by hand: take it again if nobody else did.
    if (seen.kind === 'none' && (await create())) {
      lastBeatAt = now();
      options.logger?.warn({ dir }, 'spool: its LOCK file was deleted while held; written again');
      return true;
    }
    const by = seen.kind === 'holder' ? seen.holder : undefined;
    lost = true;
    clearInterval(timer);
    if (heldHere.get(path) === self.nonce) heldHere.delete(path);
    options.logger?.error(
      { dir, by },
      `spool: the lock of ${dir} was taken over${by ? ` by process ${by.pid} on host ${by.host}` : ''}: this process stops writing to it`,
    );
    options.onLost?.(by);
    return false;
  };
  const heartbeat = (): Promise<boolean> => {
    beating ??= beat().finally(() => (beating = undefined));
    return beating;
  };
  const timer = setInterval(
    () =>
      void heartbeat().catch((e: unknown) =>
        options.logger?.error({ dir, error: (e as Error).message }, 'spool: could not refresh its lock'),
      ),
    heartbeatMs,
  );
  timer.unref();

  return {
    holder: self,
    heartbeat,
    // A lock that cannot be read (an I/O error) is not judged lost here: the write that follows meets the same error.
    check: async () => !lost && (now() - lastBeatAt < staleAfterMs / 2 || (await heartbeat().catch(() => true))),
    owns: async () => {
      if (lost) return false;
      if (!released) return heartbeat().catch(() => true);
      const seen = await look(path).catch(() => ({ kind: 'none' }) as const);
      return seen.kind === 'none' || (seen.kind === 'holder' && seen.holder.nonce === self.nonce);
    },
    release: async () => {
      released = true;
      clearInterval(timer);
      await beating?.catch(() => undefined);
      if (heldHere.get(path) === self.nonce) heldHere.delete(path);
      if (lost) return;
      const seen = await look(path).catch(() => ({ kind: 'none' }) as const);
      if (seen.kind === 'holder' && seen.holder.nonce === self.nonce) await rm(path, { force: true });
    },
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
