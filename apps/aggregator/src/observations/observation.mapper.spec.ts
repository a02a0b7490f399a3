import { buildEnvelope, Messages, TargetStatus, type MessageSource } from '@fleetwatch/contracts';
import {
  expireDeadlines,
  foldObservations,
  HEARTBEAT_LOCATION,
  MISSED_SLOT_CAP_MS,
  PEER_LATENESS_MS,
  type TargetSnapshot,
} from '@fleetwatch/domain';
import {
  CHECK_STALE_SLACK_MS,
  COLLECTOR_MAX_FUTURE_SKEW_MS,
  DEFAULT_PUSH_LOCATION,
  mapEnvelope as mapAll,
} from './observation.mapper';

const mapEnvelope = (...args: Parameters<typeof mapAll>) => mapAll(...args)[0];

const ingest = (location?: string): MessageSource => ({ site: 's', service: 'status-ingest', location });
const at = '2026-01-01T00:00:00.000Z';
const T = Date.parse(at);
const update = (extra: Record<string, unknown> = {}) => ({
  updateId: 'u1',
  instanceId: 'web-1',
  kind: 'container',
  status: 'exited',
  occurredAt: at,
  receivedAt: at,
  ...extra,
});
const opts = { staleAfterSeconds: 300 };
/** A failed result of the check c1 at location eu, sent by its collector (`src`). */
const failedAtEu = { checkId: 'c1', targetId: 'check:c1', location: 'eu', ok: false, latencyMs: null };
const src: MessageSource = { site: 's', service: 'collector', location: 'eu' };

