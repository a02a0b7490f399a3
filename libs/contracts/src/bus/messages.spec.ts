import {
  buildEnvelope,
  Messages,
  parseMessage,
  uuidv7,
  UUID_PATTERN,
  QUEUE_BINDINGS,
  QueueName,
  RoutingKey,
} from '../index';

const source = { site: 'test', service: 'status-ingest' as const };

describe('uuidv7', () => {
  it('is a v7 UUID, sortable by time', () => {
    const a = uuidv7(1_700_000_000_000);
    const b = uuidv7(1_700_000_000_001);
    expect(a).toMatch(UUID_PATTERN);
    expect(a[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(a[19]);
    expect(a < b).toBe(true);
  });
});

describe('parseMessage', () => {
  const payload = {
    updateId: 'u1',
    instanceId: 'web-1',
    kind: 'container',
    status: 'running',
    occurredAt: '2026-01-01T00:00:00.000Z',
    receivedAt: '2026-01-01T00:00:00.100Z',
  };
  it('accepts a valid envelope of a known type', () => {
    const env = buildEnvelope(Messages.StatusUpdate.type, 1, source, payload);
    const r = parseMessage(Buffer.from(JSON.stringify(env)));
    expect(r.ok).toBe(true);
    expect(env.correlationId).toBe(env.id);
  });
  it.each([
    ['not JSON', Buffer.from('{nope'), 'not valid UTF-8 JSON'],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'not valid UTF-8'],
    [
      'missing id',
      Buffer.from(JSON.stringify({ ...buildEnvelope('status.update', 1, source, payload), id: undefined })),
      'id',
    ],
    ['unknown type', Buffer.from(JSON.stringify(buildEnvelope('nope', 1, source, payload))), 'unknown message type'],
    [
      'future version',
      Buffer.from(JSON.stringify(buildEnvelope('status.update', 9, source, payload))),
      'unsupported schemaVersion',
    ],
    [
      'bad payload',
      Buffer.from(JSON.stringify(buildEnvelope('status.update', 1, source, { ...payload, kind: 'vm' }))),
      'payload.kind'.slice(8),
    ],
  ])('refuses %s with a reason', (_name, raw, reason) => {
    const r = parseMessage(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });
});

describe('bindings', () => {
  it('binds every observation the aggregator folds', () => {
    const keys = QUEUE_BINDINGS[QueueName.AggregatorObservations].map((b) => b.routingKey);
    expect(keys).toEqual(
      expect.arrayContaining([RoutingKey.StatusUpdate, RoutingKey.CheckResult, RoutingKey.PingReceived]),
    );
  });
  it('every message routes to some queue or is a fan-out event', () => {
    for (const def of Object.values(Messages)) expect(def.routingKey).toMatch(/^(event|command)\./);
  });
});

describe('check.lifecycle', () => {
  const payload = {
    checkId: '0191d7a2-0000-7000-8000-000000000001',
    targetId: 'check:0191d7a2-0000-7000-8000-000000000001',
    state: 'paused',
    version: 7,
    at: '2026-01-01T00:00:00.000Z',
  };
  it('is an observation of the check target: sharded by it, and bound to the un-sharded queue too', () => {
    expect(Messages.CheckLifecycle.shardKeys?.(Messages.CheckLifecycle.payload.parse(payload))).toEqual([
      payload.targetId,
    ]);
    expect(Messages.CheckLifecycle.routingKey).toBe('event.check.lifecycle');
    expect(QUEUE_BINDINGS[QueueName.AggregatorObservations].map((b) => b.routingKey)).toContain(
      RoutingKey.CheckLifecycle,
    );
    // Not a config.changed: collectors following that key never receive it.
    expect(QUEUE_BINDINGS[QueueName.CollectorConfig].map((b) => b.routingKey)).not.toContain(RoutingKey.CheckLifecycle);
  });
  it.each([
    ['a check id that is no UUID', { checkId: 'web' }, 'checkId'],
    ['an unknown state', { state: 'archived' }, 'state'],
    ['version 0', { version: 0 }, 'version'],
  ])('refuses %s', (_name, change, path) => {
    const env = buildEnvelope(Messages.CheckLifecycle.type, 1, source, { ...payload, ...change });
    const r = parseMessage(Buffer.from(JSON.stringify(env)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(path);
  });
});

describe('host.retire', () => {
  const payload = { hostId: 'rack 1/gpu-7', at: '2026-01-01T00:00:00.000Z', actor: { id: 'user:1', name: 'admin' } };
  it("is an observation of the host's target: sharded by it like its samples, so it lands in their shard queue", () => {
    const parsed = Messages.HostRetire.payload.parse(payload);
    expect(Messages.HostRetire.shardKeys?.(parsed)).toEqual(['host:rack 1/gpu-7']);
    expect(Messages.HostRetire.shardKeys?.(parsed)).toEqual(
      Messages.HostMetrics.shardKeys?.({ hostId: payload.hostId } as never),
    );
    expect(Messages.HostRetire.routingKey).toBe('event.host.retire');
  });
  it.each([
    ['an empty host id', { hostId: '' }, 'hostId'],
    ['a time no store holds', { at: '0000-01-01T00:00:00Z' }, 'at'],
    ['no actor', { actor: undefined }, 'actor'],
  ])('refuses %s', (_name, change, path) => {
    const env = buildEnvelope(Messages.HostRetire.type, 1, source, { ...payload, ...change });
    const r = parseMessage(Buffer.from(JSON.stringify(env)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(path);
  });
});
