import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { StatusUpdateInput } from '@fleetwatch/contracts';
import { StatusPusher } from '@fleetwatch/pusher';
import { DockerWatcher, type DockerWatcherOptions } from './docker-watcher';
import { SentLedger } from './sent-ledger';
import { DockerEngineStandin } from './standin/docker-engine.standin';

// The real watcher and dockerode against the stand-in engine on a unix socket (no Docker needed).

const logs: string[] = [];
const log = {
  info: () => undefined,
  warn: (msg: string, fields?: Record<string, unknown>) =>
    void logs.push(fields ? `${msg} ${JSON.stringify(fields)}` : msg),
  error: (msg: string) => void logs.push(msg),
};
let dir: string;
let engine: DockerEngineStandin;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-docker-watcher-'));
  engine = new DockerEngineStandin(join(dir, 'docker.sock'));
  await engine.start();
  engine.add({ name: 'web-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
});
afterEach(async () => {
  await engine.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The watcher under test, on the stand-in engine, its ledger in this test's directory. */
function watcherFor(
  pusher: StatusPusher,
  socketPath = engine.socketPath,
  opts: Partial<DockerWatcherOptions> = {},
): DockerWatcher {
  return new DockerWatcher(
    new Dockerode({ socketPath }),
    pusher,
    {
      labelFilters: ['fleetwatch.watch=true'],
      instancePrefix: '',
      source: 'spec',
      maxAgeMs: 60_000,
      reconnectBaseMs: 50,
      reconnectMaxMs: 200,
      inspectConcurrency: 4,
      probeAfterMs: 30_000,
      answerTimeoutMs: 10_000,
      ...opts,
    },
    log,
    new SentLedger(join(dir, 'state.json'), log, 10),
  );
}

function watcherOn(socketPath: string): { watcher: DockerWatcher; pusher: StatusPusher } {
  // Never started: what the watcher queues stays queued (nothing here is about delivery).
  const pusher = new StatusPusher({ url: 'http://127.0.0.1:9', apiKey: 'fw_test', log });
  return { watcher: watcherFor(pusher, socketPath), pusher };
}

/** An ingest stand-in that accepts (202) every push: updates sent to it count as accepted (and are kept). */
async function acceptingIngest(): Promise<{ url: string; close: () => Promise<void>; received: StatusUpdateInput[] }> {
  const received: StatusUpdateInput[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as { updates?: StatusUpdateInput[] };
      received.push(...(body.updates ?? [body as StatusUpdateInput]));
      res.writeHead(202, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
    received,
  };
}

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with 'stopped', or 'hung' if stop() has not returned within `ms`. */
function stopWithin(watcher: DockerWatcher, ms: number): Promise<'stopped' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    watcher.stop().then(() => 'stopped' as const),
    new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Every update the watcher queues on `pusher`, in order (the pusher still sends them). */
function queuedBy(pusher: StatusPusher): StatusUpdateInput[] {
  const queued: StatusUpdateInput[] = [];
  const enqueue = pusher.enqueue.bind(pusher);
  jest.spyOn(pusher, 'enqueue').mockImplementation((update, options) => {
    queued.push(update);
    return enqueue(update, options);
  });
  return queued;
}

describe('DockerWatcher.stop', () => {
  it('returns while the events stream is followed, and the stream is closed', async () => {
    const { watcher, pusher } = watcherOn(engine.socketPath);
    watcher.start();
    await until('the events stream', () => engine.openStreams === 1);
    expect(pusher.pending).toBe(1); // web-1, from the resync
    expect(await stopWithin(watcher, 3_000)).toBe('stopped');
    await until('the stream closed at the engine', () => engine.openStreams === 0);
  });

  it('returns when it comes while the events stream is being opened (the stream that arrives after is closed)', async () => {
    const { watcher } = watcherOn(engine.socketPath);
    const release = engine.holdEvents();
    watcher.start();
    // The resync is done and the watcher has asked for the stream: stop() finds no stream to close.
    await until('the events request', () => engine.heldEventRequests === 1);
    const stopped = stopWithin(watcher, 3_000);
    release();
    expect(await stopped).toBe('stopped');
    await until('the late stream closed at the engine', () => engine.openStreams === 0);
    expect(engine.requests.filter((p) => p === '/events')).toHaveLength(1); // and no reconnect after stop
  });

  it('returns when it comes during the resync: the inspects in flight finish, no other is made, no events stream asked for', async () => {
    for (let i = 0; i < 50; i++) engine.add({ name: `c-${i}`, labels: { 'fleetwatch.watch': 'true' }, running: true });
    const { watcher, pusher } = watcherOn(engine.socketPath);
    const inspect = (path: string) => /^\/containers\/[^/]+\/json$/.test(path);
    // The inspects are held: the stop comes during the resync, whatever the speed of the box.
    const release = engine.hold(inspect);
    watcher.start();
    await until('the first inspects (inspectConcurrency: 4)', () => engine.heldRequests('/containers/x/json') === 4);
    const stopped = stopWithin(watcher, 3_000);
    release();
    expect(await stopped).toBe('stopped');
    expect(engine.requests.filter(inspect)).toHaveLength(4); // of 51
    expect(pusher.pending).toBe(4); // what they found is queued; nothing reported removed from a partial listing
    expect(engine.requests).not.toContain('/events');
  });
});

describe('DockerWatcher and a renamed container', () => {
  it('reports the new name with the current state, and the old name as gone (the state itself did not change)', async () => {
    const { watcher, pusher } = watcherOn(engine.socketPath);
    const queued: { update: StatusUpdateInput; final: boolean }[] = [];
    const enqueue = pusher.enqueue.bind(pusher);
    jest.spyOn(pusher, 'enqueue').mockImplementation((update, options) => {
      queued.push({ update, final: options?.final === true });
      return enqueue(update, options);
    });
    watcher.start();
    await until('web-1 reported and events followed', () => watcher.stats.connected && queued.length === 1);
    engine.act('web-1', 'rename', { name: 'web-2' });
    await until('web-2 reported', () => queued.some((q) => q.update.instanceId === 'web-2'));
    await watcher.stop();
    const [first, ...after] = queued;
    expect(first?.update).toMatchObject({ instanceId: 'web-1', status: 'running' });
    expect(after.map((q) => [q.update.instanceId, q.update.status, q.final])).toEqual([
      ['web-1', 'removed', true],
      ['web-2', 'running', false],
    ]);
    // Every update its own id: none is dropped downstream as a repeat of another.
    expect(new Set(queued.map((q) => q.update.updateId)).size).toBe(3);
    expect(after[0]?.update.message).toBe('container renamed to web-2');
  });
});

describe('DockerWatcher restarted with its ledger', () => {
  it('sends no state the ingest already has, and still refreshes it (a steady container must not go STALE)', async () => {
    const { url, close } = await acceptingIngest();
    const run = (pusher: StatusPusher) => watcherFor(pusher);
    try {
      const first = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      const before = run(first);
      first.start();
      before.start();
      await until('web-1 accepted', () => first.stats.accepted === 1 && before.stats.connected);
      await before.stop();
      await first.stop();
      await before.persist();

      const second = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      const after = run(second);
      after.start();
      await until('following events again', () => after.stats.connected);
      expect(second.pending).toBe(0); // the ledger: web-1's state is not sent again
      expect(second.refreshDue()).toBe(1); // …but it is kept alive
      await after.stop();
    } finally {
      await close();
    }
  });
});

describe('DockerWatcher resync and a name another container took while no watcher ran', () => {
  it('reports the container now holding the name as that instance (not removed after it), and keeps refreshing it', async () => {
    const { url, close } = await acceptingIngest();
    const run = (pusher: StatusPusher) => watcherFor(pusher);
    try {
      const first = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      const before = run(first);
      first.start();
      before.start();
      await until('web-1 accepted', () => first.stats.accepted === 1 && before.stats.connected);
      await before.stop();
      await first.stop();
      await before.persist();
      // While no watcher runs: web-1 renamed away and a new container created under its name (docker rename, then
      // docker run --name web-1; compose's recreate does the same).
      engine.act('web-1', 'rename', { name: 'web-1-old', quiet: true });
      const newer = engine.add({ name: 'web-1', labels: { 'fleetwatch.watch': 'true' }, running: true, quiet: true });

      const second = new StatusPusher({ url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
      const queued = queuedBy(second);
      const after = run(second);
      second.start();
      after.start();
      await until('following events again', () => after.stats.connected);
      await second.drained();
      await after.stop();
      // What the aggregator makes of web-1: the latest-dated update wins, a removal on a tie.
      const web1 = queued
        .filter((u) => u.instanceId === 'web-1')
        .sort(
          (a, b) =>
            Date.parse(a.occurredAt as string) - Date.parse(b.occurredAt as string) ||
            (a.status === 'removed' ? 1 : 0) - (b.status === 'removed' ? 1 : 0),
        );
      expect(web1[web1.length - 1]).toMatchObject({
        status: 'running',
        metadata: { name: 'web-1', containerId: newer },
      });
      expect(queued.map((u) => u.instanceId).sort()).toContain('web-1-old');
      // Both instances kept from going STALE.
      expect(second.refreshDue(Date.now() + 61_000)).toBe(2);
      await second.drained();
      await second.stop();
      // The refreshes' acceptance scheduled a ledger write: written now, not into a directory being removed.
      await after.persist();
    } finally {
      await close();
    }
  });
});

describe('DockerWatcher and a container the engine cannot inspect', () => {
  it('reports the others and follows the events: one broken container does not stop the watcher', async () => {
    engine.add({ name: 'broken-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    engine.breakInspect('broken-1');
    const { watcher, pusher } = watcherOn(engine.socketPath);
    const queued = queuedBy(pusher);
    watcher.start();
    try {
      await until('events followed', () => watcher.stats.connected);
      engine.act('web-1', 'die', { exitCode: 3 });
      await until('web-1 failed reported', () => queued.some((u) => u.instanceId === 'web-1' && u.status === 'failed'));
      // Not reported removed: it is there, only not described.
      expect(queued.filter((u) => u.instanceId === 'broken-1')).toEqual([]);
      expect(logs.some((l) => /could not be inspected/.test(l))).toBe(true);
    } finally {
      await watcher.stop();
    }
  });
});

describe('DockerWatcher and an inspect the engine does not answer', () => {
  it('an event whose inspect is cut off once is asked again (the engine answering a ping): reported, no reconnect', async () => {
    const { watcher, pusher } = watcherOn(engine.socketPath);
    const queued = queuedBy(pusher);
    watcher.start();
    try {
      await until('events followed', () => watcher.stats.connected);
      const reconnects = watcher.stats.reconnects;
      engine.dropNextInspect('web-1');
      engine.act('web-1', 'die', { exitCode: 3 });
      // Lost before: only logged, web-1 stayed reported (and refreshed) running until its next event.
      await until('web-1 failed reported', () => queued.some((u) => u.instanceId === 'web-1' && u.status === 'failed'));
      expect(watcher.stats.reconnects).toBe(reconnects);
      expect(watcher.stats.connected).toBe(true);
    } finally {
      await watcher.stop();
    }
  });

  it("an event whose inspect gets no answer, nor a ping, ends the session; the next one's resync reports it", async () => {
    const { watcher, pusher } = watcherOn(engine.socketPath);
    const queued = queuedBy(pusher);
    watcher.start();
    let release = (): void => undefined;
    try {
      await until('events followed', () => watcher.stats.connected);
      const w = watcherFor(pusher, engine.socketPath, { answerTimeoutMs: 300 });
      await watcher.stop();
      w.start();
      try {
        await until('events followed', () => w.stats.connected);
        const reconnects = w.stats.reconnects;
        // The engine wedged after the event: the open stream delivers it, nothing else is answered.
        release = engine.hold((path) => path !== '/events');
        engine.act('web-1', 'die', { exitCode: 3 });
        await until('the session ended', () => w.stats.reconnects > reconnects && !w.stats.connected, 5_000);
        release();
        await until('web-1 failed reported', () =>
          queued.some((u) => u.instanceId === 'web-1' && u.status === 'failed'),
        );
      } finally {
        release();
        await w.stop();
      }
    } finally {
      release();
      await watcher.stop();
    }
  });

  it('an event about a container whose inspect hangs (pings answered) ends its refreshes alone; the session goes on', async () => {
    const ingest = await acceptingIngest();
    const pusher = new StatusPusher({ url: ingest.url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
    const stuck = engine.add({ name: 'app-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    const w = watcherFor(pusher, engine.socketPath, { answerTimeoutMs: 600, probeAfterMs: 300 });
    pusher.start();
    w.start();
    let release = (): void => undefined;
    try {
      await until('both accepted', () => pusher.stats.accepted === 2 && w.stats.connected);
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(2);
      await pusher.drained();
      const reconnects = w.stats.reconnects;
      const resyncs = w.stats.resyncs;
      release = engine.hold((path) => path.startsWith(`/containers/${stuck}/json`));
      engine.act('app-1', 'die', { exitCode: 3 });
      await until('the inspect given up', () =>
        logs.some((l) => /no answer twice, the engine answering pings/.test(l)),
      );
      // app-1's state is unknown: no longer refreshed (it goes STALE); web-1 still is, its events still followed.
      expect(pusher.refreshDue(Date.now() + 130_000)).toBe(1);
      engine.act('web-1', 'die', { exitCode: 1 });
      await until('web-1 failed reported', () =>
        ingest.received.some((u) => u.instanceId === 'web-1' && u.status === 'failed'),
      );
      // Before: the session ended on it and resynced every container (each event about app-1 a reconnect).
      expect(w.stats.reconnects).toBe(reconnects);
      expect(w.stats.resyncs).toBe(resyncs);
      expect(w.stats.connected).toBe(true);

      // Another event about it (a restart loop) does not hold the others' for two answer timeouts again.
      await pusher.drained();
      const mark = ingest.received.length;
      const since = (instanceId: string, status: string) =>
        ingest.received.slice(mark).some((u) => u.instanceId === instanceId && u.status === status);
      engine.act('app-1', 'start');
      engine.act('web-1', 'start');
      const asked = Date.now();
      await until('web-1 running again', () => since('web-1', 'running'));
      expect(Date.now() - asked).toBeLessThan(1_000); // waiting for its inspect again: two answer timeouts, 1.2 s+
      expect(since('app-1', 'running')).toBe(false);

      // Its lock clears, with no event about it: it is inspected again in the background and reported (running).
      release();
      await until('app-1 reported again', () => since('app-1', 'running'));
      await pusher.drained();
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(2);
    } finally {
      release();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await ingest.close();
    }
  });
});

describe('DockerWatcher refreshes and a container the engine cannot inspect', () => {
  // A refresh says "still as last reported". A container whose state the engine cannot tell (its inspect a 5xx, after
  // an event about it or at a resync) is not known to be as last reported: it is no longer refreshed, so it goes
  // STALE, as an engine out of reach does — refreshed, a container that died was reported running for ever.
  async function accepted(): Promise<{ watcher: DockerWatcher; pusher: StatusPusher; close: () => Promise<void> }> {
    const ingest = await acceptingIngest();
    // Delivered to a server that accepts everything: the watcher's updates count as accepted.
    const pusher = new StatusPusher({ url: ingest.url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
    const watcher = watcherFor(pusher);
    logs.length = 0;
    pusher.start();
    watcher.start();
    await until('web-1 accepted', () => pusher.stats.accepted === 1 && watcher.stats.connected);
    return {
      watcher,
      pusher,
      close: async () => {
        await watcher.stop();
        await pusher.stop();
        await watcher.persist(); // a ledger write scheduled by an acceptance lands before the directory goes
        await ingest.close();
      },
    };
  }

  it('an event about it that cannot be followed by an inspect ends its refreshes', async () => {
    const { watcher, pusher, close } = await accepted();
    try {
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(1); // steady and followed: refreshed
      await pusher.drained();
      engine.breakInspect('web-1');
      const events = watcher.stats.events;
      engine.act('web-1', 'die', { exitCode: 3 });
      await until('the die event handled', () => watcher.stats.events > events);
      await until('the inspect refused', () => logs.some((l) => /could not be inspected after an event/.test(l)));
      expect(watcher.stats.connected).toBe(true);
      expect(pusher.refreshDue(Date.now() + 130_000)).toBe(0);
    } finally {
      await close();
    }
  });

  it('a resync that cannot inspect it ends its refreshes; once it can, it is refreshed again', async () => {
    const { watcher, pusher, close } = await accepted();
    try {
      engine.breakInspect('web-1');
      const resyncs = watcher.stats.resyncs;
      engine.dropStreams();
      await until('resynced', () => watcher.stats.resyncs > resyncs && watcher.stats.connected);
      expect(logs.some((l) => /skipped by this resync/.test(l))).toBe(true);
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(0);

      engine.breakInspect('web-1', false);
      const again = watcher.stats.resyncs;
      engine.dropStreams();
      await until('resynced again', () => watcher.stats.resyncs > again && watcher.stats.connected);
      await pusher.drained();
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(1);
    } finally {
      await close();
    }
  });
});

describe('DockerWatcher and an engine that answers all but one thing', () => {
  it('a container whose inspect never answers (the engine answering pings) is skipped; the others are followed', async () => {
    const { url, close, received } = await acceptingIngest();
    const pusher = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    const stuck = engine.add({ name: 'stuck-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    const release = engine.hold((path) => path.startsWith(`/containers/${stuck}/json`));
    const w = watcherFor(pusher, engine.socketPath, { probeAfterMs: 300, answerTimeoutMs: 300 });
    pusher.start();
    w.start();
    try {
      // Before: the resync failed on it, every session, and nothing was ever followed (web-1 never reported).
      await until('followed', () => w.stats.connected && w.stats.resyncs >= 1, 5_000);
      await until('web-1 reported', () => received.some((u) => u.instanceId === 'web-1'));
      expect(received.some((u) => u.instanceId === 'stuck-1')).toBe(false);
      expect(logs.some((l) => /skipped by this resync/.test(l) && /twice/.test(l))).toBe(true);
    } finally {
      release();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await close();
    }
  });

  it('an events request never answered (pings answered) is given up and tried again; stop() is prompt', async () => {
    const { url, close } = await acceptingIngest();
    const pusher = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    const release = engine.holdEvents();
    const w = watcherFor(pusher, engine.socketPath, { probeAfterMs: 100, answerTimeoutMs: 300 });
    pusher.start();
    w.start();
    try {
      // Before: the session waited for the stream's answer for ever (its pings answered, no watchdog cut).
      await until('given up and tried again', () => w.stats.reconnects >= 2, 5_000);
      expect(w.stats.connected).toBe(false);
      release();
      await until('following once it answers', () => w.stats.connected, 5_000);
      // A session waiting on the engine is cut by stop(), not left to its answer timeout.
      const again = engine.holdEvents();
      engine.dropStreams();
      await until('waiting for the stream again', () => engine.heldRequests('/events') > 0, 5_000);
      const w2 = watcherFor(pusher, engine.socketPath, { answerTimeoutMs: 5_000 });
      w2.start();
      await until('the second waits too', () => engine.heldRequests('/events') > 1, 5_000);
      const started = Date.now();
      await w2.stop();
      expect(Date.now() - started).toBeLessThan(2_500); // its 1 s grace, not the 5 s answer timeout
      again();
    } finally {
      release();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await close();
    }
  });
});

describe('DockerWatcher and an engine that stops answering', () => {
  it('a wedged engine (requests unanswered, the stream silent) is found by a ping: refreshes stop, and start again once it answers', async () => {
    const { url, close, received } = await acceptingIngest();
    // As main.ts: a state is reported again only while the watcher says it is connected.
    const pusher = new StatusPusher({
      url,
      apiKey: 'k',
      log,
      refreshMs: 200,
      lingerMs: 0,
      refreshWhile: () => w.stats.connected,
    });
    // Quick deadlines: 300 ms without a word from the engine and it is pinged; no answer in 300 ms, it is gone.
    const w = watcherFor(pusher, engine.socketPath, { probeAfterMs: 300, answerTimeoutMs: 300 });
    const refreshes = () => received.filter((u) => u.instanceId === 'web-1').length;
    const pings = () => engine.requests.filter((p) => p === '/_ping').length;
    pusher.start();
    w.start();
    try {
      await until('followed, and web-1 refreshed', () => w.stats.connected && refreshes() >= 3);
      // Quiet for longer than the deadline: the pings were answered, so still connected.
      const pinged = pings();
      await new Promise((r) => setTimeout(r, 700));
      expect(pings()).toBeGreaterThan(pinged);
      expect(w.stats).toMatchObject({ connected: true, reconnects: 0 });

      const unwedge = engine.wedge();
      const wedgedAt = Date.now();
      // The stream stays open and says nothing, every request hangs: before, the watcher stayed connected (its stream
      // looked open) and web-1 was refreshed as running for ever.
      await until('not connected', () => !w.stats.connected, 3_000);
      expect(Date.now() - wedgedAt).toBeLessThan(2_000); // 300 ms of silence, 300 ms of ping, the 75 ms tick, slack
      expect(logs.some((l) => /reconnecting/.test(l) && /no answer to a ping/.test(l))).toBe(true);
      await until('what was in flight delivered', () => pusher.pending === 0);
      const sent = refreshes();
      // Tried again and again while wedged (each session's requests given up): never connected, never refreshed.
      const seen = new Set<boolean>();
      const end = Date.now() + 1_500;
      while (Date.now() < end) {
        seen.add(w.stats.connected);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect([...seen]).toEqual([false]);
      expect(refreshes()).toBe(sent);
      expect(w.stats.reconnects).toBeGreaterThan(1);

      unwedge();
      await until('following events again', () => w.stats.connected && engine.openStreams === 1);
      await until('refreshed again', () => refreshes() > sent);
      engine.act('web-1', 'die', { exitCode: 3 });
      await until('an event arrives', () => received.some((u) => u.instanceId === 'web-1' && u.status === 'failed'));
      // Every request the wedged engine left unanswered was given up by the watcher (none held open for ever).
      await until('no request left hanging', () => engine.unansweredRequests === 0, 3_000);
    } finally {
      await w.stop();
      await pusher.stop();
      await w.persist();
      await close();
    }
  });
});

describe('DockerWatcher periodic resync', () => {
  // The events stream stays open and says nothing (half-open: a firewall dropped the idle connection) while the engine
  // answers pings, lists and inspects: the container dies, and no event about it ever arrives.
  async function dieUnseen(resyncMs: number) {
    const { url, close } = await acceptingIngest();
    const pusher = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    const queued = queuedBy(pusher);
    const w = watcherFor(pusher, engine.socketPath, { resyncMs, probeAfterMs: 200 });
    // Created and started with no event either (none replayed from `since` comes after its death).
    engine.add({ name: 'job-1', labels: { 'fleetwatch.watch': 'true' }, running: true, quiet: true });
    const job1 = () => queued.filter((u) => u.instanceId === 'job-1');
    pusher.start();
    w.start();
    return {
      w,
      job1,
      stop: async () => {
        await w.stop();
        await pusher.stop();
        await close();
      },
    };
  }

  it('reports a container that died with no event on a silent stream within resyncMs; the same state is not sent again', async () => {
    const logged = logs.length;
    const { w, job1, stop } = await dieUnseen(500);
    try {
      await until('followed', () => w.stats.connected && engine.openStreams === 1);
      await until('a periodic resync', () => w.stats.resyncs >= 2 && w.stats.connected, 3_000);
      // The state unchanged: the same update id, not sent again; and a periodic resync is no reconnect.
      expect(job1()).toHaveLength(1);
      expect(w.stats.reconnects).toBe(0);
      expect(logs.slice(logged)).toEqual([]); // no warning

      engine.act('job-1', 'die', { exitCode: 3, quiet: true });
      await until('job-1 reported failed', () => job1().some((u) => u.status === 'failed'), 2_000);
      await until('following events again', () => w.stats.connected && engine.openStreams === 1);
    } finally {
      await stop();
    }
    // Stopped: the timer is gone, no further session.
    const resyncs = w.stats.resyncs;
    await new Promise((r) => setTimeout(r, 700));
    expect(w.stats.resyncs).toBe(resyncs);
    expect(engine.openStreams).toBe(0);
  });

  it('resyncMs 0: the container that died unseen stays reported running (only start and reconnects resync)', async () => {
    const { w, job1, stop } = await dieUnseen(0);
    try {
      await until('followed', () => w.stats.connected && engine.openStreams === 1);
      engine.act('job-1', 'die', { exitCode: 3, quiet: true });
      await new Promise((r) => setTimeout(r, 1_200));
      expect(job1().map((u) => u.status)).toEqual(['running']);
      expect(w.stats).toMatchObject({ connected: true, resyncs: 1, reconnects: 0 });
    } finally {
      await stop();
    }
  });
});

describe('DockerWatcher and a full push queue', () => {
  it('ends the session itself once the ingest accepts again: no reconnect, but a back-off growing while the queue keeps overflowing', async () => {
    const logged = logs.length;
    // Never started: the watcher's listeners are called by hand (an update pushed out, a batch accepted).
    const pusher = new StatusPusher({ url: 'http://127.0.0.1:9', apiKey: 'fw_test', log });
    let dropped: Parameters<StatusPusher['onDropped']>[0] = () => undefined;
    let accepted: Parameters<StatusPusher['onAccepted']>[0] = () => undefined;
    jest.spyOn(pusher, 'onDropped').mockImplementation((l) => void (dropped = l));
    jest.spyOn(pusher, 'onAccepted').mockImplementation((l) => void (accepted = l));
    const queued = queuedBy(pusher);
    const w = watcherFor(pusher);
    const sleeps: number[] = [];
    const watcherSleep = w as unknown as { sleep(ms: number): Promise<void> };
    const sleep = watcherSleep.sleep.bind(w);
    jest.spyOn(watcherSleep, 'sleep').mockImplementation((ms) => (sleeps.push(ms), sleep(ms)));
    // The top of each back-off's jitter: 49, 99, 199 ms for the 1st, 2nd, 3rd in a row (base 50, max 200).
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.999);
    w.start();
    try {
      let sessions = 1;
      const overflowAndAccept = async () => {
        await until('following events', () => w.stats.connected && w.stats.resyncs === sessions);
        dropped([queued[queued.length - 1] as StatusUpdateInput], 'overflow'); // web-1's latest, pushed out
        accepted([]);
        sessions++;
        await until('a new session', () => w.stats.resyncs === sessions && w.stats.connected);
      };
      await overflowAndAccept();
      await overflowAndAccept();
      expect(sleeps).toEqual([49, 99]);
      // The queue took updates with none pushed out since: the next overflow backs off from the start again.
      accepted([]);
      await overflowAndAccept();
      expect(sleeps).toEqual([49, 99, 49]);
      // Each resync sent web-1's state again (it was never delivered); none of it was a reconnect.
      expect(queued.filter((u) => u.instanceId === 'web-1')).toHaveLength(4);
      expect(w.stats.reconnects).toBe(0);
      expect(logs.slice(logged).filter((l) => /reconnecting/.test(l))).toEqual([]);
    } finally {
      random.mockRestore();
      await w.stop();
    }
  });
});

describe('DockerWatcher and an engine whose clock is behind the watcher`s', () => {
  /**
   * An engine 5 s behind on its own socket running job-1, an ingest accepting, and a pusher and a watcher on them (not
   * started); `stop` ends them all, the ledger's last write done before the directory goes.
   */
  async function behindEngine(socket: string, opts: Partial<DockerWatcherOptions> = {}) {
    const skewed = new DockerEngineStandin(join(dir, socket));
    skewed.clockOffsetMs = -5_000;
    await skewed.start();
    const { url, close } = await acceptingIngest();
    const pusher = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    const queued = queuedBy(pusher);
    skewed.add({ name: 'job-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    const w = watcherFor(pusher, skewed.socketPath, opts);
    const stop = async (): Promise<void> => {
      await w.stop();
      await pusher.stop();
      await w.persist();
      await close();
      await skewed.stop();
    };
    return { skewed, pusher, queued, w, stop };
  }

  it('an event between the listing and the events stream is replayed: `since` is the engine`s time, not the watcher`s', async () => {
    // The engine (a tcp:// DOCKER_HOST on another host) 5 s behind: its events are dated by its clock, and the
    // stream's `since` is compared with those dates. Before, `since` was the watcher's clock less 1 s: the events
    // of the 4 s after the listing (the whole resync, every DOCKER_WATCHER_RESYNC_SECONDS) were never replayed.
    const { skewed, pusher, queued, w, stop } = await behindEngine('skewed.sock');
    const release = skewed.holdEvents();
    pusher.start();
    w.start();
    try {
      // Listed and inspected (running); the events stream asked for and not yet opened.
      await until('the stream asked for', () => skewed.heldEventRequests === 1);
      skewed.act('job-1', 'die', { exitCode: 3 });
      release();
      await until('following events', () => w.stats.connected);
      await until('job-1 reported failed', () => queued.some((u) => u.instanceId === 'job-1' && u.status === 'failed'));
      expect(w.stats.reconnects).toBe(0);
    } finally {
      release();
      await stop();
    }
  });

  it('a hanging /info once the engine`s clock was learned: the periodic resync`s session does not wait for it, and `since` is still the engine`s time', async () => {
    // The answer timeout (10 s) far above the waits below: a session waiting for /info would not make them.
    const { skewed, pusher, queued, w, stop } = await behindEngine('skewed.sock', { resyncMs: 800 });
    pusher.start();
    w.start();
    const logged = logs.length;
    const infoAsked = () => skewed.requests.filter((p) => p === '/info').length + skewed.heldRequests('/info');
    const listings = () => skewed.requests.filter((p) => p === '/containers/json').length;
    let releaseInfo = () => undefined as void;
    let releaseEvents = () => undefined as void;
    try {
      await until('following events', () => w.stats.connected);
      expect(infoAsked()).toBe(1);
      // From now on /info hangs (a stuck plugin); the periodic resync ends the session, and the next one's stream is
      // held a while.
      releaseInfo = skewed.hold((p) => p === '/info');
      releaseEvents = skewed.holdEvents();
      await until('the next session past its resync', () => skewed.heldEventRequests === 1, 2_000);
      expect(w.stats.resyncs).toBe(2);
      expect(infoAsked()).toBe(2); // asked again, once, not waited for
      // Between that listing and the stream, on the engine's clock (5 s behind): replayed from `since`.
      skewed.act('job-1', 'die', { exitCode: 3 });
      releaseEvents();
      await until('job-1 reported failed', () => queued.some((u) => u.instanceId === 'job-1' && u.status === 'failed'));
      // By the replayed event, not by the next periodic resync's listing.
      expect(listings()).toBe(2);
      expect(logs.slice(logged).filter((l) => /engine's time is unknown/.test(l))).toEqual([]);
    } finally {
      releaseInfo();
      releaseEvents();
      await stop();
    }
  });

  it('the watcher`s clock stepped forward after the engine`s clock was learned (NTP): `since` is still the engine`s time', async () => {
    const { skewed, pusher, queued, w, stop } = await behindEngine('stepped.sock', { resyncMs: 800 });
    pusher.start();
    w.start();
    let releaseInfo = () => undefined as void;
    let releaseEvents = () => undefined as void;
    const realNow = Date.now.bind(Date);
    let stepped: jest.SpyInstance | undefined;
    try {
      await until('following events', () => w.stats.connected);
      // The watcher's wall clock steps a minute forward (NTP); the engine's does not (its offset from this process's
      // moves by as much). /info hangs from now on, so the periodic resync's session goes by what it learned before.
      stepped = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
      skewed.clockOffsetMs = -65_000;
      releaseInfo = skewed.hold((p) => p === '/info');
      releaseEvents = skewed.holdEvents();
      await until('the next session past its resync', () => skewed.heldEventRequests === 1, 2_000);
      // Between that listing and the stream, on the engine's clock: replayed only if `since` is not in its future.
      skewed.act('job-1', 'die', { exitCode: 3 });
      releaseEvents();
      await until('job-1 reported failed', () => queued.some((u) => u.instanceId === 'job-1' && u.status === 'failed'));
      // By the replayed event, not by the next periodic resync's listing.
      expect(skewed.requests.filter((p) => p === '/containers/json')).toHaveLength(2);
    } finally {
      stepped?.mockRestore();
      releaseInfo();
      releaseEvents();
      await stop();
    }
  });

  it('the engine restarted on another host (its clock 30 s behind) behind the same socket: `since` is the new engine`s time', async () => {
    const socketPath = join(dir, 'moved.sock');
    const first = new DockerEngineStandin(socketPath);
    await first.start();
    const { url, close } = await acceptingIngest();
    const pusher = new StatusPusher({ url, apiKey: 'k', log, lingerMs: 0 });
    const queued = queuedBy(pusher);
    first.add({ name: 'job-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    const w = watcherFor(pusher, socketPath);
    pusher.start();
    w.start();
    const moved = new DockerEngineStandin(socketPath);
    moved.clockOffsetMs = -30_000;
    let releaseEvents = () => undefined as void;
    try {
      await until('following events', () => w.stats.connected);
      // The same socket (a proxy) now reaches an engine on another host, its clock 30 s behind the first one's.
      await first.stop();
      moved.add({ name: 'job-2', labels: { 'fleetwatch.watch': 'true' }, running: true });
      releaseEvents = moved.holdEvents();
      await moved.start();
      await until('the next session past its resync', () => moved.heldEventRequests === 1);
      // Between that listing and the stream, on the new engine's clock: replayed only if `since` is not in its future.
      moved.act('job-2', 'die', { exitCode: 3 });
      releaseEvents();
      await until('job-2 reported failed', () => queued.some((u) => u.instanceId === 'job-2' && u.status === 'failed'));
    } finally {
      releaseEvents();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await close();
      await moved.stop();
      await first.stop();
    }
  });

  it('a reconnect with /info hanging once its clock was learned: after the answer timeout, `since` is the engine`s time as last told', async () => {
    const { skewed, pusher, queued, w, stop } = await behindEngine('reconnect.sock', { answerTimeoutMs: 1_000 });
    pusher.start();
    w.start();
    const logged = logs.length;
    let releaseInfo = () => undefined as void;
    let releaseEvents = () => undefined as void;
    try {
      await until('following events', () => w.stats.connected);
      // /info hangs from now on; the stream is lost (a reconnect: /info waited for), the next one held a while.
      releaseInfo = skewed.hold((p) => p === '/info');
      releaseEvents = skewed.holdEvents();
      skewed.dropStreams();
      await until('the next session past its resync', () => skewed.heldEventRequests === 1);
      skewed.act('job-1', 'die', { exitCode: 3 });
      releaseEvents();
      await until('job-1 reported failed', () => queued.some((u) => u.instanceId === 'job-1' && u.status === 'failed'));
      expect(w.stats.reconnects).toBe(1);
      expect(logs.slice(logged).filter((l) => /engine's time is unknown/.test(l))).toEqual([]);
    } finally {
      releaseInfo();
      releaseEvents();
      await stop();
    }
  });

  it('an engine (a socket proxy) refusing /info: followed all the same, on the watcher`s clock, warned once', async () => {
    const logged = logs.length;
    engine.infoAllowed = false;
    const { watcher: w } = watcherOn(engine.socketPath);
    w.start();
    try {
      await until('followed', () => w.stats.connected && engine.openStreams === 1);
      engine.dropStreams();
      await until('followed again', () => w.stats.reconnects === 1 && w.stats.connected && engine.openStreams === 1);
      expect(w.stats.resyncs).toBe(2);
      expect(logs.slice(logged).filter((l) => /engine's time is unknown/.test(l))).toHaveLength(1);
    } finally {
      await w.stop();
    }
  });
});

describe("a container's updates are dated in the order they are sent", () => {
  /**
   * An engine whose clock is 30 s behind this host's; app-1 reported running, then its last state dated by this host:
   * it dies while its inspect hangs, and is inspected again (failed) once the lock clears. `run` goes on from there;
   * `restart` stops the watcher and its pusher (the ledger written), runs `meanwhile`, and starts new ones on the same
   * ledger, resolving once they follow the events.
   */
  async function withAppFailedAndInspectedHere(
    run: (
      of: (instanceId: string) => StatusUpdateInput[],
      restart: (meanwhile: () => void) => Promise<void>,
    ) => Promise<void>,
  ): Promise<void> {
    engine.clockOffsetMs = -30_000;
    const ingest = await acceptingIngest();
    const watcherOpts = { answerTimeoutMs: 600, probeAfterMs: 300 };
    let pusher = new StatusPusher({ url: ingest.url, apiKey: 'k', log, lingerMs: 0 });
    const stuck = engine.add({ name: 'app-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    let w = watcherFor(pusher, engine.socketPath, watcherOpts);
    const of = (instanceId: string) => ingest.received.filter((u) => u.instanceId === instanceId);
    const restart = async (meanwhile: () => void): Promise<void> => {
      await w.stop();
      await pusher.stop();
      await w.persist();
      meanwhile();
      pusher = new StatusPusher({ url: ingest.url, apiKey: 'k', log, lingerMs: 0 });
      w = watcherFor(pusher, engine.socketPath, watcherOpts);
      pusher.start();
      w.start();
      await until('following events again', () => w.stats.connected);
    };
    pusher.start();
    w.start();
    let release = (): void => undefined;
    try {
      await until('app-1 reported', () => of('app-1').length === 1 && w.stats.connected);
      // (`logs` is kept across tests: only a line logged from here on counts.)
      const seen = logs.length;
      release = engine.hold((path) => path.startsWith(`/containers/${stuck}/json`));
      engine.act('app-1', 'die', { exitCode: 3 });
      await until('the inspect given up', () =>
        logs.slice(seen).some((l) => /no answer twice, the engine answering pings/.test(l)),
      );
      release();
      await until('app-1 failed, inspected again', () => of('app-1').some((u) => u.status === 'failed'));
      await run(of, restart);
    } finally {
      release();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await ingest.close();
    }
  }
  const datesOf = (updates: StatusUpdateInput[]) => updates.map((u) => Date.parse(u.occurredAt as string));

  it('a state inspected again in the background (dated here), then an event dated by an engine 30 s behind: the event comes after', async () => {
    await withAppFailedAndInspectedHere(async (of) => {
      // Started again: the event is dated by the engine's clock, 30 s behind this host's. Dated so, it came before the
      // failure and the aggregator (which keeps the newest) ignored it: app-1 read failed while it ran.
      engine.act('app-1', 'start');
      await until('app-1 running again', () => of('app-1').filter((u) => u.status === 'running').length === 2);
      expect(of('app-1').map((u) => u.status)).toEqual(['running', 'failed', 'running']);
      const [runningAt, failedAt, againAt] = datesOf(of('app-1'));
      expect(failedAt).toBeGreaterThan(runningAt as number);
      expect(againAt).toBeGreaterThan(failedAt as number);
    });
  });

  it('a restarted watcher dates its first update after the last one sent before (its ledger keeps that date)', async () => {
    await withAppFailedAndInspectedHere(async (of, restart) => {
      // Started again while no watcher ran: the resync dates that state by when it began, on the engine's clock 30 s
      // behind this host's. With no floor from the ledger it came before the failure (dated here) and the aggregator
      // ignored it: app-1 read failed while it ran, until its next change.
      await restart(() => engine.act('app-1', 'start', { quiet: true }));
      await until('app-1 running again', () => of('app-1').filter((u) => u.status === 'running').length === 2);
      expect(of('app-1').map((u) => u.status)).toEqual(['running', 'failed', 'running']);
      const [, failedAt, againAt] = datesOf(of('app-1'));
      expect(againAt).toBeGreaterThan(failedAt as number);
    });
  });

  it("a container recreated under the same name while no watcher ran (compose up): its first update comes after the old one's last", async () => {
    await withAppFailedAndInspectedHere(async (of, restart) => {
      // Recreated while no watcher ran (docker compose up with a new image): the old container removed, a new one (a
      // new id) under its name. The resync dates the new one's state by when it began, on the engine's clock 30 s
      // behind this host's; the floor was kept per container id (the old one's forgotten, the new one has none), so
      // it came before the old one's failure (dated here) and the aggregator ignored it: app-1 read failed while it ran.
      let recreated = '';
      await restart(() => {
        engine.act('app-1', 'destroy', { quiet: true });
        recreated = engine.add({ name: 'app-1', labels: { 'fleetwatch.watch': 'true' }, running: true, quiet: true });
      });
      await until('the new app-1 reported', () => of('app-1').filter((u) => u.status === 'running').length === 2);
      // The events stream replays from just before the listing: the old container's destroy comes after the new one's
      // state. Not reported: app-1 is the new container now, and that removal (dated after the instance's last update)
      // would end it.
      await new Promise((r) => setTimeout(r, 500));
      expect(of('app-1').map((u) => u.status)).toEqual(['running', 'failed', 'running']);
      expect(of('app-1')[2]).toMatchObject({ metadata: { containerId: recreated } });
      const [, failedAt, againAt] = datesOf(of('app-1'));
      expect(againAt).toBeGreaterThan(failedAt as number);
    });
  });

  it("a renamed container's old name is reported gone after its last state (the rename event dated by the engine)", async () => {
    await withAppFailedAndInspectedHere(async (of) => {
      // Renamed: the event is dated by the engine's clock, 30 s behind. Dated so, the old name's end came before its
      // failure and the aggregator ignored it.
      engine.act('app-1', 'rename', { name: 'app-2' });
      await until('app-2 reported', () => of('app-2').length === 1);
      expect(of('app-1').map((u) => u.status)).toEqual(['running', 'failed', 'removed']);
      const [, failedAt, goneAt] = datesOf(of('app-1'));
      expect(goneAt).toBeGreaterThan(failedAt as number);
    });
  });
});

describe('a removal and another container known under its name', () => {
  it('a container destroyed while a renamed one whose inspect hangs is still known under its old name: reported removed', async () => {
    const ingest = await acceptingIngest();
    const pusher = new StatusPusher({ url: ingest.url, apiKey: 'k', log, refreshMs: 60_000, lingerMs: 0 });
    const old = engine.add({ name: 'app-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
    const w = watcherFor(pusher, engine.socketPath, { answerTimeoutMs: 600, probeAfterMs: 300 });
    const of = (instanceId: string) => ingest.received.filter((u) => u.instanceId === instanceId);
    pusher.start();
    w.start();
    let release = (): void => undefined;
    try {
      await until('app-1 reported', () => of('app-1').length === 1 && w.stats.connected);
      const seen = logs.length;
      // Renamed while dockerd is stuck on its lock: its inspect hangs, so the watcher still knows it as app-1.
      release = engine.hold((path) => path.startsWith(`/containers/${old}/json`));
      engine.act('app-1', 'rename', { name: 'app-1-old' });
      await until('the inspect given up', () =>
        logs.slice(seen).some((l) => /no answer twice, the engine answering pings/.test(l)),
      );
      // A new container takes the name (compose up), runs, and is destroyed.
      engine.add({ name: 'app-1', labels: { 'fleetwatch.watch': 'true' }, running: true });
      await until('the new app-1 reported', () => of('app-1').filter((u) => u.status === 'running').length === 2);
      engine.act('app-1', 'destroy');
      // Before: skipped as the replayed destroy of a container replaced under the name (the stuck one was known under
      // it), so app-1 was refreshed as running for as long as that container's inspect hung — no container had it.
      await until('app-1 reported removed', () => of('app-1').some((u) => u.status === 'removed'), 3_000);
      await pusher.drained();
      expect(pusher.refreshDue(Date.now() + 61_000)).toBe(1); // web-1 alone
    } finally {
      release();
      await w.stop();
      await pusher.stop();
      await w.persist();
      await ingest.close();
    }
  });
});