describe('mapEnvelope', () => {
  it.each([
    ['the update location', update({ location: 'dc-1' }), ingest('edge-a'), 'dc-1'],
    ["the source's location", update(), ingest('edge-a'), 'edge-a'],
    ['push when the source names none', update(), ingest(), DEFAULT_PUSH_LOCATION],
    ['push when the source location is not a location name', update(), ingest('edge a/b'), DEFAULT_PUSH_LOCATION],
  ])('a status update is placed at %s', (_n, payload, source, location) => {
    const m = mapEnvelope(buildEnvelope(Messages.StatusUpdate.type, 1, source, payload), opts);
    expect(m.type === 'status' && m.observation.location).toBe(location);
  });

  it('maps a pushed instance: target id, lifecycle onto status, labels as tags, staleness deadline', () => {
    const env = buildEnvelope(
      Messages.StatusUpdate.type,
      1,
      ingest(),
      update({ labels: { team: 'a', env: 'prod' }, message: 'OOMKilled' }),
    );
    const m = mapEnvelope(env, { ...opts, now: T });
    if (m.type !== 'status') throw new Error(m.type);
    expect(m.messageId).toBe(env.id);
    expect(m.observation).toMatchObject({
      targetId: 'instance:web-1',
      kind: 'instance',
      name: 'web-1',
      status: TargetStatus.Down,
      lifecycle: 'exited',
      tags: ['env=prod', 'team=a'],
      reason: 'exited: OOMKilled',
      deadline: { at: T + 300_000, expireTo: TargetStatus.Stale },
    });
    expect(m.row).toMatchObject({
      status: TargetStatus.Down,
      lifecycleStatus: 'exited',
      location: DEFAULT_PUSH_LOCATION,
    });
  });

  it("keeps what the pushed instance is (the update's kind) for its live state, in a batch too", () => {
    const one = mapEnvelope(buildEnvelope(Messages.StatusUpdate.type, 1, ingest(), update({ kind: 'pod' })), opts);
    expect(one.type === 'status' && one.observation.instanceKind).toBe('pod');
    const batch = mapAll(
      buildEnvelope(Messages.StatusUpdateBatch.type, 1, ingest(), {
        updates: [update({ id: '0190a0b0-0000-7000-8000-000000000001', kind: 'job' })],
      }),
      opts,
    )[0];
    expect(batch.type === 'status' && batch.observation.instanceKind).toBe('job');
  });

  it('a check result expects the next one within two intervals plus slack, only when the interval is known', () => {
    const result = { ...failedAtEu, failureReason: 'timeout', attempt: 1, startedAt: at };
    const withInterval = mapEnvelope(
      buildEnvelope(Messages.CheckResult.type, 1, src, { ...result, intervalSeconds: 30 }),
      { ...opts, now: T + 200 },
    );
    const without = mapEnvelope(buildEnvelope(Messages.CheckResult.type, 1, src, result), opts);
    // Counted from when it was heard (here 200 ms after it started): its arrival.
    expect(withInterval.type === 'check' && withInterval.observation.deadline?.at).toBe(
      T + 200 + 60_000 + CHECK_STALE_SLACK_MS,
    );
    expect(without.type === 'check' && without.observation).toMatchObject({
      status: TargetStatus.Down,
      detail: 'timeout',
      deadline: undefined,
    });
  });

  it("bounds the other locations' results of the run: heard + its attempts' time and the slack (peersDueBy)", () => {
    const at = new Date(T).toISOString();
    const result = { ...failedAtEu, attempt: 3, startedAt: at, intervalSeconds: 86_400, retries: 2 };
    const dueBy = (payload: object) => {
      const m = mapEnvelope(buildEnvelope(Messages.CheckResult.type, 1, src, payload), { ...opts, now: T + 200 });
      return m.type === 'check' ? m.observation.peersDueBy : null;
    };
    // Three attempts of 10 s (and the probe's 1 s overrun each), the lateness of a slower location, one missed slot
    // (a daily interval: capped at 15 min), then the slack: 16 min 38 s after it was heard.
    expect(dueBy({ ...result, timeoutSeconds: 10 })).toBe(
      T + 200 + 3 * 11_000 + PEER_LATENESS_MS + MISSED_SLOT_CAP_MS + CHECK_STALE_SLACK_MS,
    );
    expect(dueBy({ ...result, timeoutSeconds: 10 })).toBe(T + 200 + 16 * 60_000 + 38_000);
    // A collector from before the timeout was sent: the longest a check may have (300 s).
    expect(dueBy(result)).toBe(T + 200 + 3 * 301_000 + PEER_LATENESS_MS + MISSED_SLOT_CAP_MS + CHECK_STALE_SLACK_MS);
    // A 5-min check: the missed slot is the interval.
    expect(dueBy({ ...result, intervalSeconds: 300, timeoutSeconds: 10, retries: 0 })).toBe(
      T + 200 + 11_000 + PEER_LATENESS_MS + 300_000 + CHECK_STALE_SLACK_MS,
    );
    // No interval, no expectation: no bound either.
    expect(dueBy({ ...result, intervalSeconds: undefined, timeoutSeconds: 10 })).toBeUndefined();
  });

  it.each(['edge-a', 'edge-b', undefined])(
    "a heartbeat ping keeps its schedule and is at the monitor's one location, whichever ingest (%s) received it",
    (source) => {
      const ping = {
        monitorId: 'm1',
        targetId: 'check:hb',
        signal: 'start',
        receivedAt: at,
        periodSeconds: 60,
        graceSeconds: 5,
        maxRuntimeSeconds: null,
      };
      const m = mapEnvelope(buildEnvelope(Messages.PingReceived.type, 1, ingest(source), ping), opts);
      expect(m).toMatchObject({
        type: 'ping',
        location: HEARTBEAT_LOCATION,
        row: { location: HEARTBEAT_LOCATION },
        name: 'm1',
        ping: { signal: 'start', at: T, periodSeconds: 60, graceSeconds: 5 },
      });
    },
  );

  it('a heartbeat ping keeps the config version its schedule was read at, and has none when it came without one', () => {
    const ping = {
      monitorId: 'm1',
      targetId: 'check:hb',
      signal: 'success',
      receivedAt: at,
      periodSeconds: 86_340,
      graceSeconds: 60,
      maxRuntimeSeconds: null,
    };
    const read = mapEnvelope(
      buildEnvelope(Messages.PingReceived.type, 1, ingest('edge-a'), { ...ping, configVersion: 4 }),
      opts,
    );
    expect(read.type === 'ping' && read.ping.configVersion).toBe(4);
    const before = mapEnvelope(buildEnvelope(Messages.PingReceived.type, 1, ingest('edge-a'), ping), opts);
    expect(before.type === 'ping' && 'configVersion' in before.ping).toBe(false);
  });

  it('a heartbeat ping keeps the exit code of /ping/{token}/{code} (stored row and fold), null when it came without one', () => {
    const ping = {
      monitorId: 'm1',
      targetId: 'check:hb',
      signal: 'fail',
      receivedAt: at,
      periodSeconds: 60,
      graceSeconds: 5,
      maxRuntimeSeconds: null,
    };
    const coded = mapEnvelope(
      buildEnvelope(Messages.PingReceived.type, 1, ingest('edge-a'), { ...ping, exitCode: 7 }),
      opts,
    );
    expect(coded).toMatchObject({ type: 'ping', row: { signal: 'fail', exitCode: 7 }, ping: { exitCode: 7 } });
    const plain = mapEnvelope(buildEnvelope(Messages.PingReceived.type, 1, ingest('edge-a'), ping), opts);
    expect(plain).toMatchObject({ type: 'ping', row: { signal: 'fail', exitCode: null }, ping: { exitCode: null } });
  });

  it('a status.update.batch maps every update, each with its own id as message id', () => {
    const ids = ['0190b7a8-0000-7000-8000-000000000001', '0190B7A8-0000-7000-8000-000000000002'];
    const env = buildEnvelope(Messages.StatusUpdateBatch.type, 1, ingest('edge-a'), {
      updates: [
        update({ id: ids[0], instanceId: 'a' }),
        update({ id: ids[1], instanceId: 'b', status: 'running', location: 'dc-1' }),
      ],
    });
    const all = mapAll(env, opts);
    expect(
      all.map((m) => m.type === 'status' && [m.messageId, m.targetId, m.observation.location, m.observation.status]),
    ).toEqual([
      [ids[0], 'instance:a', 'edge-a', TargetStatus.Down],
      [ids[1].toLowerCase(), 'instance:b', 'dc-1', TargetStatus.Up],
    ]);
  });

  it('collector heartbeats are acknowledged without folding', () => {
    const hb = { kind: 'collector', id: 'c', version: '1', startedAt: at, sentAt: at, intervalSeconds: 15 };
    expect(mapEnvelope(buildEnvelope(Messages.CollectorHeartbeat.type, 1, ingest(), hb), opts).type).toBe('ignored');
  });
});

