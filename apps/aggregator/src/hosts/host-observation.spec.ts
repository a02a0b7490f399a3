import { TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { HOST_STALE_SLACK_MS, mapHostSample, newestPerHost, reporterKey } from './host-observation';

const AT = Date.parse('2026-12-02T12:00:00.000Z');
const base: HostMetricsPayload = {
  hostId: 'gpu-1',
  location: 'lab-2',
  sampledAt: new Date(AT).toISOString(),
  cpu: { usagePct: 12.5, cores: 4, load1: 1, load5: 1, load15: 1 },
  memory: { totalBytes: 8e9, usedBytes: 2e9 },
  disks: [],
  network: [],
  gpus: [],
  uptimeSeconds: 10,
  system: { hostname: 'gpu-1.lab' },
};

describe('mapHostSample', () => {
  it.each([
    // [intervalSeconds, staleAfterSeconds, deadline after the sample, reason]
    [5, 300, 2 * 5_000 + HOST_STALE_SLACK_MS, 'no metrics within 2 × 5s'],
    [1, 300, 2 * 1_000 + HOST_STALE_SLACK_MS, 'no metrics within 2 × 1s'],
    [3600, 300, 2 * 3_600_000 + HOST_STALE_SLACK_MS, 'no metrics within 2 × 3600s'],
    [undefined, 300, 300_000, 'no metrics for 300s'],
    [undefined, 5, 5_000, 'no metrics for 5s'],
  ])('interval %p, STALE_AFTER_SECONDS %p: STALE %p ms after the sample', (interval, staleAfter, after, reason) => {
    const m = mapHostSample({ ...base, intervalSeconds: interval }, 'id-1', staleAfter);
    expect(m.observation.deadline).toEqual({ at: AT + after, expireTo: TargetStatus.Stale, reason });
  });

  it('is the host target UP at its location, and keeps the whole sample in the raw row and live state', () => {
    const m = mapHostSample(base, 'id-1', 300);
    expect(m.targetId).toBe('host:gpu-1');
    expect(m.observation).toMatchObject({
      targetId: 'host:gpu-1',
      kind: TargetKind.Host,
      name: 'gpu-1',
      location: 'lab-2',
      at: AT,
      status: TargetStatus.Up,
    });
    expect(m.row).toMatchObject({ messageId: 'id-1', hostId: 'gpu-1', sampledAt: AT, cpuPct: 12.5, load1: 1 });
    expect(m.row.data).toEqual(base);
    expect(JSON.parse(m.metrics.json)).toEqual(base);
  });
});

describe('newestPerHost (what one commit projects into live state)', () => {
  it("keeps each host's newest sample whatever the delivery order; a tie keeps the later delivered", () => {
    const held = newestPerHost([
      { hostId: 'twin', json: 'lab-2 @30', at: 30 },
      { hostId: 'other', json: 'o @5', at: 5 },
      { hostId: 'twin', json: 'lab-3 @10', at: 10 },
      { hostId: 'other', json: 'o @5 again', at: 5 },
    ]);
    expect(Object.fromEntries(held)).toEqual({
      twin: { json: 'lab-2 @30', at: 30 },
      other: { json: 'o @5 again', at: 5 },
    });
  });
});

describe('reporterKey (who sent a sample, for host id conflicts)', () => {
  const boot = '11111111-2222-4333-8444-555555555555';
  it('two collectors on one machine (one per location: two spools, two installation ids) are one reporter', () => {
    expect(reporterKey({ installId: 'install-a', bootId: boot })).toBe(
      reporterKey({ installId: 'install-b', bootId: boot }),
    );
  });
  it('clones of one image (the installation id copied with it) are two: their boots differ', () => {
    expect(reporterKey({ installId: 'install-a', bootId: boot })).not.toBe(
      reporterKey({ installId: 'install-a', bootId: '99999999-2222-4333-8444-555555555555' }),
    );
  });
  it('without a boot id (not Linux) the installation stands for the machine', () => {
    expect(reporterKey({ installId: 'install-a' })).not.toBe(reporterKey({ installId: 'install-b' }));
    expect(reporterKey({ installId: 'install-a' })).toBe(reporterKey({ installId: 'install-a' }));
  });
});
