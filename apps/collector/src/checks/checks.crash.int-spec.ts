import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { countingTarget, definitions, ResultTap, seedAssignment, type CountingTarget } from './checks.int-helpers';
import { privateDist, startCollectorProcess, type CollectorProcess } from './owner.int-helpers';

// SPEC §2 with both faults at once: the broker is away AND the collector process is
// killed (SIGKILL: no shutdown hook, the spool not closed, its lock left behind). The next
// process takes the spool over, and once the broker is back every result spooled before
// the kill arrives, once per id, in order — only the runs of the last moments (in flight,
// or in the 20 ms write buffer) can be missing.

jest.setTimeout(120_000);

let dist: string;
let vhost: IsolatedVhost;
let proxy: TcpProxy;
let tap: ResultTap;
let target: CountingTarget;
let dir: string;
const procs: CollectorProcess[] = [];

beforeAll(async () => {
  dist = privateDist('collector-crash');
  vhost = await createIsolatedVhost('collector-crash');
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  tap = await ResultTap.open(vhost.amqpUrl);
  target = await countingTarget();
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-crash-'));
});
afterAll(async () => {
  for (const p of procs) await p.kill().catch(() => undefined);
  await tap?.close();
  await proxy?.stop();
  await vhost?.dispose();
  await target?.close();
  await rm(dir, { recursive: true, force: true });
});

const startedMs = (e: { payload: { startedAt: string } }): number => Date.parse(e.payload.startedAt);

it('loses nothing spooled when killed during a broker outage', async () => {
  const spoolDir = join(dir, 'spool');
  const checks = definitions(
    Array.from({ length: 4 }, (_, i) => ({
      name: `crash-${i}`,
      type: 'tcp' as const,
      host: '127.0.0.1',
      port: target.port,
      intervalSeconds: 1,
      timeoutSeconds: 1,
    })),
  );
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-crash', checks);
  const env = {
    AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl),
    FLEETWATCH_LOCATION: 'lab-crash',
    COLLECTOR_SPOOL_DIR: spoolDir,
  };

  const first = await startCollectorProcess(dist, env);
  procs.push(first);
  await waitFor(() => tap.unique().length >= 8, { timeoutMs: 15_000, description: 'results before the outage' });
  proxy.pause();
  proxy.cut();
  await new Promise((r) => setTimeout(r, 3_000));
  const killedAt = Date.now();
  await first.kill();

  // Started while the broker is still away: it runs from its assignment file and takes the spool over.
  const second = await startCollectorProcess(dist, env);
  procs.push(second);
  await new Promise((r) => setTimeout(r, 1_500));
  proxy.resume();
  await waitFor(
    async () => {
      const text = await (await fetch(`${second.url}/metrics`)).text();
      return /^fleetwatch_collector_spool_records 0$/m.test(text) && tap.unique().some((e) => startedMs(e) > killedAt);
    },
    { timeoutMs: 30_000, description: 'spool drained after the broker came back' },
  );
  await second.stop();

  for (const check of checks) {
    const mine = tap.of(check.id);
    const times = mine.map(startedMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const before = times.filter((t) => t < killedAt);
    // Once a second until the kill, through the outage: nothing spooled was lost.
    for (let i = 1; i < before.length; i++) expect(before[i] - before[i - 1]).toBeLessThan(1_500);
    expect(killedAt - before[before.length - 1]).toBeLessThan(1_500);
    expect(before.length).toBeGreaterThanOrEqual(5);
    // And the new process went on at the same pace.
    const after = times.filter((t) => t > killedAt);
    expect(after.length).toBeGreaterThanOrEqual(2);
  }
  // One message id per result, however often it was sent.
  const ids = tap.envelopes.map((e) => e.id);
  const keys = new Map<string, string>();
  for (const e of tap.envelopes) {
    const key = `${e.payload.checkId}@${e.payload.startedAt}`;
    expect(keys.get(key) ?? e.id).toBe(e.id);
    keys.set(key, e.id);
  }
  expect(new Set(ids).size).toBe(keys.size);
});