describe('mapEnvelope with a status.update.batch', () => {
  const item = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    ...update({ updateId: `u-${id.slice(-4)}`, apiKeyId: 'key-1', ...extra }),
  });
  const ids = [
    '0190c8a0-0000-7000-8000-000000000001',
    '0190c8a0-0000-7000-8000-000000000002',
    '0190c8a0-0000-7000-8000-000000000003',
  ];

  it('checks each update alone: a bad one is rejected as its own replayable status.update, its neighbours are mapped', () => {
    const env = buildEnvelope(Messages.StatusUpdateBatch.type, 1, ingest(), {
      updates: [item(ids[0]), item(ids[1], { message: 'bad\u0000' }), item(ids[2])],
    });
    const all = mapAll(env, opts);
    expect(all.map((m) => m.type)).toEqual(['status', 'rejected', 'status']);
    const bad = all[1];
    if (bad.type !== 'rejected') throw new Error(bad.type);
    expect(bad.reason).toMatch(/^invalid update at updates\.1: message: contains a NUL character/);
    expect(bad.messageId).toBe(ids[1]);
    expect(bad.origin.envelope).toMatchObject({
      id: ids[1],
      type: Messages.StatusUpdate.type,
      correlationId: env.correlationId,
    });
    expect(bad.origin.envelope.payload).not.toHaveProperty('id');
    expect(bad.origin.headers).toEqual({ 'x-fleetwatch-update-id': 'u-0002', 'x-fleetwatch-api-key-id': 'key-1' });
    expect(all[0].type === 'status' && all[0].messageId).toBe(ids[0]);
  });

  it('gives an item without a usable id a stable id of its own', () => {
    const env = buildEnvelope(Messages.StatusUpdateBatch.type, 1, ingest(), {
      updates: [item(ids[0]), 'not an object', { id: 'nope' }],
    });
    const first = mapAll(env, opts);
    const again = mapAll(env, opts);
    expect(first.map((m) => m.type)).toEqual(['status', 'rejected', 'rejected']);
    expect(first[1].messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first[1].messageId).not.toBe(first[2].messageId);
    expect(again.map((m) => m.messageId)).toEqual(first.map((m) => m.messageId));
  });
  it("maps a push check's lifecycle (a heartbeat monitor): DOWN at period + grace after the resume, as after a ping", () => {
    const payload = {
      checkId: '0191d7a2-0000-7000-8000-000000000002',
      targetId: 'check:0191d7a2-0000-7000-8000-000000000002',
      state: 'active',
      version: 4,
      at,
      name: 'nightly',
      checkType: 'push',
      tags: [],
      // sync-orchestrator's interval of a push check: period + grace.
      intervalSeconds: 70,
    };
    const m = mapEnvelope(
      buildEnvelope(Messages.CheckLifecycle.type, 1, { site: 's', service: 'sync-orchestrator' }, payload),
      opts,
    );
    if (m.type !== 'lifecycle') throw new Error(m.type);
    expect(m.lifecycle.resumeDeadline).toEqual({
      at: T + 70_000,
      expireTo: TargetStatus.Down,
      reason: 'no ping within period + grace (70s) of the resume',
    });
  });
  it.each([
    ['with its interval: a resume deadline two intervals and the slack on', 30, T + 60_000 + CHECK_STALE_SLACK_MS],
    ['without one: no deadline', undefined, null],
  ])('maps a check.lifecycle %s', (_n, intervalSeconds, deadlineAt) => {
    const payload = {
      checkId: '0191d7a2-0000-7000-8000-000000000001',
      targetId: 'check:0191d7a2-0000-7000-8000-000000000001',
      state: 'active',
      version: 12,
      at,
      name: 'api',
      checkType: 'tcp',
      tags: ['e2e'],
      intervalSeconds,
    };
    const env = buildEnvelope(Messages.CheckLifecycle.type, 1, { site: 's', service: 'sync-orchestrator' }, payload);
    const m = mapEnvelope(env, opts);
    if (m.type !== 'lifecycle') throw new Error(m.type);
    expect(m).toMatchObject({ messageId: env.id, targetId: payload.targetId });
    expect(m.lifecycle).toMatchObject({ targetId: payload.targetId, state: 'active', version: 12, at: T, name: 'api' });
    expect(m.lifecycle.resumeDeadline?.at ?? null).toBe(deadlineAt);
    if (deadlineAt !== null) expect(m.lifecycle.resumeDeadline?.expireTo).toBe(TargetStatus.Stale);
    // A probed check's interval (moves its STALE deadlines when changed); a push check's goes as its ping window.
    expect(m.lifecycle.checkIntervalSeconds).toBe(intervalSeconds);
    expect(m.lifecycle.pingWindowMs).toBeUndefined();
  });
  it.each([
    ['its own quorum', 50, 50],
    ["none of its own (null: the site's)", null, null],
    ['not said (a sender from before: what is held stays)', undefined, undefined],
  ])("maps a check.lifecycle's quorum: %s", (_n, downQuorumPct, expected) => {
    const payload = {
      checkId: '0191d7a2-0000-7000-8000-000000000001',
      targetId: 'check:0191d7a2-0000-7000-8000-000000000001',
      state: 'active',
      version: 12,
      at,
      ...(downQuorumPct !== undefined ? { downQuorumPct } : {}),
    };
    expect(Messages.CheckLifecycle.payload.safeParse(payload).success).toBe(true);
    const m = mapEnvelope(
      buildEnvelope(Messages.CheckLifecycle.type, 1, { site: 's', service: 'sync-orchestrator' }, payload),
      opts,
    );
    if (m.type !== 'lifecycle') throw new Error(m.type);
    expect(m.lifecycle.downQuorumPct).toBe(expected);
    expect('downQuorumPct' in m.lifecycle).toBe(downQuorumPct !== undefined);
  });
});

