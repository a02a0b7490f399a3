import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { countingTarget, definitions, ResultTap, seedAssignment, type CountingTarget } from './checks.int-helpers';
import { privateDist, startCollectorProcess, type CollectorProcess } from './owner.int-helpers';

// The built collector process evaluates conditions off its event loop (runner/condition-sandbox.ts): an http check
// whose condition backtracks for minutes over what its server answers (`^(a+)+$` over 31 characters: 71 s inline)
// fails at the budget, saying so, and from the second overrun in a row is not evaluated again for a while — while
// another check keeps its pace.

jest.setTimeout(120_000);

let dist: string;
let vhost: IsolatedVhost;
let tap: ResultTap;
let target: CountingTarget;
let server: Server;
let dir: string;
let proc: CollectorProcess | undefined;

beforeAll(async () => {
  dist = privateDist('collector-conditions');
  vhost = await createIsolatedVhost('collector-conditions');
  tap = await ResultTap.open(vhost.amqpUrl);
  target = await countingTarget();
  server = createServer((_req, res) => res.end(`${'a'.repeat(31)}!`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-conditions-'));
});
afterAll(async () => {
  await proc?.kill().catch(() => undefined);
  await tap?.close();
  await vhost?.dispose();
  await target?.close();
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

it('a runaway condition fails its own check at the budget; the other checks keep their pace', async () => {
  const port = (server.address() as AddressInfo).port;
  const [runaway, steady] = definitions([
    {
      name: 'runaway',
      type: 'http' as const,
      url: `http://127.0.0.1:${port}/`,
      intervalSeconds: 2,
      timeoutSeconds: 1,
      retries: 2,
      conditions: ['bodyText.matches("^(a+)+$")'],
    },
    {
      name: 'steady',
      type: 'tcp' as const,
      host: '127.0.0.1',
      port: target.port,
      intervalSeconds: 1,
      timeoutSeconds: 1,
    },
  ]);
  const spoolDir = join(dir, 'spool');
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-conditions', [runaway, steady]);
  proc = await startCollectorProcess(dist, {
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-conditions',
    COLLECTOR_SPOOL_DIR: spoolDir,
  });
  await waitFor(() => tap.of(runaway.id).length >= 3, { timeoutMs: 30_000, description: 'three runs of runaway' });
  const [first, second, ...later] = tap.of(runaway.id).map((e) => e.payload);
  // Not retried; held from the second overrun in a row on.
  for (const r of [first, second])
    expect(r).toMatchObject({ ok: false, attempt: 1, failureReason: expect.stringContaining('took longer than') });
  expect(later.length).toBeGreaterThanOrEqual(1);
  for (const r of later)
    expect(r).toMatchObject({ ok: false, failureReason: expect.stringMatching(/not evaluated until/) });
  // The steady check ran once a second throughout (inline, the first overrun alone held the loop for 71 s).
  const times = tap.of(steady.id).map((e) => Date.parse(e.payload.startedAt));
  expect(times.length).toBeGreaterThanOrEqual(4);
  for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeLessThan(1_600);
  expect(tap.of(steady.id).every((e) => e.payload.ok)).toBe(true);
  await proc.stop();
});
