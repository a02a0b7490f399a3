import fc from 'fast-check';

export interface ConcurrentAssertOptions {
  /** How many runs (fast-check's numRuns). */
  numRuns: number;
  /** Runs in flight at once. */
  concurrency: number;
  /** The seed (default: a fresh one per call, as fast-check's); printed with a failure. */
  seed?: number;
}

/**
 * `fc.assert(fc.asyncProperty(arbitrary, check), { numRuns })`, with the runs `concurrency` at a time: the values
 * are those fast-check generates for the seed (fc.sample: value i is the property's run i), each checked by `check`.
 * When one fails, the first failing run is replayed alone through fc.assert ({ seed, path }): the failure is
 * fast-check's own report (seed, path, counterexample), shrunk from there. A run that failed beside others but passes
 * alone fails the call too, with its value and error. Only for properties whose assertion holds per run: a run must
 * not read what another run of the same call writes.
 */
export async function assertConcurrently<T>(
  arbitrary: fc.Arbitrary<T>,
  check: (value: T) => Promise<unknown>,
  { numRuns, concurrency, seed = Math.floor(Math.random() * 0x7fffffff) }: ConcurrentAssertOptions,
): Promise<void> {
  const values = fc.sample(arbitrary, { seed, numRuns });
  let next = 0;
  // Runs that failed (no new run starts after the first; those in flight finish).
  const failures: Array<{ index: number; error: unknown }> = [];
  const worker = async (): Promise<void> => {
    while (failures.length === 0 && next < values.length) {
      const index = next++;
      try {
        await check(values[index]);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, values.length)) }, worker));
  if (failures.length === 0) return;
  const failed = failures.reduce((a, b) => (b.index < a.index ? b : a));
  await fc.assert(
    fc.asyncProperty(arbitrary, async (value) => {
      await check(value);
    }),
    { seed, path: String(failed.index), numRuns },
  );
  const why = failed.error instanceof Error ? failed.error.message : String(failed.error);
  throw new Error(
    `run ${failed.index} (seed ${seed}) failed beside other runs but passed alone: ${fc.stringify(values[failed.index]).slice(0, 2000)}\n${why}`,
    { cause: failed.error },
  );
}