describe("a collector's clock far ahead", () => {
  const now = T;
  const collector: MessageSource = { site: 's', service: 'collector', location: 'eu' };
  const result = (startedAt: string) => ({
    checkId: 'c1',
    targetId: 'check:c1',
    location: 'eu',
    ok: true,
    latencyMs: 3,
    attempt: 1,
    startedAt,
    intervalSeconds: 30,
  });
  const sample = (sampledAt: string) => ({
    hostId: 'node-1',
    location: 'eu',
    sampledAt,
    intervalSeconds: 5,
    cpu: { usagePct: 1, cores: 2, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 10, usedBytes: 5 },
    disks: [],
    network: [],
    gpus: [],
  });
  it.each([
    ['a check result', (iso: string) => buildEnvelope(Messages.CheckResult.type, 1, collector, result(iso))],
    ['a host sample', (iso: string) => buildEnvelope(Messages.HostMetrics.type, 1, collector, sample(iso))],
  ])('%s stamped years ahead is taken at arrival + the skew; one within the skew keeps its time', (_, envelope) => {
    const far = mapEnvelope(envelope('2031-06-01T00:00:00.000Z'), { staleAfterSeconds: 300, now });
    const near = mapEnvelope(envelope(new Date(now + 30_000).toISOString()), { staleAfterSeconds: 300, now });
    if (!('observation' in far) || !('observation' in near)) throw new Error('not an observation');
    expect(far.observation.at).toBe(now + COLLECTOR_MAX_FUTURE_SKEW_MS);
    // Its STALE deadline follows from the clamped time, so a dead collector's target still goes STALE.
    expect(far.observation.deadline?.at).toBeLessThan(now + 5 * 60_000);
    expect(near.observation.at).toBe(now + 30_000);
  });
});

