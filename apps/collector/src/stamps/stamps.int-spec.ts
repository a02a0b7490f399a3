import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { ExchangeName, RoutingKey, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import {
  CollectorHarness,
  countingTarget,
  definitions,
  seedAssignment,
  type CountingTarget,
} from '../checks/checks.int-helpers';
import type { TimeSources } from './stamp-clock';
import { STAMP_FILE } from './stamp.service';

// A collector whose wall clock runs 5 minutes ahead, then steps back 10 minutes (an NTP step), then restarts with it
// still behind (a reboot with a slow clock): the check results and host samples it publishes are never stamped
// before earlier ones — the aggregator orders a location's observations by these stamps. Only the stamps' clock is
// stepped here (the scheduler keeps its own); the collector is booted in-process as main.ts boots it, on a real broker.

jest.setTimeout(90_000);

type Sent = Envelope<{ checkId?: string; hostId?: string; startedAt?: string; sampledAt?: string }>;

class Tap {
  readonly envelopes: Sent[] = [];
  private constructor(private readonly model: ChannelModel) {}

  static async open(amqpUrl: string): Promise<Tap> {
    const model = await connect(amqpUrl);
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, ExchangeName.Events, `${RoutingKey.CheckResult}.#`);
    await channel.bindQueue(queue, ExchangeName.Events, `${RoutingKey.HostMetrics}.#`);
    const tap = new Tap(model);
    await channel.consume(queue, (m) => m && tap.envelopes.push(JSON.parse(m.content.toString('utf8')) as Sent), {
      noAck: true,
    });
    return tap;
  }

  /** Stamps in arrival order (resends left out): check results' starts, host samples' times. */
  stamps(): { results: number[]; samples: number[] } {
    const seen = new Set<string>();
    const unique = this.envelopes.filter((e) => !seen.has(e.id) && seen.add(e.id));
    return {
      results: unique.filter((e) => e.payload.startedAt).map((e) => Date.parse(e.payload.startedAt as string)),
      samples: unique.filter((e) => e.payload.sampledAt).map((e) => Date.parse(e.payload.sampledAt as string)),
    };
  }

  close(): Promise<void> {
    return this.model.close().catch(() => undefined);
  }
}

const nonDecreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x >= xs[i - 1]);

let vhost: IsolatedVhost;
let tap: Tap;
let target: CountingTarget;
let dir: string;
beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-stamps');
  tap = await Tap.open(vhost.amqpUrl);
  target = await countingTarget();
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-stamps-'));
});
afterAll(async () => {
  await tap?.close();
  await target?.close();
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

it('results and host samples are never stamped before earlier ones: a step back 10 min, then a restart still behind', async () => {
  const spoolDir = join(dir, 'spool');
  const checks = definitions([
    { name: 'stamped', type: 'tcp', host: '127.0.0.1', port: target.port, intervalSeconds: 1, timeoutSeconds: 1 },
  ]);
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-stamps', checks);
  let offset = 5 * 60_000;
  const time: TimeSources = { wall: () => Date.now() + offset, monotonic: () => performance.now() };
  const env = {
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-stamps',
    COLLECTOR_SPOOL_DIR: spoolDir,
    COLLECTOR_HOST_ID: 'stamps-host',
    COLLECTOR_HOST_INTERVAL_SECONDS: '1',
  };
  const atLeast = (results: number, samples: number, description: string) =>
    waitFor(
      () => {
        const s = tap.stamps();
        return s.results.length >= results && s.samples.length >= samples;
      },
      { timeoutMs: 20_000, description },
    );

  const first = await CollectorHarness.start(env, { time });
  let firstStopped = false;
  try {
    await atLeast(2, 2, 'results and samples before the step');
    const before = tap.stamps();
    // Stamped by the collector's clock (5 min ahead), results and samples alike.
    expect(Math.min(...before.results, ...before.samples)).toBeGreaterThan(Date.now() + 4 * 60_000);
    offset = -5 * 60_000; // NTP steps the clock back 10 min
    await atLeast(before.results.length + 3, before.samples.length + 3, 'results and samples after the step');
    await first.stop();
    firstStopped = true;
  } finally {
    if (!firstStopped) await first.stop();
  }
  const one = tap.stamps();
  expect(nonDecreasing(one.results)).toBe(true);
  expect(nonDecreasing(one.samples)).toBe(true);
  const last = Math.max(...one.results, ...one.samples);
  expect(last).toBeGreaterThan(Date.now() + 4 * 60_000); // not the stepped clock's time
  // The last stamp is kept in the spool directory…
  const saved = (JSON.parse(await readFile(join(spoolDir, STAMP_FILE), 'utf8')) as { stamp: number }).stamp;
  expect(saved).toBeGreaterThanOrEqual(last);

  // … and a restart with the clock still 10 min behind stamps after it.
  const second = await CollectorHarness.start(env, { time });
  try {
    await atLeast(one.results.length + 2, one.samples.length + 2, 'results and samples after the restart');
  } finally {
    await second.stop();
  }
  // In arrival order across both processes (what the first one left in its spool goes first): never backwards.
  const two = tap.stamps();
  expect(nonDecreasing(two.results)).toBe(true);
  expect(nonDecreasing(two.samples)).toBe(true);
});
