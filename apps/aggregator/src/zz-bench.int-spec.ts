import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createTestSite, statusUpdate, updateRequest, count } from './aggregator.int-helpers';
jest.setTimeout(180_000);
const root = join(__dirname, '../../..');
it('bench', async () => {
  const site = await createTestSite('bench', { AGGREGATOR_BATCH_WAIT_MS: '20', AGGREGATOR_PREFETCH: process.env.PF ?? '1000', AGGREGATOR_BATCH_SIZE: process.env.BS ?? '500' });
  const N = Number(process.env.N ?? 40_000);
  const run = async (label: string, from: number) => {
    const reqs = Array.from({ length: N }, (_, i) => updateRequest(statusUpdate(`b-${i % 5000}`, i % 97 === 0 ? 'exited' : 'running', Date.now() - 100_000 + from + i)));
    for (let i = 0; i < N; i += 1000) await site.bus.publisher.publishMany(reqs.slice(i, i + 1000));
    const before = await count(site.pg, 'select count(*) as n from status_updates');
    const proc = spawn(process.execPath, [join(root, 'dist/apps/aggregator/src/main.js')], { env: { ...process.env, ...site.env, AGGREGATOR_PORT: '23999' }, stdio: 'inherit' });
    let t1 = 0; let n1 = 0;
    for (;;) { const n = await count(site.pg, 'select count(*) as n from status_updates'); if (!t1 && n > before) { t1 = Date.now(); n1 = n - before; } if (n >= before + N) break; await new Promise((r) => setTimeout(r, 20)); }
    const ms = Date.now() - t1;
    process.stderr.write(`first rows ${n1}\n`);
    process.stderr.write(`${label}: processed ${N} in ${ms} ms (after the first commit) = ${Math.round((N - n1) / ms * 1000)}/s\n`);
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  };
  await run('cold (new targets)', 0);
  await run('warm', N);
  await site.dispose();
});