describe("a collector's clock behind (or a backlog): stamped before the message arrived", () => {
  const arrival = T;
  const collector: MessageSource = { site: 's', service: 'collector', location: 'eu' };
  const result = (startedAt: number) =>
    buildEnvelope(Messages.CheckResult.type, 1, collector, {
      checkId: 'c1',
      targetId: 'check:c1',
      location: 'eu',
      ok: true,
      latencyMs: 3,
      attempt: 1,
      startedAt: new Date(startedAt).toISOString(),
      intervalSeconds: 10,
    });
  const sample = (sampledAt: number) =>
    buildEnvelope(Messages.HostMetrics.type, 1, collector, {
      hostId: 'node-1',
      location: 'eu',
      sampledAt: new Date(sampledAt).toISOString(),
      intervalSeconds: 10,
      cpu: { usagePct: 1, cores: 2, load1: 0, load5: 0, load15: 0 },
      memory: { totalBytes: 10, usedBytes: 5 },
      disks: [],
      network: [],
      gpus: [],
    });
  it.each([
    ['a check result', result],
    ['a host sample', sample],
  ])('%s 40 s behind keeps its time, and its target is not STALE the moment it arrives', (_, envelope) => {
    const policy = { downQuorumPct: 100 };
    const items = [0, 10_000, 20_000].map((offset) => {
      const m = mapEnvelope(envelope(arrival + offset - 40_000), { staleAfterSeconds: 300, now: arrival + offset });
      if (!('observation' in m)) throw new Error(m.type);
      return { id: m.messageId, observation: m.observation };
    });
    expect(items[0].observation.at).toBe(arrival - 40_000);
    // Each one arrives 10 s after the last (the collector's interval), a sweep runs a second after each.
    let targets = new Map<string, TargetSnapshot>();
    const events: string[] = [];
    items.forEach((item, i) => {
      const fold = foldObservations(targets, [{ type: 'observation', ...item }], new Set([item.id]), policy);
      const swept = expireDeadlines(
        fold.targets,
        [{ targetId: item.observation.targetId, location: 'eu' }],
        arrival + i * 10_000 + 1000,
        policy,
      );
      targets = new Map([...fold.targets, ...swept.changed.map((t) => [t.id, t] as const)]);
      events.push(...[...fold.events, ...swept.events].filter((e) => e.location === null).map((e) => e.to));
    });
    // It was heard every 10 s: UP once, never STALE in between (it flapped UP → STALE → UP with each result).
    expect(events).toEqual([TargetStatus.Up]);
  });
});

