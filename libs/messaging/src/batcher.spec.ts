import { Batcher } from './batcher';

describe('Batcher', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const deferred = (): { promise: Promise<void>; resolve: () => void } => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('hands over a full batch at once', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxSize: 3, maxWaitMs: 1_000 }, async (items) => void batches.push(items));
    [1, 2, 3, 4].forEach((i) => b.add(i));
    await Promise.resolve();
    expect(batches).toEqual([[1, 2, 3]]);
    expect(b.size).toBe(1);
  });

  it('hands over a partial batch after maxWaitMs', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxSize: 10, maxWaitMs: 50 }, async (items) => void batches.push(items));
    b.add(1);
    jest.advanceTimersByTime(30);
    b.add(2);
    expect(batches).toEqual([]);
    jest.advanceTimersByTime(20);
    expect(batches).toEqual([[1, 2]]);
  });

  it('leading edge: after a quiet spell an item goes at once; under load at most one batch per maxWaitMs', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>(
      { maxSize: 10, maxWaitMs: 50, leading: true },
      async (items) => void batches.push(items),
    );
    b.add(1);
    b.add(2);
    expect(batches).toEqual([]);
    await jest.advanceTimersByTimeAsync(0);
    expect(batches).toEqual([[1, 2]]); // quiet before: handed over after the current turn, not 50 ms later
    await jest.advanceTimersByTimeAsync(10);
    b.add(3);
    await jest.advanceTimersByTimeAsync(30);
    b.add(4);
    expect(batches).toEqual([[1, 2]]); // 40 ms since the last hand-over
    await jest.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await jest.advanceTimersByTimeAsync(200); // quiet again
    b.add(5);
    await jest.advanceTimersByTimeAsync(0);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('never runs two batches at once; items arriving meanwhile form the next batch', async () => {
    const gate = deferred();
    const batches: number[][] = [];
    let running = 0;
    let maxRunning = 0;
    const b = new Batcher<number>({ maxSize: 2, maxWaitMs: 10 }, async (items) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      batches.push(items);
      if (batches.length === 1) await gate.promise;
      running--;
    });
    [1, 2, 3, 4, 5].forEach((i) => b.add(i));
    expect(batches).toEqual([[1, 2]]);
    jest.advanceTimersByTime(100);
    expect(batches).toEqual([[1, 2]]);
    gate.resolve();
    await jest.runAllTimersAsync();
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(maxRunning).toBe(1);
  });

  it('flush hands over everything and resolves once idle', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxSize: 2, maxWaitMs: 60_000 }, async (items) => void batches.push(items));
    [1, 2, 3, 4, 5].forEach((i) => b.add(i));
    await b.flush();
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(b.isIdle).toBe(true);
  });

  it('discard removes buffered items without handing them over', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxSize: 10, maxWaitMs: 50 }, async (items) => void batches.push(items));
    [1, 2, 3].forEach((i) => b.add(i));
    expect(b.discard((i) => i !== 2)).toEqual([1, 3]);
    jest.advanceTimersByTime(50);
    expect(batches).toEqual([[2]]);
  });

  it('a failing batch does not stop the next one', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>({ maxSize: 1, maxWaitMs: 5 }, async (items) => {
      batches.push(items);
      if (items[0] === 1) throw new Error('boom');
    });
    b.add(1);
    b.add(2);
    await b.flush();
    expect(batches).toEqual([[1], [2]]);
  });

  it('rejects nonsense sizes', () => {
    expect(() => new Batcher({ maxSize: 0, maxWaitMs: 1 }, async () => undefined)).toThrow(RangeError);
  });

  it('flushes by weight: a batch holds at most maxUnits, a heavier item goes alone', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number>(
      { maxSize: 100, maxWaitMs: 1_000, maxUnits: 1_000 },
      async (items) => void batches.push(items),
      (n) => n,
    );
    b.add(400);
    b.add(500);
    await Promise.resolve();
    expect(batches).toEqual([]);
    b.add(300); // 1200 units: due; the first batch takes what fits
    await Promise.resolve();
    expect(batches).toEqual([[400, 500]]);
    b.add(2_000);
    await b.flush();
    expect(batches).toEqual([[400, 500], [300], [2_000]]);
  });
});
