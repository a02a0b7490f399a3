import {
  buildEnvelope,
  Messages,
  parseMessage,
  STATUS_CHANGED_BATCH_MAX,
  TargetKind,
  TargetStatus,
  uuidv7,
  type Envelope,
  type MessageDefinition,
  type MessageSource,
  type PayloadInputOf,
  type StatusChangedBatchEvent,
} from '@fleetwatch/contracts';
import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { CONSUME_QUEUE_METADATA, isTransientFailure, type ConsumeQueueMetadata } from '@fleetwatch/messaging';
import { eventsIn, SubscriptionEventsHandler } from './subscription-events.handler';

const source: MessageSource = { site: 'eu', service: 'aggregator' };

const change = (i: number): PayloadInputOf<typeof Messages.StatusChanged> => ({
  targetId: `check:api-${i}`,
  kind: TargetKind.Check,
  location: null,
  from: TargetStatus.Up,
  to: TargetStatus.Down,
  reason: 'HTTP 503',
  at: '2026-12-02T10:00:00.000Z',
  sequence: i,
});

const batchEvent = (i: number): StatusChangedBatchEvent => ({ ...change(i), eventId: uuidv7() });

/** As the consumer hands it to `weigh`: built, sent as JSON and parsed (validated) again on the way in. */
function received<D extends MessageDefinition>(def: D, payload: PayloadInputOf<D>): Envelope {
  const parsed = parseMessage(JSON.stringify(buildEnvelope(def.type, def.schemaVersion, source, payload)));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

/** A status.changed.batch whose payload the contract refuses (never off the wire: parseMessage rejects it first). */
const malformedBatch = (payload: unknown): Envelope =>
  buildEnvelope(Messages.StatusChangedBatch.type, Messages.StatusChangedBatch.schemaVersion, source, payload);

describe('eventsIn (what a subscriptions message weighs)', () => {
  it('a status.changed carries one event', () => {
    expect(eventsIn(received(Messages.StatusChanged, change(1)))).toBe(1);
  });

  it('a status.changed.batch carries its events: one, several, as many as a batch may hold', () => {
    const batchOf = (n: number) =>
      received(Messages.StatusChangedBatch, { events: Array.from({ length: n }, (_, i) => batchEvent(i)) });
    expect(eventsIn(batchOf(1))).toBe(1);
    expect(eventsIn(batchOf(3))).toBe(3);
    expect(eventsIn(batchOf(37))).toBe(37);
    expect(eventsIn(batchOf(STATUS_CHANGED_BATCH_MAX))).toBe(STATUS_CHANGED_BATCH_MAX);
  });

  it('any other message type counts as one, whatever its payload holds', () => {
    expect(
      eventsIn(
        received(Messages.AlertStateChanged, {
          ruleId: 'api-down',
          fingerprint: 'f'.repeat(16),
          from: 'pending',
          to: 'firing',
          labels: { team: 'web' },
          annotations: {},
          value: null,
          at: '2026-12-02T10:00:00.000Z',
        }),
      ),
    ).toBe(1);
    // An `events` array does not make another type a batch.
    const lookalike = buildEnvelope(Messages.StatusChanged.type, Messages.StatusChanged.schemaVersion, source, {
      ...change(1),
      events: [batchEvent(1), batchEvent(2), batchEvent(3)],
    });
    expect(eventsIn(lookalike)).toBe(1);
  });

  it('falls back to one for a batch without a usable events list (never less than one)', () => {
    expect(eventsIn(malformedBatch({ events: [] }))).toBe(1);
    expect(eventsIn(malformedBatch({}))).toBe(1);
    expect(eventsIn(malformedBatch({ events: 'three' }))).toBe(1);
    expect(eventsIn(malformedBatch({ events: { length: 3 } }))).toBe(1);
    expect(eventsIn(malformedBatch({ events: null }))).toBe(1);
  });

  it('is the weigh of the subscriptions consumer, whose batches are bounded by events', () => {
    const { handleBatch } = SubscriptionEventsHandler.prototype;
    const metadata = Reflect.getMetadata(CONSUME_QUEUE_METADATA, handleBatch) as ConsumeQueueMetadata | undefined;
    expect(metadata?.options.weigh).toBe(eventsIn);
    expect(metadata?.options.batch?.maxUnits).toBeGreaterThan(1);
  });
});

describe('the subscriptions consumer during a database outage', () => {
  it("its repositories' outage error (UnavailableError) is one the bus holds and retries, not requeues toward the DLQ", () => {
    // rethrowSql turns a refused connection into this; the consumer then waits the outage out with the events held.
    expect(isTransientFailure(new UnavailableError('database unavailable', 5))).toBe(true);
    expect(isTransientFailure(new ConflictError('subscription s1 exists'))).toBe(false);
    expect(isTransientFailure(new Error('connect ECONNREFUSED 127.0.0.1:5432'))).toBe(false);
  });
});
