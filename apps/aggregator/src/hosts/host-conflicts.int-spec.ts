import type { INestApplicationContext } from '@nestjs/common';
import { Messages, uuidv7, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { register } from 'prom-client';
import { createIsolatedTestSite, flushPrefix, startAggregator, type TestSite } from '../aggregator.int-helpers';
import { LiveStateBoot } from '../live/live-state.boot';
import { ProjectionQueue } from '../live/projection.queue';
import { SerialLane } from '../status/serial-lane';
import { HostConflicts } from './host-conflicts.service';

// Two collectors reporting one host id (VMs cloned from one image, one COLLECTOR_HOST_ID configured twice): host.metrics
// published on the real bus from two reporters → live state holds the host's mark `{reporters, since}` under a key of
// its own (never in the sample) and fleetwatch_aggregator_host_conflicts counts it; one reporter (its messages
// redelivered) or a collector that names none never gets one; the mark survives a rebuild of live state from
// Postgres, and clears when one reporter alone goes on, when no reporter is heard any more, or when the host is retired.

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

/** The host's mark in live state, as the gateway reads it. */
async function mark(hostId: string): Promise<{ reporters: number; since: string; owner: string } | null> {
  const json = (await store.getHostConflictsMany([hostId])).get(hostId);
  return json ? (JSON.parse(json) as { reporters: number; since: string; owner: string }) : null;
}

/** Samples of two clones (A and B, every second, half a second apart) of one host id, from `t0`. */
function clones(hostId: string, t0: number, n = 8): HostMetricsPayload[] {
  const both: HostMetricsPayload[] = [];
  for (let i = 0; i < n; i++) both.push(sample(hostId, t0 + i * 1_000, A), sample(hostId, t0 + i * 1_000 + 500, B));
  return both;
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
    // Two clones: A and B sample every second, half a second apart (two such hosts: one goes quiet below).
    await publish([...clones('clone-host', t0), ...clones('quiet-clone', t0)]);

    const marked = await waitFor(async () => mark('clone-host'), {
      description: 'clone-host marked in live state',
      timeoutMs: 30_000,
    });
    expect(marked).toEqual({
      reporters: 2,
      since: expect.stringMatching(/^\d{4}-.*Z$/),
      owner: app.get(HostConflicts).owner,
    });
    await waitFor(async () => mark('quiet-clone'), { description: 'quiet-clone marked' });
    await waitFor(async () => (await latest('clone-host'))?.sampledAt === new Date(t0 + 7_500).toISOString(), {
      description: 'clone-host projected',
    });
    // The sample stays the collector's.
    expect(await latest('clone-host')).toEqual(sample('clone-host', t0 + 7_500, B));
    expect(app.get(HostConflicts).count).toBe(2);
    expect(await gauge()).toBe(2);

    await waitFor(async () => (await latest('single-host'))?.sampledAt === new Date(t0 + 7_000).toISOString(), {
      description: 'single-host projected',
    });
    await waitFor(async () => (await latest('old-host'))?.sampledAt === new Date(t0 + 7_000).toISOString(), {
      description: 'old-host projected',
    });
    expect(await mark('single-host')).toBeNull();
    expect(await mark('old-host')).toBeNull();
  });

  it('a rebuild of live state from Postgres (Redis flushed) keeps the mark', async () => {
    const before = await mark('clone-host');
    await flushPrefix(site.redis, site.redisPrefix);
    expect(await mark('clone-host')).toBeNull();
    expect(await app.get(LiveStateBoot).check()).toBe(true);
    // Written again at once by the replica that rebuilt (not only at its next sweep, a minute on).
    expect(await waitFor(async () => mark('clone-host'), { description: 'mark back', timeoutMs: 5_000 })).toEqual(
      before,
    );
    expect(await mark('single-host')).toBeNull();
  });

  it('so does the rebuild after a projection failed (Redis restarted empty meanwhile), before the next batch', async () => {
    const before = await mark('clone-host');
    expect(before).not.toBeNull();
    // What a projection Redis refused leaves behind (live state no longer known whole), then Redis comes back empty.
    app.get(ProjectionQueue).onFailure();
    await flushPrefix(site.redis, site.redisPrefix);
    await app.get(SerialLane).run(() => app.get(LiveStateBoot).ensureReady());
    expect(await waitFor(async () => mark('clone-host'), { description: 'mark back', timeoutMs: 5_000 })).toEqual(
      before,
    );
  });

  it('clears the mark once one reporter alone has gone on for ten intervals', async () => {
    // Only A from now on, one sample every half second (stamped after the ones before), for about 16 s.
    const start = Date.now();
    for (let i = 0; Date.now() - start < 16_000; i++) {
      await publish([sample('clone-host', start + i * 500, A)]);
      await sleep(500);
      if (!(await mark('clone-host')) && i > 4) break;
    }
    expect((await latest('clone-host'))?.reporter).toEqual(A);
    expect(await mark('clone-host')).toBeNull();
    // Not at once: ten intervals (10 s) after B's last sample was heard.
    expect(Date.now() - start).toBeGreaterThan(9_000);
  });

  it('a host no reporter is heard from any more (STALE) loses its mark at the sweep', async () => {
    const conflicts = app.get(HostConflicts);
    // quiet-clone has had no sample since the first test: ten intervals on, the sweep (every minute; run here) clears it.
    await waitFor(
      async () => {
        await conflicts.tick();
        return (await mark('quiet-clone')) === null;
      },
      { description: 'quiet-clone cleared', timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(conflicts.count).toBe(0);
    expect(await gauge()).toBe(0);
  });

  it('a host retired while marked is forgotten at once (its collectors were taken out of service)', async () => {
    const t0 = Date.now() - 10_000;
    await publish(clones('retired-clone', t0));
    await waitFor(async () => mark('retired-clone'), { description: 'retired-clone marked', timeoutMs: 30_000 });
    expect(app.get(HostConflicts).count).toBe(1);
    await site.bus.publisher.publishMany([
      publishRequest(Messages.HostRetire, {
        hostId: 'retired-clone',
        at: new Date(Date.now()).toISOString(),
        actor: { id: 'user:1', name: 'ops' },
      }),
    ]);
    await waitFor(async () => (await mark('retired-clone')) === null, {
      description: 'the retirement clears the mark at once (not after ten intervals)',
      timeoutMs: 5_000,
    });
    expect(app.get(HostConflicts).count).toBe(0);
    expect(await gauge()).toBe(0);
  });
});
