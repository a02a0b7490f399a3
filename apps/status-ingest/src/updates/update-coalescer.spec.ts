import { UpdateCoalescer } from './update-coalescer';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('UpdateCoalescer', () => {
  it('sends at once while slots are free, then groups waiting requests in order', async () => {
    const sends: { items: number[]; d: ReturnType<typeof deferred> }[] = [];
    const c = new UpdateCoalescer<number>((items) => {
      const d = deferred();
      sends.push({ items, d });
      return d.promise;
    }, { maxInFlight: 1, maxItems: 5 });

    const first = c.submit([1]);
    expect(sends.map((s) => s.items)).toEqual([[1]]);
    const rest = [c.submit([2, 3]), c.submit([4]), c.submit([5, 6]), c.submit([7])];
    expect(sends).toHaveLength(1);
    expect(c.queued).toBe(4);

    sends[0].d.resolve();
    await first;
    await new Promise((r) => setImmediate(r));
    // 2,3 + 4 + 5,6 = 5 items (the limit); 7 waits for the next slot.
    expect(sends.map((s) => s.items)).toEqual([[1], [2, 3, 4, 5, 6]]);
    sends[1].d.resolve();
    await Promise.all(rest.slice(0, 3));
    await new Promise((r) => setImmediate(r));
    expect(sends[2].items).toEqual([7]);
    sends[2].d.resolve();
    await rest[3];
  });

  it('rejects every request of a message that was not confirmed, and goes on', async () => {
    let n = 0;
    const c = new UpdateCoalescer<string>(async (items) => {
      n++;
      if (items.includes('bad')) throw new Error('nacked');
    }, { maxInFlight: 1, maxItems: 10 });
    const a = c.submit(['ok-1']);
    const b = c.submit(['bad']);
    const d = c.submit(['ok-2']);
    await expect(a).resolves.toBeUndefined();
    await expect(b).rejects.toThrow('nacked');
    await expect(d).rejects.toThrow('nacked'); // it travelled in the same message as 'bad'
    await expect(c.submit(['ok-3'])).resolves.toBeUndefined();
    expect(n).toBe(3);
  });

  it('never splits a request and never exceeds maxItems unless one request alone does', async () => {
    const sizes: number[] = [];
    const c = new UpdateCoalescer<number>(async (items) => void sizes.push(items.length), { maxInFlight: 1, maxItems: 4 });
    await Promise.all([c.submit([1, 2, 3]), c.submit([4, 5, 6]), c.submit([7]), c.submit([8, 9, 10, 11, 12])]);
    expect(sizes).toEqual([3, 4, 5]);
  });

  it('a synchronous throw from send rejects instead of escaping', async () => {
    const c = new UpdateCoalescer<number>(() => {
      throw new Error('boom');
    }, { maxInFlight: 2, maxItems: 4 });
    await expect(c.submit([1])).rejects.toThrow('boom');
  });
});
