import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { phaseOf } from './scheduler/phase';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import {
  CollectorHarness,
  countingTarget,
  definitions,
  ResultTap,
  seedAssignment,
  type CountingTarget,
} from './checks.int-helpers';

// The spool end to end (SPEC §2, issue 15 "must show"): the collector's link to the broker
// is cut by a TcpProxy while its checks keep running, then restored. Every result arrives,
// once per envelope id, in the order the checks ran; and the checks never paused. Then a
// restart: each check runs again within one interval, on the same phase.

jest.setTimeout(120_000);

let vhost: IsolatedVhost;
let proxy: TcpProxy;
let tap: ResultTap;
let dir: string;
let target: CountingTarget;

beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-outage');
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  tap = await ResultTap.open(vhost.amqpUrl);
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-outage-'));
  target = await countingTarget();
});
afterAll(async () => {
  await tap?.close();
  await proxy?.stop();
  await vhost?.dispose();
  await target?.close();
  await rm(dir, { recursive: true, force: true });
});

const startedMs = (e: { payload: { startedAt: string } }): number => Date.parse(e.payload.startedAt);

it('a broker outage loses nothing: every result arrives once, in order, and the checks kept their pace', async () => {
  const spoolDir = join(dir, 'outage');
  const checks = definitions(
    Array.from({ length: 5 }, (_, i) => ({
      name: `outage-${i}`,
      type: 'tcp' as const,
      host: '127.0.0.1',
      port: target.port,
      intervalSeconds: 1,
      timeoutSeconds: 1,
    })),
  );
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-outage', checks);
  // Read before the start: checks whose slot falls during the boot run as soon as it is up.
  const runsBefore = await runsCounted();
  const c = await CollectorHarness.start({
    AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl),
    FLEETWATCH_LOCATION: 'lab-outage',
    COLLECTOR_SPOOL_DIR: spoolDir,
  });
  let stopped = false;
  try {
    await waitFor(() => tap.unique().length >= 10, { timeoutMs: 15_000, description: 'results before the outage' });

    proxy.pause();
    proxy.cut();
    const cutAt = Date.now();
    await new Promise((r) => setTimeout(r, 4_000));
    // Checks went on; their results wait on disk.
    expect(c.checks.state.spooled).toBeGreaterThanOrEqual(12);
    const arrivedDuring = tap.envelopes.filter((e) => Date.parse(e.payload.startedAt) > cutAt + 500).length;
    expect(arrivedDuring).toBe(0);

    proxy.resume();
    await waitFor(() => c.checks.state.spooled === 0, {
      timeoutMs: 20_000,
      description: 'spool drained after the outage',
    });
    await new Promise((r) => setTimeout(r, 1_500));
    await c.stop();
    stopped = true;
    const runs = (await runsCounted()) - runsBefore;
    // The stop gives the spool a short window (2 s) to reach the broker; on a busy box a result or two may still be
    // on disk after it, for the next start. That start (no checks assigned now, so nothing runs) sends them.
    const left = c.checks.state.spooled;
    if (left > 0) {
      await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-outage', [], 2);
      const again = await CollectorHarness.start({
        AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl),
        FLEETWATCH_LOCATION: 'lab-outage',
        COLLECTOR_SPOOL_DIR: spoolDir,
      });
      try {
        await waitFor(() => again.checks.state.spooled === 0, {
          timeoutMs: 20_000,
          description: `the ${left} result(s) left in the spool sent by the next start`,
        });
      } finally {
        await again.stop();
      }
      expect((await runsCounted()) - runsBefore).toBe(runs);
    }

    // Every run's result arrived, none twice per id. The last ones were confirmed by the broker before the stop
    // returned, but reach the tap's consumer a moment later: wait for them.
    await waitFor(() => tap.unique().length >= runs, {
      timeoutMs: 5_000,
      description: `${runs} results at the tap`,
    }).catch(() => undefined);
    const unique = tap.unique();
    expect(unique.length).toBe(runs);
    for (const check of checks) {
      const mine = tap.of(check.id);
      const times = mine.map(startedMs);
      // In order: arrival order is run order.
      expect(times).toEqual([...times].sort((a, b) => a - b));
      // No gap: one result per second throughout, the outage included.
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeLessThan(1_500);
      expect(times[times.length - 1] - times[0]).toBeGreaterThan(5_000);
    }
  } finally {
    if (!stopped) await c.stop();
  }
});

/** Runs counted by the process-wide counter (also before the collector starts and after it stopped): from the registry. */
async function runsCounted(): Promise<number> {
  const { register } = await import('prom-client');
  const m = register.getSingleMetric('fleetwatch_collector_check_runs_total');
  const values = (await m?.get())?.values ?? [];
  return values.reduce((s, v) => s + v.value, 0);
}

it('after a restart every check runs again within one interval, on its phase', async () => {
  const spoolDir = join(dir, 'restart');
  const n = 200;
  const interval = 10;
  const checks = definitions(
    Array.from({ length: n }, (_, i) => ({
      name: `restart-${i}`,
      type: 'tcp' as const,
      host: '127.0.0.1',
      port: target.port,
      intervalSeconds: interval,
      timeoutSeconds: 2,
    })),
  );
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-restart', checks);
  const env = { AMQP_URL: vhost.amqpUrl, FLEETWATCH_LOCATION: 'lab-restart', COLLECTOR_SPOOL_DIR: spoolDir };
  const ids = new Set(checks.map((x) => x.id));
  const mine = () => tap.unique().filter((e) => ids.has(e.payload.checkId));

  const first = await CollectorHarness.start(env);
  await waitFor(() => new Set(mine().map((e) => e.payload.checkId)).size === n, {
    timeoutMs: 2 * interval * 1000,
    description: 'every check ran once',
  });
  await first.stop();

  const restartedAt = Date.now();
  const second = await CollectorHarness.start(env);
  const bootedAt = Date.now();
  try {
    const seen = () =>
      new Set(
        mine()
          .filter((e) => startedMs(e) >= restartedAt)
          .map((e) => e.payload.checkId),
      );
    await waitFor(() => seen().size === n, { timeoutMs: 2 * interval * 1000, description: 'every check ran again' });
    const again = new Map<string, number>();
    for (const e of mine())
      if (startedMs(e) >= restartedAt && !again.has(e.payload.checkId)) again.set(e.payload.checkId, startedMs(e));
    const delays = [...again.values()].map((t) => t - restartedAt);
    expect(Math.max(...delays)).toBeLessThan(interval * 1000 + 1_500);
    // On its phase: every run starts on the check's own grid `phaseOf(id) + k·interval` (the planned instants
    // survive a restart), late only by the schedule lag (generous here: the box is shared) — or, for a slot that
    // fell while the collector was booting, as soon as it was up (caught up).
    const ms = interval * 1000;
    const lagMs = 1_500;
    for (const [id, t] of again) {
      const phase = phaseOf(id, ms);
      const slot = t - ((((t - phase) % ms) + ms) % ms);
      const onPhase = t - slot < lagMs;
      const caughtUp = slot >= restartedAt - ms && slot <= bootedAt && t - bootedAt < lagMs;
      if (!onPhase && !caughtUp)
        throw new Error(`check ${id} ran at ${t}, its slot was ${slot} (restart ${restartedAt}, up ${bootedAt})`);
    }
  } finally {
    await second.stop();
  }
});
