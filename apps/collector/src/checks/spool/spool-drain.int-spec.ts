import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Messages, uuidv7 } from '@fleetwatch/contracts';
import { createBus, silentBusLogger, type Bus } from '@fleetwatch/messaging';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { ResultTap, resultPayload } from '../checks.int-helpers';
import { Spool } from './spool';
import { SpoolDrain } from './spool-drain';

// The spool and its drain against the real broker, cut by a TcpProxy: everything
// appended before, during and after the outage arrives, once per envelope id, in
// append order — also when the collector "crashes" in the middle of the outage.

jest.setTimeout(90_000);

const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
let vhost: IsolatedVhost;
let proxy: TcpProxy;
let tap: ResultTap;
let dir: string;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  vhost = await createIsolatedVhost('collector-spool');
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  tap = await ResultTap.open(vhost.amqpUrl);
  dir = await mkdtemp(join(tmpdir(), 'fw-spool-drain-'));
});
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await tap?.close();
  await proxy?.stop();
  await vhost?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function collector(): { bus: Bus; drain: SpoolDrain; spool: Promise<Spool> } {
  const bus = createBus({
    url: proxy.rewriteUrl(vhost.amqpUrl),
    source: { site: 'test', service: 'collector', location: 'loc-a' },
    publishTimeoutMs: 1_500,
    backoff: { initialDelayMs: 100, maxDelayMs: 400 },
    logger: silentBusLogger,
  });
  // Each open is another process (a crash and restart): same host and pid, another nonce.
  const spool = Spool.open({
    dir,
    maxBytes: 4 * 1024 * 1024,
    lock: { self: { host: hostname(), pid: process.pid, nonce: randomUUID() } },
  });
  let drain!: SpoolDrain;
  const ready = spool.then((s) => {
    drain = new SpoolDrain(s, bus.publisher, bus.connection, { logger, publishTimeoutMs: 1_500, batchSize: 50 });
    drain.start();
    return s;
  });
  closers.push(() => bus.close());
  return {
    bus,
    get drain() {
      return drain;
    },
    spool: ready,
  };
}

function append(spool: Spool, seq: number): void {
  spool.append({
    id: uuidv7(),
    type: Messages.CheckResult.type,
    occurredAt: new Date().toISOString(),
    payload: resultPayload(seq),
  });
}

const seqOf = (e: { payload: { metadata?: Record<string, unknown> } }): number => e.payload.metadata?.seq as number;

it('sends every result once per id and in order across a broker outage and a crash during it', async () => {
  const first = collector();
  const spool1 = await first.spool;
  let seq = 0;
  const produce = async (n: number, spool: Spool) => {
    for (let i = 0; i < n; i++) {
      append(spool, seq++);
      await new Promise((r) => setTimeout(r, 3));
    }
  };
  await produce(150, spool1);
  await waitFor(() => tap.unique().length >= 150, { timeoutMs: 15_000, description: 'results before the outage' });

  proxy.pause();
  proxy.cut();
  await produce(150, spool1);
  expect(spool1.stats.records).toBeGreaterThanOrEqual(100);

  // Crash: the process is gone (no drain stop, no spool close); a new one starts on the same spool while the broker is still away.
  await first.drain.stop();
  await first.bus.close();
  const second = collector();
  const spool2 = await second.spool;
  expect(spool2.stats.records).toBeGreaterThanOrEqual(100);
  await produce(100, spool2);

  proxy.resume();
  await produce(100, spool2);
  await waitFor(() => tap.unique().length >= seq, { timeoutMs: 30_000, description: `all ${seq} results` });
  await waitFor(async () => (await spool2.read(1)).length === 0, { timeoutMs: 10_000, description: 'empty spool' });

  const unique = tap.unique();
  expect(unique.map(seqOf)).toEqual(Array.from({ length: seq }, (_, i) => i));
  // A resend carries the id it was given when spooled: one id, one result.
  const bySeq = new Map<number, Set<string>>();
  for (const e of tap.envelopes) bySeq.set(seqOf(e), (bySeq.get(seqOf(e)) ?? new Set()).add(e.id));
  expect([...bySeq.values()].every((ids) => ids.size === 1)).toBe(true);
  await second.drain.stop();
  await spool2.close();
});

it('discards a run of results the contract refuses at once, counted, and publishes the ones after it', async () => {
  // A spool written by an older collector whose results a newer contract refuses (or a probe's result the contract
  // never accepted): each can never be sent. They used to go one per pass — a pass re-read the whole 500-record
  // batch to drop its first record — and uncounted (an error log each).
  const bus = createBus({
    url: vhost.amqpUrl,
    source: { site: 'test', service: 'collector', location: 'loc-a' },
    logger: silentBusLogger,
  });
  closers.push(() => bus.close());
  const spool = await Spool.open({ dir: join(dir, 'invalid'), maxBytes: 64 * 1024 * 1024 });
  const bad = 3_000;
  for (let i = 0; i < bad; i++)
    spool.append({
      id: uuidv7(),
      type: i % 2 === 0 ? Messages.CheckResult.type : 'check.result.v0',
      occurredAt: new Date().toISOString(),
      payload: { ...resultPayload(-1, { checkId: 'invalid' }), latencyMs: 'slow' },
    });
  for (let i = 0; i < 10; i++)
    spool.append({
      id: uuidv7(),
      type: Messages.CheckResult.type,
      occurredAt: new Date().toISOString(),
      payload: resultPayload(i, { checkId: 'after-invalid' }),
    });
  await spool.flush();
  const discarded: number[] = [];
  const errors: unknown[] = [];
  const drain = new SpoolDrain(spool, bus.publisher, bus.connection, {
    logger: { ...logger, error: (o: unknown) => errors.push(o) },
    onDiscarded: (n) => discarded.push(n),
  });
  const started = Date.now();
  drain.start();
  try {
    await waitFor(() => spool.stats.records === 0, { timeoutMs: 30_000, description: 'spool drained' });
    expect(Date.now() - started).toBeLessThan(3_000);
    await waitFor(() => tap.of('after-invalid').length === 10, { timeoutMs: 10_000, description: 'the valid ones' });
    expect(tap.of('after-invalid').map(seqOf)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(tap.of('invalid')).toEqual([]);
    expect(discarded.reduce((n, k) => n + k, 0)).toBe(bad);
    // Logged per run, not per result.
    expect(errors.length).toBeLessThan(bad / 10);
  } finally {
    await drain.stop();
    await spool.close();
  }
});