describe("an ingest replica's clock on heartbeat pings (each replica stamps the pings it receives)", () => {
  const policy = { downQuorumPct: 100 };
  const SKEW = COLLECTOR_MAX_FUTURE_SKEW_MS;
  const pingAt = (signal: 'success' | 'fail', receivedAt: number) =>
    buildEnvelope(Messages.PingReceived.type, 1, ingest('edge-a'), {
      monitorId: 'm1',
      targetId: 'check:hb',
      signal,
      receivedAt: new Date(receivedAt).toISOString(),
      periodSeconds: 60,
      graceSeconds: 10,
      maxRuntimeSeconds: null,
    });
  /** Folds each ping as it arrives (`now`), then sweeps at `sweepAt`; the consensus statuses it went through. */
  function run(pings: Array<{ envelope: ReturnType<typeof pingAt>; now: number }>, sweepAt: number) {
    let targets = new Map<string, TargetSnapshot>();
    const statuses: string[] = [];
    for (const { envelope, now } of pings) {
      const m = mapEnvelope(envelope, { staleAfterSeconds: 300, now });
      if (m.type !== 'ping') throw new Error(m.type);
      const item = { type: 'ping' as const, id: m.messageId, targetId: m.targetId, location: m.location };
      const fold = foldObservations(
        targets,
        [{ ...item, name: m.name, ping: m.ping, monitorId: 'm1' }],
        new Set([m.messageId]),
        policy,
      );
      targets = new Map(fold.targets);
      statuses.push(...fold.events.filter((e) => e.location === null).map((e) => e.to));
    }
    const swept = expireDeadlines(targets, [{ targetId: 'check:hb', location: HEARTBEAT_LOCATION }], sweepAt, policy);
    statuses.push(...swept.events.filter((e) => e.location === null).map((e) => e.to));
    const held = swept.changed.find((t) => t.id === 'check:hb') ?? targets.get('check:hb');
    return { statuses, location: held?.locations[HEARTBEAT_LOCATION] };
  }

  it('a replica 2 minutes behind: the ping is not past its deadline when it arrives (period 60 s + grace 10 s)', () => {
    const { statuses, location } = run([{ envelope: pingAt('success', T - 120_000), now: T }], T + 1_000);
    expect(statuses).toEqual([TargetStatus.Up]);
    expect(location?.deadline?.at).toBe(T + 70_000);
    expect(location?.observedAt).toBe(T - 120_000); // its own time is kept
  });

  it("a replica a day ahead: its ping is held to the skew, and a fail ping through another replica after that is applied (it was older than tomorrow's ping: the monitor froze for a day)", () => {
    const { statuses, location } = run(
      [
        { envelope: pingAt('success', T + 86_400_000), now: T },
        { envelope: pingAt('fail', T + SKEW + 1_000), now: T + SKEW + 1_000 },
      ],
      T + SKEW + 2_000,
    );
    expect(statuses).toEqual([TargetStatus.Up, TargetStatus.Down]);
    expect(location?.status).toBe(TargetStatus.Down);
  });

  it('the stored ping row carries the held time (last ping is never a day ahead)', () => {
    const m = mapEnvelope(pingAt('success', T + 86_400_000), { staleAfterSeconds: 300, now: T });
    if (m.type !== 'ping') throw new Error(m.type);
    expect(m.row.receivedAt).toBe(T + COLLECTOR_MAX_FUTURE_SKEW_MS);
    expect(m.ping.at).toBe(T + COLLECTOR_MAX_FUTURE_SKEW_MS);
  });
});

