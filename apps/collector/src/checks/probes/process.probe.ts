import { constants as fsConstants } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename } from 'node:path';
import type { MetricSample, Probe, ProbeContext, ProbeOutcome } from '../probe';
import { deadlineSignal } from './connect-target';

// A local process by name or pid file: is it running, and what does it cost (CPU, RSS)?
// Linux only: everything comes from /proc, no child process and no native module, so a
// check costs a directory listing and a few small reads.
//
// CPU is a rate, so it needs two readings of utime+stime. Each pid's last reading is
// kept (keyed by pid and its start time, so a reused pid never inherits another
// process's reading): a check that runs every 30 s reports the process's average CPU
// over those 30 s — what it really used since the collector last looked at it (by this
// check or another on the same process) — rather than a 100 ms glimpse. A pid seen for
// the first time (first run, restarted process) is read twice, 100 ms apart (less when
// the check's deadline is nearer). `result.cpuWindowMs` says which window was used.

/** Shortest window a CPU rate is computed over. */
export const CPU_MIN_WINDOW_MS = 100;
/** Pids listed in `result.pids` (the count is exact beyond it). */
const MAX_LISTED_PIDS = 100;
/** Readings kept for later windows; older or surplus ones are dropped. */
const READING_MAX_AGE_MS = 60 * 60 * 1000;
const MAX_READINGS = 10_000;

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time after boot, in clock ticks: with the pid, it names one process. */
  startTicks: number;
  /** The kernel's PF_* flags (field 9): PF_KTHREAD marks a kernel thread. */
  flags: number;
}

/** PF_KTHREAD (include/linux/sched.h): the process is a kernel thread. */
const PF_KTHREAD = 0x00200000;

/** A kernel thread: no program of a user's, so never what a pid file was written for. */
export const isKernelThread = (s: ProcStat): boolean => (s.flags & PF_KTHREAD) !== 0;

/**
 * Stopped by a signal (SIGSTOP, SIGTSTP: state T): it exists but does no work, so it is not running. A tracing stop
 * (state t: a debugger, strace between two system calls) is left running: strace alone would make it flap.
 */
export const isStopped = (s: ProcStat): boolean => s.state === 'T';

