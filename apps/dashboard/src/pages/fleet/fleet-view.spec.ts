import type { FlowPoint, LeaderMemberView } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { ageText, bytesText, chosenView, flowFigureOf, flowSeries, flowTotal, tagsOf, withTag } from './fleet-view';

const member = (name: string, tags: string[], state: LeaderMemberView['state'] = 'OK'): LeaderMemberView => ({
  name,
  url: `http://x/${name}`,
  tags,
  failoverOrder: null,
  state,
  stale: state !== 'OK',
  ageSeconds: null,
  lastAttemptAt: null,
  lastSuccessAt: null,
  error: null,
  report: null,
  snapshotHash: null,
});

describe('the chosen view', () => {
  it.each([
    ['the URL wins', 'egress', 'storage', 'egress'],
    ['else the stored one', null, 'storage', 'storage'],
    ['an unknown URL value falls back to the stored one', 'bogus', 'deleted', 'deleted'],
    ['else the summary', null, null, 'summary'],
    ['a stored unknown value is ignored', null, 'nope', 'summary'],
  ] as const)('%s', (_, url, stored, view) => {
    expect(chosenView(url, stored)).toBe(view);
  });

  it.each([
    ['summary', null],
    ['detailed', null],
    ['ingress', 'ingress'],
    ['egress', 'egress'],
    ['storage', 'stored'],
    ['deleted', 'deleted'],
  ] as const)('%s shows flow figure %s', (view, figure) => {
    expect(flowFigureOf(view)).toBe(figure);
  });
});

describe('tag filter', () => {
  const members = [member('a', ['eu', 'prod']), member('b', ['us'], 'STALE'), member('c', ['eu'], 'NEVER')];
  it('lists every tag once, sorted', () => {
    expect(tagsOf(members)).toEqual(['eu', 'prod', 'us']);
  });
  it.each([
    ['', ['a', 'b', 'c']],
    ['eu', ['a', 'c']],
    ['us', ['b']],
    ['none', []],
  ])('tag %j keeps %j — a non-reporting member is never filtered out by its state', (tag, names) => {
    expect(withTag(members, tag).map((m) => m.name)).toEqual(names);
  });
});

describe('figures', () => {
  it.each([
    [null, 'no data yet'],
    [0, '0 s'],
    [59, '59 s'],
    [60, '1 min'],
    [3600, '1 h'],
    [3660, '1 h 1 min'],
    [86_400 * 2, '2 d'],
  ])('age %j reads %j', (s, text) => {
    expect(ageText(s)).toBe(text);
  });
  it.each([
    [null, '—'],
    [512, '512 B'],
    [2048, '2.0 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
  ])('bytes %j read %j', (n, text) => {
    expect(bytesText(n)).toBe(text);
  });

  const p = (min: number, count: number | null, bytes: number | null): FlowPoint => ({
    at: new Date(Date.UTC(2026, 0, 1, 0, min)).toISOString(),
    ingress: { count, bytes },
    egress: { count: 0, bytes: 0 },
    stored: { count: 0, bytes: 0 },
    deleted: { count: null, bytes: null },
  });
  it('a figure over time is ordered by time, unknown minutes as gaps', () => {
    const s = flowSeries([p(2, 5, 50), p(1, null, null)], 'ingress');
    expect(s.values).toEqual([null, 5]);
    expect(s.times[1] - s.times[0]).toBe(60);
  });
  it('totals count the known minutes only; none known is null, not 0', () => {
    expect(flowTotal([p(1, 5, 50), p(2, null, null), p(3, 2, 20)], 'ingress')).toEqual({ count: 7, bytes: 70 });
    expect(flowTotal([p(1, 0, 0)], 'deleted')).toEqual({ count: null, bytes: null });
    expect(flowTotal(null, 'ingress')).toEqual({ count: null, bytes: null });
  });
});
