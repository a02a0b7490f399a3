import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCheckFields } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import fc from 'fast-check';
import type { ProbeContext } from '../probe';
import {
  CPU_MIN_WINDOW_MS,
  isKernelThread,
  parsePidFile,
  parseProcStat,
  parseVmRssBytes,
  processGoesBy,
  processProbe,
  type ProcStat,
} from './process.probe';

// Real processes on this machine's /proc: a `sleep` child under a name of its own
// (argv[0] set by spawn, as `exec -a` does), a busy loop, pid files, and this process.

function ctx(timeoutMs = 5000): ProbeContext {
  return { signal: new AbortController().signal, timeoutMs, policy: createTargetPolicy([]), env: {} };
}
const check = (fields: { processName?: string; pidFile?: string }) =>
  processCheckFields.parse({ name: 'p', type: 'process', ...fields });

const children: ChildProcess[] = [];
function child(argv0: string, command: string, args: string[]): Promise<ChildProcess> {
  const c = spawn(command, args, { argv0, stdio: 'ignore' });
  children.push(c);
  return new Promise((resolve, reject) => {
    c.once('spawn', () => resolve(c));
    c.once('error', reject);
  });
}
function exited(c: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()),
  );
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-process-probe-'));
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(children.map(exited));
  await rm(dir, { recursive: true, force: true });
});

describe('process probe: parsing /proc', () => {
  it('reads utime+stime and start time after a name holding spaces and parentheses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4_194_304 }),
        fc.string({ minLength: 0, maxLength: 15 }).filter((s) => !s.includes('\n')),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (pid, comm, utime, stime, start) => {
          const fields = ['S', '1', '1', '1', '0', '-1', '4194304', '0', '0', '0', '0', utime, stime, '0', '0', '20'];
          const more = ['0', '1', '0', start, '1000', '10'];
          const line = `${pid} (${comm}) ${[...fields, ...more].join(' ')}\n`;
          expect(parseProcStat(line)).toEqual({
            pid,
            comm,
            state: 'S',
            cpuTicks: utime + stime,
            startTicks: start,
            flags: 4194304,
          });
        },
      ),
    );
  });

  it('reads PF_KTHREAD (0x00200000) in the flags as a kernel thread, and nothing else (a box with none visible)', () => {
    const line = (flags: number) => `7 (kworker/0:1) I 2 0 0 0 -1 ${flags} 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0\n`;
    expect(isKernelThread(parseProcStat(line(0x00208040)) as ProcStat)).toBe(true);
    expect(isKernelThread(parseProcStat(line(0x00400100)) as ProcStat)).toBe(false);
  });

  it('refuses a stat line it cannot read', () => {
    expect(parseProcStat('')).toBeNull();
    expect(parseProcStat('12 (x S 1')).toBeNull();
    expect(parseProcStat('12 (x) S 1 2')).toBeNull();
  });

  it('takes VmRSS in kB as bytes, 0 when there is none (kernel threads)', () => {
    expect(parseVmRssBytes('Name:\tx\nVmRSS:\t   1234 kB\nVmSwap:\t0 kB\n')).toBe(1234 * 1024);
    expect(parseVmRssBytes('Name:\tkthreadd\nThreads:\t1\n')).toBe(0);
  });

  it('reads a pid file holding one pid and nothing else', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4_194_304 }), fc.constantFrom('', ' ', '\n', '\r\n', '\t'), (pid, ws) => {
        expect(parsePidFile(`${ws}${pid}${ws}`)).toBe(pid);
      }),
    );
    for (const bad of ['', '0', '-5', '12 13', '12a', '0x1f', '99999999999', 'root:x:0:0', '1.5'])
      expect(parsePidFile(bad)).toBeNull();
  });

  it.each([
    ['sleep', 'sleep', 'sleep\x0060\x00', true],
    ['sleep', 'sleep', '/usr/bin/sleep\x0060\x00', true],
    ['fw-x', 'sleep', 'fw-x\x0060\x00', true], // exec -a fw-x sleep 60
    ['/usr/bin/sleep', 'sleep', '/usr/bin/sleep\x0060\x00', true],
    ['nginx:', 'nginx', 'nginx: worker process\x00', true], // title rewritten into one string
    ['nginx', 'nginx', 'nginx: worker process\x00', true],
    ['sleep', 'sleepy', 'sleepy\x00', false],
    ['slee', 'sleep', 'sleep\x00', false],
    ['kthreadd', 'kthreadd', '', true], // kernel threads: comm only
    // comm is cut at 15 characters, so a longer name is matched by the command line only.
    ['a-very-long-name-1', 'a-very-long-nam', 'other\x00', false],
    ['a-very-long-name-1', 'a-very-long-nam', 'a-very-long-name-1\x00', true],
    // A 15-character name is not a longer program whose comm was cut to it.
    ['postgres-export', 'postgres-export', '/usr/bin/postgres-exporter\x00--web\x00', false],
    ['postgres-export', 'postgres-export', '/usr/bin/postgres-export\x00', true],
    ['abcdefghijklmno', 'abcdefghijklmno', 'worker: title\x00', true], // 15 characters, title rewritten
    // Names of 15 characters or fewer where nothing was cut match as before.
    ['nginx', 'nginx', 'nginx: master process /usr/sbin/nginx -g daemon off;\x00', true],
    ['postgres', 'postgres', 'postgres: checkpointer \x00', true],
    ['kworker/0:1-events', 'kworker/0:1-eve', '', false],
    ['kworker/0:1-eve', 'kworker/0:1-eve', '', true], // a kernel thread of 15 characters: no command line to say
    ['abcdefghijklmno', 'abcdefghijklmno', 'abcdefghijklmno\x00--flag\x00', true],
    // A 15-character program rewriting its title as nginx does (`name: role`) is not cut.
    ['abcdefghijklmno', 'abcdefghijklmno', 'abcdefghijklmno: master process /opt/x/abcdefghijklmno\x00', true],
    ['abcdefghijklmno', 'abcdefghijklmno', 'abcdefghijklmno: worker\x00', true],
  ])('name %j against comm %j and cmdline %j → %s', (name, comm, cmdline, expected) => {
    expect(processGoesBy(name, comm, cmdline)).toBe(expected);
  });
});

