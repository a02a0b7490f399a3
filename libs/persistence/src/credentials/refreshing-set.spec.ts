import { RefreshingSet } from './refreshing-set';

describe('RefreshingSet', () => {
  let now: number;
  let values: string[];
  let loads: number;
  let release: (() => void) | null;
  const set = () =>
    new RefreshingSet(
      async () => {
        loads++;
        if (release === null) return [...values];
        await new Promise<void>((r) => (release = r));
        return [...values];
      },
      { maxAgeMs: 60_000, missRefreshMs: 10_000, now: () => now },
    );
  beforeEach(() => {
    now = 1_000_000;
    values = ['a'];
    loads = 0;
    release = null;
  });

  it('shares one load among concurrent first lookups', async () => {
    release = () => undefined;
    const s = set();
    const pending = Promise.all(['a', 'b', 'c', 'a'].map((v) => s.has(v)));
    await new Promise((r) => setImmediate(r));
    release?.();
    expect(await pending).toEqual([true, false, false, true]);
    expect(loads).toBe(1);
  });

  it('reloads on a miss at most once per missRefreshMs', async () => {
    const s = set();
    expect(await s.has('a')).toBe(true);
    values.push('b');
    expect(await s.has('b')).toBe(false);
    now += 9_999;
    expect(await s.has('b')).toBe(false);
    expect(loads).toBe(1);
    now += 1;
    expect(await s.has('b')).toBe(true);
    expect(loads).toBe(2);
  });

  it('keeps the last set when a reload fails', async () => {
    let fail = false;
    const s = new RefreshingSet(
      async () => {
        loads++;
        if (fail) throw new Error('database away');
        return [...values];
      },
      { maxAgeMs: 60_000, missRefreshMs: 10_000, now: () => now },
    );
    expect(await s.has('a')).toBe(true);
    fail = true;
    now += 10_000;
    expect(await s.has('zzz')).toBe(false);
    expect(await s.has('a')).toBe(true);
    expect(loads).toBe(2);
  });
});
