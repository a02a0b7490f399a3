import type { TargetView, WsServerMessage } from '@fleetwatch/contracts';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config';
import type { TargetsService } from '../targets/targets.service';
import { socketOpener } from './ws-hub.spec-helpers';
import { WsHub } from './ws-hub.service';

// A subscription's first view is read for its socket; a view the replica had not sent goes to every socket watching.
// Reads overlap: a slow subscribe can finish after a later read (another subscribe, the poll, a status change) that
// saw a newer result and sent it to all. Its older view must not then go to all of them too: every page watching
// would step back to the previous result (a DOWN shown UP again) until the next poll.

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function hubWith(reads: { target: () => Promise<TargetView>; hosts: () => Promise<Map<string, string>> }) {
  const config = {
    wsMaxSocketsPerPrincipal: 100,
    wsMaxSocketsPerUser: 100,
    wsMaxBufferedBytes: 1 << 20,
  } as GatewayConfig;
  const live = { getHostMetricsMany: () => reads.hosts() } as unknown as LiveStateStore;
  const targets = { get: () => reads.target() } as unknown as TargetsService;
  const logger = { warn: () => undefined } as unknown as Logger;
  const hub = new WsHub(config, live, targets, logger);
  const open = socketOpener(hub);
  return { hub, open };
}

const view = (latencyMs: number) =>
  ({ id: 'check:t', locations: [{ location: 'a', latencyMs }] }) as unknown as TargetView;
const sample = (cpuPct: number, at: number) =>
  JSON.stringify({
    hostId: 'h',
    location: 'a',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 5,
    cpu: { usagePct: cpuPct, cores: 2, load1: 1, load5: 1, load15: 1, perCorePct: [cpuPct, cpuPct] },
    memory: { totalBytes: 16e9, usedBytes: 4e9 },
    disks: [],
    network: [],
    gpus: [],
    uptimeSeconds: 60,
  });
/** Until every promise callback queued now has run (the hub's awaits). */
const settle = () => new Promise((r) => setImmediate(r));

function lastOf<T extends WsServerMessage['type']>(sent: WsServerMessage[], type: T) {
  return sent.filter((m) => m.type === type).at(-1) as Extract<WsServerMessage, { type: T }> | undefined;
}

it('a slow subscribe that read a target before a newer result does not send its older view to the other watchers', async () => {
  const pending: Deferred<TargetView>[] = [];
  const { open } = hubWith({
    target: () => {
      const d = deferred<TargetView>();
      pending.push(d);
      return d.promise;
    },
    hosts: async () => new Map(),
  });
  const sub = (id: string) => JSON.stringify({ type: 'subscribe', id, topic: 'target', targetId: 'check:t' });
  const watcher = open();
  watcher.emit(sub('w'));
  pending[0].resolve(view(10));
  await settle();
  expect(lastOf(watcher.sent, 'target')?.target.locations[0].latencyMs).toBe(10);

  const slow = open();
  slow.emit(sub('s')); // reads the target as it was (10)…
  const fast = open();
  fast.emit(sub('f')); // …a new result (25) is written, then read by this one and sent to every watcher
  pending[2].resolve(view(25));
  await settle();
  expect(lastOf(watcher.sent, 'target')?.target.locations[0].latencyMs).toBe(25);
  pending[1].resolve(view(10)); // the slow read answers last
  await settle();

  expect(lastOf(watcher.sent, 'target')?.target.locations[0].latencyMs).toBe(25);
  expect(lastOf(fast.sent, 'target')?.target.locations[0].latencyMs).toBe(25);
  // The slow subscriber is given the newer view, not the one it read.
  expect(lastOf(slow.sent, 'target')?.target.locations[0].latencyMs).toBe(25);
});

it('a slow host-metrics subscribe that read an older sample does not send it to the other watchers', async () => {
  const pending: Deferred<Map<string, string>>[] = [];
  const { open } = hubWith({
    target: async () => view(0),
    hosts: () => {
      const d = deferred<Map<string, string>>();
      pending.push(d);
      return d.promise;
    },
  });
  const t0 = Date.parse('2026-12-07T10:00:00Z');
  const sub = (id: string) => JSON.stringify({ type: 'subscribe', id, topic: 'host-metrics', hostIds: ['h'] });
  const watcher = open();
  watcher.emit(sub('w'));
  pending[0].resolve(new Map([['h', sample(12, t0)]]));
  await settle();
  expect(lastOf(watcher.sent, 'host-metrics')?.sample.cpuPct).toBe(12);

  const slow = open();
  slow.emit(sub('s'));
  const fast = open();
  fast.emit(sub('f'));
  pending[2].resolve(new Map([['h', sample(80, t0 + 5000)]]));
  await settle();
  expect(lastOf(watcher.sent, 'host-metrics')?.sample.cpuPct).toBe(80);
  pending[1].resolve(new Map([['h', sample(12, t0)]]));
  await settle();

  expect(lastOf(watcher.sent, 'host-metrics')?.sample.cpuPct).toBe(80);
  expect(lastOf(fast.sent, 'host-metrics')?.sample.cpuPct).toBe(80);
  expect(lastOf(slow.sent, 'host-metrics')?.sample.cpuPct).toBe(80);
});
