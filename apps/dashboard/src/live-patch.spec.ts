import { TargetKind, TargetStatus, type TargetView } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { patchTarget } from './live-patch';

const t = (id: string): TargetView => ({
  id,
  kind: TargetKind.Instance,
  name: id,
  status: TargetStatus.Up,
  consensus: TargetStatus.Up,
  locations: [
    { location: 'eu', status: TargetStatus.Up, lastSeen: null, latencyMs: null, detail: null },
    { location: 'us', status: TargetStatus.Up, lastSeen: null, latencyMs: null, detail: null },
  ],
  lastSeen: null,
  since: null,
  tags: [],
  labels: {},
  lifecycle: null,
  instanceKind: null,
});
const at = '2026-01-01T00:00:00.000Z';

describe('status events applied to cached targets', () => {
  it('the target status (location null) sets status, consensus and since', () => {
    expect(patchTarget(t('a'), { targetId: 'a', location: null, to: TargetStatus.Down, at })).toMatchObject({
      status: 'DOWN',
      consensus: 'DOWN',
      since: at,
    });
  });
  it('a location event changes that location only', () => {
    const p = patchTarget(t('a'), { targetId: 'a', location: 'us', to: TargetStatus.Down, at });
    expect(p.status).toBe('UP');
    expect(p.locations.map((l) => l.status)).toEqual(['UP', 'DOWN']);
  });
  it('another target stays the same object', () => {
    const a = t('a');
    expect(patchTarget(a, { targetId: 'b', location: null, to: TargetStatus.Down, at })).toBe(a);
  });
});