/** Parses /proc/<pid>/stat. The name sits in parentheses and may hold spaces and ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); flags, utime, stime and starttime are fields 9, 14, 15 and 22.
  const flags = Number(rest[6]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const start = Number(rest[19]);
  if (!Number.isInteger(pid) || ![utime, stime, start].every(Number.isFinite)) return null;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    cpuTicks: utime + stime,
    startTicks: start,
    flags: Number.isInteger(flags) && flags >= 0 ? flags : 0,
  };
}

/** VmRSS of /proc/<pid>/status in bytes (0 for kernel threads, which have none). */
export function parseVmRssBytes(text: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Does a process with this comm and command line go by `name`? The comm (at most 15
 * characters, so only exact for short names), argv[0] and its base name, and — for
 * programs that rewrite their title into one string (`nginx: worker process`) — the
 * first word of the command line and its base name.
 */
export function processGoesBy(name: string, comm: string, cmdline: string): boolean {
  const argv0 = cmdline.split('\0')[0] ?? '';
  const firstWord = argv0.split(' ')[0] ?? '';
  // A comm of 15 characters may be a longer name cut (`postgres-exporter` → `postgres-export`): a check of the
  // 15-character name was UP on that other program. The command line says when it was; a title rewritten as nginx's
  // (`abcdefghijklmno: worker`) names the program up to its colon.
  const program = (path: string): string => basename(path).split(/[ :]/)[0] ?? '';
  const cut =
    comm.length === 15 && [program(argv0), program(firstWord)].some((b) => b.length > 15 && b.startsWith(comm));
  if (name.length <= 15 && comm === name && !cut) return true;
  if (!argv0) return false;
  return [argv0, basename(argv0), firstWord, basename(firstWord)].includes(name);
}

/** A pid file's content: one positive decimal pid, surrounding white space allowed. */
export function parsePidFile(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return null;
  const pid = Number(t);
  return pid > 0 && pid <= 4_194_304 ? pid : null;
}

// Clock ticks per second (USER_HZ), from the auxiliary vector the kernel gave this
// process (AT_CLKTCK = 17) — what sysconf(_SC_CLK_TCK) reads, without a child process.
let clockTicks: number | undefined;
async function ticksPerSecond(): Promise<number> {
  if (clockTicks !== undefined) return clockTicks;
  clockTicks = 100;
  try {
    const auxv = await readFile('/proc/self/auxv');
    const le = endianness() === 'LE';
    for (let off = 0; off + 16 <= auxv.length; off += 16) {
      const key = le ? auxv.readBigUInt64LE(off) : auxv.readBigUInt64BE(off);
      if (key === 0n) break;
      if (key === 17n) {
        const v = Number(le ? auxv.readBigUInt64LE(off + 8) : auxv.readBigUInt64BE(off + 8));
        if (v > 0) clockTicks = v;
        break;
      }
    }
  } catch {
    // 100 is USER_HZ on every mainstream architecture.
  }
  return clockTicks;
}

interface Reading {
  cpuTicks: number;
  at: number;
}
const readings = new Map<string, Reading>();
const readingKey = (s: ProcStat) => `${s.pid}:${s.startTicks}`;

function remember(s: ProcStat, at: number): void {
  readings.delete(readingKey(s));
  readings.set(readingKey(s), { cpuTicks: s.cpuTicks, at });
  // Insertion order is age order: drop from the front.
  for (const [key, r] of readings) {
    if (readings.size <= MAX_READINGS && at - r.at < READING_MAX_AGE_MS) break;
    readings.delete(key);
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    // Gone between listing and reading, or not ours to read: not this process.
    return null;
  }
}

async function statOf(pid: number): Promise<ProcStat | null> {
  const text = await readText(`/proc/${pid}/stat`);
  const s = text ? parseProcStat(text) : null;
  // A zombie has exited; only its parent has not collected it yet.
  return s && s.state !== 'Z' && s.state !== 'X' ? s : null;
}

/**
 * Pids going by `name`, the collector's own left out: a check of `node` (an application run by Node) was UP for as long
 * as the collector itself ran, the application down or not. `self` says whether the collector went by the name.
 */
async function pidsNamed(name: string, signal: AbortSignal): Promise<{ pids: number[]; self: boolean }> {
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
  let self = false;
  const found: number[] = [];
  for (let i = 0; i < pids.length && !signal.aborted; i += 64) {
    const batch = pids.slice(i, i + 64);
    const hits = await Promise.all(
      batch.map(async (pid) => {
        const [comm, cmdline] = await Promise.all([readText(`/proc/${pid}/comm`), readText(`/proc/${pid}/cmdline`)]);
        if (comm === null) return null;
        if (!processGoesBy(name, comm.replace(/\n$/, ''), cmdline ?? '')) return null;
        if (pid !== process.pid) return pid;
        self = true;
        return null;
      }),
    );
    for (const h of hits) if (h !== null) found.push(h);
  }
  return { pids: found, self };
}

type Found = { ok: true; stats: ProcStat[] } | { ok: false; reason: string };

async function findByPidFile(path: string): Promise<Found> {
  let text: string;
  try {
    // A pid file is a few bytes; never read more of whatever file a check names. Opened without blocking, and only a
    // regular file is read: a FIFO held open() — a libuv worker thread — for good, one more each run, until all four
    // were stuck and the collector's spool writes and DNS lookups queued behind them (every check stalled).
    const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    try {
      if (!(await fh.stat()).isFile()) return { ok: false, reason: `pid file ${path} is not a regular file` };
      const buf = Buffer.alloc(64);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, reason: `pid file ${path} does not exist` };
    return { ok: false, reason: `pid file ${path} cannot be read (${code ?? 'error'})` };
  }
  // The content is not repeated: the path may name a file that is no pid file at all.
  const pid = parsePidFile(text);
  if (pid === null) return { ok: false, reason: `pid file ${path} does not hold a pid` };
  const stat = await statOf(pid);
  if (!stat) return { ok: false, reason: `process ${pid} (from pid file ${path}) is not running` };
  // A stale pid file whose pid a kernel thread took (low pids after a reboot, the file kept on disk): UP before, for
  // a process that had long exited. (A pid reused by another user process cannot be told apart by the pid alone.)
  if (isKernelThread(stat))
    return {
      ok: false,
      reason: `process ${pid} (from pid file ${path}) is not running: that pid is now kernel thread "${stat.comm}" (stale pid file)`,
    };
  if (isStopped(stat))
    return { ok: false, reason: `process ${pid} (from pid file ${path}) is stopped (state T, SIGSTOP or SIGTSTP)` };
  return { ok: true, stats: [stat] };
}

async function findByName(name: string, signal: AbortSignal): Promise<Found> {
  const { pids, self } = await pidsNamed(name, signal);
  const found = (await Promise.all(pids.map(statOf))).filter((s): s is ProcStat => s !== null);
  // Stopped ones (SIGSTOP) are there but do no work: they were counted as running, and the check UP.
  const stats = found.filter((s) => !isStopped(s));
  if (stats.length === 0) {
    const stopped = found.slice(0, 5).map((s) => s.pid);
    if (stopped.length > 0)
      return {
        ok: false,
        reason: `process "${name}" is stopped (state T, SIGSTOP or SIGTSTP): pid ${stopped.join(', ')}${found.length > 5 ? ', …' : ''}`,
      };
    return { ok: false, reason: `no process named "${name}" is running${self ? ' (but this collector)' : ''}` };
  }
  return { ok: true, stats };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * CPU of `stats` in percent of one core (100 = one core busy; several threads can go
 * beyond), summed over the processes, and the window it was measured over.
 */
async function cpuOf(
  stats: ProcStat[],
  deadline: number,
  signal: AbortSignal,
): Promise<{ cpuPct: number; windowMs: number }> {
  const hz = await ticksPerSecond();
  const now = performance.now();
  let pct = 0;
  let windowMs = 0;
  const fresh: ProcStat[] = [];
  for (const s of stats) {
    const prev = readings.get(readingKey(s));
    if (prev && now - prev.at >= CPU_MIN_WINDOW_MS && s.cpuTicks >= prev.cpuTicks) {
      pct += ((s.cpuTicks - prev.cpuTicks) / hz / ((now - prev.at) / 1000)) * 100;
      windowMs = Math.max(windowMs, now - prev.at);
    } else fresh.push(s);
    remember(s, now);
  }
  if (fresh.length > 0) {
    // Leave a little of the deadline for the answer itself.
    const wait = Math.max(0, Math.min(CPU_MIN_WINDOW_MS, deadline - now - 20));
    await sleep(wait, signal);
    for (const s of fresh) {
      const again = await statOf(s.pid);
      const at = performance.now();
      if (!again || again.startTicks !== s.startTicks) continue; // exited meanwhile
      if (at - now > 0) pct += ((again.cpuTicks - s.cpuTicks) / hz / ((at - now) / 1000)) * 100;
      windowMs = Math.max(windowMs, at - now);
      remember(again, at);
    }
  }
  return { cpuPct: Math.round(pct * 100) / 100, windowMs: Math.round(windowMs) };
}

/** Why the attempt stopped early: its own deadline, or the runner's signal (timeout, shutdown). */
function abortReason(ctx: ProbeContext): string {
  const reason: unknown = ctx.signal.reason;
  if (!ctx.signal.aborted || (reason instanceof Error && reason.name === 'TimeoutError'))
    return `timed out after ${ctx.timeoutMs} ms`;
  return reason instanceof Error && reason.message ? `aborted (${reason.message})` : 'aborted';
}

export const processProbe: Probe<'process'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  if (process.platform !== 'linux')
    return {
      ok: false,
      latencyMs: null,
      failureReason: `process checks read /proc and run on Linux only; this collector runs on ${process.platform}`,
      facts: {},
    };
  const started = performance.now();
  const deadline = started + ctx.timeoutMs;
  const signal = AbortSignal.any([ctx.signal, deadlineSignal(ctx.timeoutMs)]);
  let found: Found;
  if (check.pidFile !== undefined) found = await findByPidFile(check.pidFile);
  else if (check.processName !== undefined) found = await findByName(check.processName, signal);
  else found = { ok: false, reason: 'the check names neither processName nor pidFile' };
  // The time to find the process; the CPU sampling wait below is not the target's slowness.
  const latencyMs = Math.round((performance.now() - started) * 100) / 100;
  if (signal.aborted) return { ok: false, latencyMs: null, failureReason: abortReason(ctx), facts: {} };
  if (!found.ok) return { ok: false, latencyMs, failureReason: found.reason, facts: { result: { count: 0 } } };

  const stats = found.stats;
  const rss = await Promise.all(
    stats.map(async (s) => parseVmRssBytes((await readText(`/proc/${s.pid}/status`)) ?? '')),
  );
  const rssBytes = rss.reduce((a, b) => a + b, 0);
  const { cpuPct, windowMs } = await cpuOf(stats, deadline, signal);
  const result = {
    pids: stats.slice(0, MAX_LISTED_PIDS).map((s) => s.pid),
    count: stats.length,
    cpuPct,
    cpuWindowMs: windowMs,
    rssBytes,
  };
  const metrics: MetricSample[] = (['count', 'cpuPct', 'rssBytes'] as const).map((name) => ({
    name,
    labels: {},
    value: result[name],
  }));
  return { ok: true, latencyMs, facts: { result, metrics } };
};
