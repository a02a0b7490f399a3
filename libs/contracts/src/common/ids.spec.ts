import { UUID_PATTERN, uuidv7 } from './ids';

describe('uuidv7', () => {
  it('carries the given time in its first 48 bits', () => {
    const id = uuidv7(1_700_000_000_000);
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('7');
    expect(id.replace(/-/g, '').slice(0, 12)).toBe((1_700_000_000_000).toString(16).padStart(12, '0'));
  });

  it('without a time, is strictly increasing even within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    const first = parseInt(ids[0].replace(/-/g, '').slice(0, 12), 16);
    expect(Math.abs(first - Date.now())).toBeLessThan(5_000);
  });
});
