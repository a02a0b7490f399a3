import { describe, expect, it } from 'vitest';
import { TargetStatus, type HostListResponse, type HostSummaryView } from '@fleetwatch/contracts';
import {
  EMPTY_HOST_FILTER,
  hostApiQuery,
  hostFilterToParams,
  hostsCountLabel,
  hostsPlaceholder,
  hostStatusChoices,
  matchesHostFilter,
  parseHostFilter,
  type HostFilter,
} from './host-filter';

const host = (id: string, extra: Partial<HostSummaryView> = {}): HostSummaryView => ({
  id,
  targetId: `host:${id}`,
  name: id,
  status: TargetStatus.Up,
  locations: ['eu-1'],
  lastSeen: null,
  since: null,
  system: null,
  lastSample: null,
  ...extra,
});

const gpu = host('gpu-17', {
  system: { hostname: 'gpu-17.Lab.example', platform: 'linux', distro: 'Ubuntu', release: '24.04', kernel: '6.8.0-45' },
});
const stale = host('db-02', {
  status: TargetStatus.Stale,
  locations: ['us-2', 'eu-1'],
  system: { platform: 'darwin' },
});
const filter = (f: Partial<HostFilter>): HostFilter => ({ ...EMPTY_HOST_FILTER, ...f });

describe('host filter: the URL', () => {
  it.each([
    ['', EMPTY_HOST_FILTER],
    ['status=STALE,UP', filter({ status: [TargetStatus.Stale, TargetStatus.Up] })],
    // Unknown statuses are dropped, duplicates folded, order made stable.
    ['status=UP,BOGUS,UP,STALE', filter({ status: [TargetStatus.Stale, TargetStatus.Up] })],
    ['location=+eu-1+&q=+GPU+&after=gpu-09', filter({ location: 'eu-1', q: 'GPU' })],
    [`q=${'x'.repeat(300)}`, filter({ q: 'x'.repeat(200) })],
  ])('%j → %j', (query, expected) => {
    expect(parseHostFilter(new URLSearchParams(query))).toEqual(expected);
  });

  it('round-trips through the URL with the page, writing only what is set', () => {
    const f = filter({ status: [TargetStatus.Up, TargetStatus.Stale], location: 'eu 1', q: 'gpu/ä' });
    const params = hostFilterToParams(f, 'gpu-0099');
    expect(params.toString()).toBe('status=STALE%2CUP&location=eu+1&q=gpu%2F%C3%A4&after=gpu-0099');
    const back = new URLSearchParams(params.toString());
    expect(parseHostFilter(back)).toEqual({ ...f, status: [TargetStatus.Stale, TargetStatus.Up] });
    expect(back.get('after')).toBe('gpu-0099');
    // A filter change starts from the first page: no `after` unless given.
    expect(hostFilterToParams(f).has('after')).toBe(false);
    expect(hostFilterToParams(EMPTY_HOST_FILTER).toString()).toBe('');
  });

  it('asks the gateway for the filter, the page size and the cursor', () => {
    const f = filter({ status: [TargetStatus.Stale, TargetStatus.Up], location: 'eu-1', q: 'gpu' });
    expect(hostApiQuery(f, 'gpu-0099', 100).toString()).toBe(
      'status=STALE%2CUP&location=eu-1&q=gpu&limit=100&cursor=gpu-0099',
    );
    expect(hostApiQuery(EMPTY_HOST_FILTER, null, 100).toString()).toBe('limit=100');
  });
});

