import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { copyBuiltDist, testEnv } from '@fleetwatch/testing';
import type { ConditionEvaluator } from './condition-sandbox';

// The built collector's condition thread with real CEL (dist/: the thread's file exists only in the build). A
// pattern that backtracks over a 31-character body held the collector's event loop for 71 s; now its check fails
// at the budget with a reason, the collector's timers run meanwhile, and the conditions after it are judged.

jest.setTimeout(120_000);

let dir: string;
let sandbox: ConditionEvaluator;

beforeAll(() => {
  // Under the repository, so the copy finds node_modules.
  dir = join(__dirname, '../../../../..', 'tmp', `cond-thread-${testEnv().scope}`);
  const required = ['apps/collector/src/checks/runner/condition-worker.thread.js'];
  copyBuiltDist(dir, { build: 'always', required });
  const built = require(join(dir, 'dist/apps/collector/src/checks/runner/condition-sandbox.js')) as {
    ConditionSandbox: { orInline(logger: object): ConditionEvaluator };
  };
  sandbox = built.ConditionSandbox.orInline({ warn: () => undefined, error: () => undefined });
});
afterAll(async () => {
  await sandbox?.close();
  rmSync(dir, { recursive: true, force: true });
});

const http = (bodyText: string) => ({ ok: true, latencyMs: 12, status: 200, bodyText });

it('is the thread, not the inline evaluator, and judges conditions as CEL does', async () => {
  expect(sandbox.constructor.name).toBe('ConditionSandbox');
  expect(await sandbox.evaluate(['status == 200', 'bodyText.contains("up")'], http('all up'))).toEqual({ ok: true });
  const down = await sandbox.evaluate(['latency < 5'], http('x'));
  expect(down).toMatchObject({ ok: false, failed: { index: 0, reason: expect.stringContaining('was false') } });
});

it('a runaway regular expression fails its check at the budget while the event loop runs; the next is judged', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 20);
  const started = Date.now();
  const runaway = sandbox.evaluate(['bodyText.matches("^(a+)+$")'], http(`${'a'.repeat(31)}!`));
  const next = sandbox.evaluate(['bodyText.matches("^a+!$")'], http(`${'a'.repeat(31)}!`));
  const [verdict, after] = await Promise.all([runaway, next]);
  clearInterval(timer);
  expect(verdict).toMatchObject({ ok: false, failed: { reason: expect.stringContaining('took longer than 1000 ms') } });
  expect(after).toEqual({ ok: true });
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(ticks).toBeGreaterThan(20);
});
