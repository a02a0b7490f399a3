import fc from 'fast-check';
import { assertConcurrently } from './concurrent-property';

describe('assertConcurrently', () => {
  const arb = fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 1000 }));

  it("checks each of fast-check's runs for the seed once, several at a time", async () => {
    const seed = 4242;
    const seen: Array<[string, number]> = [];
    let inFlight = 0;
    let most = 0;
    await assertConcurrently(
      arb,
      async (v) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        seen.push(v);
        inFlight--;
      },
      { numRuns: 60, concurrency: 4, seed },
    );
    const serial: Array<[string, number]> = [];
    fc.assert(
      fc.property(arb, (v) => {
        serial.push(v);
      }),
      { seed, numRuns: 60 },
    );
    expect(most).toBe(4);
    expect([...seen].sort()).toEqual([...serial].sort());
  });

  it("fails with fast-check's report of the failing run, shrunk", async () => {
    const failing = assertConcurrently(
      arb,
      async ([, n]) => {
        await new Promise((r) => setTimeout(r, 0));
        expect(n).toBeLessThan(500);
      },
      { numRuns: 200, concurrency: 8, seed: 7 },
    );
    await expect(failing).rejects.toThrow(
      /Property failed[\s\S]*seed: 7, path: "\d+[:\d]*"[\s\S]*Counterexample: \[\["a",500\]\]/,
    );
  });

  it('fails when a run fails beside others but passes alone', async () => {
    let inFlight = 0;
    const failing = assertConcurrently(
      arb,
      async () => {
        inFlight++;
        await new Promise((r) => setTimeout(r, 1));
        const others = inFlight - 1;
        inFlight--;
        expect(others).toBe(0);
      },
      { numRuns: 20, concurrency: 3, seed: 1 },
    );
    await expect(failing).rejects.toThrow(/failed beside other runs but passed alone/);
  });
});
