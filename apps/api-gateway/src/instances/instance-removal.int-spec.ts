import { randomUUID } from 'node:crypto';
import {
  InstanceKind,
  Messages,
  UUID_PATTERN,
  type ApiErrorBody,
  type HistoryResponse,
  type InstanceListResponse,
  type InstanceRemovalAccepted,
} from '@fleetwatch/contracts';
import type { Bus } from '@fleetwatch/messaging';
import * as testing from '@fleetwatch/testing';
import {
  startGatewayBesideAggregator,
  type GatewayBesideAggregator,
  type StartingGatewayBesideAggregator,
} from '../gateway-aggregator.int-helpers';
import type { GatewayHarness } from '../int-spec.helpers';

// DELETE /api/v1/instances/{instanceId} end to end: the real gateway (its bus through a proxy this test can cut), the
// real aggregator (built from today's sources, run as a process, STALE after 5 s) and pushed updates published on the
// same vhost as status-ingest publishes them. An instance whose pusher went away turns STALE and stays so; the DELETE
// sends a `removed` update for each of its locations, folded in order with its updates: it leaves the lists, its
// detail and /metrics, its status events go to UNKNOWN and stay readable, and a newer update brings it back.

jest.setTimeout(180_000);

const { waitFor } = testing;

const INSTANCE = 'db/backup-7@host-2';
const TARGET = `instance:${INSTANCE}`;
const enc = encodeURIComponent;

let proxy: GatewayBesideAggregator['proxy'];
let gw: GatewayHarness;
let ingest: Bus;
let operator: string;
let viewer: string;

/** One pushed update, as status-ingest publishes it. */
const push = (location: string, at: number, instanceId = INSTANCE) =>
  ingest.publisher.publish(
    Messages.StatusUpdate,
    {
      updateId: `u-${randomUUID()}`,
      instanceId,
      kind: InstanceKind.Process,
      status: 'running',
      location,
      occurredAt: new Date(at).toISOString(),
      receivedAt: new Date().toISOString(),
    },
    { id: randomUUID() },
  );
const listed = async () =>
  (await gw.request<InstanceListResponse>('GET', '/api/v1/instances', { token: viewer })).body.items;
const statusOf = async (id = INSTANCE) => (await listed()).find((i) => i.instanceId === id)?.status ?? null;
const remove = (id: string, token = operator) =>
  gw.request<InstanceRemovalAccepted & ApiErrorBody>('DELETE', `/api/v1/instances/${enc(id)}`, { token });
const scrape = async () => (await fetch(`${gw.url}/metrics`)).text();
const seriesOf = (text: string) => text.split('\n').filter((l) => !l.startsWith('#') && l.includes(`"${TARGET}"`));
const eventsOf = async () =>
  (await gw.request<HistoryResponse>('GET', `/api/v1/targets/${enc(TARGET)}/history?minutes=60`, { token: viewer }))
    .body.events;

let starting: StartingGatewayBesideAggregator | undefined;

beforeAll(async () => {
  starting = startGatewayBesideAggregator(
    'instance-removal',
    { service: 'status-ingest', location: 'local' },
    { STALE_AFTER_SECONDS: '5' },
  );
  ({ gw, proxy, viewer, operator, bus: ingest } = await starting.ready);
});

// Also after a set-up that timed out: what it started is stopped.
afterAll(() => starting?.close());

describe('DELETE /api/v1/instances/{instanceId}', () => {
  let removedAt = '';

  it('removes a STALE instance from every location: gone from the lists and /metrics; its events kept', async () => {
    await push('dc-1', Date.now());
    await push('dc-2', Date.now());
    await waitFor(async () => (await statusOf()) === 'UP', { description: 'instance UP', timeoutMs: 30_000 });
    // The pushers go away: nothing more comes, and it turns STALE (and would stay so).
    await waitFor(async () => (await statusOf()) === 'STALE', { description: 'instance STALE', timeoutMs: 30_000 });
    await waitFor(async () => seriesOf(await scrape()).length > 0, { description: 'instance on /metrics' });

    const res = await remove(INSTANCE);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      instanceId: INSTANCE,
      targetId: TARGET,
      removedAt: expect.any(String),
      locations: ['dc-1', 'dc-2'],
      messageId: expect.stringMatching(UUID_PATTERN),
    });
    removedAt = res.body.removedAt;

    await waitFor(async () => (await statusOf()) === null, { description: 'instance gone from the list' });
    const detail = await gw.request<ApiErrorBody>('GET', `/api/v1/targets/${enc(TARGET)}`, { token: viewer });
    expect(detail.status).toBe(404);
    expect(await gw.live.getTarget(TARGET)).toBeNull();
    await waitFor(async () => seriesOf(await scrape()).length === 0, { description: 'instance gone from /metrics' });

    // Its events stay readable, ending with every location and the consensus at UNKNOWN, said by whom.
    const events = await eventsOf();
    const last = events.filter((e) => e.to === 'UNKNOWN');
    expect(last.map((e) => e.location).sort()).toEqual(['dc-1', 'dc-2', null].sort());
    for (const e of last) expect(e.reason).toMatch(/removed: by operator \(user:.+\) through the API/);
    // And it does not come back STALE: no deadline is left for it.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await gw.live.getTarget(TARGET)).toBeNull();
    expect(await eventsOf()).toHaveLength(events.length);
  });

  it("removes an instance whose pushers' clocks are ahead of ours, as of its newest update", async () => {
    const ahead = 'clock-ahead-1';
    // Two locations, the later one listed last and stamped latest: the removal is dated by the newest of them all.
    const newestAt = Date.now() + 60_000;
    await push('dc-1', Date.now() + 30_000, ahead);
    await push('dc-2', newestAt, ahead);
    await waitFor(async () => (await listed()).find((i) => i.instanceId === ahead)?.locations.length === 2, {
      description: 'instance in two locations',
      timeoutMs: 30_000,
    });
    const res = await remove(ahead);
    expect(res.status).toBe(202);
    expect(res.body.locations).toEqual(['dc-1', 'dc-2']);
    // Not before its newest update: the aggregator takes an older removal for a late one of an earlier life, and
    // the instance would stay.
    expect(res.body.removedAt).toBe(new Date(newestAt).toISOString());
    await waitFor(async () => (await statusOf(ahead)) === null, { description: 'instance gone from the list' });
  });

  it('a repeated DELETE is a 404; an unknown instance is a 404; a bad id a 400; a viewer may not', async () => {
    const again = await remove(INSTANCE);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
    expect((await remove('never-pushed')).status).toBe(404);
    const bad = await remove('-starts-with-a-dash');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toEqual([{ path: 'instanceId', message: expect.stringMatching(/letter or digit/) }]);
    expect((await remove(INSTANCE, viewer)).status).toBe(403);
  });

  it('an update newer than the removal brings it back', async () => {
    await push('dc-1', Math.max(Date.now(), Date.parse(removedAt) + 1));
    await waitFor(async () => (await statusOf()) === 'UP', { description: 'instance back', timeoutMs: 30_000 });
  });

  it('the broker away: 503 with Retry-After, and the instance is not removed', async () => {
    proxy.pause();
    proxy.cut();
    const res = await remove(INSTANCE);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    proxy.resume();
    expect(await statusOf()).not.toBeNull();
    const accepted = await waitFor(
      async () => {
        const r = await remove(INSTANCE);
        return r.status === 202 ? r : null;
      },
      { description: 'DELETE accepted once the broker is back', timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(accepted.body.locations).toEqual(['dc-1']);
    await waitFor(async () => (await statusOf()) === null, { description: 'instance removed' });
  });
});
