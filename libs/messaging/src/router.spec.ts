import { Messages, type Envelope } from '@fleetwatch/contracts';
import type { DeliveryContext } from './delivery';
import { PermanentError } from './errors';
import { MessageRouter } from './router';

const ctx = { queue: 'q' } as DeliveryContext;
const env = (type: string): Envelope => ({
  id: 'i',
  type,
  schemaVersion: 1,
  occurredAt: '2025-01-01T00:00:00.000Z',
  source: { site: 's', service: 'tool' },
  correlationId: 'i',
  payload: {},
});

describe('MessageRouter', () => {
  it('dispatches by type and dead-letters (PermanentError) types without a route', async () => {
    const got: string[] = [];
    const handler = new MessageRouter()
      .on(Messages.CheckResult, (e) => void got.push(`result ${e.payload.checkId ?? ''}`))
      .on(Messages.HostMetrics, (e) => void got.push(`host ${e.type}`))
      .handler();
    await handler({ ...env('check.result'), payload: { checkId: 'c1' } }, ctx);
    await handler(env('host.metrics'), ctx);
    expect(got).toEqual(['result c1', 'host host.metrics']);
    expect(() => handler(env('status.changed'), ctx)).toThrow(PermanentError);
  });

  it('refuses two routes for one type', () => {
    expect(() =>
      new MessageRouter().on(Messages.CheckResult, () => undefined).on(Messages.CheckResult, () => undefined),
    ).toThrow(/already registered/);
  });
});
