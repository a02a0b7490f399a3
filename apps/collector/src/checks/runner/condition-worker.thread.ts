import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { evaluateConditions, type ConditionFacts, type ConditionVerdict } from '@fleetwatch/domain';

// The thread ConditionSandbox runs a check's conditions in (condition-sandbox.ts): one evaluation at a time, each
// answered with its verdict. A condition that runs away (a regular expression that backtracks for minutes, a
// comprehension over a large body) holds this thread, which the sandbox terminates at its budget — not the
// collector's event loop, where every other check, host sampling and the bus's heartbeats stopped with it.

const port = parentPort;
if (port) {
  port.on('message', (job: { conditions: string[]; facts: ConditionFacts }) => {
    const started = performance.now();
    let verdict: ConditionVerdict;
    try {
      verdict = evaluateConditions(job.conditions, job.facts);
    } catch (err) {
      verdict = {
        ok: false,
        failed: { index: 0, expression: '', reason: `conditions could not be evaluated: ${(err as Error).message}` },
      };
    }
    // How long the conditions took here: the sandbox queues slow ones behind the others.
    port.postMessage({ ...verdict, tookMs: performance.now() - started });
  });
  port.postMessage({ ready: true });
}
