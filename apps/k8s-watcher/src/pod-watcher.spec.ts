import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusUpdateInputSchema, type StatusUpdateInput } from '@fleetwatch/contracts';
import { StatusPusher, type PushLog } from '@fleetwatch/pusher';
import { loadKubeConfig } from './kube-api';
import { PodWatcher, type PodWatcherOptions } from './pod-watcher';
import { KubeApiStandin, podFixtures } from './standin/kube-api.standin';

// The watcher in process: @kubernetes/client-node's informer against the Kubernetes API
// stand-in over loopback HTTP (bearer token from a kubeconfig), pushing through the real
// StatusPusher to a loopback endpoint that answers 202 as status-ingest does and keeps
// what it got. The built daemon end to end: tests/e2e/k8s-watcher.int-spec.ts.

const TOKEN = 'unit-token';
let kube: KubeApiStandin;
let ingest: Server;
let ingestUrl: string;
const received: StatusUpdateInput[] = [];
const invalid: unknown[] = [];
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const log: PushLog = {
  info: (msg, fields) => logs.push({ level: 'info', msg, fields }),
  warn: (msg, fields) => logs.push({ level: 'warn', msg, fields }),
  error: (msg, fields) => logs.push({ level: 'error', msg, fields }),
};
/** The delays of the watcher's retries so far, in order (its `retrying` warn lines). */
const retryDelays = () =>
  logs.filter((l) => l.level === 'warn' && /retrying/.test(l.msg)).map((l) => l.fields?.['delayMs'] as number);
