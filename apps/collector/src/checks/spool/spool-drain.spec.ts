import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Messages } from '@fleetwatch/contracts';
import type { BusPublisher, PublishOutcome, PublishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { Spool } from './spool';
import { SpoolDrain } from './spool-drain';

// The drain over a real spool (a temporary directory) and a publisher that confirms what it is given: an error of
// the spool's disk or an unexpected one of the publisher is retried, never the end of the drain (it once was: one
// EMFILE stopped publishing until a restart while checks went on spooling).

let dir: string;
const closers: Array<() => Promise<unknown>> = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-spool-drain-'));
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

const id = (n: number) => `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`;

async function drainOver(publish: (requests: readonly PublishRequest[]) => Promise<PublishOutcome[]>) {
  const spool = await Spool.open({ dir, maxBytes: 4 * 1024 * 1024, cursorIntervalMs: 0 });
  const logs: string[] = [];
  const log = (_o: object, m: string) => logs.push(m);
  const publisher: Pick<BusPublisher, 'publishManySettled'> = { publishManySettled: (r) => publish(r) };
  const drain = new SpoolDrain(
    spool,
    publisher,
    { isConnected: () => true, onState: () => () => undefined },
    { logger: { info: log, warn: log, error: log }, lingerMs: 0 },
  );
  closers.push(() => spool.close());
  closers.push(() => drain.stop());
  const append = (n: number) =>
    spool.append({ id: id(n), type: Messages.CheckResult.type, occurredAt: new Date().toISOString(), payload: { n } });
  return { spool, drain, logs, append };
}

/** A publisher confirming every request, recording the ids it was given. */
function confirming(sent: string[]) {
  return async (requests: readonly PublishRequest[]): Promise<PublishOutcome[]> =>
    requests.map((r) => {
      sent.push(r.options?.id as string);
      return { ok: true, envelope: { id: r.options?.id } } as unknown as PublishOutcome;
    });
}

const fsError = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });

it('a spool read failing (EMFILE) is retried: what was appended is still published', async () => {
  const sent: string[] = [];
  const { spool, drain, logs, append } = await drainOver(confirming(sent));
  jest.spyOn(spool, 'read').mockRejectedValueOnce(fsError('EMFILE'));
  append(1);
  drain.start();
  await waitFor(async () => sent.length === 1, { timeoutMs: 5_000, description: 'the record published' });
  append(2);
  await waitFor(async () => sent.length === 2, { timeoutMs: 5_000, description: 'a later record published' });
  expect(sent).toEqual([id(1), id(2)]);
  expect(logs).toContain('spool drain: unexpected error; retrying');
  await waitFor(async () => spool.stats.records === 0, { timeoutMs: 5_000, description: 'both confirmed' });
});

it('a confirm failing (EIO) is retried: the batch is sent again (same ids), then confirmed, and the drain goes on', async () => {
  const sent: string[] = [];
  const { spool, drain, append } = await drainOver(confirming(sent));
  jest.spyOn(spool, 'confirm').mockRejectedValueOnce(fsError('EIO'));
  append(1);
  drain.start();
  await waitFor(async () => spool.stats.records === 0, { timeoutMs: 5_000, description: 'the record confirmed' });
  expect(sent).toEqual([id(1), id(1)]);
  append(2);
  await waitFor(async () => sent.at(-1) === id(2), { timeoutMs: 5_000, description: 'a later record published' });
});

it('an unexpected error of the publisher (not a refused payload) is retried', async () => {
  const sent: string[] = [];
  let calls = 0;
  const publish = confirming(sent);
  const { spool, drain, append } = await drainOver(async (requests) => {
    if (++calls === 1) throw new TypeError('channel is undefined');
    return publish(requests);
  });
  append(1);
  drain.start();
  await waitFor(async () => spool.stats.records === 0, { timeoutMs: 5_000, description: 'the record confirmed' });
  expect(sent).toEqual([id(1)]);
});

it('stop() with a drain window ends a drain whose spool keeps failing, without retrying in a tight loop', async () => {
  const { spool, drain, append } = await drainOver(confirming([]));
  const read = jest.spyOn(spool, 'read').mockRejectedValue(fsError('EIO'));
  append(1);
  drain.start();
  await waitFor(async () => read.mock.calls.length >= 1, { timeoutMs: 5_000, description: 'a first failed read' });
  const before = read.mock.calls.length;
  const t0 = Date.now();
  await drain.stop(2_000);
  await new Promise((r) => setTimeout(r, 200));
  // While stopping an error ends the drain: a retry's back-off is cut short by stop(), so retrying would spin.
  expect(read.mock.calls.length - before).toBeLessThanOrEqual(2);
  expect(Date.now() - t0).toBeLessThan(1_500);
  jest.restoreAllMocks();
});
