import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createTargetPolicy } from '@fleetwatch/domain';
import { attemptSecret } from './connect-target';

// An attempt's own deadline must survive a garbage collection: the probes' sockets are destroyed on its abort.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe("an attempt's deadline", () => {
  it('aborts at the timeout even after a garbage collection, with a timeout reason', async () => {
    // The runner's signal never aborts here: only the attempt's own deadline can end it.
    const attempt = attemptSecret(
      {},
      { signal: new AbortController().signal, timeoutMs: 200, policy: createTargetPolicy([]), env: {} },
      undefined,
    );
    if ('failure' in attempt) throw new Error(attempt.failure);
    gc();
    await new Promise((r) => setTimeout(r, 100));
    gc();
    const until = Date.now() + 2000;
    while (!attempt.signal.aborted && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    expect(attempt.signal.aborted).toBe(true);
    expect(attempt.reasonOf(new Error('Connection is closed.'))).toBe('timed out after 200 ms');
  });
});
