import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Messages, uuidv7 } from '@fleetwatch/contracts';
import { createBus, silentBusLogger, type Bus } from '@fleetwatch/messaging';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { ResultTap, resultPayload } from '../checks.int-helpers';
import { SlowLink } from './slow-link.int-helpers';
import { Spool } from './spool';
import { SpoolDrain } from './spool-drain';

// A backlog flushed to a broker that cannot confirm a whole batch within the publish
// timeout: a link too slow for it (a remote location's WAN after an outage), or a broker
// that confirms late. The link is a SlowLink the test owns in front of the shared broker;
// the timeout is 1 s (the collector's defaults, 500 a batch and 5 s, break the same way
// below ~100 results a second, or with confirms 5 s late). A timed-out batch is still on
// its way: sending it again at once queued the copy behind the original, that timed out
// too, and so on — on the slow link every result went twice or more and the backlog
// drained at a fraction of the link's rate; with late confirms nothing was ever
// confirmed and the same batch went out again and again, for good.

jest.setTimeout(120_000);

let vhost: IsolatedVhost;
let tap: ResultTap;
let dir: string;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-slow-link');
  tap = await ResultTap.open(vhost.amqpUrl);
  dir = await mkdtemp(join(tmpdir(), 'fw-spool-slow-'));
});
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await tap?.close();
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const seqOf = (e: { payload: { metadata?: Record<string, unknown> } }): number => e.payload.metadata?.seq as number;

/** A spool holding `n` results (checkId `checkId`, seq 0…n-1), and a bus through `link`. */
async function backlog(link: SlowLink, checkId: string, n: number): Promise<{ spool: Spool; bus: Bus }> {
  const bus = createBus({
    url: link.rewriteUrl(vhost.amqpUrl),
    source: { site: 'test', service: 'collector', location: 'loc-a' },
    publishTimeoutMs: 1_000,
    logger: silentBusLogger,
  });
  closers.push(() => bus.close());
  await waitFor(() => bus.connection.isConnected(), { timeoutMs: 10_000, description: 'bus connected' });
  const spool = await Spool.open({ dir: join(dir, checkId), maxBytes: 64 * 1024 * 1024 });
  closers.push(() => spool.close());
  for (let i = 0; i < n; i++)
    spool.append({
      id: uuidv7(),
      type: Messages.CheckResult.type,
      occurredAt: new Date().toISOString(),
      payload: resultPayload(i, { checkId, targetId: `check:${checkId}` }),
    });
  await spool.flush();
  return { spool, bus };
}

const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

it('drains a backlog over a link slower than a batch per timeout: in order, near the link rate, few copies', async () => {
  const results = 3_000;
  const link = SlowLink.forUrl(vhost.amqpUrl, 50_000_000);
  await link.start();
  closers.push(() => link.stop());
  const { spool, bus } = await backlog(link, 'slow-link', results);
  // About 300 results a second (a result is ~740 bytes on the wire): a batch of 500 needs ~1.7 s.
  link.bytesPerSecond = 222_000;
  const drain = new SpoolDrain(spool, bus.publisher, bus.connection, { logger, publishTimeoutMs: 1_000 });
  closers.push(() => drain.stop());
  const started = Date.now();
  drain.start();
  // ~10 s at the link's rate (before the fix: ~45 s).
  await waitFor(() => spool.stats.records === 0, { timeoutMs: 60_000, description: 'spool drained' });
  const tookMs = Date.now() - started;
  await waitFor(() => tap.of('slow-link').length === results, { timeoutMs: 10_000, description: 'every result' });
  await new Promise((r) => setTimeout(r, 500));

  expect(tap.of('slow-link').map(seqOf)).toEqual(Array.from({ length: results }, (_, i) => i));
  // Copies: what was on its way when a batch timed out, sent again once (~200) — not the backlog again (~3,100 before).
  const copies = tap.envelopes.filter((e) => e.payload.checkId === 'slow-link').length - results;
  expect(copies).toBeLessThan(results / 4);
  expect(tookMs).toBeLessThan(25_000);
});

it('drains a backlog through a broker whose confirms come later than the timeout', async () => {
  const results = 1_000;
  const link = SlowLink.forUrl(vhost.amqpUrl, 50_000_000);
  await link.start();
  closers.push(() => link.stop());
  const { spool, bus } = await backlog(link, 'late-confirms', results);
  link.replyDelayMs = 1_500;
  const drain = new SpoolDrain(spool, bus.publisher, bus.connection, { logger, publishTimeoutMs: 1_000 });
  closers.push(() => drain.stop());
  drain.start();
  // Before the fix nothing was ever confirmed: the spool stayed full and the batch went out every ~1.5 s.
  await waitFor(() => spool.stats.records === 0, { timeoutMs: 30_000, description: 'spool drained' });
  expect(tap.of('late-confirms').map(seqOf)).toEqual(Array.from({ length: results }, (_, i) => i));
  const copies = tap.envelopes.filter((e) => e.payload.checkId === 'late-confirms').length - results;
  expect(copies).toBeLessThan(results);
  expect(drain.current.timeoutMs).toBeGreaterThan(1_500);
});
