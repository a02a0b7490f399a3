// Process accounting from Linux /proc for the benchmarks: CPU seconds, RSS, pids by command line,
// and the commit / build the figures belong to.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';

const TICKS = 100; // USER_HZ

/** User + system CPU seconds a process has used (NaN when it is gone). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return NaN;
  }
}

export function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Pids whose NUL-separated command line matches `pattern`. */
export function pidsOf(pattern) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (pattern.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8'))) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * CPU use of groups of processes over a window: `start()` then `stop()` gives each
 * group's % of one core (processes alive at both ends) and RSS at the end.
 * A group is `{ label, pids: number[] | () => number[] }`.
 */
export function cpuMeter(groups) {
  const resolved = groups.map((g) => ({ label: g.label, pids: typeof g.pids === 'function' ? g.pids() : g.pids }));
  const before = new Map(resolved.flatMap((g) => g.pids.map((pid) => [pid, cpuSeconds(pid)])));
  const self = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const s = (performance.now() - t0) / 1000;
    const out = resolved.map((g) => {
      let cpu = 0;
      let rss = 0;
      for (const pid of g.pids) {
        const d = cpuSeconds(pid) - before.get(pid);
        if (Number.isFinite(d)) cpu += d;
        const r = rssMb(pid);
        if (Number.isFinite(r)) rss += r;
      }
      return { label: g.label, cpuPct: Math.round((cpu / s) * 100), rssMb: Math.round(rss) };
    });
    const me = process.cpuUsage(self);
    out.push({
      label: 'load generator',
      cpuPct: Math.round(((me.user + me.system) / 1e6 / s) * 100),
      rssMb: Math.round(process.memoryUsage().rss / 1024 / 1024),
    });
    return out;
  };
}

/** Whole-box CPU busy (in cores) over `ms`, from /proc/stat. */
export async function busyCores(ms = 1000) {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + f[4] };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  const ncpu = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l)).length;
  return (1 - (b.idle - a.idle) / (b.total - a.total)) * ncpu;
}

/** The commit the checkout is at, whether apps/ or libs/ differ from it, and when dist/ was built. */
export function codeVersion(root, builtFile) {
  const git = (...a) => spawnSync('git', a, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain', '--', 'apps', 'libs') !== '';
  let builtAt = null;
  try {
    builtAt = statSync(builtFile).mtime.toISOString();
  } catch {
    /* not built */
  }
  return { commit: dirty ? `${commit}+uncommitted` : commit, builtAt };
}

/** Pids of every live descendant of `pid` (children, grandchildren, …), from the parent pids in /proc. */
export function descendants(pid) {
  const children = new Map();
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length) {
    const p = queue.shift();
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [NaN, NaN, NaN];
  }
}
