import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@fleetwatch/testing';
import {
  closedPort,
  CollectorHarness,
  countingTarget,
  definitions,
  seedAssignment,
  type CountingTarget,
} from './checks.int-helpers';

// SPEC §2: the collector starts and keeps checking from its last known assignment with
// the bus, the database and sync-orchestrator all away — here AMQP_URL points at a port
// nothing listens on (there is no database in the collector's configuration at all).

jest.setTimeout(60_000);

let dir: string;
let target: CountingTarget;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-offline-'));
  target = await countingTarget();
});
afterAll(async () => {
  await target?.close();
  await rm(dir, { recursive: true, force: true });
});

it('starts from the assignment on disk at once and keeps checking into its spool', async () => {
  const spoolDir = join(dir, 'spool');
  const checks = definitions(
    Array.from({ length: 4 }, (_, i) => ({
      name: `offline-${i}`,
      type: 'tcp' as const,
      host: '127.0.0.1',
      port: target.port,
      intervalSeconds: 1,
      timeoutSeconds: 1,
    })),
  );
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-offline', checks, 7);

  const started = Date.now();
  const c = await CollectorHarness.start({
    AMQP_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}`,
    FLEETWATCH_LOCATION: 'lab-offline',
    COLLECTOR_SPOOL_DIR: spoolDir,
  });
  try {
    // Ready from disk: no waiting for the broker that is not there.
    const ready = await waitFor(async () => ((await c.readyz()).status === 200 ? Date.now() : 0), {
      timeoutMs: 5_000,
      description: 'collector ready from its stored assignment',
    });
    expect(ready - started).toBeLessThan(5_000);
    expect(c.checks.current).toMatchObject({ origin: 'disk', version: 7, location: 'lab-offline' });
    expect((await c.readyz()).body.checks.map((x) => x.name)).toEqual(['assignment']);
    expect(await c.metric('fleetwatch_collector_assignment_version', { origin: 'disk' })).toBe(7);

    // Every check runs once a second; results wait in the spool.
    const before = target.accepted;
    await new Promise((r) => setTimeout(r, 3_200));
    expect(target.accepted - before).toBeGreaterThanOrEqual(4 * 3);
    expect(
      await c.metric('fleetwatch_collector_check_runs_total', { type: 'tcp', outcome: 'up' }),
    ).toBeGreaterThanOrEqual(12);
    expect(c.checks.state.scheduled).toBe(4);
    expect(c.checks.state.spooled).toBeGreaterThanOrEqual(12);
    expect(await c.metric('fleetwatch_collector_spool_records')).toBeGreaterThanOrEqual(12);
    expect(await c.metric('fleetwatch_collector_schedule_lag_seconds_count')).toBeGreaterThanOrEqual(12);

    // The collector's /metrics, check series included, passes promtool (SPEC §10: every service's own metrics).
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error)
      throw new Error('promtool is not installed: apt-get install -y --no-install-recommends prometheus');
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    expect({ status: lint.status, output: `${lint.stdout}${lint.stderr}`.trim() }).toEqual({ status: 0, output: '' });
  } finally {
    await c.stop();
  }
});

it('without a stored assignment and without the bus it is not ready, and says why', async () => {
  const c = await CollectorHarness.start({
    AMQP_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}`,
    FLEETWATCH_LOCATION: 'lab-empty',
    COLLECTOR_SPOOL_DIR: join(dir, 'empty'),
  });
  try {
    const r = await c.readyz();
    expect(r.status).toBe(503);
    expect(r.body.checks.find((x) => x.name === 'assignment')?.error).toBe('pending');
  } finally {
    await c.stop();
  }
});
