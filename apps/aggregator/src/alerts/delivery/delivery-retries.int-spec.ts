import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';
import type { RetryPolicy } from '@fleetwatch/alerting';
import type { AlertDeliveriesRepository } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { alertOf, closedPort, deliveryTestBed, MapChannelSource, notificationOf } from './receivers.int-helpers';

// Retries, restarts and secrets against real local receivers: a receiver that answers 429/503 and then
// 200, one that is down, one that hangs, redirects, and a receiver that echoes everything it got back in
// its error answer — with canary secrets that must reach the receiver and never the logs.

const FAST: RetryPolicy = { maxAttempts: 4, baseDelayMs: 150, maxDelayMs: 2000, maxAgeMs: 600_000, jitter: 0 };
const bed = deliveryTestBed(FAST);
const { channels, log, worker, webhook, receiver } = bed;
let repo: AlertDeliveriesRepository;
beforeAll(() => {
  repo = bed.repo();
});

async function finished(deliveryId: string, timeoutMs = 15_000) {
  return waitFor(
    async () => {
      const l = await repo.listLog({ deliveryId });
      return l.length && l[0].outcome !== 'retrying' ? l.reverse() : null;
    },
    { timeoutMs, description: `delivery ${deliveryId} to finish` },
  );
}

describe('delivery retries and the log', () => {
  it('429 with Retry-After, then 503, then 200: retried, Retry-After honoured, each attempt logged (the 429 not counted)', async () => {
    const r = await receiver((_req, i) =>
      i === 0
        ? { status: 429, headers: { 'retry-after': '1' } }
        : i === 1
          ? { status: 503, body: 'busy' }
          : { status: 200 },
    );
    const d = worker();
    const [id] = await d.enqueue([{ channelId: webhook(`${r.url}/in`).id, notification: notificationOf([alertOf()]) }]);
    const entries = await finished(id);
    // A 429 pauses the channel without charging the message an attempt (channel-pause.int-spec); the 503 counts.
    expect(entries.map((e) => [e.attempt, e.outcome, e.httpStatus])).toEqual([
      [1, 'retrying', 429],
      [1, 'retrying', 503],
      [2, 'delivered', 200],
    ]);
    expect(entries[1].error).toBe('HTTP 503: busy');
    // The receiver asked for 1 s; the backoff alone would have been 150 ms.
    expect(r.requests[1].at - r.requests[0].at).toBeGreaterThanOrEqual(950);
    // The 503 is the message's first counted attempt: the first backoff, 150 ms.
    expect(r.requests[2].at - r.requests[1].at).toBeGreaterThanOrEqual(120);
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.headers['x-fleetwatch-delivery']))).toEqual(new Set([id]));
    expect(await repo.listPending(entries[0].channelId)).toEqual([]);
    // Counted on /metrics by channel type and outcome.
    const counted = await register.getSingleMetricAsString('fleetwatch_alert_delivery_attempts_total');
    expect(counted).toMatch(/channel_type="webhook",outcome="retrying"\} [2-9]/);
    expect(counted).toMatch(/channel_type="webhook",outcome="delivered"\} [1-9]/);
  });

  it('a receiver that is down: every attempt is logged, then the delivery gives up', async () => {
    const port = await closedPort();
    const d = worker();
    const [id] = await d.enqueue([
      { channelId: webhook(`http://127.0.0.1:${port}/in`).id, notification: notificationOf([alertOf()]) },
    ]);
    const entries = await finished(id);
    expect(entries.map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'retrying'],
      [2, 'retrying'],
      [3, 'retrying'],
      [4, 'failed'],
    ]);
    for (const e of entries) expect(e.error).toMatch(/ECONNREFUSED/);
    expect(entries[3].error).toMatch(/gave up after 4 attempts/);
    // Backoff doubles: 150, 300, 600 ms between attempts.
    expect(entries[3].at - entries[0].at).toBeGreaterThanOrEqual(1000);
  });

  it('a receiver that never answers times out and is retried', async () => {
    const r = await receiver((_req, i) => (i === 0 ? new Promise(() => undefined) : { status: 204 }));
    const d = worker({ http: { timeoutMs: 400, maxResponseBytes: 4096, maxRedirects: 3 } });
    const [id] = await d.enqueue([{ channelId: webhook(`${r.url}/in`).id, notification: notificationOf([alertOf()]) }]);
    const entries = await finished(id);
    expect(entries.map((e) => [e.outcome, e.error])).toEqual([
      ['retrying', 'timed out'],
      ['delivered', null],
    ]);
    expect(entries[0].durationMs).toBeGreaterThanOrEqual(350);
  });

  it('a message waiting for its retry when its channel is disabled: its next attempt is logged skipped, never lost silently', async () => {
    const r = await receiver(() => ({ status: 503, body: 'busy' }));
    const d = worker({ policy: { ...FAST, baseDelayMs: 1500 } });
    const ch = webhook(`${r.url}/in`);
    const [id] = await d.enqueue([{ channelId: ch.id, notification: notificationOf([alertOf()]) }]);
    await waitFor(async () => (await repo.listLog({ deliveryId: id })).length === 1, { description: 'first attempt' });
    // Disabled while it waits for its retry (1.5 s).
    channels.set({ ...ch, config: { ...ch.config, enabled: false } });
    const entries = await finished(id);
    expect(entries.map((e) => [e.attempt, e.outcome, e.error])).toEqual([
      [1, 'retrying', 'HTTP 503: busy'],
      [2, 'skipped', 'channel disabled'],
    ]);
    // Named in the log row (which alerts it carried), out of the queue, nothing more sent, and said in the service log.
    expect(entries[1].alerts.map((a) => a.id)).toEqual(['abcdef0123456789']);
    expect(await repo.listPending(ch.id)).toEqual([]);
    expect(r.requests).toHaveLength(1);
    expect(log.text()).toContain('alert notification skipped');
  });

  it('400 is not retried', async () => {
    const r = await receiver(() => ({ status: 400, body: 'bad payload' }));
    const d = worker();
    const [id] = await d.enqueue([{ channelId: webhook(`${r.url}/in`).id, notification: notificationOf([alertOf()]) }]);
    expect((await finished(id)).map((e) => [e.outcome, e.error])).toEqual([
      ['failed', 'HTTP 400: bad payload (permanent failure)'],
    ]);
    expect(r.requests).toHaveLength(1);
  });

  it('a redirect to another host is not followed; a 307 to the same origin is', async () => {
    const elsewhere = await receiver();
    const r = await receiver((req) =>
      req.path === '/away'
        ? { status: 307, headers: { location: `${elsewhere.url}/steal` } }
        : req.path === '/moved'
          ? { status: 307, headers: { location: '/final' } }
          : { status: 200 },
    );
    const d = worker();
    const secrets = { secret: 'redirect-key', bearerToken: 'redirect-token' };
    const [away] = await d.enqueue([
      { channelId: webhook(`${r.url}/away`, secrets).id, notification: notificationOf([alertOf()]) },
    ]);
    const [moved] = await d.enqueue([
      { channelId: webhook(`${r.url}/moved`, secrets).id, notification: notificationOf([alertOf()]) },
    ]);
    expect((await finished(away)).map((e) => [e.outcome, e.httpStatus, e.error])).toEqual([
      ['failed', 307, `HTTP 307: redirect to ${elsewhere.url} not followed (permanent failure)`],
    ]);
    expect(elsewhere.requests).toHaveLength(0);
    expect((await finished(moved)).map((e) => [e.outcome, e.httpStatus])).toEqual([['delivered', 200]]);
    const final = r.requests.find((q) => q.path === '/final');
    expect(final?.headers['authorization']).toBe('Bearer redirect-token');
    expect(final?.body).toBe(r.requests.find((q) => q.path === '/moved')?.body);
  });

  it('one group goes out in order: "resolved" waits for the "firing" being retried', async () => {
    const r = await receiver((_req, i) => (i === 0 ? { status: 503 } : { status: 200 }));
    const d = worker();
    const ch = webhook(`${r.url}/in`);
    const firing = notificationOf([alertOf()]);
    const resolved = notificationOf([alertOf({ status: 'resolved', endsAt: new Date().toISOString() })], {
      groupKey: firing.groupKey,
    });
    const [a, b] = await d.enqueue([
      { channelId: ch.id, notification: firing },
      { channelId: ch.id, notification: resolved },
    ]);
    await finished(a);
    await finished(b);
    expect(r.requests.map((q) => (JSON.parse(q.body) as { status: string }).status)).toEqual([
      'firing',
      'firing',
      'resolved',
    ]);
  });

  it('a retry schedule survives a restart: the next replica sends at the stored time, once', async () => {
    let down = true;
    const r = await receiver(() => (down ? { status: 503 } : { status: 200 }));
    const first = worker({ policy: { ...FAST, baseDelayMs: 1500 } });
    const ch = webhook(`${r.url}/in`);
    const [id] = await first.enqueue([{ channelId: ch.id, notification: notificationOf([alertOf()]) }]);
    const [retrying] = await waitFor(async () => {
      const l = await repo.listLog({ deliveryId: id });
      return l.length ? l : null;
    });
    expect(retrying).toMatchObject({ attempt: 1, outcome: 'retrying', httpStatus: 503 });
    await first.stop();
    const [pending] = await repo.listPending(ch.id);
    expect(pending).toMatchObject({ id, attempts: 1, nextAttemptAt: retrying.nextAttemptAt });
    down = false;
    worker({ policy: { ...FAST, baseDelayMs: 1500 } });
    const entries = await finished(id);
    expect(entries.map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'retrying'],
      [2, 'delivered'],
    ]);
    expect(entries[1].at).toBeGreaterThanOrEqual(retrying.nextAttemptAt as number);
    expect(r.requests).toHaveLength(2);
  });

  it('canary secrets reach the receiver but never the logs or the delivery log, even when echoed back', async () => {
    const canary = `CANARY-${randomUUID()}`;
    const echo = await receiver((req) => ({
      status: 500,
      body: `echo ${req.path} ${JSON.stringify(req.headers)} ${req.body.slice(0, 500)} ${'x'.repeat(1_000_000)}`,
    }));
    const d = worker({ policy: { ...FAST, maxAttempts: 2 } });
    const hook = webhook(`${echo.url}/hook`, { secret: `${canary}-hmac`, bearerToken: `${canary}-bearer` });
    const slack = channels.set({
      id: `slack-${randomUUID()}`,
      config: { type: 'slack', name: 's', enabled: true, sendResolved: true },
      secrets: { url: `${echo.url}/services/${canary}-slack` },
    });
    const pd = channels.set({
      id: `pd-${randomUUID()}`,
      config: { type: 'pagerduty', name: 'p', enabled: true, sendResolved: true, eventsUrl: `${echo.url}/pd` },
      secrets: { routingKey: `${canary}-pd` },
    });
    const ids = await d.enqueue(
      [hook, slack, pd].map((c) => ({ channelId: c.id, notification: notificationOf([alertOf()]) })),
    );
    const entries = (await Promise.all(ids.map((id) => finished(id)))).flat();
    expect(entries).toHaveLength(6);
    const test = await d.testSend(hook);
    expect(test.ok).toBe(false);
    // The secrets did go where they belong…
    expect(echo.requests.some((q) => q.headers['authorization'] === `Bearer ${canary}-bearer`)).toBe(true);
    expect(echo.requests.some((q) => q.path.includes(`${canary}-slack`))).toBe(true);
    expect(echo.requests.some((q) => q.body.includes(`${canary}-pd`))).toBe(true);
    // …and nowhere else: not in the stored log (errors echo them, scrubbed), not in the service's log lines.
    const stored = JSON.stringify([...entries, ...(await repo.listLog({ channelId: hook.id }))]);
    expect(stored).toContain('HTTP 500: echo');
    expect(stored).toContain('***');
    expect(stored).not.toContain(canary);
    expect(log.text()).toContain('alert notification retrying');
    expect(log.text()).not.toContain(canary);
    for (const e of entries) expect((e.error ?? '').length).toBeLessThanOrEqual(1024);
  });

  it('a receiver that hangs does not hold up other channels: their message goes out within about one send timeout', async () => {
    const hung = await receiver(() => new Promise(() => undefined));
    const good = await receiver(() => ({ status: 204 }));
    const h = webhook(`${hung.url}/in`);
    const g = webhook(`${good.url}/in`);
    const d = worker({ http: { timeoutMs: 1000, maxResponseBytes: 4096, maxRedirects: 3 } });
    try {
      // A backlog for the hanging receiver (one group each: nothing orders them), its first sends under way.
      await d.enqueue(
        Array.from({ length: 40 }, () => ({ channelId: h.id, notification: notificationOf([alertOf()]) })),
      );
      await waitFor(() => hung.requests.length > 0, { description: 'the hanging receiver is being sent to' });
      const started = Date.now();
      const [id] = await d.enqueue([{ channelId: g.id, notification: notificationOf([alertOf()]) }]);
      expect((await finished(id)).map((e) => e.outcome)).toEqual(['delivered']);
      // Before: the worker sent a whole claimed batch (40 to the hanging receiver, 8 at a time) before claiming the
      // next one, so this message waited 5 timeouts behind it.
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      // The backlog stays in this file's own database (disposed after it); no later test's worker meets it.
      await d.stop();
    }
  });
  it('a receiver that hangs does not throttle a backlog of another channel (a storm): its messages go out while the hung sends wait', async () => {
    const hung = await receiver(() => new Promise(() => undefined));
    const good = await receiver(() => ({ status: 204 }));
    const h = webhook(`${hung.url}/in`);
    const g = webhook(`${good.url}/in`);
    // 12 slots: the backlog the test above left to its own hanging receiver holds 4 of them (perChannel), this one's 4.
    const d = worker({ concurrency: 12, http: { timeoutMs: 1500, maxResponseBytes: 4096, maxRedirects: 3 } });
    try {
      // A storm: every target its own group, a backlog for both channels; the hanging receiver's sends under way.
      await d.enqueue(
        Array.from({ length: 40 }, () => ({ channelId: h.id, notification: notificationOf([alertOf()]) })),
      );
      await waitFor(() => hung.requests.length > 0, { description: 'the hanging receiver is being sent to' });
      const started = Date.now();
      const ids = await d.enqueue(
        Array.from({ length: 40 }, () => ({ channelId: g.id, notification: notificationOf([alertOf()]) })),
      );
      await waitFor(() => good.requests.length >= ids.length, {
        timeoutMs: 30_000,
        description: 'the backlog of the good receiver to be sent',
      });
      // Before: each round claimed at most `perChannel` (4) of each channel and ended only when its slowest send did, so
      // the good receiver's backlog went out 4 per send timeout of the hanging one (10 rounds: 15 s here; 5,000 alerts
      // grouped by target took 3.5 h at the default 10 s timeout).
      expect(Date.now() - started).toBeLessThan(6_000);
      expect(good.requests).toHaveLength(ids.length);
      // The hanging receiver never had more than `perChannel` (4) sends at once: a slot of its channel frees only at the
      // send timeout (1.5 s), so no 5 of its requests came within less than that.
      const at = hung.requests.map((r) => r.at).sort((a, b) => a - b);
      for (let i = 4; i < at.length; i++) expect(at[i] - at[i - 4]).toBeGreaterThanOrEqual(1_000);
    } finally {
      await d.stop();
    }
  });

  it('receivers that hang on more channels than half the slots: a message to another channel still goes out at once', async () => {
    const hung = await receiver(() => new Promise(() => undefined));
    const good = await receiver(() => ({ status: 204 }));
    // A channel source of its own: the messages the tests above left queued for their hanging receivers name channels
    // it does not have, so they are done with at once (skipped) and take no slot here.
    const own = new MapChannelSource();
    const hook = (url: string) => webhook(url, {}, own);
    const hanging = Array.from({ length: 5 }, (_, i) => hook(`${hung.url}/in${i}`));
    const g = hook(`${good.url}/in`);
    // 8 slots (4 a channel): five channels with one send each hanging until the send timeout leave 3 free.
    const d = worker(
      { concurrency: 8, perChannel: 4, http: { timeoutMs: 5000, maxResponseBytes: 4096, maxRedirects: 3 } },
      own,
    );
    const stuck = await d.enqueue(hanging.map((c) => ({ channelId: c.id, notification: notificationOf([alertOf()]) })));
    await waitFor(() => hung.requests.length === hanging.length, { description: 'every hanging receiver sent to' });
    const [id] = await d.enqueue([{ channelId: g.id, notification: notificationOf([alertOf()]) }]);
    expect((await finished(id)).map((e) => e.outcome)).toEqual(['delivered']);
    // Sent while the five sends still hung (none of them ended, so none is logged yet), not at their timeout: with
    // fewer than half the slots free, a kick or a poll made no claim before, and the free slots stayed idle.
    for (const s of stuck) expect(await repo.listLog({ deliveryId: s })).toEqual([]);
    expect(hung.requests).toHaveLength(hanging.length);
  });

  it('two receivers that hang, each with an older backlog, do not take every slot: another channel’s messages go out', async () => {
    const hung = await receiver(() => new Promise(() => undefined));
    const good = await receiver(() => ({ status: 204 }));
    // A channel source of its own (as above): the backlogs the tests above left are skipped at once.
    const own = new MapChannelSource();
    const hook = (url: string) => webhook(url, {}, own);
    const [h1, h2, g] = [hook(`${hung.url}/a`), hook(`${hung.url}/b`), hook(`${good.url}/in`)];
    const batch = (channelId: string, n: number) =>
      Array.from({ length: n }, () => ({ channelId, notification: notificationOf([alertOf()]) }));
    // Queued before the worker starts: the two backlogs first (older), then the other channel's messages.
    const backlog = await repo.enqueue(
      [...batch(h1.id, 12), ...batch(h2.id, 12)].map((i) => ({ ...i, groupKey: i.notification.groupKey })),
    );
    const ids = await repo.enqueue(batch(g.id, 8).map((i) => ({ ...i, groupKey: i.notification.groupKey })));
    worker({ concurrency: 8, perChannel: 4, http: { timeoutMs: 5000, maxResponseBytes: 4096, maxRedirects: 3 } }, own);
    await waitFor(() => good.requests.length >= ids.length, {
      timeoutMs: 30_000,
      description: 'the other channel’s messages to be sent',
    });
    // Before, oldest first overall: the backlogs' 4 + 4 filled the 8 slots at each claim, and the other channel's
    // messages waited until both had drained (12 / 4 = 3 send timeouts). Now they went out while the backlogs' first
    // sends still hung: none of those ended (none is logged), and no more of them were sent than the slots they hold.
    for (const b of backlog) expect(await repo.listLog({ deliveryId: b })).toEqual([]);
    expect(hung.requests.length).toBeLessThanOrEqual(8);
  });

  it('two receivers that hang with backlogs keep a slot free: a message queued after they took theirs goes out at once', async () => {
    const hung = await receiver(() => new Promise(() => undefined));
    const good = await receiver(() => ({ status: 204 }));
    const own = new MapChannelSource();
    const [h1, h2, g] = [
      webhook(`${hung.url}/a`, {}, own),
      webhook(`${hung.url}/b`, {}, own),
      webhook(good.url, {}, own),
    ];
    const batch = (channelId: string, n: number) =>
      Array.from({ length: n }, () => ({ channelId, notification: notificationOf([alertOf()]) }));
    const backlog = await repo.enqueue(
      [...batch(h1.id, 12), ...batch(h2.id, 12)].map((i) => ({ ...i, groupKey: i.notification.groupKey })),
    );
    const d = worker(
      { concurrency: 8, perChannel: 4, http: { timeoutMs: 8000, maxResponseBytes: 4096, maxRedirects: 3 } },
      own,
    );
    // The hung channels take what they may (all 8 slots, before: 4 + 4), and nothing of theirs ends.
    await waitFor(() => hung.requests.length >= 7, { description: 'the hung channels’ sends under way' });
    await new Promise((r) => setTimeout(r, 300));
    const [id] = await d.enqueue([{ channelId: g.id, notification: notificationOf([alertOf()]) }]);
    expect((await finished(id)).map((e) => e.outcome)).toEqual(['delivered']);
    // Sent while every hung send still hung (none logged): before, it waited for one of them to time out (8 s).
    for (const b of backlog) expect(await repo.listLog({ deliveryId: b })).toEqual([]);
    expect(hung.requests).toHaveLength(7);
  });
});