describe('process probe on this machine', () => {
  it('finds a process by the name it was started under, with its memory and a CPU rate', async () => {
    const name = `fw-sleep-${randomUUID().slice(0, 8)}`;
    const c = await child(name, 'sleep', ['120']);
    const out = await processProbe(check({ processName: name }), ctx());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    const r = out.facts.result as Record<string, number & number[]>;
    expect(r['pids']).toEqual([c.pid]);
    expect(r['count']).toBe(1);
    expect(r['rssBytes']).toBeGreaterThan(100 * 1024);
    expect(r['cpuPct']).toBeGreaterThanOrEqual(0);
    expect(r['cpuPct']).toBeLessThan(20); // sleep sleeps
    // First look at this pid: two readings CPU_MIN_WINDOW_MS apart.
    expect(r['cpuWindowMs']).toBeGreaterThanOrEqual(CPU_MIN_WINDOW_MS - 1);
    expect(out.facts.metrics).toEqual([
      { name: 'count', labels: {}, value: 1 },
      { name: 'cpuPct', labels: {}, value: r['cpuPct'] },
      { name: 'rssBytes', labels: {}, value: r['rssBytes'] },
    ]);
    const facts = { ok: out.ok, latencyMs: out.latencyMs, ...out.facts };
    expect(evaluateConditions(['result.count == 1', 'metric("rssBytes") > 0', 'result.cpuPct < 50.0'], facts)).toEqual({
      ok: true,
    });
    c.kill('SIGKILL');
    await exited(c);
    const gone = await processProbe(check({ processName: name }), ctx());
    expect(gone).toMatchObject({ ok: false, failureReason: `no process named "${name}" is running` });
  });

  it('measures a busy process, then averages over the time since it last looked', async () => {
    const name = `fw-busy-${randomUUID().slice(0, 8)}`;
    await child(name, process.execPath, ['-e', 'for (;;) {}']);
    const first = await processProbe(check({ processName: name }), ctx());
    const r1 = first.facts.result as Record<string, number>;
    // One spinning thread: up to 100 % of a core, and above idle however busy the box: /proc counts CPU in 10 ms ticks,
    // so over the first look's 100 ms window a sleeping process reads 0 and the spinner at least one tick (a box busy
    // with other runs gave it one: 11.7 %).
    expect(r1['cpuPct']).toBeGreaterThan(5);
    expect(r1['cpuPct']).toBeLessThan(210);
    await new Promise((r) => setTimeout(r, 400));
    const second = await processProbe(check({ processName: name }), ctx());
    const r2 = second.facts.result as Record<string, number>;
    // The window is the gap since the first run, not a fresh 100 ms.
    expect(r2['cpuWindowMs']).toBeGreaterThanOrEqual(400);
    expect(r2['cpuPct']).toBeGreaterThan(5);
  });

  it('counts every process of a name but the collector itself (this test runner is a "node" process)', async () => {
    const name = `fw-many-${randomUUID().slice(0, 8)}`;
    const a = await child(name, 'sleep', ['120']);
    const b = await child(name, 'sleep', ['120']);
    const out = await processProbe(check({ processName: name }), ctx());
    expect(out.ok).toBe(true);
    expect((out.facts.result as { pids: number[] }).pids.sort()).toEqual([a.pid, b.pid].sort());
    // The collector runs as node: a check of a Node application was UP while the collector ran, the application down.
    const node = await processProbe(check({ processName: 'node' }), ctx());
    if (node.ok) expect((node.facts.result as { pids: number[] }).pids).not.toContain(process.pid);
    else expect(node.failureReason).toBe('no process named "node" is running (but this collector)');
  });

  it('finds a process by pid file, and says why when it cannot', async () => {
    const c = await child(`fw-pid-${randomUUID().slice(0, 8)}`, 'sleep', ['120']);
    const pidFile = join(dir, 'ok.pid');
    await writeFile(pidFile, `${c.pid}\n`);
    const out = await processProbe(check({ pidFile }), ctx());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({ pids: [c.pid], count: 1 });

    c.kill('SIGKILL');
    await exited(c);
    expect(await processProbe(check({ pidFile }), ctx())).toMatchObject({
      ok: false,
      failureReason: `process ${c.pid} (from pid file ${pidFile}) is not running`,
    });

    const missing = join(dir, 'missing.pid');
    expect(await processProbe(check({ pidFile: missing }), ctx())).toMatchObject({
      ok: false,
      failureReason: `pid file ${missing} does not exist`,
    });

    // A file that is no pid file: said so, its content not repeated.
    const secret = join(dir, 'not-a-pid');
    await writeFile(secret, 'hunter2-password\n');
    const bad = await processProbe(check({ pidFile: secret }), ctx());
    expect(bad).toMatchObject({ ok: false, failureReason: `pid file ${secret} does not hold a pid` });
    expect(JSON.stringify(bad)).not.toContain('hunter2');
  });

  it('a process stopped with SIGSTOP (state T) is not running, by name or pid file; SIGCONT brings it back', async () => {
    const name = `fw-stop-${randomUUID().slice(0, 8)}`;
    const c = await child(name, 'sleep', ['120']);
    const pidFile = join(dir, 'stopped.pid');
    await writeFile(pidFile, `${c.pid}\n`);
    const state = async () => parseProcStat(await readFile(`/proc/${c.pid}/stat`, 'utf8'))?.state;
    const until = async (want: string) => {
      for (let i = 0; i < 200 && (await state()) !== want; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await state()).toBe(want);
    };
    c.kill('SIGSTOP');
    await until('T');
    expect(await processProbe(check({ processName: name }), ctx())).toMatchObject({
      ok: false,
      failureReason: `process "${name}" is stopped (state T, SIGSTOP or SIGTSTP): pid ${c.pid}`,
    });
    expect(await processProbe(check({ pidFile }), ctx())).toMatchObject({
      ok: false,
      failureReason: `process ${c.pid} (from pid file ${pidFile}) is stopped (state T, SIGSTOP or SIGTSTP)`,
    });
    c.kill('SIGCONT');
    await until('S');
    expect(await processProbe(check({ processName: name }), ctx())).toMatchObject({ ok: true });
    expect(await processProbe(check({ pidFile }), ctx())).toMatchObject({ ok: true });
  });

  it('a stale pid file whose pid a kernel thread now holds (after a reboot) is not running', async () => {
    // A kernel thread this /proc shows (none inside a pid namespace of its own: nothing to check there).
    let kthread: { pid: number; comm: string } | undefined;
    for (const e of await readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const text = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
      // Field 9 (flags) read here, apart from the probe: PF_KTHREAD.
      const rest = text
        .slice(text.lastIndexOf(')') + 1)
        .trim()
        .split(/\s+/);
      if (text && (Number(rest[6]) & 0x00200000) !== 0 && rest[0] !== 'Z') {
        kthread = { pid: Number(e), comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')) };
        break;
      }
    }
    if (!kthread) return console.warn('no kernel thread visible in /proc: the stale pid file case is not checked');
    const pidFile = join(dir, 'stale.pid');
    await writeFile(pidFile, `${kthread.pid}\n`);
    expect(await processProbe(check({ pidFile }), ctx())).toMatchObject({
      ok: false,
      failureReason: `process ${kthread.pid} (from pid file ${pidFile}) is not running: that pid is now kernel thread "${kthread.comm}" (stale pid file)`,
    });
  });

  it('a pid file that is a FIFO (or any file but a regular one) is refused at once, holding no thread', async () => {
    const fifo = join(dir, 'fifo.pid');
    execFileSync('mkfifo', [fifo]);
    // Five runs, more than libuv's four worker threads: each blocked in open() before, for good.
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const out = await processProbe(check({ pidFile: fifo }), ctx());
      expect(out).toMatchObject({ ok: false, failureReason: `pid file ${fifo} is not a regular file` });
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    expect(await processProbe(check({ pidFile: dir }), ctx())).toMatchObject({
      ok: false,
      failureReason: `pid file ${dir} is not a regular file`,
    });
  });

  it('gives a clear reason on a platform without /proc', async () => {
    const real = Object.getOwnPropertyDescriptor(process, 'platform') as PropertyDescriptor;
    Object.defineProperty(process, 'platform', { value: 'darwin' });
    try {
      const out = await processProbe(check({ processName: 'node' }), ctx());
      expect(out).toMatchObject({ ok: false, latencyMs: null });
      expect(out.failureReason).toMatch(/Linux only.*darwin/);
    } finally {
      Object.defineProperty(process, 'platform', real);
    }
  });
});
