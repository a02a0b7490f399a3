import { createServer, type Server } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  checkInputSchema,
  checkResultPayloadSchema,
  TargetIds,
  type CheckDefinition,
  type CheckInput,
  type CheckResultPayload,
} from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import type { Probe } from '../probe';
import { tcpProbe } from '../probes/tcp.probe';
import { tlsProbe } from '../probes/tls.probe';
import { StampClock, type TimeSources } from '../../stamps/stamp-clock';
import { CheckRunner, CONDITIONS_HELD_MS, PROBE_GRACE_MS, type RunOutcome } from './check-runner';
import type { ConditionEvaluator, SandboxVerdict } from './condition-sandbox';

// The runner over the real tcp probe against sockets of this test (a listening port, a
// closed one), the real CEL conditions, and probes that misbehave the way a buggy probe would.

function definition(input: CheckInput): CheckDefinition {
  const id = randomUUID();
  return {
    ...checkInputSchema.parse(input),
    id,
    targetId: TargetIds.check(id),
    version: 1,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  };
}

let server: Server;
let openPort: number;
let closedPort: number;
let accepted = 0;
beforeAll(async () => {
  server = createServer((s) => {
    accepted++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  openPort = (server.address() as { port: number }).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
});
afterAll(() => new Promise((r) => server.close(r)));

function runner(probes: Partial<Record<string, unknown>> = {}, stamp?: () => number, conditions?: ConditionEvaluator) {
  const results: CheckResultPayload[] = [];
  const outcomes: RunOutcome[] = [];
  const errors: string[] = [];
  const r = new CheckRunner({
    probeFor: (type) => (probes[type] ?? (type === 'tcp' ? tcpProbe : undefined)) as Probe | undefined,
    policy: createTargetPolicy(['169.254.0.0/16']),
    env: {},
    location: 'loc-a',
    stamp,
    sink: (result) => results.push(checkResultPayloadSchema.parse(result)),
    logger: { warn: () => undefined, error: (_o, m) => errors.push(m) },
    onResult: (_t, o) => outcomes.push(o),
    conditions,
  });
  return { r, results, outcomes, errors };
}

const slot = () => ({ plannedAt: Date.now() - 5, startedAt: Date.now() });

describe('CheckRunner', () => {
  it('reports an open port UP with its latency and the check fields the aggregator needs', async () => {
    const h = runner();
    const check = definition({
      name: 'open',
      type: 'tcp',
      host: '127.0.0.1',
      port: openPort,
      intervalSeconds: 15,
      tags: ['team:a'],
      downQuorumPct: 60,
      retries: 3,
    });
    const s = slot();
    accepted = 0;
    await h.r.run(check, s);
    // A good first attempt is the result: no retry (the server's accept events may trail the client's connect).
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted).toBe(1);
    expect(h.results).toHaveLength(1);
    const res = h.results[0];
    expect(res).toMatchObject({
      checkId: check.id,
      targetId: check.targetId,
      location: 'loc-a',
      ok: true,
      attempt: 1,
      startedAt: new Date(s.startedAt).toISOString(),
      intervalSeconds: 15,
      checkName: 'open',
      checkType: 'tcp',
      tags: ['team:a'],
      downQuorumPct: 60,
      retries: 3,
      // With its retries, how long the run may take (the aggregator bounds the wait for the other locations with it).
      timeoutSeconds: check.timeoutSeconds,
    });
    expect(check.timeoutSeconds).toEqual(expect.any(Number));
    expect(res.failureReason).toBeUndefined();
    expect(res.latencyMs).toEqual(expect.any(Number));
    expect(h.outcomes).toEqual(['up']);
  });

  it('retries a closed port at once before reporting it DOWN with the reason', async () => {
    const h = runner();
    const before = Date.now();
    await h.r.run(definition({ name: 'closed', type: 'tcp', host: '127.0.0.1', port: closedPort, retries: 2 }), slot());
    const res = h.results[0];
    expect(res.ok).toBe(false);
    expect(res.attempt).toBe(3);
    expect(res.retries).toBe(2);
    expect(res.failureReason).toMatch(/ECONNREFUSED/);
    expect(res.latencyMs).toBeNull();
    expect(Date.now() - before).toBeLessThan(2_000);
    expect(h.outcomes).toEqual(['down']);
  });

  it('applies the conditions to a good attempt: a false one is DOWN naming it, and is retried', async () => {
    const h = runner();
    accepted = 0;
    await h.r.run(
      definition({
        name: 'cond',
        type: 'tcp',
        host: '127.0.0.1',
        port: openPort,
        retries: 1,
        conditions: ['ok', 'latency < 0'],
      }),
      slot(),
    );
    const res = h.results[0];
    expect(res.ok).toBe(false);
    expect(res.attempt).toBe(2);
    expect(res.failureReason).toMatch(/^condition 2 "latency < 0" was false \(latency = /);
    expect(res.metadata).toMatchObject({ conditionFailed: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted).toBe(2);

    await h.r.run(
      definition({
        name: 'cond-ok',
        type: 'tcp',
        host: '127.0.0.1',
        port: openPort,
        conditions: ['ok && latency >= 0'],
      }),
      slot(),
    );
    expect(h.results[1].ok).toBe(true);
  });

  it('a probe that throws is a failed result with a reason, logged once per check per period', async () => {
    const throws: Probe = () => Promise.reject(new TypeError('cannot read properties of undefined'));
    const h = runner({ tcp: throws });
    const check = definition({ name: 'bug', type: 'tcp', host: '127.0.0.1', port: 1, retries: 1 });
    await h.r.run(check, slot());
    await h.r.run(check, slot());
    expect(h.results.map((r) => [r.ok, r.failureReason])).toEqual([
      [false, 'probe error: cannot read properties of undefined'],
      [false, 'probe error: cannot read properties of undefined'],
    ]);
    expect(h.outcomes).toEqual(['error', 'error']);
    expect(h.errors).toHaveLength(1);
  });

  it('a step of the wall clock during a run neither drops its retries nor lets them outrun the interval', async () => {
    const realNow = Date.now.bind(Date);
    let offset = 0;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    try {
      // Forward 1 h during the first attempt (NTP): the retry still runs, and passes.
      let calls = 0;
      const flaky: Probe = () => {
        calls++;
        if (calls === 1) offset += 3_600_000;
        return Promise.resolve(
          calls === 1
            ? { ok: false, latencyMs: null, failureReason: 'refused', facts: {} }
            : { ok: true, latencyMs: 1, facts: {} },
        );
      };
      const h = runner({ tcp: flaky });
      const check = definition({ name: 'flaky', type: 'tcp', host: '127.0.0.1', port: 1, retries: 2 });
      await h.r.run(check, slot());
      expect(h.results[0]).toMatchObject({ ok: true, attempt: 2 });
      // Back 1 h during the first attempt: the retries keep to the run's budget (the interval less 10 %).
      offset = 0;
      const hangs: Probe = (_c, ctx) => {
        offset -= 3_600_000;
        return new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () =>
            resolve({ ok: false, latencyMs: null, failureReason: 'timeout', facts: {} }),
          ),
        );
      };
      const g = runner({ tcp: hangs });
      const started = performance.now();
      await g.r.run(
        definition({
          name: 'hangs',
          type: 'tcp',
          host: '127.0.0.1',
          port: 1,
          intervalSeconds: 1,
          timeoutSeconds: 0.4,
          retries: 5,
        }),
        slot(),
      );
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      spy.mockRestore();
    }
  });

  it('a probe that ignores its abort signal is given up on shortly after the timeout', async () => {
    let aborted = false;
    const ignoresSignal: Probe = (_c, ctx) => {
      ctx.signal.addEventListener('abort', () => (aborted = true));
      return new Promise(() => undefined);
    };
    const h = runner({ tcp: ignoresSignal });
    const started = Date.now();
    await h.r.run(definition({ name: 'stuck', type: 'tcp', host: '127.0.0.1', port: 1, timeoutSeconds: 0.2 }), slot());
    const took = Date.now() - started;
    expect(aborted).toBe(true);
    expect(took).toBeGreaterThanOrEqual(200 + PROBE_GRACE_MS - 20);
    expect(took).toBeLessThan(200 + PROBE_GRACE_MS + 1_000);
    expect(h.results[0].failureReason).toMatch(/did not stop/);
  });

  it('abortAll ends attempts in flight at once, without retries, and reports nothing for them', async () => {
    // A TLS check against a port that accepts TCP and never says a word: the handshake waits until aborted.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const h = runner({ tls: tlsProbe });
      const check = definition({
        name: 'slow',
        type: 'tls',
        host: '127.0.0.1',
        port,
        timeoutSeconds: 30,
        intervalSeconds: 60,
        retries: 3,
      });
      const run = h.r.run(check, slot());
      await new Promise((r) => setTimeout(r, 100));
      const t = Date.now();
      h.r.abortAll();
      await run;
      expect(Date.now() - t).toBeLessThan(500);
      // Cut short by shutdown: no result (it would be a false DOWN), and not counted as a finished run (the runs
      // counter would then count a result that never existed); the attempt itself ended at once, unretried.
      expect(h.results).toEqual([]);
      expect(h.outcomes).toEqual([]);
      const direct = await h.r.execute(check, slot());
      expect(direct).toMatchObject({ ok: false, attempt: 1 });
      expect(direct.failureReason).toMatch(/collector shutting down/);
    } finally {
      silent.close();
    }
  });

  it('abortAll: a probe that ignores its signal is given up on shortly after the abort, not after its timeout', async () => {
    // Shutdown aborts the runs in flight after half its budget and then waits for them: a probe deaf to its
    // signal held the stop until its own timeout (up to 300 s) + the grace, far past the shutdown timeout.
    const ignoresSignal: Probe = () => new Promise(() => undefined);
    const h = runner({ tcp: ignoresSignal });
    const check = definition({
      name: 'deaf',
      type: 'tcp',
      host: '127.0.0.1',
      port: 1,
      timeoutSeconds: 30,
      intervalSeconds: 60,
    });
    const run = h.r.run(check, slot());
    await new Promise((r) => setTimeout(r, 100));
    const t = Date.now();
    h.r.abortAll();
    await run;
    expect(Date.now() - t).toBeLessThan(PROBE_GRACE_MS + 500);
    expect(h.results).toEqual([]);
    // An attempt started after the abort is given up on as soon.
    const t2 = Date.now();
    expect((await h.r.execute(check, slot())).ok).toBe(false);
    expect(Date.now() - t2).toBeLessThan(PROBE_GRACE_MS + 500);
  });

  it('a run ends before its next slot: a timeout as long as the interval, or retries that would pass it, are cut', async () => {
    // A target that hangs until each attempt's timeout. A run still going at its next slot has that slot skipped
    // ('overlap'), so the next result comes one interval late; the aggregator marks a check STALE 2 intervals
    // (+5 s) after a result's start: with interval 30 s and timeout 30 s (allowed), or timeout 10 s and 2 retries,
    // a DOWN target flapped DOWN ↔ STALE at every cycle.
    const hangs: Probe = (_c, ctx) =>
      new Promise((resolve) =>
        ctx.signal.addEventListener(
          'abort',
          () => resolve({ ok: false, latencyMs: null, failureReason: 'timed out', facts: {} }),
          { once: true },
        ),
      );
    const h = runner({ tcp: hangs });
    const cases = [
      { intervalSeconds: 1, timeoutSeconds: 1, retries: 0, attempts: 1 },
      { intervalSeconds: 1, timeoutSeconds: 0.4, retries: 3, attempts: 2 },
      // A retry with at least half its timeout left runs, cut to what is left (1 s, then ~0.8 s of a 1.8 s budget):
      // skipping it dropped a retry a user set to absorb one timeout (60 s interval, 30 s timeout, 2 retries: one
      // attempt).
      { intervalSeconds: 2, timeoutSeconds: 1, retries: 2, attempts: 2 },
    ];
    for (const { intervalSeconds, timeoutSeconds, retries, attempts } of cases) {
      const planned = Date.now();
      await h.r.run(
        definition({
          name: 'hangs',
          type: 'tcp',
          host: '127.0.0.1',
          port: 1,
          intervalSeconds,
          timeoutSeconds,
          retries,
        }),
        { plannedAt: planned, startedAt: planned },
      );
      expect(Date.now() - planned).toBeLessThan(intervalSeconds * 1000);
      expect(h.results.at(-1)).toMatchObject({ ok: false, attempt: attempts });
    }
  });

  it("stamps a result's start with the collector's stamps: a wall clock stepped back 10 min does not date it earlier", async () => {
    let offset = 0;
    const time: TimeSources = { wall: () => Date.now() + offset, monotonic: () => performance.now() };
    const stamps = new StampClock({ time });
    const h = runner({}, () => stamps.now());
    const check = definition({ name: 'stamped', type: 'tcp', host: '127.0.0.1', port: openPort, intervalSeconds: 15 });
    // The scheduler's slot start is the wall clock (its grid is).
    const slotNow = () => ({ plannedAt: time.wall(), startedAt: time.wall() });
    await h.r.run(check, slotNow());
    offset = -10 * 60_000; // NTP steps the clock back
    await h.r.run(check, slotNow());
    const [first, second] = h.results.map((x) => Date.parse(x.startedAt));
    expect(second).toBeGreaterThanOrEqual(first);
    expect(second - first).toBeLessThan(5_000);
  });

  it('does not run a paused check', async () => {
    const h = runner();
    await h.r.run(definition({ name: 'paused', type: 'tcp', host: '127.0.0.1', port: openPort, paused: true }), slot());
    expect(h.results).toEqual([]);
  });
});

