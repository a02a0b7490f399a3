import { register } from 'prom-client';
import { API_KEY_USES_UNREPORTED, IngestMetrics } from './ingest.metrics';

describe('IngestMetrics', () => {
  it('registers every status-ingest series of its own on /metrics (names are a fixed interface, SPEC §11)', async () => {
    const metrics = new IngestMetrics();
    const text = await register.metrics();
    for (const [name, type] of [
      ['fleetwatch_ingest_updates_accepted_total', 'counter'],
      ['fleetwatch_ingest_requests_refused_total', 'counter'],
      ['fleetwatch_ingest_pings_accepted_total', 'counter'],
      ['fleetwatch_ingest_publish_duration_seconds', 'histogram'],
      ['fleetwatch_ingest_api_key_uses_unreported', 'gauge'],
    ])
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    expect(API_KEY_USES_UNREPORTED).toBe('fleetwatch_ingest_api_key_uses_unreported');
    expect(text).toContain(
      `# HELP ${API_KEY_USES_UNREPORTED} API keys whose newest use the broker did not confirm at the last flush (kept for the next one); 0 when all were.\n`,
    );
    metrics.apiKeyUsesUnreported.set(3);
    expect(await register.metrics()).toContain(`\n${API_KEY_USES_UNREPORTED} 3\n`);
    // A second instance (the service booted again in one process) shares the series.
    expect(new IngestMetrics().apiKeyUsesUnreported).toBe(metrics.apiKeyUsesUnreported);
  });
});
