import { describe, expect, it } from 'vitest';
import type { AlertHistoryEntry, AlertHistoryResponse } from '@fleetwatch/contracts';
import {
  changeText,
  EMPTY_HISTORY_FILTER,
  endedWithoutRecovery,
  endReasonLabel,
  formatAlertValue,
  historyApiQuery,
  historyFilterToParams,
  historyLinkFor,
  historyRows,
  isHistoryFiltered,
  parseHistoryFilter,
  ruleOptions,
} from './history-model';

const entry = (id: string, over: Partial<AlertHistoryEntry> = {}): AlertHistoryEntry => ({
  id,
  ruleId: 'api-down',
  ruleName: 'API down',
  severity: 'critical',
  fingerprint: '0123456789abcdef',
  targetId: 'check:web',
  from: 'pending',
  to: 'firing',
  labels: { alertname: 'API down', severity: 'critical', target: 'check:web', rule_id: 'api-down' },
  value: null,
  at: '2026-01-02T03:04:05.000Z',
  endReason: null,
  ...over,
});

describe('alert history filter', () => {
  it.each([
    ['', EMPTY_HISTORY_FILTER],
    ['rule=api-down', { ruleId: 'api-down', targetId: '' }],
    ['target=check%3Aweb', { ruleId: '', targetId: 'check:web' }],
    // Trimmed; blank is no filter.
    ['rule=+api-down+&target=+instance%3Aweb-1+', { ruleId: 'api-down', targetId: 'instance:web-1' }],
    ['rule=+&target=+++', EMPTY_HISTORY_FILTER],
    // What the API would refuse (400) is dropped, never sent: a rule id with spaces, a target id too long.
    ['rule=not+a+rule+id!', EMPTY_HISTORY_FILTER],
    [`target=${'x'.repeat(301)}`, EMPTY_HISTORY_FILTER],
    [`target=${'x'.repeat(300)}`, { ruleId: '', targetId: 'x'.repeat(300) }],
    // Other parameters are not the filter's.
    ['ruleId=api-down&targetId=check%3Aweb&cursor=x', EMPTY_HISTORY_FILTER],
  ])('%j → %j', (query, expected) => {
    expect(parseHistoryFilter(new URLSearchParams(query))).toEqual(expected);
  });

  it('round-trips through the address, writing only what is set', () => {
    const f = { ruleId: 'api-down', targetId: 'instance:a b' };
    expect(historyFilterToParams(f).toString()).toBe('rule=api-down&target=instance%3Aa+b');
    expect(parseHistoryFilter(historyFilterToParams(f))).toEqual(f);
    expect(historyFilterToParams(EMPTY_HISTORY_FILTER).toString()).toBe('');
    expect(historyFilterToParams({ ruleId: '', targetId: 'check:web' }).toString()).toBe('target=check%3Aweb');
  });

  it('says whether anything is filtered', () => {
    expect(isHistoryFiltered(EMPTY_HISTORY_FILTER)).toBe(false);
    expect(isHistoryFiltered({ ruleId: 'r', targetId: '' })).toBe(true);
    expect(isHistoryFiltered({ ruleId: '', targetId: 't' })).toBe(true);
  });

  it('links the history page filtered to one target', () => {
    expect(historyLinkFor('instance:web 1/a')).toBe('/alerts/history?target=instance%3Aweb+1%2Fa');
    const link = new URL(historyLinkFor(' check:web '), 'http://x');
    expect(link.pathname).toBe('/alerts/history');
    expect(parseHistoryFilter(link.searchParams)).toEqual({ ruleId: '', targetId: 'check:web' });
  });
});

describe('alert history API query', () => {
  it('sends the limit, the filter under the API’s names and the cursor', () => {
    expect(historyApiQuery(EMPTY_HISTORY_FILTER, null).toString()).toBe('limit=100');
    expect(historyApiQuery({ ruleId: 'api-down', targetId: 'check:web' }, '1700000000000_abc', 20).toString()).toBe(
      'limit=20&ruleId=api-down&targetId=check%3Aweb&cursor=1700000000000_abc',
    );
  });
});

