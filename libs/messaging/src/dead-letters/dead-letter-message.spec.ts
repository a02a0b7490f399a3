import type { MessageProperties } from 'amqplib';
import { BusHeader, QueueName } from '@fleetwatch/contracts';
import { DeadLetterHeader } from '../delivery';
import { FRESH_COPIES_HEADER } from '../settlement';
import {
  decodeBody,
  describeDeadLetter,
  ReplayHeader,
  replayProperties,
  siteDeadLetterQueues,
  sourceQueueOf,
  toDeadLetterQueue,
} from './dead-letter-message';

const props = (p: Partial<MessageProperties>): MessageProperties =>
  ({
    contentType: undefined,
    contentEncoding: undefined,
    headers: undefined,
    deliveryMode: undefined,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: undefined,
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
    ...p,
  }) as MessageProperties;

const DLQ = 'fleetwatch.aggregator.observations.dlq';

describe('dead-letter queue names', () => {
  it('has one DLQ per product queue', () => {
    expect(siteDeadLetterQueues()).toEqual([
      ...Object.values(QueueName).map((q) => `${q}.dlq`),
      ...Array.from({ length: 8 }, (_, i) => `fleetwatch.aggregator.observations.shard-0${i}.dlq`),
    ]);
  });

  it.each([
    ['fleetwatch.aggregator.observations', DLQ],
    [DLQ, DLQ],
  ])('toDeadLetterQueue(%s) = %s', (input, dlq) => expect(toDeadLetterQueue(input)).toBe(dlq));

  it('derives the source queue from the DLQ name and refuses other names', () => {
    expect(sourceQueueOf(DLQ)).toBe('fleetwatch.aggregator.observations');
    expect(() => sourceQueueOf('fleetwatch.aggregator.observations')).toThrow(RangeError);
    expect(() => sourceQueueOf('.dlq')).toThrow(RangeError);
  });
});

describe('describeDeadLetter', () => {
  it('reads the consumer’s headers and the set-aside ones', () => {
    const summary = describeDeadLetter(DLQ, {
      content: Buffer.from('{}'),
      properties: props({
        messageId: 'm-1',
        type: 'status.update',
        headers: {
          [BusHeader.DeadLetterReason]: 'labels: NUL',
          [BusHeader.DeadLetterQueue]: 'fleetwatch.aggregator.observations',
          [DeadLetterHeader.Cause]: 'isolated',
          [DeadLetterHeader.DeliveryCount]: 0,
          [DeadLetterHeader.DeadLetteredAt]: '2026-01-01T00:00:00.000Z',
          [BusHeader.ApiKeyId]: 'key-1',
          [BusHeader.UpdateId]: 'u-1',
          [ReplayHeader.Count]: 2,
        },
      }),
    });
    expect(summary).toEqual({
      deadLetterQueue: DLQ,
      sourceQueue: 'fleetwatch.aggregator.observations',
      messageId: 'm-1',
      type: 'status.update',
      cause: 'isolated',
      reason: 'labels: NUL',
      deadLetteredAt: '2026-01-01T00:00:00.000Z',
      deliveryCount: 0,
      apiKeyId: 'key-1',
      updateId: 'u-1',
      replays: 2,
      bytes: 2,
    });
  });

  it('falls back to RabbitMQ’s x-death when the broker dead-lettered the message', () => {
    const summary = describeDeadLetter(DLQ, {
      content: Buffer.alloc(10),
      properties: props({
        messageId: 'm-2',
        headers: {
          [BusHeader.MessageType]: 'check.result',
          // As amqplib decodes it; RabbitMQ 3.10+ also says delivery_limit, which amqplib's types do not list.
          'x-death': [
            {
              reason: 'delivery_limit',
              queue: 'fleetwatch.aggregator.observations',
              count: 6,
              time: { '!': 'timestamp', value: 1_767_225_600 },
              exchange: 'fleetwatch.events',
              'routing-keys': ['event.check.result'],
            },
          ],
        } as Record<string, unknown>,
      }),
    });
    expect(summary).toMatchObject({
      type: 'check.result',
      cause: 'delivery_limit',
      reason: 'dead-lettered by RabbitMQ (delivery_limit) from fleetwatch.aggregator.observations',
      deadLetteredAt: '2026-01-01T00:00:00.000Z',
      deliveryCount: 6,
      apiKeyId: null,
      replays: 0,
      bytes: 10,
    });
  });

  it('copes with a message that has no properties at all', () => {
    expect(describeDeadLetter(DLQ, { content: Buffer.from('x'), properties: props({}) })).toMatchObject({
      messageId: null,
      type: null,
      cause: null,
      reason: null,
      deadLetteredAt: null,
      deliveryCount: null,
    });
  });
});

describe('replayProperties', () => {
  it('keeps id, type, content properties and own headers; drops dead-letter annotations, userId and expiration; counts the replay', () => {
    const out = replayProperties(
      props({
        messageId: 'm-1',
        type: 'check.result',
        contentType: 'application/json',
        correlationId: 'c-1',
        timestamp: 1_767_225_600,
        appId: 'collector',
        userId: 'guest',
        expiration: '60000',
        headers: {
          [BusHeader.SchemaVersion]: 1,
          [BusHeader.MessageType]: 'check.result',
          [BusHeader.UpdateId]: 'u-1',
          [BusHeader.DeadLetterReason]: 'boom',
          [BusHeader.DeadLetterQueue]: 'q',
          [DeadLetterHeader.Cause]: 'permanent',
          [DeadLetterHeader.DeliveryCount]: 3,
          [DeadLetterHeader.DeadLetteredAt]: 'x',
          'x-delivery-count': 4,
          'x-death': [],
          'x-first-death-queue': 'q',
          // A message dead-lettered at the fresh-copy cap starts afresh: kept, it would come straight back.
          [FRESH_COPIES_HEADER]: 10,
          [ReplayHeader.Count]: 1,
        },
      }),
      new Date('2026-01-02T00:00:00.000Z'),
    );
    expect(out).toEqual({
      persistent: true,
      mandatory: true,
      messageId: 'm-1',
      type: 'check.result',
      contentType: 'application/json',
      correlationId: 'c-1',
      timestamp: 1_767_225_600,
      appId: 'collector',
      headers: {
        [BusHeader.SchemaVersion]: 1,
        [BusHeader.MessageType]: 'check.result',
        [BusHeader.UpdateId]: 'u-1',
        [ReplayHeader.Count]: 2,
        [ReplayHeader.ReplayedAt]: '2026-01-02T00:00:00.000Z',
      },
    });
  });
});

describe('decodeBody', () => {
  it('parses JSON and shows anything else as base64', () => {
    expect(decodeBody(Buffer.from('{"a":1}'))).toEqual({ json: { a: 1 } });
    expect(decodeBody(Buffer.from([0xff, 0xfe, 0x00]))).toEqual({ base64: '//4A' });
    expect(decodeBody(Buffer.from('not json'))).toEqual({ base64: Buffer.from('not json').toString('base64') });
  });
});