describe('CheckRunner: conditions the sandbox did not judge', () => {
  const stopped = (kind: 'budget' | 'fault', reason: string): SandboxVerdict => ({
    ok: false,
    failed: { index: 0, expression: '', reason },
    stopped: kind,
  });
  const evaluator = (verdict: SandboxVerdict) => {
    const calls: string[][] = [];
    const e: ConditionEvaluator = {
      evaluate: (conditions) => {
        calls.push([...conditions]);
        return Promise.resolve(verdict);
      },
      close: () => Promise.resolve(),
    };
    return { e, calls };
  };
  const check = () =>
    definition({
      name: 'c',
      type: 'tcp',
      host: '127.0.0.1',
      port: openPort,
      intervalSeconds: 30,
      retries: 2,
      conditions: ['latency < 10000'],
    });

  it('past their budget: DOWN saying so, no retry; twice in a row, not evaluated again for a while', async () => {
    const { e, calls } = evaluator(stopped('budget', 'conditions took longer than 1000 ms and were stopped'));
    const h = runner({}, undefined, e);
    const c = check();
    await h.r.run(c, slot());
    expect(h.results[0]).toMatchObject({ ok: false, attempt: 1, failureReason: expect.stringContaining('1000 ms') });
    expect(h.outcomes).toEqual(['down']);
    // One overrun alone (a starved host) is not held: judged again.
    await h.r.run(c, slot());
    expect(calls).toHaveLength(2);
    // The second in a row: held.
    await h.r.run(c, slot());
    expect(calls).toHaveLength(2);
    expect(h.results[2]).toMatchObject({
      ok: false,
      failureReason: expect.stringMatching(/1000 ms.*not evaluated until/),
    });
    // After the hold, judged again.
    const later = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + CONDITIONS_HELD_MS + 1000);
    try {
      await h.r.run(c, { plannedAt: Date.now() - 5, startedAt: Date.now() });
    } finally {
      later.mockRestore();
    }
    expect(calls).toHaveLength(3);
  });

  it("their thread failed: no result (the collector's fault, nothing known of the target), counted as an error", async () => {
    const { e, calls } = evaluator(stopped('fault', 'conditions not evaluated: their thread failed (boom)'));
    const h = runner({}, undefined, e);
    await h.r.run(check(), slot());
    expect(h.results).toEqual([]);
    expect(h.outcomes).toEqual(['error']);
    expect(calls).toHaveLength(1);
  });
});
