import type { INestApplicationContext } from '@nestjs/common';
import { Messages, uuidv7, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { register } from 'prom-client';
import { createIsolatedTestSite, startAggregator, type TestSite } from '../aggregator.int-helpers';
import { HostConflicts } from './host-conflicts.service';

// Two collectors reporting one host id (VMs cloned from one image, one COLLECTOR_HOST_ID configured twice): host.metrics
// published on the real bus from two reporters → the host's latest sample in live state carries
// `conflict: {reporters, since}` and fleetwatch_aggregator_host_conflicts counts it; one reporter (its messages
// redelivered) or a collector that names none never gets it; the mark clears when one reporter alone goes on.

jest.setTimeout(90_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  site = await createIsolatedTestSite('agg-host-conflicts', { AGGREGATOR_BATCH_WAIT_MS: '20' });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const A = { installId: '0b8e5a4e-5d0c-4a8e-9a57-1f6a1b2c3d4e', bootId: '11111111-2222-4333-8444-555555555555' };
// A clone of A's image: the same installation id (its spool directory was in the image), another boot.
const B = { installId: A.installId, bootId: '99999999-2222-4333-8444-555555555555' };

function sample(hostId: string, at: number, reporter: HostMetricsPayload['reporter']): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-1',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: reporter === B ? 90 : 10, cores: 2, load1: 0.1, load5: 0.1, load15: 0.1 },
    memory: { totalBytes: 8e9, usedBytes: 1e9 },
    disks: [],
    network: [],
    gpus: [],
    ...(reporter ? { reporter } : {}),
  };
}

const publish = (payloads: HostMetricsPayload[], ids: string[] = payloads.map(() => uuidv7())) =>
  site.bus.publisher.publishMany(payloads.map((p, i) => publishRequest(Messages.HostMetrics, p, { id: ids[i] })));

async function latest(hostId: string): Promise<(HostMetricsPayload & { conflict?: unknown }) | null> {
  const json = await store.getHostMetrics(hostId);
  return json ? (JSON.parse(json) as HostMetricsPayload & { conflict?: unknown }) : null;
}

async function gauge(): Promise<number> {
  const m = await register.getSingleMetric('fleetwatch_aggregator_host_conflicts')?.get();
  return m?.values[0]?.value ?? NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('aggregator: one host id, two reporters', () => {
  it('marks the host when two reporters interleave; one reporter (redelivered) or none is never marked', async () => {
    const t0 = Date.now() - 10_000;
    const ids = Array.from({ length: 8 }, () => uuidv7());
    // One reporter, every message delivered twice; and a collector of before (no reporter).
    const single = Array.from({ length: 8 }, (_, i) => sample('single-host', t0 + i * 1_000, A));
    await publish([...single, ...single], [...ids, ...ids]);
    await publish(Array.from({ length: 8 }, (_, i) => sample('old-host', t0 + i * 1_000, undefined)));
    // Two clones: A and B sample every second, half a second apart.
    const both: HostMetricsPayload[] = [];
    for (let i = 0; i < 8; i++)
      both.push(sample('clone-host', t0 + i * 1_000, A), sample('clone-host', t0 + i * 1_000 + 500, B));
    await publish(both);

    const marked = await waitFor(
      async () => {
        const s = await latest('clone-host');
        return s?.sampledAt === new Date(t0 + 7_500).toISOString() && s.conflict ? s : null;
      },
      { description: 'clone-host marked in live state', timeoutMs: 30_000 },
    );
    expect(marked.conflict).toEqual({ reporters: 2, since: expect.stringMatching(/^\d{4}-.*Z$/) });
    expect(marked.reporter).toEqual(B);
    expect(app.get(HostConflicts).count).toBe(1);
    expect(await gauge()).toBe(1);

    await waitFor(async () => (await latest('single-host'))?.sampledAt === new Date(t0 + 7_000).toISOString(), {
      description: 'single-host projected',
    });
    await waitFor(async () => (await latest('old-host'))?.sampledAt === new Date(t0 + 7_000).toISOString(), {
      description: 'old-host projected',
    });
    expect((await latest('single-host'))?.conflict).toBeUndefined();
    expect((await latest('old-host'))?.conflict).toBeUndefined();
  });

  it('clears the mark once one reporter alone has gone on for ten intervals', async () => {
    // Only A from now on, one sample every half second (stamped after the ones before), for about 16 s.
    const start = Date.now();
    for (let i = 0; Date.now() - start < 16_000; i++) {
      await publish([sample('clone-host', start + i * 500, A)]);
      await sleep(500);
      if (!(await latest('clone-host'))?.conflict && i > 4) break;
    }
    const s = await latest('clone-host');
    expect(s?.reporter).toEqual(A);
    expect(s?.conflict).toBeUndefined();
    expect(app.get(HostConflicts).count).toBe(0);
    expect(await gauge()).toBe(0);
    // Not at once: ten intervals (10 s) after B's last sample was heard.
    expect(Date.now() - start).toBeGreaterThan(9_000);
  });

  it('a host retired while marked is forgotten at once (its collectors were taken out of service)', async () => {
    const t0 = Date.now() - 10_000;
    const both: HostMetricsPayload[] = [];
    for (let i = 0; i < 8; i++)
      both.push(sample('retired-clone', t0 + i * 1_000, A), sample('retired-clone', t0 + i * 1_000 + 500, B));
    await publish(both);
    await waitFor(async () => app.get(HostConflicts).count === 1, {
      description: 'retired-clone marked',
      timeoutMs: 30_000,
    });
    await site.bus.publisher.publishMany([
      publishRequest(Messages.HostRetire, {
        hostId: 'retired-clone',
        at: new Date(Date.now()).toISOString(),
        actor: { id: 'user:1', name: 'ops' },
      }),
    ]);
    await waitFor(async () => app.get(HostConflicts).count === 0, {
      description: 'the retirement clears the mark at once (not after ten intervals)',
      timeoutMs: 5_000,
    });
    expect(await gauge()).toBe(0);
  });
});
