import fc from 'fast-check';
import { alertStateChangedPayloadSchema } from '@fleetwatch/contracts';
import type { BusPublisher } from '@fleetwatch/messaging';
import type { AlertEventRecord, AlertEventsRepository } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AlertEventsRelay, alertStateChangedPayloadOf, eventLabelsOf } from './alert-events.relay';

const event = (over: Partial<AlertEventRecord> = {}): AlertEventRecord => ({
  id: '01890000-0000-7000-8000-000000000001',
  ruleId: 'default.target-down',
  targetId: 'check:web',
  fingerprint: '0123456789abcdef',
  from: 'pending',
  to: 'firing',
  labels: { alertname: 'Target down', target: 'check:web', severity: 'critical' },
  value: null,
  at: Date.UTC(2026, 11, 6, 12),
  endReason: null,
  absentSince: null,
  ...over,
});

describe('alert.state-changed payloads', () => {
  it('whatever labels an alert holds, its event passes the contract (names it refuses left out, values cut)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(
            fc.string({ maxLength: 140 }),
            fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/),
            fc.constantFrom('constructor', 'prototype', '__proto__', 'toString', 'alertname'),
          ),
          fc.oneof(
            fc.string({ maxLength: 1500, unit: 'binary' }),
            fc.constantFrom('a\u0000b', '\ud800', 'x\udfffy', ''),
          ),
          { maxKeys: 90 },
        ),
        fc.oneof(fc.double(), fc.constant(null)),
        (labels, value) => {
          const payload = alertStateChangedPayloadOf(event({ labels, value }));
          expect(alertStateChangedPayloadSchema.safeParse(payload).success).toBe(true);
          for (const k of Object.keys(payload.labels)) expect(k in labels).toBe(true);
        },
      ),
    );
  });

  it("carries why an alert ended; a message without it (an older aggregator's) or with a reason unknown here parses", () => {
    const ended = alertStateChangedPayloadOf(event({ from: 'firing', to: 'resolved', endReason: 'series_absent' }));
    expect(ended.endReason).toBe('series_absent');
    expect(alertStateChangedPayloadSchema.parse(ended).endReason).toBe('series_absent');
    const fired = alertStateChangedPayloadOf(event());
    expect('endReason' in fired).toBe(false);
    // As an aggregator before end reasons published it: no such field.
    const older = { ...ended } as Record<string, unknown>;
    delete older['endReason'];
    const parsedOlder = alertStateChangedPayloadSchema.safeParse(older);
    expect(parsedOlder.success && parsedOlder.data.endReason).toBeUndefined();
    // A newer aggregator's reason this version does not know: read as none, never a dead letter.
    const newer = alertStateChangedPayloadSchema.safeParse({ ...ended, endReason: 'target_melted' });
    expect(newer.success).toBe(true);
    expect(newer.success && newer.data.endReason).toBeUndefined();
  });

  it('keeps alertname, target and severity first when an alert has more labels than the contract carries', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 100; i++) many[`l${i}`] = String(i);
    const labels = eventLabelsOf({ ...many, alertname: 'A', target: 'check:x', severity: 'warning' });
    expect(Object.keys(labels)).toHaveLength(64);
    expect(labels).toMatchObject({ alertname: 'A', target: 'check:x', severity: 'warning', l0: '0' });
    expect(eventLabelsOf({ 'bad name': 'x', ok: 'y' })).toEqual({ ok: 'y' });
  });
});

describe('AlertEventsRelay', () => {
  const logger = { warn: jest.fn(), error: jest.fn() } as unknown as Logger;

  it('an event no contract accepts is dropped from the outbox (kept in history), the others published', async () => {
    const published: string[] = [];
    const marked: string[][] = [];
    const publisher = {
      publishManySettled: async (reqs: Array<{ options?: { id?: string } }>) =>
        reqs.map((r) => {
          published.push(r.options?.id as string);
          return { ok: true, envelope: {} };
        }),
    } as unknown as BusPublisher;
    const repo = {
      markPublished: async (ids: string[]) => void marked.push([...ids]),
    } as unknown as AlertEventsRepository;
    const relay = new AlertEventsRelay(publisher, repo, logger);
    const bad = event({ id: '01890000-0000-7000-8000-000000000002', ruleId: 'r'.repeat(129) });
    expect(await relay.publish([event(), bad])).toBe(1);
    expect(published).toEqual([event().id]);
    expect(marked).toEqual([[bad.id], [event().id]]);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });

  it('what the broker does not confirm stays in the outbox', async () => {
    const marked: string[][] = [];
    const publisher = {
      publishManySettled: async (reqs: unknown[]) =>
        reqs.map((_, i) =>
          i === 0 ? { ok: true, envelope: {} } : { ok: false, envelope: {}, error: new Error('nack') },
        ),
    } as unknown as BusPublisher;
    const repo = {
      markPublished: async (ids: string[]) => void marked.push([...ids]),
    } as unknown as AlertEventsRepository;
    const relay = new AlertEventsRelay(publisher, repo, logger);
    const second = event({ id: '01890000-0000-7000-8000-000000000003' });
    expect(await relay.publish([event(), second])).toBe(1);
    expect(marked).toEqual([[event().id]]);
  });
});
