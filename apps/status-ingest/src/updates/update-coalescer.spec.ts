import fc from 'fast-check';
import { approximateJsonBytes, CoalescerOverloadedError, UpdateCoalescer } from './update-coalescer';

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
    const c = new UpdateCoalescer<number>(
      (items) => {
        const d = deferred();
        sends.push({ items, d });
        return d.promise;
      },
      { maxInFlight: 1, maxItems: 5 },
    );

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
    const c = new UpdateCoalescer<string>(
      async (items) => {
        n++;
        if (items.includes('bad')) throw new Error('nacked');
      },
      { maxInFlight: 1, maxItems: 10 },
    );
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
    const c = new UpdateCoalescer<number>(async (items) => void sizes.push(items.length), {
      maxInFlight: 1,
      maxItems: 4,
    });
    await Promise.all([c.submit([1, 2, 3]), c.submit([4, 5, 6]), c.submit([7]), c.submit([8, 9, 10, 11, 12])]);
    expect(sizes).toEqual([3, 4, 5]);
  });

  it('never groups past maxGroupBytes unless one request alone does', async () => {
    const sizes: number[][] = [];
    const c = new UpdateCoalescer<number>(async (items) => void sizes.push(items), {
      maxInFlight: 1,
      maxItems: 1000,
      maxGroupBytes: 100,
    });
    await Promise.all([
      c.submit([1], 10),
      c.submit([2], 60),
      c.submit([3], 30),
      c.submit([4], 20),
      c.submit([5], 500),
      c.submit([6], 1),
    ]);
    expect(sizes).toEqual([[1], [2, 3], [4], [5], [6]]);
  });

  it('weighs strings as JSON writes them: UTF-8 bytes and escapes', () => {
    expect(approximateJsonBytes('日本語')).toBe(approximateJsonBytes('abcdefghi'));
    const controls = '\u0001'.repeat(1000);
    expect(approximateJsonBytes({ m: controls })).toBeGreaterThanOrEqual(
      Buffer.byteLength(JSON.stringify({ m: controls })),
    );
    const quotes = '"\\'.repeat(500);
    expect(approximateJsonBytes({ m: quotes })).toBeGreaterThanOrEqual(
      Buffer.byteLength(JSON.stringify({ m: quotes })),
    );
  });

  it('a synchronous throw from send rejects instead of escaping', async () => {
    const c = new UpdateCoalescer<number>(
      () => {
        throw new Error('boom');
      },
      { maxInFlight: 2, maxItems: 4 },
    );
    await expect(c.submit([1])).rejects.toThrow('boom');
  });

  describe('bounds', () => {
    afterEach(() => jest.useRealTimers());

    /** A send that never confirms until told: the broker is slow. */
    const stalled = () => {
      const sends: { items: number[]; d: ReturnType<typeof deferred> }[] = [];
      const send = (items: number[]) => {
        const d = deferred();
        sends.push({ items, d });
        return d.promise;
      };
      return { sends, send };
    };

    it('refuses at once what would take the queue past maxQueuedItems; the queue never grows beyond it', async () => {
      const { sends, send } = stalled();
      const c = new UpdateCoalescer<number>(send, { maxInFlight: 1, maxItems: 1000, maxQueuedItems: 10 });
      const sent = c.submit([0]);
      const queued = [c.submit([1, 2, 3, 4, 5, 6]), c.submit([7, 8, 9, 10])];
      expect(c.backlog.items).toBe(10);
      const refused = c.submit([11]);
      await expect(refused).rejects.toBeInstanceOf(CoalescerOverloadedError);
      await expect(refused).rejects.toMatchObject({ reason: 'full' });
      for (let i = 0; i < 100; i++) await expect(c.submit([i])).rejects.toMatchObject({ reason: 'full' });
      expect(c.backlog.items).toBe(10);
      // A slot frees: the queue drains into one message and takes requests again.
      sends[0].d.resolve();
      await sent;
      await new Promise((r) => setImmediate(r));
      expect(c.backlog.items).toBe(0);
      expect(sends[1].items).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const next = c.submit([12]);
      expect(c.queued).toBe(1);
      sends[1].d.resolve();
      await Promise.all(queued);
      await new Promise((r) => setImmediate(r));
      sends[2].d.resolve();
      await next;
    });

    it('bounds the bytes waiting too; a lone request larger than the bound still queues when nothing else waits', async () => {
      const { sends, send } = stalled();
      const c = new UpdateCoalescer<number>(send, { maxInFlight: 1, maxItems: 1000, maxQueuedBytes: 1_000 });
      void c.submit([0], 10);
      const big = c.submit([1], 5_000);
      expect(c.backlog).toEqual({ items: 1, bytes: 5_000 });
      await expect(c.submit([2], 1)).rejects.toMatchObject({ reason: 'full' });
      sends[0].d.resolve();
      await new Promise((r) => setImmediate(r));
      expect(c.backlog.bytes).toBe(0);
      sends[1].d.resolve();
      await big;
    });

    it('refuses a request that waited maxWaitMs for a slot; it is never sent', async () => {
      jest.useFakeTimers();
      const { sends, send } = stalled();
      const c = new UpdateCoalescer<number>(send, { maxInFlight: 1, maxItems: 1000, maxWaitMs: 100 });
      const first = c.submit([0]);
      const old = c.submit([1]);
      jest.advanceTimersByTime(60);
      const young = c.submit([2]);
      jest.advanceTimersByTime(40);
      await expect(old).rejects.toMatchObject({ reason: 'wait' });
      expect(c.queued).toBe(1);
      jest.advanceTimersByTime(59);
      expect(c.queued).toBe(1);
      jest.advanceTimersByTime(1);
      await expect(young).rejects.toMatchObject({ reason: 'wait' });
      expect(c.backlog).toEqual({ items: 0, bytes: 0 });
      sends[0].d.resolve();
      await first;
      await Promise.resolve();
      expect(sends.map((s) => s.items)).toEqual([[0]]);
    });
  });

  it('approximateJsonBytes never weighs a value below its JSON (UTF-8 bytes), numbers included', () => {
    const numbers = {
      a: -(2 ** -1000) / 3,
      b: Number.MAX_VALUE,
      c: -Number.MIN_VALUE,
      d: 123456789012345680000,
    };
    expect(approximateJsonBytes(numbers)).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(numbers)));
    const wellFormed = fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed());
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.jsonValue({ stringUnit: 'binary' }).filter((v) => JSON.stringify(v).isWellFormed()),
          fc.dictionary(wellFormed, fc.double({ noNaN: true, noDefaultInfinity: true })),
        ),
        (value) => {
          expect(approximateJsonBytes(value)).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(value)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('approximateJsonBytes is close to the serialised size', () => {
    const value = {
      updateId: 'u-1',
      status: 'running',
      metadata: { region: 'eu-west-1', cores: 8, tags: ['a', 'b'], ok: true, none: null },
    };
    const real = JSON.stringify(value).length;
    const approx = approximateJsonBytes(value);
    expect(approx).toBeGreaterThanOrEqual(real * 0.8);
    expect(approx).toBeLessThanOrEqual(real * 1.5);
  });
});