describe('host filter: matching', () => {
  it.each([
    ['', 'gpu-17', true],
    ['gpu-17', 'gpu-17', true],
    ['GPU-1', 'gpu-17', true],
    ['  gpu  ', 'gpu-17', true],
    ['lab.EXAMPLE', 'gpu-17', true], // hostname, any case
    ['ubuntu', 'gpu-17', true], // distro
    ['ubuntu 24', 'gpu-17', true], // as the System column shows it
    ['6.8.0', 'gpu-17', true], // kernel
    ['LINUX', 'gpu-17', true], // platform
    ['darwin', 'gpu-17', false],
    ['gpu-18', 'gpu-17', false],
    ['DARWIN', 'db-02', true],
    ['eu-1', 'db-02', false], // locations are the location filter's, not the search's
    ['übuntu', 'gpu-17', true], // accents do not count (the gateway's matchesHostSearch folds alike)
    ['ＧＰＵ', 'gpu-17', true], // nor full-width letters
  ])('search %j in %s → %s', (q, id, expected) => {
    expect(matchesHostFilter(id === gpu.id ? gpu : stale, filter({ q }))).toBe(expected);
  });

  it('status: one of those selected; none selected takes every status', () => {
    expect(matchesHostFilter(stale, filter({ status: [TargetStatus.Stale] }))).toBe(true);
    expect(matchesHostFilter(gpu, filter({ status: [TargetStatus.Stale] }))).toBe(false);
    expect(matchesHostFilter(gpu, filter({ status: [TargetStatus.Stale, TargetStatus.Up] }))).toBe(true);
    expect(matchesHostFilter(gpu, filter({ status: [] }))).toBe(true);
  });

  it('location: an exact name among the host`s locations; with status and search, all must hold', () => {
    expect(matchesHostFilter(stale, filter({ location: 'us-2' }))).toBe(true);
    expect(matchesHostFilter(stale, filter({ location: 'us' }))).toBe(false);
    expect(matchesHostFilter(stale, filter({ location: 'eu-1', status: [TargetStatus.Stale], q: 'db' }))).toBe(true);
    expect(matchesHostFilter(stale, filter({ location: 'eu-1', status: [TargetStatus.Up], q: 'db' }))).toBe(false);
  });
});

describe('host filter: the page', () => {
  const firstPage: HostListResponse = { items: [gpu, stale], nextCursor: 'db-02', total: 500 };

  it('while a new filter loads, shows the first page it had less the hosts the filter does not take', () => {
    const shown = hostsPlaceholder(firstPage, null, null, filter({ status: [TargetStatus.Stale] }));
    expect(shown?.items.map((h) => h.id)).toEqual(['db-02']);
    // No Next meanwhile: the old filter's cursor is not the new one's.
    expect(shown?.nextCursor).toBeNull();
  });

  it('never shows another page`s rows: paging (or a page before) shows Loading instead', () => {
    expect(hostsPlaceholder(firstPage, null, 'db-02', EMPTY_HOST_FILTER)).toBeUndefined();
    expect(hostsPlaceholder(firstPage, 'aa', null, EMPTY_HOST_FILTER)).toBeUndefined();
    expect(hostsPlaceholder(undefined, null, null, EMPTY_HOST_FILTER)).toBeUndefined();
  });

  it('offers UP and STALE, other statuses some host has, and any selected', () => {
    expect(hostStatusChoices(undefined, [])).toEqual([TargetStatus.Up, TargetStatus.Stale]);
    expect(hostStatusChoices({ [TargetStatus.Unknown]: 2, [TargetStatus.Down]: 0 }, [TargetStatus.Paused])).toEqual([
      TargetStatus.Up,
      TargetStatus.Stale,
      TargetStatus.Paused,
      TargetStatus.Unknown,
    ]);
  });

  it('counts "n of m hosts" under a filter, every host without one', () => {
    expect(hostsCountLabel(12, 340, true)).toBe('12 of 340 hosts');
    expect(hostsCountLabel(0, 340, true)).toBe('0 of 340 hosts');
    expect(hostsCountLabel(12, undefined, true)).toBe('12 of … hosts');
    expect(hostsCountLabel(340, 340, false)).toBe('340 hosts');
    expect(hostsCountLabel(5000, 6000, true)).toBe(`${(5000).toLocaleString()} of ${(6000).toLocaleString()} hosts`);
  });
});
