import type { BusPublisher } from '@fleetwatch/messaging';
import type { Logger } from 'pino';
import { register, type Gauge } from 'prom-client';
import type { IngestConfig } from '../config';
import { API_KEY_USES_UNREPORTED, IngestMetrics } from '../metrics/ingest.metrics';
import { ApiKeyUseRecorder, ApiKeyUseReporter, type ApiKeyUse } from './api-key-use.recorder';

/** A sender that records what it was given and answers per use with `confirm`. */
function sender(confirm: (u: ApiKeyUse) => boolean = () => true) {
  const sent: ApiKeyUse[][] = [];
  return {
    sent,
    send: async (uses: readonly ApiKeyUse[]) => {
      sent.push([...uses]);
      return uses.map(confirm);
    },
  };
}

describe('ApiKeyUseRecorder', () => {
  it('coalesces uses per key: one report per key, its newest use', async () => {
    const s = sender();
    const r = new ApiKeyUseRecorder(s.send);
    r.record('a', 1000);
    r.record('a', 3000);
    r.record('a', 2000); // older than what it has: ignored
    r.record('b', 1500);
    expect(r.size).toBe(2);
    expect(await r.flush()).toBe(0);
    expect(s.sent).toEqual([
      [
        { keyId: 'a', at: new Date(3000) },
        { keyId: 'b', at: new Date(1500) },
      ],
    ]);
    expect(r.size).toBe(0);
    expect(await r.flush()).toBe(0);
    expect(s.sent).toHaveLength(1); // nothing new: nothing sent
  });

  it('keeps a use whose send was not confirmed and sends it on the next flush', async () => {
    let up = false;
    const s = sender((u) => up || u.keyId === 'b');
    const r = new ApiKeyUseRecorder(s.send);
    r.record('a', 1000);
    r.record('b', 1000);
    expect(await r.flush()).toBe(1);
    expect(r.size).toBe(1);
    up = true;
    expect(await r.flush()).toBe(0);
    expect(s.sent[1]).toEqual([{ keyId: 'a', at: new Date(1000) }]);
    expect(r.size).toBe(0);
  });

  it('keeps every use when the send throws', async () => {
    const r = new ApiKeyUseRecorder(async () => {
      throw new Error('broker away');
    });
    r.record('a', 1000);
    expect(await r.flush()).toBe(1);
    expect(r.size).toBe(1);
  });

  it('stops a flush at the first chunk the broker confirms none of: the rest waits, unsent, for the next', async () => {
    let up = false;
    const s = sender(() => up);
    const r = new ApiKeyUseRecorder(s.send);
    for (let i = 0; i < 1200; i++) r.record(`key-${i}`, 1000);
    expect(await r.flush()).toBe(1200);
    expect(s.sent).toHaveLength(1); // one chunk of 500 tried, not three
    expect(r.size).toBe(1200);
    up = true;
    expect(await r.flush()).toBe(0);
    expect(s.sent.slice(1).map((c) => c.length)).toEqual([500, 500, 200]);
    expect(r.size).toBe(0);
  });

  it('keeps a newer use noted while the older one was being sent', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sent: ApiKeyUse[][] = [];
    const r = new ApiKeyUseRecorder(async (uses) => {
      sent.push([...uses]);
      await gate;
      return uses.map(() => true);
    });
    r.record('a', 1000);
    const flushing = r.flush();
    r.record('a', 2000);
    release();
    await flushing;
    expect(r.size).toBe(1);
    await r.flush();
    expect(sent[1]).toEqual([{ keyId: 'a', at: new Date(2000) }]);
  });
});

describe('ApiKeyUseReporter', () => {
  it('shows on /metrics how many keys the last flush could not report, and 0 once a flush got through', async () => {
    let confirm = false;
    const publisher = {
      publishManySettled: async (requests: unknown[]) => requests.map(() => ({ ok: confirm })),
    } as unknown as BusPublisher;
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg: string) => warnings.push(msg) } as unknown as Logger;
    const reporter = new ApiKeyUseReporter(
      publisher,
      { apiKeyUseFlushMs: 60_000 } as IngestConfig,
      logger,
      new IngestMetrics(),
    );
    const gauge = register.getSingleMetric(API_KEY_USES_UNREPORTED) as Gauge;
    const value = async () => (await gauge.get()).values[0]?.value;

    reporter.record('a', 1000);
    reporter.record('b', 1000);
    await reporter.beforeApplicationShutdown();
    expect(await value()).toBe(2);
    expect(warnings).toHaveLength(1);

    confirm = true;
    await reporter.beforeApplicationShutdown();
    expect(await value()).toBe(0);
    expect(reporter.size).toBe(0);
  });
});
