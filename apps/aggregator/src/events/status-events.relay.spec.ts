import {
  Messages,
  STATUS_CHANGED_BATCH_MAX,
  statusChangedBatchPayloadSchema,
  TargetKind,
  TargetStatus,
  uuidv7,
} from '@fleetwatch/contracts';
import {
  BusUnavailableError,
  InvalidMessageError,
  type BusPublisher,
  type PublishOutcome,
  type PublishRequest,
} from '@fleetwatch/messaging';
import { createLogger } from '@fleetwatch/observability';
import type { StatusEventRecord, StatusEventsRepository } from '@fleetwatch/persistence';
import { SerialLane } from '../status/serial-lane';
import { StatusEventsRelay } from './status-events.relay';

/**
 * The publisher's side the relay uses, recording what it was asked to send; `fail` picks messages to refuse. Like
 * BusPublisher, it validates every payload first and refuses the whole call (InvalidMessageError) for one invalid.
 */
class RecordingPublisher {
  readonly sent: PublishRequest[][] = [];
  constructor(private readonly fail: (index: number) => boolean = () => false) {}
  isConnected(): boolean {
    return true;
  }
  async publishManySettled(requests: readonly PublishRequest[]): Promise<PublishOutcome[]> {
    for (const r of requests)
      if (!r.definition.payload.safeParse(r.payload).success)
        throw new InvalidMessageError(`invalid ${r.definition.type} payload`, 'schema');
    this.sent.push([...requests]);
    return requests.map((r, i) => {
      const envelope = { id: uuidv7(), type: r.definition.type, payload: r.payload } as PublishOutcome['envelope'];
      return this.fail(i)
        ? { ok: false, envelope, error: new BusUnavailableError('connection closed before the confirm') }
        : { ok: true, envelope };
    });
  }
}

class RecordingEvents {
  readonly marked: string[][] = [];
  async markPublished(ids: readonly string[]): Promise<void> {
    this.marked.push([...ids]);
  }
}

function event(i: number, overrides: Partial<StatusEventRecord> = {}): StatusEventRecord {
  return {
    id: uuidv7(),
    targetId: `instance:t-${i}`,
    kind: TargetKind.Instance,
    location: i % 2 ? null : 'push',
    from: TargetStatus.Up,
    to: TargetStatus.Down,
    reason: `exited ${i}`,
    at: 1_796_000_000_000 + i,
    sequence: i + 1,
    ...overrides,
  };
}

function relayWith(publisher: RecordingPublisher, events: RecordingEvents): StatusEventsRelay {
  return new StatusEventsRelay(
    publisher as unknown as BusPublisher,
    events as unknown as StatusEventsRepository,
    new SerialLane(),
    createLogger('test', 'silent'),
  );
}

describe('StatusEventsRelay.publish', () => {
  it('publishes a commit’s events as status.changed.batch messages of at most STATUS_CHANGED_BATCH_MAX, in order, each event with its id', async () => {
    const publisher = new RecordingPublisher();
    const store = new RecordingEvents();
    const events = Array.from({ length: 2 * STATUS_CHANGED_BATCH_MAX + 7 }, (_, i) => event(i));

    expect(await relayWith(publisher, store).publish(events)).toBe(events.length);

    expect(publisher.sent).toHaveLength(1);
    const [requests] = publisher.sent;
    expect(requests.map((r) => r.definition.type)).toEqual(Array(3).fill(Messages.StatusChangedBatch.type));
    const carried = requests.flatMap((r) => statusChangedBatchPayloadSchema.parse(r.payload).events);
    expect(requests.map((r) => statusChangedBatchPayloadSchema.parse(r.payload).events.length)).toEqual([
      STATUS_CHANGED_BATCH_MAX,
      STATUS_CHANGED_BATCH_MAX,
      7,
    ]);
    expect(carried.map((e) => e.eventId)).toEqual(events.map((e) => e.id));
    expect(carried[3]).toEqual({
      eventId: events[3].id,
      targetId: 'instance:t-3',
      kind: TargetKind.Instance,
      location: null,
      from: TargetStatus.Up,
      to: TargetStatus.Down,
      reason: 'exited 3',
      at: new Date(events[3].at).toISOString(),
      sequence: 4,
    });
    // Each message gets an id of its own (a later relay may regroup what a failed publish left behind).
    expect(requests.every((r) => r.options?.id === undefined)).toBe(true);
    expect(store.marked).toEqual([events.map((e) => e.id)]);
  });

  it('leaves the events of a message the broker did not confirm in the outbox, and only those', async () => {
    const publisher = new RecordingPublisher((i) => i === 1);
    const store = new RecordingEvents();
    const events = Array.from({ length: 2 * STATUS_CHANGED_BATCH_MAX + 1 }, (_, i) => event(i));

    expect(await relayWith(publisher, store).publish(events)).toBe(STATUS_CHANGED_BATCH_MAX + 1);

    const kept = [...events.slice(0, STATUS_CHANGED_BATCH_MAX), events[2 * STATUS_CHANGED_BATCH_MAX]];
    expect(store.marked).toEqual([kept.map((e) => e.id)]);
  });

  it('drops an event no schema accepts from the outbox (loudly) and publishes the rest', async () => {
    const publisher = new RecordingPublisher();
    const store = new RecordingEvents();
    const bad = event(1, { reason: 'x'.repeat(2000) });
    const good = [event(0), event(2)];

    expect(await relayWith(publisher, store).publish([good[0], bad, good[1]])).toBe(2);

    expect(store.marked).toEqual([[bad.id], good.map((e) => e.id)]);
    const [requests] = publisher.sent;
    expect(requests).toHaveLength(1);
    expect(statusChangedBatchPayloadSchema.parse(requests[0].payload).events.map((e) => e.eventId)).toEqual(
      good.map((e) => e.id),
    );
  });
});

