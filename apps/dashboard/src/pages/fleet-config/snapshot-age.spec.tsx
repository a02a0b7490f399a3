import type { DriftCountsView, LeaderMemberView } from '@fleetwatch/contracts';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { MembersTab } from './fleet-config-page';
import { SnapshotAge } from './snapshot-age';

const member = (name: string, state: LeaderMemberView['state']): LeaderMemberView => ({
  name,
  url: `http://x/${name}`,
  tags: [],
  failoverOrder: null,
  state,
  stale: state !== 'OK',
  ageSeconds: 30,
  lastAttemptAt: null,
  lastSuccessAt: null,
  error: null,
  report: null,
  snapshotHash: 'h',
});

const driftOf = (name: string, stale: boolean, ageSeconds: number | null): DriftCountsView['members'][number] => ({
  name,
  stale,
  ageSeconds,
  snapshotHash: 'h',
  count: 0,
  areas: { checks: 0, alertRules: 0, channels: 0, properties: 0, componentVersions: 0 },
  notCompared: [],
});

describe('SnapshotAge (how old the snapshot drift was compared with is)', () => {
  it.each([
    [45, 'snapshot 45 s old'],
    [300, 'snapshot 5 min old'],
    [7_500, 'snapshot 2 h 5 min old'],
    [null, 'snapshot age unknown'],
  ])('%s s: "%s", muted while the member reports', (ageSeconds, text) => {
    const html = renderToStaticMarkup(<SnapshotAge ageSeconds={ageSeconds} stale={false} />);
    expect(html).toContain(text);
    expect(html).toContain('class="fw-snapshot-age fw-muted"');
    expect(html).toContain('data-stale="false"');
    expect(html).not.toContain('not reporting');
  });

  it('a STALE member’s (its last good snapshot): highlighted, saying so', () => {
    const html = renderToStaticMarkup(<SnapshotAge ageSeconds={5_400} stale />);
    expect(html).toContain('snapshot 1 h 30 min old (not reporting: last good one)');
    expect(html).toContain('class="fw-snapshot-age fw-snapshot-age--stale"');
    expect(html).toContain('data-stale="true"');
    expect(html).toContain('data-snapshot-age="5400"');
  });
});

describe('the fleet config Members tab shows each member’s compared snapshot age beside its drift', () => {
  it('an OK member’s age muted, a STALE member’s highlighted', () => {
    const html = renderToStaticMarkup(
      <MembersTab
        members={[member('eu', 'OK'), member('us', 'STALE')]}
        drift={{ leaderHash: 'L', members: [driftOf('eu', false, 300), driftOf('us', true, 7_200)] }}
      />,
    );
    expect(html).toMatch(/in sync.*snapshot 5 min old/);
    expect(html).toContain('data-snapshot-age="300" data-stale="false"');
    expect(html).toContain('snapshot 2 h old (not reporting: last good one)');
    expect(html).toContain('data-snapshot-age="7200" data-stale="true"');
  });
});

describe('an OK member whose last poll could not read its snapshot (drift stale, the member reporting)', () => {
  it('is highlighted, but not called "not reporting"', () => {
    const html = renderToStaticMarkup(
      <MembersTab members={[member('eu', 'OK')]} drift={{ leaderHash: 'L', members: [driftOf('eu', true, 600)] }} />,
    );
    expect(html).toContain('snapshot 10 min old (not read at the last poll: last good one)');
    expect(html).toContain('class="fw-snapshot-age fw-snapshot-age--stale"');
    expect(html).not.toContain('not reporting');
  });
});