describe('a backlog of pushed updates (the aggregator was away longer than STALE_AFTER_SECONDS)', () => {
  it('each update is heard when it arrives: the instance is not STALE between two of them', () => {
    const policy = { downQuorumPct: 100 };
    const arrival = T + 600_000;
    let targets = new Map<string, TargetSnapshot>();
    const events: string[] = [];
    // Pushed every 30 s ten minutes ago (received then by the edge), drained now one every 100 ms.
    for (let i = 0; i < 5; i++) {
      const stamp = new Date(T + i * 30_000).toISOString();
      const env = buildEnvelope(
        Messages.StatusUpdate.type,
        1,
        ingest(),
        update({ status: 'running', occurredAt: stamp, receivedAt: stamp }),
      );
      const m = mapEnvelope(env, { staleAfterSeconds: 300, now: arrival + i * 100 });
      if (m.type !== 'status') throw new Error(m.type);
      const fold = foldObservations(
        targets,
        [{ type: 'observation', id: m.messageId, observation: m.observation }],
        new Set([m.messageId]),
        policy,
      );
      const swept = expireDeadlines(
        fold.targets,
        [{ targetId: 'instance:web-1', location: DEFAULT_PUSH_LOCATION }],
        arrival + i * 100 + 50,
        policy,
      );
      targets = new Map([...fold.targets, ...swept.changed.map((t) => [t.id, t] as const)]);
      events.push(...[...fold.events, ...swept.events].filter((e) => e.location === null).map((e) => e.to));
    }
    expect(events).toEqual([TargetStatus.Up]);
  });
});

describe('host.retire dated by a gateway whose clock is ahead', () => {
  const now = Date.parse('2026-06-01T00:00:00.000Z');
  const collector: MessageSource = { site: 's', service: 'collector', location: 'eu' };
  const gateway: MessageSource = { site: 's', service: 'api-gateway' };
  const sample = (atMs: number) =>
    buildEnvelope(Messages.HostMetrics.type, 1, collector, {
      hostId: 'node-1',
      location: 'eu',
      sampledAt: new Date(atMs).toISOString(),
      intervalSeconds: 5,
      cpu: { usagePct: 1, cores: 2, load1: 0, load5: 0, load15: 0 },
      memory: { totalBytes: 10, usedBytes: 5 },
      disks: [],
      network: [],
      gpus: [],
    });
  const retire = (iso: string) =>
    buildEnvelope(Messages.HostRetire.type, 1, gateway, {
      hostId: 'node-1',
      at: iso,
      actor: { id: 'user:1', name: 'ops' },
    });

  it('is taken at arrival + the skew (as a collector time is): the host comes back with its next samples', () => {
    const m = mapEnvelope(retire('2027-06-01T00:00:00.000Z'), { staleAfterSeconds: 300, now });
    if (m.type !== 'retire') throw new Error(`not a retirement: ${m.type}`);
    expect(m.at).toBe(now + COLLECTOR_MAX_FUTURE_SKEW_MS);
    expect(m.row.retiredAt).toBe(now + COLLECTOR_MAX_FUTURE_SKEW_MS);
    const near = mapEnvelope(retire(new Date(now + 30_000).toISOString()), { staleAfterSeconds: 300, now });
    expect(near.type === 'retire' && near.at).toBe(now + 30_000);

    // The host, retired as the gateway asked, reports again two minutes later: it is back.
    const first = mapEnvelope(sample(now - 1000), { staleAfterSeconds: 300, now });
    const later = mapEnvelope(sample(now + 120_000), { staleAfterSeconds: 300, now: now + 120_000 });
    if (first.type !== 'host' || later.type !== 'host') throw new Error('not host samples');
    const items = [
      { type: 'observation' as const, id: 's1', observation: first.observation },
      { type: 'retire' as const, id: 'r1', targetId: m.targetId, at: m.at, reason: m.reason },
      { type: 'observation' as const, id: 's2', observation: later.observation },
    ];
    const out = foldObservations(new Map(), items, new Set(['s1', 'r1', 's2']), { downQuorumPct: 100 });
    expect(out.applied).toEqual(new Set(['s1', 'r1', 's2']));
    const host = out.targets.get(m.targetId) as TargetSnapshot;
    expect(host.deletedAt ?? null).toBeNull();
    expect(host.status).toBe(TargetStatus.Up);
  });
});
