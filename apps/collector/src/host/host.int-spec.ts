import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem, uptime } from 'node:os';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import {
  ExchangeName,
  hostMetricsPayloadSchema,
  Messages,
  RoutingKey,
  type Envelope,
  type HostMetricsPayload,
} from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { CollectorHarness } from '../checks/checks.int-helpers';
import { HostSampler } from './host-sampler';
import { HostService } from './host.service';
import { INSTALL_ID_FILE } from './reporter-identity';

// Host sampling end to end (issue 16 "must show"): a collector booted as main.ts boots it
// samples this machine every second and publishes host.metrics on the real bus — real
// figures, the first sample's network rates null, later ones numbers. Then its link to the
// broker is cut by a TcpProxy: sampling goes on, samples wait in the spool, and after the
// link is back every one of them arrives, once per envelope id, in order.

jest.setTimeout(120_000);

class HostTap {
  readonly envelopes: Envelope<HostMetricsPayload>[] = [];
  private constructor(private readonly model: ChannelModel) {}

  static async open(amqpUrl: string): Promise<HostTap> {
    const model = await connect(amqpUrl);
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    await channel.assertExchange(ExchangeName.Events, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    // Routed by shard (`event.host.metrics.shard-NN`); `#` also matches an unsharded key.
    await channel.bindQueue(queue, ExchangeName.Events, `${RoutingKey.HostMetrics}.#`);
    const tap = new HostTap(model);
    await channel.consume(
      queue,
      (m) => m && tap.envelopes.push(JSON.parse(m.content.toString('utf8')) as Envelope<HostMetricsPayload>),
      { noAck: true },
    );
    return tap;
  }

  of(hostId: string): Envelope<HostMetricsPayload>[] {
    const seen = new Set<string>();
    return this.envelopes.filter((e) => e.payload.hostId === hostId && !seen.has(e.id) && seen.add(e.id));
  }

  close(): Promise<void> {
    return this.model.close().catch(() => undefined);
  }
}

let vhost: IsolatedVhost;
let proxy: TcpProxy;
let tap: HostTap;
let dir: string;

beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-host');
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  tap = await HostTap.open(vhost.amqpUrl);
  dir = await mkdtemp(join(tmpdir(), 'fw-collector-host-'));
});
afterAll(async () => {
  await tap?.close();
  await proxy?.stop();
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

it('publishes real host samples; the first network sample has null rates; an outage loses none', async () => {
  const hostId = `int-host-${randomUUID().slice(0, 8)}`;
  // This machine has fewer local mounts than a sample reports (256): the sampler's count left out is made up, so the
  // gauge on /metrics shows the service sets it from each sample.
  const leftOut = jest.spyOn(HostSampler.prototype, 'mountsLeftOut', 'get').mockReturnValue(7);
  const c = await CollectorHarness.start({
    AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl),
    FLEETWATCH_LOCATION: 'lab-host',
    COLLECTOR_SPOOL_DIR: join(dir, 'spool'),
    COLLECTOR_HOST_ID: hostId,
    COLLECTOR_HOST_INTERVAL_SECONDS: '1',
  });
  const host = c.service.app.get(HostService);
  let stopped = false;
  try {
    await waitFor(() => tap.of(hostId).length >= 3, { timeoutMs: 30_000, description: 'three host samples' });
    const [first, ...later] = tap.of(hostId);
    expect(first.type).toBe(Messages.HostMetrics.type);
    for (const e of [first, ...later]) hostMetricsPayloadSchema.parse(e.payload);

    // Real figures from this machine.
    const p = first.payload;
    expect(p).toMatchObject({ hostId, location: 'lab-host', intervalSeconds: 1 });
    expect(p.cpu.cores).toBe(cpus().length);
    expect(p.cpu.perCorePct).toHaveLength(cpus().length);
    expect(p.memory.totalBytes).toBe(totalmem());
    expect(p.memory.usedBytes).toBeGreaterThan(0);
    expect(p.disks.some((d) => d.totalBytes > 0 && d.usedBytes > 0)).toBe(true);
    expect(Math.abs((p.uptimeSeconds ?? 0) - uptime())).toBeLessThan(120);
    expect(p.system?.nodeVersion).toBe(process.versions.node);
    expect(p.gpus).toEqual([]);
    // Who sent them: the installation id the collector keeps in its spool directory and this kernel's boot id.
    const { installId } = JSON.parse(await readFile(join(dir, 'spool', INSTALL_ID_FILE), 'utf8')) as {
      installId: string;
    };
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    for (const e of [first, ...later]) expect(e.payload.reporter).toEqual({ installId, bootId });

    // The first network sample is unknown, never zero; later ones are numbers.
    expect(p.network.length).toBeGreaterThan(0);
    for (const n of p.network) expect([n.rxBytesPerSec, n.txBytesPerSec]).toEqual([null, null]);
    for (const e of later)
      for (const n of e.payload.network) {
        expect(typeof n.rxBytesPerSec).toBe('number');
        expect(typeof n.txBytesPerSec).toBe('number');
      }
    // Disk IO per mount where a block device is behind it: null first, numbers after.
    const withIo = p.disks.filter((d) => 'readBytesPerSec' in d);
    for (const d of withIo) expect(d.readBytesPerSec).toBeNull();
    for (const d of later[0].payload.disks.filter((x) => 'readBytesPerSec' in x))
      expect(typeof d.writeBytesPerSec).toBe('number');

    expect(await c.metric('fleetwatch_collector_host_samples_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(3);
    expect(await c.metric('fleetwatch_collector_host_mounts_left_out')).toBe(7);

    // The bus goes away: sampling goes on into the spool.
    proxy.pause();
    proxy.cut();
    const cutAt = Date.now();
    await waitFor(() => host.spooled >= 3, { timeoutMs: 30_000, description: 'samples spooled during the outage' });
    const sampledDuring = (e: Envelope<HostMetricsPayload>) => Date.parse(e.payload.sampledAt) > cutAt + 500;
    expect(tap.of(hostId).filter(sampledDuring)).toEqual([]);
    const spooledDuring = host.spooled;

    proxy.resume();
    await waitFor(() => host.spooled === 0, { timeoutMs: 30_000, description: 'host spool drained' });
    await waitFor(() => tap.of(hostId).filter(sampledDuring).length >= spooledDuring - 1, {
      timeoutMs: 10_000,
      description: 'the outage samples arrived',
    });
    await c.stop();
    stopped = true;

    const all = tap.of(hostId);
    const times = all.map((e) => Date.parse(e.payload.sampledAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
    // The server is down now: the process-wide counter is read from the registry.
    const { register } = await import('prom-client');
    const published = (await register.getSingleMetric('fleetwatch_collector_host_samples_published_total')?.get())
      ?.values[0]?.value;
    expect(published).toBeGreaterThanOrEqual(all.length);
  } finally {
    leftOut.mockRestore();
    if (!stopped) await c.stop();
  }
});
