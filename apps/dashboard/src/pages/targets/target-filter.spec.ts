import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_FILTER,
  filterToParams,
  matchesFilter,
  matchesSearch,
  parseFilter,
  targetApiQuery,
  toggle,
} from './target-filter';

describe('target filter in the URL', () => {
  it.each([
    ['', EMPTY_FILTER],
    ['status=DOWN', { ...EMPTY_FILTER, status: [TargetStatus.Down] }],
    ['status=UP,DOWN,UP', { ...EMPTY_FILTER, status: [TargetStatus.Down, TargetStatus.Up] }],
    ['status=BOGUS,UP&kind=check,nope', { ...EMPTY_FILTER, status: [TargetStatus.Up], kind: [TargetKind.Check] }],
    ['tag=%20prod%20&q=web', { ...EMPTY_FILTER, tag: 'prod', q: 'web' }],
    ['location=eu-west-1', { ...EMPTY_FILTER, location: 'eu-west-1' }],
  ])('parses ?%s', (query, expected) => {
    expect(parseFilter(new URLSearchParams(query))).toEqual(expected);
  });

  it.each([
    [EMPTY_FILTER, ''],
    [{ ...EMPTY_FILTER, status: [TargetStatus.Up, TargetStatus.Down] }, 'status=DOWN%2CUP'],
    [{ ...EMPTY_FILTER, kind: [TargetKind.Host], tag: 'prod', q: 'x y' }, 'kind=host&tag=prod&q=x+y'],
    [{ ...EMPTY_FILTER, tag: 'a', location: 'us-east-1' }, 'tag=a&location=us-east-1'],
  ])('writes %j as ?%s, and reads it back the same', (filter, query) => {
    const params = filterToParams(filter);
    expect(params.toString()).toBe(query);
    expect(parseFilter(params)).toEqual({
      ...filter,
      status: [...filter.status].sort(),
      kind: [...filter.kind].sort(),
    });
  });

  it('sends status, kind, tag and location to the API but never the free-text search', () => {
    const q = targetApiQuery({
      status: [TargetStatus.Down, TargetStatus.Stale],
      kind: [],
      tag: 't',
      location: 'eu-west-1',
      q: 'web',
    });
    expect(Object.fromEntries(q)).toEqual({ status: 'DOWN,STALE', tag: 't', location: 'eu-west-1' });
  });

  it('toggles a value in and out', () => {
    expect(toggle(['a'], 'b')).toEqual(['a', 'b']);
    expect(toggle(['a', 'b'], 'a')).toEqual(['b']);
  });

  const t = {
    id: 'instance:web-1',
    name: 'Web One',
    tags: ['prod', 'zürich'],
    labels: { app: 'shop', site: 'Straße 1' },
  };
  it.each([
    ['', true],
    ['web', true],
    ['WEB-1', true],
    ['prod', true],
    ['app=shop', true],
    ['staging', false],
    // Accents and case do not count, on either side.
    ['ZURICH', true],
    ['Zürich', true],
    ['strasse', true],
  ])('search %j matches: %s', (q, expected) => {
    expect(matchesSearch(t, q)).toBe(expected);
  });
});

describe('matchesFilter (the API filter, in the page)', () => {
  const loc = (location: string) => ({
    location,
    status: TargetStatus.Down,
    lastSeen: null,
    latencyMs: null,
    detail: null,
  });
  const t = {
    status: TargetStatus.Down,
    kind: TargetKind.Instance,
    tags: ['prod', 'team-1'],
    locations: [loc('eu-west-1'), loc('us-east-1')],
  };
  it.each([
    [EMPTY_FILTER, true],
    [{ ...EMPTY_FILTER, status: [TargetStatus.Down, TargetStatus.Stale] }, true],
    [{ ...EMPTY_FILTER, status: [TargetStatus.Up] }, false],
    [{ ...EMPTY_FILTER, kind: [TargetKind.Host] }, false],
    [{ ...EMPTY_FILTER, tag: 'prod' }, true],
    [{ ...EMPTY_FILTER, tag: 'pro' }, false],
    [{ ...EMPTY_FILTER, location: 'us-east-1' }, true],
    [{ ...EMPTY_FILTER, location: 'us-east' }, false],
  ])('%j → %s', (f, expected) => expect(matchesFilter(t, f)).toBe(expected));
});
