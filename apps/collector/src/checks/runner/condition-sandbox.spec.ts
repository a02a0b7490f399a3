import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConditionSandbox, type SandboxVerdict } from './condition-sandbox';

// The sandbox's rules with a stand-in thread speaking the same protocol (condition-worker.thread.ts: `ready`, then a
// verdict per job): "spin" runs until terminated, "crash" throws out of the thread, "busy:N" holds for N ms, anything
// else holds when it is "true". condition-sandbox.int-spec.ts runs the built thread with real CEL.

const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ conditions }) => {
  if (conditions[0] === 'spin') for (;;) {}
  if (conditions[0] === 'crash') throw new Error('boom');
  if (conditions[0].startsWith('busy:')) {
    const until = Date.now() + Number(conditions[0].slice(5));
    while (Date.now() < until) {}
    return parentPort.postMessage({ ok: true });
  }
  const ok = conditions.every((c) => c === 'true');
  parentPort.postMessage(ok ? { ok } : { ok, failed: { index: 0, expression: conditions[0], reason: 'was false' } });
});
parentPort.postMessage({ ready: true });
`;

const logger = { warn: jest.fn(), error: jest.fn() };
const facts = { ok: true, latencyMs: 1 };
let dir: string;
let sandbox: ConditionSandbox;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fw-sandbox-'));
  writeFileSync(join(dir, 'worker.js'), WORKER);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  sandbox = new ConditionSandbox(join(dir, 'worker.js'), logger, 300);
});
afterEach(() => sandbox.close());

describe('ConditionSandbox', () => {
  it('answers each evaluation with its verdict, in order', async () => {
    const verdicts = await Promise.all([
      sandbox.evaluate(['true'], facts),
      sandbox.evaluate(['false'], facts),
      sandbox.evaluate(['true', 'true'], facts),
    ]);
    expect(verdicts.map((v) => v.ok)).toEqual([true, false, true]);
  });

  it('one that runs past its budget fails alone, and the evaluations after it get a new thread', async () => {
    const started = Date.now();
    const [runaway, after] = await Promise.all([sandbox.evaluate(['spin'], facts), sandbox.evaluate(['true'], facts)]);
    expect(runaway).toEqual({
      ok: false,
      failed: { index: 0, expression: '', reason: expect.stringContaining('took longer than 300 ms') },
      stopped: 'budget',
    });
    expect(after.ok).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The event loop of the caller ran throughout: a timer fired while the thread spun.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await sandbox.evaluate(['spin'], facts);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(10);
  });

  it('a thread that fails fails its evaluation with the reason, and the next gets a new thread', async () => {
    const crashed = await sandbox.evaluate(['crash'], facts);
    expect(crashed.ok).toBe(false);
    expect(crashed.failed?.reason).toMatch(/thread (failed|exited)/);
    expect(crashed.stopped).toBe('fault');
    expect((await sandbox.evaluate(['true'], facts)).ok).toBe(true);
  });

  it("an answer that waits behind the budget's timer (this loop held past it) is read, not taken for an overrun", async () => {
    await sandbox.evaluate(['true'], facts); // the thread started
    // Posted from an immediate, then this thread held past the budget: the next turn of the loop runs the due budget
    // timer before it reads the thread's answer (timers come before the poll).
    const verdict = new Promise<SandboxVerdict>((resolve) =>
      setImmediate(() => {
        resolve(sandbox.evaluate(['true'], facts));
        const until = Date.now() + 600;
        while (Date.now() < until) {
          /* held */
        }
      }),
    );
    expect(await verdict).toEqual({ ok: true });
  });

  describe('slow conditions (budget 1 s, slow from 250 ms: wide gaps, for a loaded box)', () => {
    let own: ConditionSandbox;
    beforeEach(() => {
      own = new ConditionSandbox(join(dir, 'worker.js'), logger, 1_000, 250);
    });
    afterEach(() => own.close());
    const order: string[] = [];
    const run = (key: string, conditions: string[]) =>
      own.evaluate(conditions, facts, { key }).then((v) => {
        order.push(key);
        return v;
      });

    it("wait behind the others: one check's slow conditions do not hold up every check's", async () => {
      const round = async (busyMs: number) => {
        order.length = 0;
        // Asked in this order each round; the first starts at once (the thread is idle).
        const verdicts = await Promise.all([
          run('spin', ['spin']),
          run('busy', [`busy:${busyMs}`]),
          run('busy-2', ['busy:400']),
          run('light', ['true']),
        ]);
        return { order: [...order], verdicts };
      };
      await own.evaluate(['true'], facts); // the thread started
      // Nothing known yet: in turn; the first three are found slow (past the budget, or past 250 ms).
      expect((await round(400)).order).toEqual(['spin', 'busy', 'busy-2', 'light']);
      // Then the light check's conditions go right after the one running, before the slow ones.
      const second = await round(1);
      expect(second.order).toEqual(['spin', 'light', 'busy', 'busy-2']);
      expect(second.verdicts[0].stopped).toBe('budget');
      expect(second.verdicts.slice(1).map((v) => v.ok)).toEqual([true, true, true]);
      // `busy` was fast this time: back in the first queue, in turn again.
      expect((await round(1)).order).toEqual(['spin', 'busy', 'light', 'busy-2']);
    });

    it('aged slow ones do not run back to back while others wait: one, then another check, then the next', async () => {
      for (const k of ['s1', 's2', 's3']) await run(k, ['busy:300']); // found slow
      let traffic = true;
      const stream = async (key: string) => {
        while (traffic) await run(key, ['busy:50']);
      };
      const stop = setTimeout(() => (traffic = false), 6_000);
      order.length = 0;
      const streams = ['f1', 'f2', 'f3', 'f4'].map(stream);
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all(['s1', 's2', 's3'].map((k) => run(k, ['busy:300'])));
      traffic = false;
      clearTimeout(stop);
      await Promise.all(streams);
      const slowAt = order.map((k, i) => (k.startsWith('s') ? i : -1)).filter((i) => i >= 0);
      expect(slowAt).toHaveLength(3);
      // Aged together (past twice the budget), they still go one at a time between the others' evaluations.
      expect(slowAt.every((at, i) => i === 0 || at > slowAt[i - 1] + 1)).toBe(true);
    }, 15_000);

    it('do not starve: the oldest goes next once it has waited twice the budget, however busy the others keep it', async () => {
      await run('slow', ['busy:400']); // found slow
      let traffic = true;
      const stream = async (key: string) => {
        while (traffic) await run(key, ['busy:50']);
      };
      const streams = ['f1', 'f2', 'f3', 'f4'].map(stream);
      // The traffic stops by itself at 5 s: without the rule the slow one is answered only then.
      const stop = setTimeout(() => (traffic = false), 5_000);
      await new Promise((r) => setTimeout(r, 100));
      const asked = Date.now();
      const waited = await run('slow', ['busy:1']).then(() => Date.now() - asked);
      traffic = false;
      clearTimeout(stop);
      await Promise.all(streams);
      // Twice the budget (2 s) and the evaluation running then; the fast traffic went on for as long as it liked.
      expect(waited).toBeLessThan(3_500);
    }, 15_000);
  });

  it('closing fails what waits, and later evaluations say the collector is stopping', async () => {
    const waiting = sandbox.evaluate(['spin'], facts);
    const queued = sandbox.evaluate(['true'], facts);
    await sandbox.close();
    expect((await waiting).failed?.reason).toMatch(/stopping/);
    expect((await queued).failed?.reason).toMatch(/stopping/);
    expect((await sandbox.evaluate(['true'], facts)).failed?.reason).toMatch(/stopping/);
  });

  it('a thread that never starts fails what waits for it instead of holding it', async () => {
    writeFileSync(join(dir, 'silent.js'), 'setInterval(() => {}, 1000);');
    const silent = new ConditionSandbox(join(dir, 'silent.js'), logger, 300);
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
    try {
      const pending = silent.evaluate(['true'], facts);
      jest.advanceTimersByTime(30_001);
      expect((await pending).failed?.reason).toMatch(/did not start/);
    } finally {
      jest.useRealTimers();
      await silent.close();
    }
  });
});