describe('alert history rows', () => {
  it('keeps the pages’ order and shows a change met twice once', () => {
    const pages: AlertHistoryResponse[] = [
      { items: [entry('c'), entry('b')], nextCursor: 'n1' },
      { items: [entry('b'), entry('a')], nextCursor: null },
    ];
    expect(historyRows(pages).map((e) => e.id)).toEqual(['c', 'b', 'a']);
    expect(historyRows(undefined)).toEqual([]);
    expect(historyRows([])).toEqual([]);
  });
});

describe('rule options', () => {
  it('lists every rule by name after “every rule”, names shared by two rules told apart by id', () => {
    const rules = [
      { id: 'r2', name: 'Disk full' },
      { id: 'r1', name: 'API down' },
      { id: 'r3', name: 'Disk full' },
    ];
    expect(ruleOptions(rules, '')).toEqual([
      { value: '', label: 'every rule' },
      { value: 'r1', label: 'API down' },
      { value: 'r2', label: 'Disk full (r2)' },
      { value: 'r3', label: 'Disk full (r3)' },
    ]);
    expect(ruleOptions(rules, 'r1')).toHaveLength(4);
  });

  it('keeps a rule the address names that is not listed (deleted, or still loading) choosable by its id', () => {
    expect(ruleOptions([{ id: 'r1', name: 'API down' }], 'gone')).toEqual([
      { value: '', label: 'every rule' },
      { value: 'gone', label: 'gone' },
      { value: 'r1', label: 'API down' },
    ]);
    expect(ruleOptions([], 'gone')).toEqual([
      { value: '', label: 'every rule' },
      { value: 'gone', label: 'gone' },
    ]);
  });
});

describe('formatting', () => {
  it.each([
    [null, ''],
    [0, '0'],
    [42, '42'],
    [-3, '-3'],
    [0.30000000000000004, '0.3'],
    [1234.5678, '1234.568'],
    [97.5, '97.5'],
    [-12.3456, '-12.346'],
    [0.000123456, '0.0001235'],
    [1e21, '1e+21'],
  ])('value %j → %j', (value, text) => {
    expect(formatAlertValue(value)).toBe(text);
  });

  it('writes a change as from → to', () => {
    expect(changeText(entry('x'))).toBe('pending → firing');
    expect(changeText({ from: 'firing', to: 'resolved' })).toBe('firing → resolved');
  });
});

describe('why a change ended its alert', () => {
  it('reads the reason; a series gone absent is told from a value back under its threshold', () => {
    const absent = entry('a', { from: 'firing', to: 'resolved', endReason: 'series_absent' });
    const cleared = entry('b', { from: 'firing', to: 'resolved', endReason: 'condition_cleared' });
    expect([endReasonLabel(absent), endedWithoutRecovery(absent)]).toEqual(['series absent', true]);
    expect([endReasonLabel(cleared), endedWithoutRecovery(cleared)]).toEqual(['condition cleared', false]);
    expect(endReasonLabel(entry('c', { from: 'pending', to: 'inactive', endReason: 'rule_deleted' }))).toBe(
      'rule deleted',
    );
    // A change that ended nothing, or one recorded before reasons were kept: nothing shown.
    expect([endReasonLabel(entry('d')), endedWithoutRecovery(entry('d'))]).toEqual(['', false]);
  });

  it('says how long the data was missing, as the API reads it out ("no data for 20 min")', () => {
    const absent = entry('a', {
      from: 'firing',
      to: 'resolved',
      endReason: 'series_absent',
      endReasonText: 'series absent (no data for 20 min)',
    });
    expect([endReasonLabel(absent), endedWithoutRecovery(absent)]).toEqual([
      'series absent (no data for 20 min)',
      true,
    ]);
    // From a gateway before the text existed (or a change without one): the reason alone.
    const older = entry('b', { from: 'firing', to: 'resolved', endReason: 'series_absent', endReasonText: null });
    expect(endReasonLabel(older)).toBe('series absent');
    expect(endReasonLabel(entry('c', { endReasonText: null }))).toBe('');
  });
});
