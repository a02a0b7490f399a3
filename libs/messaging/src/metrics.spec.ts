import { register } from 'prom-client';
import { BusMetrics } from './metrics';

describe('BusMetrics', () => {
  afterEach(() => register.clear());

  it('registers lazily, once, and survives the registry being cleared', async () => {
    const m = BusMetrics.get();
    m.published.inc(['fleetwatch.events', 'check.result']);
    m.published.inc(['fleetwatch.events', 'check.result'], 2);
    m.setConnected('aggregator', true);
    m.observeHandler('q', 0.002);
    let text = await register.metrics();
    expect(text).toMatch(
      /fleetwatch_bus_messages_published_total\{exchange="fleetwatch.events",type="check.result"\} 3/,
    );
    expect(text).toMatch(/fleetwatch_bus_connection_up\{connection="aggregator"\} 1/);
    expect(text).toMatch(/fleetwatch_bus_handler_duration_seconds_count\{queue="q"\} 1/);

    register.clear();
    m.published.inc(['fleetwatch.events', 'check.result']);
    m.observeHandler('q', 0.002);
    await new Promise((r) => setImmediate(r)); // increments reach prom-client once per event-loop turn
    text = await register.metrics();
    expect(text).toMatch(
      /fleetwatch_bus_messages_published_total\{exchange="fleetwatch.events",type="check.result"\} 1/,
    );
  });

  it('reuses metrics someone else registered under the same name', async () => {
    BusMetrics.get().acked.inc(['q', 't']);
    BusMetrics.get().acked.flush();
    BusMetrics.get().acked.inc(['q', 't']);
    expect(() => BusMetrics.get().acked.flush()).not.toThrow();
    expect(await register.metrics()).toMatch(/fleetwatch_bus_messages_acked_total\{queue="q",type="t"\} 2/);
  });

  it('reports blocked connections and what budgeted consumers hold, read at scrape time', async () => {
    const m = BusMetrics.get();
    m.setBlocked('ingest', true);
    let held = { units: 1200, bytes: 4096, messages: 3, paused: true, prefetch: 10 };
    const stop = m.trackIntake('q.obs', () => held);
    let text = await register.metrics();
    expect(text).toMatch(/fleetwatch_bus_connection_blocked\{connection="ingest"\} 1/);
    expect(text).toMatch(/fleetwatch_bus_consumer_held\{queue="q.obs",measure="units"\} 1200/);
    expect(text).toMatch(/fleetwatch_bus_consumer_held\{queue="q.obs",measure="paused"\} 1/);
    held = { ...held, units: 0, paused: false };
    text = await register.metrics();
    expect(text).toMatch(/fleetwatch_bus_consumer_held\{queue="q.obs",measure="units"\} 0/);
    stop();
    expect(await register.metrics()).not.toMatch(/fleetwatch_bus_consumer_held\{queue="q.obs"/);
  });
});
