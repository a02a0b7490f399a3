#!/usr/bin/env node
// Check conditions: what one evaluation costs inline (on the collector's event loop, as before e98759d) and through
// the condition thread the built collector uses (runner/condition-sandbox.ts: a structured clone of the probe's
// facts each way, one evaluation at a time), for an http result with a small and a 64 KB body. Throughput is
// evaluations a second with `--concurrent` evaluations waiting at once (a busy collector's checks finishing together).
//
//   node tools/build/build.mjs && node tools/bench/checks/conditions.mjs [--evaluations 20000] [--concurrent 50]
//       [--dist DIR]   (another build's dist/, to compare two builds in one sitting)
import { loadavg } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parseArgs } from '../lib/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const args = parseArgs(process.argv.slice(2), { evaluations: 20000, concurrent: 50, dist: root });
const require = createRequire(import.meta.url);
const runner = join(resolve(args.dist), 'dist/apps/collector/src/checks/runner');
const { ConditionSandbox, inlineConditions } = require(join(runner, 'condition-sandbox.js'));

const CONDITIONS = ['status == 200', 'latency < 500', 'bodyText.contains("ok")', 'headers["content-type"] != ""'];
const factsOf = (bodyBytes) => ({
  ok: true,
  latencyMs: 12,
  status: 200,
  headers: { 'content-type': 'application/json', server: 'bench' },
  bodyText: `{"status":"ok","pad":"${'x'.repeat(Math.max(0, bodyBytes - 30))}"}`,
});

async function measure(evaluator, facts, n, concurrent) {
  let done = 0;
  let failed = 0;
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrent }, async () => {
      while (done < n) {
        done++;
        const v = await evaluator.evaluate(CONDITIONS, facts);
        if (!v.ok) failed++;
      }
    }),
  );
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const used = process.cpuUsage(cpu);
  if (failed) throw new Error(`${failed} evaluations failed`);
  return { perSecond: (n / ms) * 1000, mainCpuUs: (used.user + used.system) / n };
}

const n = Number(args.evaluations);
const concurrent = Number(args.concurrent);
console.log(
  `conditions: dist ${resolve(args.dist)}, ${n} evaluations of ${CONDITIONS.length} conditions, ${concurrent} waiting at once, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('body      evaluator  evaluations/s  main-thread CPU µs each');
const sandbox = new ConditionSandbox(join(runner, 'condition-worker.thread.js'), console);
await sandbox.evaluate(CONDITIONS, factsOf(100)); // the thread started, CEL compiled
await inlineConditions.evaluate(CONDITIONS, factsOf(100));
for (const bytes of [100, 64 * 1024]) {
  for (const [name, evaluator] of [
    ['inline', inlineConditions],
    ['thread', sandbox],
  ]) {
    const r = await measure(evaluator, factsOf(bytes), n, concurrent);
    console.log(
      `${String(bytes).padStart(6)} B  ${name.padEnd(9)}  ${r.perSecond.toFixed(0).padStart(13)}  ${r.mainCpuUs.toFixed(1).padStart(23)}`,
    );
  }
}
await sandbox.close();
