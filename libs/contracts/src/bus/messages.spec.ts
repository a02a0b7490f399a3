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
