import {
  Messages,
  UUID_PATTERN,
  type ApiErrorBody,
  type HistoryResponse,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsPayload,
  type HostMetricsResponse,
  type HostRetirementAccepted,
} from '@fleetwatch/contracts';
import type { Bus } from '@fleetwatch/messaging';
import * as testing from '@fleetwatch/testing';
import {
  startGatewayBesideAggregator,
  type GatewayBesideAggregator,
  type StartingGatewayBesideAggregator,
} from '../gateway-aggregator.int-helpers';
import type { GatewayHarness } from '../int-spec.helpers';

// DELETE /api/v1/hosts/{id} end to end: the real gateway (its bus through a proxy this test can cut), the real
// aggregator (built from today's sources, run as a process) and a collector's host.metrics published on the same
// vhost. The retirement goes over the bus to the aggregator, which folds it in order with the host's samples: the
// host leaves the host list, its detail, live state and /metrics (host and target series); its samples and events
// stay readable; a later sample brings it back. Unknown and already retired hosts are 404s; a repeated DELETE
// changes nothing more; the broker away is a 503 with Retry-After, and nothing was retired.

jest.setTimeout(180_000);

const { waitFor } = testing;

const HOST = 'rack-2/gpu 9';
const enc = encodeURIComponent;

let proxy: GatewayBesideAggregator['proxy'];
let gw: GatewayHarness;
let collector: Bus;
let operator: string;
let viewer: string;

function sample(hostId: string, at: number): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-3',
    sampledAt: new Date(at).toISOString(),
    // Long: the host must stay UP from its first sample to the DELETE and from its return to the last check (with 1 s
    // it went STALE 8 s after it was heard — one slow step on a loaded box, and the event lists had STALE in them).
    intervalSeconds: 600,
    cpu: { usagePct: 12, cores: 8, load1: 1, load5: 1, load15: 1 },
    memory: { totalBytes: 16e9, usedBytes: 4e9 },
    disks: [{ mount: '/', totalBytes: 1e11, usedBytes: 2e10 }],
    network: [],
    gpus: [],
    system: { hostname: 'gpu-9', platform: 'linux' },
  };
}

const publishSample = (at: number) => collector.publisher.publish(Messages.HostMetrics, sample(HOST, at));
const hostsListed = async () =>
  (await gw.request<HostListResponse>('GET', '/api/v1/hosts', { token: viewer })).body.items.map((h) => h.id);
const retire = (id: string, token = operator) =>
  gw.request<HostRetirementAccepted & ApiErrorBody>('DELETE', `/api/v1/hosts/${enc(id)}`, { token });
const scrape = async () => (await fetch(`${gw.url}/metrics`)).text();
/** The /metrics lines about the host: its host series, and its target's. */
const seriesOf = (text: string) =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#') && (l.includes(`host="${HOST}"`) || l.includes(`target="host:${HOST}"`)));
const eventsOf = async () =>
  (
    await gw.request<HistoryResponse>('GET', `/api/v1/targets/${enc(`host:${HOST}`)}/history?minutes=60`, {
      token: viewer,
    })
  ).body.events;

let starting: StartingGatewayBesideAggregator | undefined;

beforeAll(async () => {
  starting = startGatewayBesideAggregator('host-retire', { service: 'collector', location: 'lab-3' });
  ({ gw, proxy, viewer, operator, bus: collector } = await starting.ready);
});

// Also after a set-up that timed out: what it started is stopped.
afterAll(() => starting?.close());