let watcher: PodWatcher | null = null;
/** The ingest stand-in answers 503 while set (nothing is accepted). */
let ingestDown = false;
let pusher: StatusPusher | null = null;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}\n${JSON.stringify(logs.slice(-20))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const statusesOf = (instanceId: string) => received.filter((u) => u.instanceId === instanceId).map((u) => u.status);
const lastStatus = (instanceId: string) => statusesOf(instanceId).at(-1);
const on = { fleetwatch: 'on' };

beforeAll(async () => {
  ingest = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (ingestDown) return void res.writeHead(503, { 'retry-after': '1' }).end('{}');
      const body = JSON.parse(raw) as { updates?: unknown[] };
      for (const u of body.updates ?? [body]) {
        const parsed = statusUpdateInputSchema.safeParse(u);
        if (parsed.success) received.push(u as StatusUpdateInput);
        else invalid.push(u);
      }
      res.writeHead(202, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => ingest.listen(0, '127.0.0.1', r));
  ingestUrl = `http://127.0.0.1:${(ingest.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => ingest.close(r)));

beforeEach(async () => {
  ingestDown = false;
  received.length = 0;
  invalid.length = 0;
  logs.length = 0;
  kube = new KubeApiStandin(TOKEN);
  await kube.start();
});

afterEach(async () => {
  await watcher?.stop();
  await pusher?.stop(2000);
  watcher = pusher = null;
  await kube.stop();
  expect(invalid).toEqual([]);
  expect(kube.calls.unauthorized).toBe(0);
});

/** `refreshMs`: the pusher reports each pod's state again this often while the watcher is connected, as main.ts does. */
function startWatcher(opts: Partial<PodWatcherOptions> = {}, refreshMs = 0): PodWatcher {
  const dir = mkdtempSync(join(tmpdir(), 'kw-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    `apiVersion: v1\nkind: Config\ncurrent-context: s\nclusters:\n- name: s\n  cluster:\n    server: ${kube.url}\ncontexts:\n- name: s\n  context:\n    cluster: s\n    user: u\nusers:\n- name: u\n  user:\n    token: ${TOKEN}\n`,
  );
  pusher = new StatusPusher({
    url: ingestUrl,
    apiKey: 'k',
    log,
    baseDelayMs: 50,
    maxDelayMs: 200,
    refreshMs,
    refreshWhile: () => watcher?.stats.connected === true,
  });
  watcher = new PodWatcher(
    loadKubeConfig({ KUBECONFIG: path }).kc,
    pusher,
    {
      namespace: 'shop',
      labelSelector: 'fleetwatch=on',
      instancePrefix: '',
      source: 'unit',
      maxAgeMs: 3_600_000,
      resyncMs: 0,
      listPageSize: 2,
      reconnectBaseMs: 50,
      reconnectMaxMs: 200,
      watchTimeoutSeconds: 300,
      probeAfterMs: 30_000,
      answerTimeoutMs: 10_000,
      ...opts,
    },
    log,
  );
  pusher.start();
  watcher.start();
  return watcher;
}

describe('PodWatcher (client-node informer against the stand-in)', () => {
  it('lists, then watches with bookmarks asked; a bookmark moves the version a resumed watch starts from', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    kube.add(podFixtures.running('web-c', 'shop', on));
    kube.add(podFixtures.running('skip', 'shop', { app: 'x' }));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1);
    await until('three pods reported', () => ['web-a', 'web-b', 'web-c'].every((n) => lastStatus(`shop/${n}`)));
    expect(lastStatus('shop/skip')).toBeUndefined();
    expect(kube.calls.list).toBe(2); // pages of two
    const q = kube.lastWatchQuery as URLSearchParams;
    expect(q.get('watch')).toBe('true');
    expect(q.get('allowWatchBookmarks')).toBe('true');
    expect(q.get('labelSelector')).toBe('fleetwatch=on');
    expect(q.get('resourceVersion')).toBe('1004');

    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('web-a crash seen', () => lastStatus('shop/web-a') === 'crashloopbackoff');
    kube.add(podFixtures.running('skip-2', 'shop', { app: 'x' })); // not selected: only a bookmark tells
    const rv = kube.bookmark();
    const watches = kube.calls.watch;
    await until('the bookmark reached the informer', () => w.resourceVersion === rv);
    kube.dropWatches();
    await until('watch resumed', () => kube.calls.watch > watches && kube.openWatches === 1);
    expect(kube.lastWatchQuery?.get('resourceVersion')).toBe(rv);
    expect(kube.calls.list).toBe(2);
    expect(w.stats).toMatchObject({ relists: 1, gone: 0, connected: true });
  });

  it('410 Gone, as an HTTP status or as an ERROR event, relists and catches what the watch missed', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-b').length === 1);

    kube.goneAs = 'status';
    kube.update('shop', 'web-b', (p) => podFixtures.notReady(p), true);
    kube.compact(false);
    kube.dropWatches();
    await until('relist after an HTTP 410', () => w.stats.gone === 1 && w.stats.relists === 2);
    await until('web-b not ready seen', () => statusesOf('shop/web-b').length === 2);

    kube.goneAs = 'event';
    kube.remove('shop', 'web-a', true);
    kube.add(podFixtures.running('web-c', 'shop', on), true);
    await until('a watch is open', () => kube.openWatches === 1);
    kube.compact();
    await until('relist after a 410 ERROR event', () => w.stats.gone === 2 && w.stats.relists === 3);
    await until('web-a deleted, web-c seen', () => !!lastStatus('shop/web-c') && statusesOf('shop/web-a').length === 2);
    expect(lastStatus('shop/web-a')).toBe('removed');
    await until('watching again', () => kube.openWatches === 1);
    await until('all sent', () => pusher?.pending === 0);
    // Every state once: the relists re-sent nothing already sent.
    const ids = received.map((u) => u.updateId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('a pod replaced under the same name while the watch was gone (410) stays as listed: its old uid is not reported removed', async () => {
    kube.add(podFixtures.running('web-0', 'shop', on));
    kube.add(podFixtures.running('gone-0', 'shop', on));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/gone-0').length === 1);
    // A StatefulSet replaces web-0 (same name, new uid) and gone-0 is deleted, all while the watch misses it.
    kube.remove('shop', 'web-0', true);
    kube.add(podFixtures.running('web-0', 'shop', on), true);
    kube.remove('shop', 'gone-0', true);
    kube.compact();
    await until('relist after the 410', () => w.stats.gone === 1 && w.stats.relists === 2);
    await until('gone-0 reported removed', () => lastStatus('shop/gone-0') === 'removed');
    await until('all sent', () => pusher?.pending === 0);
    // The instance is the pod listed under its name: running, not 'removed' by the removal of the uid it replaced.
    expect(lastStatus('shop/web-0')).toBe('running');
    expect(statusesOf('shop/web-0')).toEqual(['running', 'running']);
  });

  it('an API error stops the informer: it starts again after a backoff and resumes without a relist', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1);
    kube.failNext(3);
    kube.dropWatches();
    await until('three failures, then a watch again', () => kube.calls.failed === 3 && kube.openWatches === 1);
    expect(w.stats.reconnects).toBe(3);
    expect(kube.calls.list).toBe(1);
    expect(logs.filter((l) => l.level === 'warn' && /retrying/.test(l.msg))).toHaveLength(3);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('a change after the restart arrives', () => lastStatus('shop/web-a') === 'crashloopbackoff');
  });

  it('a watch answered with an ERROR event other than 410 (a 504 "Too large resource version", a 500) is retried after a backoff, not at once from the same version', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    const w = startWatcher({ reconnectBaseMs: 100, reconnectMaxMs: 200 });
    await until('a watch is open', () => kube.openWatches === 1);
    kube.watchError = { code: 504, reason: 'Timeout', message: 'Too large resource version: 99999, current: 1001' };
    const before = kube.calls.watch;
    kube.dropWatches();
    await new Promise((r) => setTimeout(r, 1_000));
    // Before, the informer took the stream's end for a normal one: ~700 watch requests a second, no backoff, no log.
    expect(kube.calls.watch - before).toBeLessThan(15);
    expect(w.stats.reconnects).toBeGreaterThan(0);
    expect(logs.some((l) => l.level === 'warn' && /retrying/.test(l.msg))).toBe(true);
    kube.watchError = null;
    await until('watching again', () => kube.openWatches === 1);
    expect(kube.lastWatchQuery?.get('resourceVersion')).toBe('1001'); // resumed from its version: no relist
    expect(kube.calls.list).toBe(1);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('a change after the errors arrives', () => lastStatus('shop/web-a') === 'crashloopbackoff');
  });

  it('a 429 from the API server (priority and fairness) is retried after its Retry-After, not the own backoff', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.throttleNext(1, 1);
    const started = Date.now();
    const w = startWatcher({ reconnectBaseMs: 50, reconnectMaxMs: 1_000 });
    await until('listed after the 429', () => lastStatus('shop/web-a') === 'running' && kube.openWatches === 1);
    expect(kube.calls.throttled).toBe(1);
    expect(w.stats.reconnects).toBe(1);
    // Before, the backoff's first delay (under 50 ms here) whatever the server asked for.
    expect(retryDelays()[0]).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it('a Retry-After shorter than the backoff (a 429 answered again and again) does not stop the backoff growing', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    // The max-inflight filter's constant `Retry-After: 1`, scaled down: 0 s (a past HTTP date reads the same).
    kube.throttleNext(5, 0);
    jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      startWatcher({ reconnectBaseMs: 20, reconnectMaxMs: 100_000 });
      await until('listed after the 429s', () => lastStatus('shop/web-a') === 'running' && kube.openWatches === 1);
      expect(kube.calls.throttled).toBe(5);
      // The fifth retry waits the backoff's 20 ms × 2⁴. Before, every retry waited the Retry-After plus under 20 ms.
      expect(retryDelays()).toHaveLength(5);
      expect(retryDelays().at(-1)).toBeGreaterThanOrEqual(300);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('the backoff starts over once a watch was answered and ended as the server ends it, though no pod changed', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    // The delay's ceiling, not a jittered fraction of it: 20 ms, doubling per attempt.
    jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      const w = startWatcher({ reconnectBaseMs: 20, reconnectMaxMs: 100_000, probeAfterMs: 300 });
      await until('a watch is open', () => kube.openWatches === 1);
      kube.failNext(5);
      kube.dropWatches();
      await until('five failures, then a watch again', () => kube.calls.failed === 5 && kube.openWatches === 1);
      expect(retryDelays().at(-1)).toBeGreaterThanOrEqual(300); // the fifth: 20 ms × 2⁴
      // A watch answered and dropped at once (a proxy closing it) is no sign of health: the backoff goes on growing,
      // else such a server would be asked again at the first delay for ever.
      kube.failNext(1);
      kube.dropWatches();
      await until('the sixth failure, then a watch again', () => kube.calls.failed === 6 && kube.openWatches === 1);
      expect(retryDelays().at(-1)).toBeGreaterThanOrEqual(600); // the sixth: 20 ms × 2⁵
      // That watch serves a probe period until the server ends it: the next outage starts from the first delay again.
      // Before, only a list or a pod's change reset the backoff: this retry waited 1,280 ms, and the next ones longer.
      const opened = Date.now();
      await until('the watch open a probe period', () => Date.now() - opened >= 400);
      kube.failNext(1);
      kube.dropWatches();
      await until('the seventh failure, then a watch again', () => kube.calls.failed === 7 && kube.openWatches === 1);
      expect(w.stats.reconnects).toBe(7);
      expect(retryDelays().at(-1)).toBeLessThan(40);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('a watch the server keeps ending with an ERROR event does not flicker connected (no refreshes) until it delivers again', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    const w = startWatcher({ reconnectBaseMs: 50, reconnectMaxMs: 100 });
    await until('connected', () => kube.openWatches === 1 && w.stats.connected);
    // Every assignment of `connected` from here on.
    const set: boolean[] = [];
    let value = w.stats.connected;
    Object.defineProperty(w.stats, 'connected', {
      get: () => value,
      set: (v: boolean) => set.push((value = v)),
      enumerable: true,
      configurable: true,
    });
    kube.watchError = { code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' };
    kube.dropWatches();
    await until('several watches ended by the ERROR', () => w.stats.reconnects >= 4);
    // Before, each watch answered after the first ERROR set it true until its own ERROR event set it false again.
    expect(set.indexOf(false)).toBeGreaterThanOrEqual(0);
    expect(set.slice(set.indexOf(false))).not.toContain(true);
    expect(value).toBe(false);
    kube.watchError = null;
    await until('watching again', () => kube.openWatches === 1);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('connected once the watch delivers', () => value);
  });

  it('a watch answered again after ERROR events is connected once open a probe period without one, though no pod changes', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    const w = startWatcher({ reconnectBaseMs: 50, reconnectMaxMs: 100, probeAfterMs: 300, answerTimeoutMs: 300 });
    await until('connected', () => kube.openWatches === 1 && w.stats.connected);
    // A probe: the liveness check has seen the watch's version (a version it has not seen yet connects by itself).
    const lists = kube.calls.list;
    await until('probed', () => kube.calls.list > lists);
    kube.watchError = { code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' };
    kube.dropWatches();
    await until('watches ended by the ERROR', () => w.stats.reconnects >= 2 && !w.stats.connected);
    kube.watchError = null;
    await until('watching again', () => kube.openWatches === 1);
    const events = w.stats.events;
    // Before, not connected (no refreshes) until an event, a bookmark or the watch's timeout (300 s here): probes
    // answered meanwhile do not count.
    await until('connected with no event', () => w.stats.connected, 5_000);
    expect(w.stats.events).toBe(events);
  });

  it('a watch ERROR event, then its version compacted away meanwhile: the resumed watch is refused 410 and relists', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    const w = startWatcher({ reconnectBaseMs: 100, reconnectMaxMs: 200 });
    await until('a watch is open', () => kube.openWatches === 1 && received.length === 2);
    kube.watchError = { code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' };
    kube.dropWatches();
    await until('retried after the ERROR', () => w.stats.reconnects >= 2);
    kube.remove('shop', 'web-b', true);
    kube.compact(false);
    kube.watchError = null;
    await until('relisted after the 410', () => w.stats.gone === 1 && w.stats.relists === 2 && kube.openWatches === 1);
    await until('web-b reported removed', () => lastStatus('shop/web-b') === 'removed');
    expect(lastStatus('shop/web-a')).toBe('running');
    expect(kube.calls.list).toBe(2);
  });

  it('a list is reported page by page as it comes (whole pods of every page are not held until the last)', async () => {
    for (const n of ['web-a', 'web-b', 'web-c', 'web-d', 'web-e']) kube.add(podFixtures.running(n, 'shop', on));
    kube.holdNextPages = true;
    const w = startWatcher({ listPageSize: 2 });
    // The second page never comes: the first page's pods are reported (and pruned) all the same.
    await until('the first page reported', () => received.length === 2, 5_000);
    expect(kube.unansweredRequests).toBe(1);
    expect(w.stats).toMatchObject({ relists: 0, connected: false });
    expect(kube.openWatches).toBe(0);
  });

  it("a relist cut off after its first page reports no pod removed (nor the later pages' pods); once whole, only the pod gone", async () => {
    for (const n of ['web-a', 'web-b', 'web-c', 'web-d', 'web-e']) kube.add(podFixtures.running(n, 'shop', on));
    const w = startWatcher({ listPageSize: 2, listTimeoutMs: 300 });
    await until('a watch is open', () => kube.openWatches === 1 && received.length === 5);
    // web-e deleted while the watch misses it; the 410 relist's later pages never answered (a timeout, as an expired
    // continue token or a dropped connection would end it): retried from the first page after the backoff.
    kube.remove('shop', 'web-e', true);
    kube.holdNextPages = true;
    kube.compact();
    await until('the relist cut off twice', () => w.stats.gone === 1 && w.stats.reconnects >= 2, 10_000);
    expect(received.filter((u) => u.status === 'removed')).toEqual([]);
    expect(w.stats.relists).toBe(1);
    kube.holdNextPages = false;
    await until('the relist done', () => w.stats.relists === 2 && kube.openWatches === 1);
    await until('all sent', () => pusher?.pending === 0);
    expect(received.filter((u) => u.status === 'removed').map((u) => u.instanceId)).toEqual(['shop/web-e']);
    for (const n of ['web-a', 'web-b', 'web-c', 'web-d']) expect(lastStatus(`shop/${n}`)).toBe('running');
  });

  it('an API that fails from the start is retried until the list succeeds', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.failNext(2);
    const w = startWatcher();
    await until('listed after the failures', () => lastStatus('shop/web-a') === 'running' && kube.openWatches === 1);
    expect(w.stats).toMatchObject({ relists: 1, gone: 0, reconnects: 2 });
  });

  it('an API server that stops answering (wedged) is found within the probe deadline: refreshes stop, and start again once it answers', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    // Quick deadlines: a watch silent for 300 ms is probed; a probe or list page unanswered in 300 ms has failed.
    const w = startWatcher({ probeAfterMs: 300, answerTimeoutMs: 300, listTimeoutMs: 300 }, 200);
    const refreshes = () => statusesOf('shop/web-a').length;
    await until('watching, and web-a refreshed', () => kube.openWatches === 1 && refreshes() >= 3);
    // Quiet for longer than the probe deadline: the probes (lists of one pod) were answered, so still connected.
    const lists = kube.calls.list;
    await new Promise((r) => setTimeout(r, 700));
    expect(kube.calls.list).toBeGreaterThan(lists);
    expect(w.stats).toMatchObject({ connected: true, reconnects: 0 });

    const relists = w.stats.relists;
    const unwedge = kube.wedge();
    const wedgedAt = Date.now();
    // The open watch says nothing more and every request hangs: before, CONNECT (fired before the list and the watch
    // request, whatever came of them) kept `connected` true, and web-a was refreshed as running for ever.
    await until('not connected', () => !w.stats.connected, 3_000);
    expect(Date.now() - wedgedAt).toBeLessThan(2_000); // 300 ms of silence, 300 ms of probe, the 75 ms tick, slack
    expect(logs.some((l) => l.level === 'warn' && /not answering/.test(l.msg))).toBe(true);
    await until('what was in flight delivered', () => pusher?.pending === 0);
    const sent = refreshes();
    // Restarted (a relist) after the backoff, again and again while wedged: never connected, never refreshed.
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
    await until('relisted and watching again', () => w.stats.relists > relists && w.stats.connected);
    await until('a watch open', () => kube.openWatches === 1);
    await until('refreshed again', () => refreshes() > sent);
    expect(lastStatus('shop/web-a')).toBe('running');
    // Every request the wedged server left unanswered was given up by the watcher (none held open for ever).
    await until('no request left hanging', () => kube.unansweredRequests === 0, 3_000);
  });

  it('a probe left unanswered once (an overloaded API server, slow not gone) stops refreshes; then the watch is asked for again from its version: no relist', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    // After an unanswered probe the next waits the answer timeout: 600 ms to let the lists through again.
    const w = startWatcher({ probeAfterMs: 300, answerTimeoutMs: 600, listTimeoutMs: 600 }, 200);
    const refreshes = () => statusesOf('shop/web-a').length;
    await until('watching, and web-a refreshed', () => kube.openWatches === 1 && refreshes() >= 2);
    const relists = w.stats.relists;
    const reconnects = w.stats.reconnects;
    const watches = kube.calls.watch;
    // Lists (the probes) unanswered for a moment, the watch open and well.
    const unwedge = kube.wedge('list');
    await until('not connected', () => !w.stats.connected, 3_000);
    unwedge();
    await until('connected again', () => w.stats.connected, 3_000);
    // Before: the first unanswered probe relisted the whole namespace, on a server already too slow to answer it.
    expect(w.stats.relists).toBe(relists);
    expect(w.stats.reconnects).toBe(reconnects);
    // The watch open while the server did not answer may have died unseen: asked for again from its version (one watch
    // request, no list) — connected once that one answered, not on the probe's word.
    expect(kube.calls.watch).toBe(watches + 1);
    await until('the old watch closed', () => kube.openWatches === 1);
    expect(logs.some((l) => /asking for the watch again from its version/.test(l.msg))).toBe(true);
    const sent = refreshes();
    await until('refreshed again', () => refreshes() > sent);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('a change arrives over the same watch', () => lastStatus('shop/web-a') === 'crashloopbackoff');
    await until('no request left hanging', () => kube.unansweredRequests === 0, 3_000);
  });

  it('a watch that outlives its timeout (its end lost: a half-open connection), or a watch request left unanswered, is not taken for a watch', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    // Lists (and probes) are answered throughout: only the watch is gone.
    const w = startWatcher({ watchTimeoutSeconds: 1, probeAfterMs: 300, answerTimeoutMs: 300 });
    await until('a watch is open', () => kube.openWatches === 1 && w.stats.connected);
    const relists = w.stats.relists;
    const unwedge = kube.wedge('watch');
    // The open watch gets nothing, and its end at 1 s never comes, while the probes are answered: before, it was
    // taken for a watch for ever (events lost, pods refreshed as last seen).
    await until('the watch given up', () => logs.some((l) => /outlived its timeout/.test(l.msg)), 4_000);
    await until('relisted', () => w.stats.relists > relists);
    // The relist was answered; the watch requests after it never are: each is given up at the probe timeout.
    const retries = () => logs.filter((l) => l.level === 'warn' && /retrying/.test(l.msg)).length;
    await until('watch requests given up', () => retries() >= 2, 4_000);
    expect(w.stats.connected).toBe(false);
    expect(kube.openWatches).toBe(0);

    unwedge();
    await until('watching again', () => kube.openWatches === 1 && w.stats.connected);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('a change arrives', () => lastStatus('shop/web-a') === 'crashloopbackoff');
    await until('no request left hanging', () => kube.unansweredRequests === 0, 3_000);
  });

  it('a pod that stays terminating past its grace period is reported stopped when the minute after it runs out, with no event', async () => {
    kube.add(podFixtures.running('web-0', 'shop', on));
    kube.add(podFixtures.running('web-1', 'shop', on));
    startWatcher();
    await until('both running', () => lastStatus('shop/web-0') === 'running' && lastStatus('shop/web-1') === 'running');
    // Deleted on a node out of reach: nothing confirms the end, so nothing changes once the grace period is over. The
    // grace ended 58 s ago (deletionTimestamp): stuck a minute after it, in 2 s. web-1 is deleted for good before that.
    const graceEnd = new Date(Date.now() - 58_000).toISOString();
    kube.update('shop', 'web-0', (p) => void (p.metadata.deletionTimestamp = graceEnd));
    kube.update('shop', 'web-1', (p) => void (p.metadata.deletionTimestamp = graceEnd));
    await until(
      'both stopping',
      () => lastStatus('shop/web-0') === 'stopping' && lastStatus('shop/web-1') === 'stopping',
    );
    kube.remove('shop', 'web-1');
    await until('web-1 removed', () => lastStatus('shop/web-1') === 'removed');
    await until('web-0 stuck', () => lastStatus('shop/web-0') === 'stopped', 6_000);
    const stuck = received.filter((u) => u.instanceId === 'shop/web-0').at(-1);
    expect(stuck?.message).toBe(`stuck terminating: its grace period ended at ${graceEnd}`);
    await new Promise((r) => setTimeout(r, 300));
    expect(statusesOf('shop/web-0')).toEqual(['running', 'stopping', 'stopped']);
    expect(statusesOf('shop/web-1')).toEqual(['running', 'stopping', 'removed']); // its timer went with it
  });

  it('the resync period relists: a deletion nobody watched is reported, unchanged pods are not sent again', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    const w = startWatcher({ resyncMs: 300 });
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-b').length === 1);
    kube.remove('shop', 'web-b', true);
    await until('resync reported web-b gone', () => lastStatus('shop/web-b') === 'removed');
    await until('more resyncs', () => w.stats.relists >= 3);
    await until('all sent', () => pusher?.pending === 0);
    expect(statusesOf('shop/web-a')).toEqual(['running']);
    expect(statusesOf('shop/web-b')).toEqual(['running', 'removed']);
    await w.stop();
    await until('no watch left open', () => kube.openWatches === 0);
  });
});

describe("a pod's updates are dated in the order they are sent", () => {
  const dated = (instanceId: string) =>
    received.filter((u) => u.instanceId === instanceId).map((u) => Date.parse(u.occurredAt as string));

  it('a state a relist finds, its transitions dated by a kubelet clock a second behind, is dated after the event before it', async () => {
    kube.add(podFixtures.running('web-a', 'shop', on, new Date(Date.now() - 60_000).toISOString()));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-a').length === 1);
    // A crash the watch tells: dated by its receipt here.
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('the crash seen', () => statusesOf('shop/web-a').length === 2);
    const crashAt = dated('shop/web-a')[1] as number;
    // Its recovery, missed by the watch (410): the pod's times, from a clock a second behind, are before the crash's
    // receipt. Dated so, the aggregator (which keeps the newest) would ignore it: web-a DOWN until its next change.
    kube.update('shop', 'web-a', (p) => podFixtures.recovered(p, new Date(crashAt - 1000).toISOString()), true);
    kube.compact();
    await until('relist after the 410', () => w.stats.gone === 1 && w.stats.relists === 2);
    await until('the recovery seen', () => statusesOf('shop/web-a').length === 3);
    expect(statusesOf('shop/web-a')).toEqual(['running', 'crashloopbackoff', 'running']);
    const [first, crash, recovery] = dated('shop/web-a') as [number, number, number];
    expect(crash).toBeGreaterThan(first);
    expect(recovery).toBeGreaterThan(crash);
  });

  it('a restarted watcher dates a pod after what the run before sent (the state file keeps it)', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    kube.add(podFixtures.running('web-a', 'shop', on, new Date(Date.now() - 60_000).toISOString()));
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-a').length === 1);
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p));
    await until('the crash accepted', () => statusesOf('shop/web-a').length === 2 && pusher?.pending === 0);
    const crashAt = dated('shop/web-a')[1] as number;
    const w = watcher as PodWatcher;
    await w.stop();
    await pusher?.stop(2000);
    await w.persist();
    watcher = pusher = null;
    // Recovered while no watcher ran, by a clock a second behind this host's.
    kube.update('shop', 'web-a', (p) => podFixtures.recovered(p, new Date(crashAt - 1000).toISOString()), true);
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('the recovery seen', () => statusesOf('shop/web-a').length === 3);
    expect(dated('shop/web-a')[2]).toBeGreaterThan(crashAt);
  });

  it("a StatefulSet's pod recreated under its name (a new uid) while the watch was gone (410): dated after the old pod's last", async () => {
    kube.add(podFixtures.running('web-0', 'shop', on, new Date(Date.now() - 60_000).toISOString()));
    const w = startWatcher();
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-0').length === 1);
    kube.update('shop', 'web-0', (p) => podFixtures.crashLoop(p));
    await until('the crash seen', () => statusesOf('shop/web-0').length === 2);
    const crashAt = dated('shop/web-0')[1] as number;
    // Deleted and recreated by its StatefulSet (same name, a new uid), missed by the watch (410): the new pod's times,
    // from a clock a second behind, are before the crash's receipt. The floor was kept per uid (the new one has none),
    // so it was dated before the crash and the aggregator (which keeps the newest) ignored it: web-0 DOWN while it ran.
    kube.remove('shop', 'web-0', true);
    const recreated = kube.add(podFixtures.running('web-0', 'shop', on, new Date(crashAt - 1000).toISOString()), true);
    kube.compact();
    await until('relist after the 410', () => w.stats.gone === 1 && w.stats.relists === 2);
    await until('the new pod seen', () => statusesOf('shop/web-0').length === 3);
    expect(statusesOf('shop/web-0')).toEqual(['running', 'crashloopbackoff', 'running']);
    expect(received.filter((u) => u.instanceId === 'shop/web-0')[2]).toMatchObject({
      metadata: { uid: recreated.metadata.uid },
    });
    expect(dated('shop/web-0')[2]).toBeGreaterThan(crashAt);
  });

  it("a StatefulSet's pod recreated under its name while no watcher ran: dated after the old pod's last (the state file keeps it)", async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    kube.add(podFixtures.running('web-0', 'shop', on, new Date(Date.now() - 60_000).toISOString()));
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('a watch is open', () => kube.openWatches === 1 && statusesOf('shop/web-0').length === 1);
    kube.update('shop', 'web-0', (p) => podFixtures.crashLoop(p));
    await until('the crash accepted', () => statusesOf('shop/web-0').length === 2 && pusher?.pending === 0);
    const crashAt = dated('shop/web-0')[1] as number;
    const w = watcher as PodWatcher;
    await w.stop();
    await pusher?.stop(2000);
    await w.persist();
    watcher = pusher = null;
    // Recreated while no watcher ran (a new uid), its times from a clock a second behind this host's.
    kube.remove('shop', 'web-0', true);
    kube.add(podFixtures.running('web-0', 'shop', on, new Date(crashAt - 1000).toISOString()), true);
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('the new pod seen', () => statusesOf('shop/web-0').length === 3);
    expect(statusesOf('shop/web-0')).toEqual(['running', 'crashloopbackoff', 'running']);
    expect(dated('shop/web-0')[2]).toBeGreaterThan(crashAt);
  });

  it('a state file whose dates are ahead of this clock (stepped back since) does not date a pod beyond the ingest', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    kube.add(podFixtures.running('web-a', 'shop', on, new Date(Date.now() - 60_000).toISOString()));
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('web-a accepted', () => statusesOf('shop/web-a').length === 1 && pusher?.pending === 0);
    const w = watcher as PodWatcher;
    await w.stop();
    await pusher?.stop(2000);
    await w.persist();
    watcher = pusher = null;
    // Written while this host's clock ran an hour ahead (NTP has stepped it back since).
    const file = JSON.parse(readFileSync(stateFile, 'utf8')) as { pods: Record<string, { at?: number }> };
    for (const p of Object.values(file.pods)) p.at = Date.now() + 3_600_000;
    writeFileSync(stateFile, JSON.stringify(file));
    kube.update('shop', 'web-a', (p) => podFixtures.crashLoop(p), true);
    startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('the crash seen', () => statusesOf('shop/web-a').length === 2);
    // Dated an hour ahead (past the last date kept), the ingest (300 s allowance) would refuse it, and every later
    // update of the pod, until the clock caught up.
    expect(dated('shop/web-a')[1]).toBeLessThanOrEqual(Date.now() + 300_000);
  });
});

describe('PodWatcher restarted with its state file', () => {
  /** One run of the watcher: started, its pods reported and accepted, then stopped as the daemon stops it. */
  async function runOnce(stateFile: string | undefined, expected: string[]): Promise<PodWatcher> {
    const w = startWatcher({ stateFile, stateDebounceMs: 10 });
    await until('a watch is open', () => kube.openWatches === 1);
    await until('the pods reported', () => expected.every((n) => statusesOf(`shop/${n}`).length > 0));
    await until('all accepted', () => pusher?.pending === 0);
    return w;
  }
  async function stopAsTheDaemon(graceMs = 2000): Promise<void> {
    const w = watcher as PodWatcher;
    await w.stop();
    await pusher?.stop(graceMs);
    await w.persist();
    watcher = pusher = null;
  }
  /** web-a and web-b reported by a first run (with `stateFile`), then web-b deleted while no watcher runs. */
  async function webBDeletedWhileAway(stateFile: string | undefined): Promise<void> {
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    await runOnce(stateFile, ['web-a', 'web-b']);
    await stopAsTheDaemon();
    kube.remove('shop', 'web-b', true);
    received.length = 0;
  }

  it('reports the pods deleted while no watcher ran as removed (not one replaced under its name)', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    kube.add(podFixtures.running('web-a', 'shop', on));
    const gone = kube.add(podFixtures.running('web-b', 'shop', on));
    kube.add(podFixtures.running('web-c', 'shop', on));
    await runOnce(stateFile, ['web-a', 'web-b', 'web-c']);
    await stopAsTheDaemon();
    // While no watcher runs: web-b is deleted, web-c replaced under its name (a StatefulSet's pod: a new uid).
    kube.remove('shop', 'web-b', true);
    kube.remove('shop', 'web-c', true);
    kube.add(podFixtures.running('web-c', 'shop', on), true);
    received.length = 0;

    await runOnce(stateFile, ['web-a', 'web-b', 'web-c']);
    expect(lastStatus('shop/web-b')).toBe('removed');
    expect(statusesOf('shop/web-c')).not.toContain('removed');
    expect(lastStatus('shop/web-a')).toBe('running');
    // Its removal accepted, web-b is no longer in the file; the pods listed are.
    await (watcher as PodWatcher).persist();
    const file = JSON.parse(readFileSync(stateFile, 'utf8')) as {
      version: number;
      pods: Record<string, { name: string }>;
    };
    expect(file.version).toBe(1);
    expect(file.pods[gone.metadata.uid]).toBeUndefined();
    expect(
      Object.values(file.pods)
        .map((p) => p.name)
        .sort(),
    ).toEqual(['web-a', 'web-c']);
  });

  it('a pod whose removal the ingest had not accepted stays in the file: the restarted watcher reports it again', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    kube.add(podFixtures.running('web-a', 'shop', on));
    kube.add(podFixtures.running('web-b', 'shop', on));
    await runOnce(stateFile, ['web-a', 'web-b']);
    // The ingest stops accepting; web-b is deleted (the watch tells): its removal waits in the queue.
    ingestDown = true;
    kube.remove('shop', 'web-b');
    await until('the removal queued', () => (pusher?.pending ?? 0) > 0);
    await stopAsTheDaemon(100);
    ingestDown = false;
    received.length = 0;
    await runOnce(stateFile, ['web-a', 'web-b']);
    expect(lastStatus('shop/web-b')).toBe('removed');
  });

  it("another watcher's file (the prefix changed) is ignored, with a warning: nothing is reported removed", async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    await webBDeletedWhileAway(stateFile);
    const w = startWatcher({ stateFile, stateDebounceMs: 10, instancePrefix: 'c2/' });
    await until('the list reported', () => w.stats.relists === 1 && lastStatus('c2/shop/web-a') !== undefined);
    await until('all accepted', () => pusher?.pending === 0);
    expect(received.filter((u) => u.status === 'removed')).toEqual([]);
    expect(
      logs.some((l) => l.msg === 'watcher state file written by a watcher of something else: starting without it'),
    ).toBe(true);
  });

  it('without a state file, a restarted watcher cannot know them: nothing is reported removed', async () => {
    await webBDeletedWhileAway(undefined);
    const w = await runOnce(undefined, ['web-a']);
    expect(w.stats.relists).toBe(1);
    expect(statusesOf('shop/web-b')).toEqual([]);
  });

  it('a file of the wrong shape is ignored, with a warning', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'kw-state-')), 'state.json');
    writeFileSync(stateFile, JSON.stringify({ version: 1, pods: { x: { name: 42 } } }));
    kube.add(podFixtures.running('web-a', 'shop', on));
    await runOnce(stateFile, ['web-a']);
    expect(
      logs.some((l) => l.level === 'warn' && l.msg === 'watcher state file not understood: starting without it'),
    ).toBe(true);
  });
});
