import { describe, expect, it } from 'vitest';
import { uptimeText } from './status-page-view';

describe('uptimeText', () => {
  it('rounds down to 0.01 % (never 100.00 % with any downtime), from the exact share', () => {
    // 5 h 56 min 24 s down of a day is 75.25 % up: u * 10000 came out as 7524.999…, and the page said 75.24 %.
    expect(uptimeText((86_400 - 21_384) / 86_400)).toBe('75.25 %');
    expect(uptimeText((86_400 - 26_784) / 86_400)).toBe('69.00 %');
    expect(uptimeText(0.0029)).toBe('0.29 %');
    expect(uptimeText(1)).toBe('100.00 %');
    // One millisecond down in 90 days of 200 targets: still below 100.
    expect(uptimeText(1 - 1 / (90 * 86_400_000 * 200))).toBe('99.99 %');
    expect(uptimeText((86_400 - 1) / 86_400)).toBe('99.99 %');
    expect(uptimeText(0)).toBe('0.00 %');
    expect(uptimeText(null)).toBe('no data');
  });
});