describe('DELETE /api/v1/hosts/{id}', () => {
  let retiredAt = '';

  it('retires a host the aggregator folded: gone from the list, its detail, live state and /metrics; history kept', async () => {
    await publishSample(Date.now() - 1000);
    await publishSample(Date.now());
    await waitFor(async () => (await hostsListed()).includes(HOST), { description: 'host listed', timeoutMs: 30_000 });
    // The host's figures are written to live state just after the host itself (the projection's next step): a
    // scrape in between shows fleetwatch_host_up without them, so wait for both.
    await waitFor(
      async () => {
        const series = seriesOf(await scrape());
        return (
          series.some((l) => l.startsWith('fleetwatch_host_up')) &&
          series.some((l) => l.startsWith('fleetwatch_host_cpu_ratio'))
        );
      },
      { description: 'host and its figures on /metrics' },
    );
    expect(seriesOf(await scrape())).toEqual(
      expect.arrayContaining([
        `fleetwatch_host_up{host="${HOST}",location="lab-3"} 1`,
        expect.stringMatching(/^fleetwatch_host_cpu_ratio\{host=".*"\} 0\.12$/),
        `fleetwatch_target_status{target="host:${HOST}",status="UP"} 1`,
      ]),
    );

    const res = await retire(HOST);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      hostId: HOST,
      targetId: `host:${HOST}`,
      retiredAt: expect.any(String),
      messageId: expect.stringMatching(UUID_PATTERN),
    });
    retiredAt = res.body.retiredAt;

    await waitFor(async () => !(await hostsListed()).includes(HOST), { description: 'host gone from the list' });
    const detail = await gw.request<ApiErrorBody>('GET', `/api/v1/hosts/${enc(HOST)}`, { token: viewer });
    expect(detail.status).toBe(404);
    expect(await gw.live.getTarget(`host:${HOST}`)).toBeNull();
    expect(await gw.live.getHostMetrics(HOST)).toBeNull();
    // /metrics shares one read of live state a second: the next scrape has nothing about the host.
    await waitFor(async () => seriesOf(await scrape()).length === 0, { description: 'host gone from /metrics' });

    // History stays readable: the samples, and the events up to the retirement (UP → UNKNOWN, said by whom).
    const metrics = await gw.request<HostMetricsResponse>('GET', `/api/v1/hosts/${enc(HOST)}/metrics?minutes=60`, {
      token: viewer,
    });
    expect(metrics.status).toBe(200);
    expect(metrics.body.series.find((s) => s.series === 'cpu_pct')?.points).toHaveLength(2);
    const events = await eventsOf();
    expect(events.map((e) => [e.location, e.from, e.to])).toEqual([
      ['lab-3', 'UNKNOWN', 'UP'],
      [null, 'UNKNOWN', 'UP'],
      ['lab-3', 'UP', 'UNKNOWN'],
      [null, 'UP', 'UNKNOWN'],
    ]);
    for (const e of events.slice(2)) expect(e.reason).toMatch(/^retired by operator \(user:.+\)$/);
  });

  it('a repeated DELETE is a 404 and changes nothing; an unknown host is a 404; a viewer may not', async () => {
    const again = await retire(HOST);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
    expect((await retire('never-seen')).status).toBe(404);
    expect((await retire('x', viewer)).status).toBe(403);
    expect(await eventsOf()).toHaveLength(4);
  });

  it('a sample stamped after the retirement brings the host back', async () => {
    await publishSample(Math.max(Date.now(), Date.parse(retiredAt) + 1));
    await waitFor(async () => (await hostsListed()).includes(HOST), { description: 'host back', timeoutMs: 30_000 });
    const detail = await gw.request<HostDetailView>('GET', `/api/v1/hosts/${enc(HOST)}`, { token: viewer });
    expect(detail.status).toBe(200);
    expect(detail.body.target.status).toBe('UP');
    await waitFor(
      async () => seriesOf(await scrape()).includes(`fleetwatch_host_up{host="${HOST}",location="lab-3"} 1`),
      { description: 'host back on /metrics' },
    );
    expect((await eventsOf()).slice(4).map((e) => [e.location, e.from, e.to])).toEqual([
      ['lab-3', 'UNKNOWN', 'UP'],
      [null, 'UNKNOWN', 'UP'],
    ]);
  });

  it('the broker away: 503 with Retry-After, and the host is not retired', async () => {
    proxy.pause();
    proxy.cut();
    const res = await retire(HOST);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    proxy.resume();
    // Back: the gateway reconnects; the host was never retired meanwhile.
    expect((await hostsListed()).includes(HOST)).toBe(true);
    const accepted = await waitFor(
      async () => {
        const r = await retire(HOST);
        return r.status === 202 ? r : null;
      },
      { description: 'DELETE accepted once the broker is back', timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(accepted.body.hostId).toBe(HOST);
    await waitFor(async () => !(await hostsListed()).includes(HOST), { description: 'host retired' });
  });
});