/** An outbox in insertion (commit) order: what pendingPublication reads and markPublished deletes. */
class Outbox extends RecordingEvents {
  readonly rows: StatusEventRecord[];
  constructor(rows: readonly StatusEventRecord[]) {
    super();
    this.rows = [...rows];
  }
  async pendingPublication(limit: number): Promise<StatusEventRecord[]> {
    return this.rows.slice(0, limit);
  }
  override async markPublished(ids: readonly string[]): Promise<void> {
    await super.markPublished(ids);
    const gone = new Set(ids);
    this.rows.splice(0, this.rows.length, ...this.rows.filter((e) => !gone.has(e.id)));
  }
}

describe('StatusEventsRelay after a partial confirm', () => {
  it('re-sends only the unconfirmed message’s events, once, after the later ones went out: order on the bus is not kept, each event keeps its sequence', async () => {
    // One target's commit of 2 × MAX + 1 events; the first message is not confirmed (a nack, a connection lost).
    const events = Array.from({ length: 2 * STATUS_CHANGED_BATCH_MAX + 1 }, (_, i) =>
      event(i, { targetId: 'instance:one' }),
    );
    let calls = 0;
    const publisher = new RecordingPublisher((i) => calls === 1 && i === 0);
    const original = publisher.publishManySettled.bind(publisher);
    publisher.publishManySettled = (requests) => {
      calls++;
      return original(requests);
    };
    const outbox = new Outbox(events);
    const relay = relayWith(publisher, outbox);

    await relay.publishInOrder(events);
    expect(outbox.rows.map((e) => e.id)).toEqual(events.slice(0, STATUS_CHANGED_BATCH_MAX).map((e) => e.id));
    expect(await relay.relayPending()).toBe(STATUS_CHANGED_BATCH_MAX);
    expect(outbox.rows).toEqual([]);

    // Confirmed on the bus in this order: the later messages first, then the first one's events, re-sent.
    const confirmed = publisher.sent
      .flatMap((requests, call) => requests.filter((_, i) => !(call === 0 && i === 0)))
      .flatMap((r) => statusChangedBatchPayloadSchema.parse(r.payload).events);
    expect(confirmed.map((e) => e.sequence)).toEqual([
      ...events.slice(STATUS_CHANGED_BATCH_MAX).map((e) => e.sequence),
      ...events.slice(0, STATUS_CHANGED_BATCH_MAX).map((e) => e.sequence),
    ]);
    // Every event confirmed exactly once, with its id: a consumer ordering by sequence gets the commit's order back.
    expect(new Set(confirmed.map((e) => e.eventId)).size).toBe(events.length);
    expect([...confirmed].sort((a, b) => a.sequence - b.sequence).map((e) => e.eventId)).toEqual(
      events.map((e) => e.id),
    );
  });
});
