import { FrameBudget } from './frame-budget';

describe('FrameBudget', () => {
  it('takes a burst at once, then the rate; answers the first dropped frame of a run, closes on a flood', () => {
    let t = 0;
    const b = new FrameBudget(20, 60, () => t);
    const verdicts = Array.from({ length: 60 }, () => b.take());
    expect(verdicts.every((v) => v === 'ok')).toBe(true);
    expect(b.take()).toBe('drop-first');
    expect(b.take()).toBe('drop');
    t += 100; // two frames' worth
    expect([b.take(), b.take(), b.take()]).toEqual(['ok', 'ok', 'drop-first']);
    // 61 dropped in a row (the first above included): a flood, said once; what follows is dropped.
    const run = Array.from({ length: 70 }, () => b.take());
    expect(run.slice(0, 59).every((v) => v === 'drop')).toBe(true);
    expect(run[59]).toBe('close');
    expect(run.slice(60).every((v) => v === 'drop')).toBe(true);
  });

  it('a client within the rate is never refused', () => {
    let t = 0;
    const b = new FrameBudget(20, 60, () => t);
    for (let i = 0; i < 10_000; i++) {
      t += 50; // 20 a second
      expect(b.take()).toBe('ok');
    }
  });
});
