import { EventEmitter } from 'node:events';
import { UnavailableError } from '@fleetwatch/domain';
import { BusConnection, BusPublisher, silentBusLogger } from '@fleetwatch/messaging';
import { loadIngestConfig } from '../config';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { IngressStateService } from './ingress-state.service';
import { PublishGate } from './publish-gate.service';

describe('PublishGate admission of request bodies', () => {
  const config = loadIngestConfig({
    DATABASE_URL: 'postgresql://u@127.0.0.1:5432/db',
    AMQP_URL: 'amqp://127.0.0.1:5672',
    INGEST_MAX_BODIES_IN_PROGRESS_BYTES: String(2 * 1024 * 1024),
    INGEST_BODY_LIMIT_BYTES: String(1024 * 1024),
    INGEST_RETRY_AFTER_SECONDS: '7',
  });
  // Never started: admission does not touch the broker.
  const publisher = new BusPublisher(new BusConnection({ url: config.amqpUrl, logger: silentBusLogger }));
  const gate = new PublishGate(new IngressStateService(config), publisher, new IngestMetrics(), config);
  const response = () => new EventEmitter();

  it('admits bodies up to the budget, refuses beyond with 503 + Retry-After, and releases when the response closes', () => {
    const a = response();
    const b = response();
    gate.admit(String(1024 * 1024), a);
    gate.admit(String(700 * 1024), b);
    expect(gate.bodiesHeld).toBe(1724 * 1024);
    let refusal: unknown;
    try {
      gate.admit(String(400 * 1024), response());
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(UnavailableError);
    expect(refusal).toMatchObject({ retryAfterSeconds: 7 });
    // Small requests still fit; a chunked one (no length) counts as the body limit.
    gate.admit('300', response());
    expect(() => gate.admit(undefined, response())).toThrow(UnavailableError);
    a.emit('close');
    expect(gate.bodiesHeld).toBe(700 * 1024 + 300);
    gate.admit(undefined, response());
    expect(gate.bodiesHeld).toBe(1724 * 1024 + 300);
    b.emit('close');
  });

  it('a lone body larger than the budget is still admitted when nothing else is in progress', () => {
    const fresh = new PublishGate(new IngressStateService(config), publisher, new IngestMetrics(), config);
    const r = response();
    fresh.admit(String(5 * 1024 * 1024), r);
    expect(fresh.bodiesHeld).toBe(1024 * 1024); // capped at the body limit
    r.emit('close');
    expect(fresh.bodiesHeld).toBe(0);
  });
});
