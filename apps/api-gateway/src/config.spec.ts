import { loadGatewayConfig } from './config';

// The gateway's environment, validated once: here the WebSocket/CSRF origin allow-list.
const base = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fw',
  REDIS_URL: 'redis://127.0.0.1:6379',
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
};

describe('gateway config: GATEWAY_WS_ALLOWED_ORIGINS', () => {
  it('normalises origins as request Origins are (case, default ports), so a listed origin matches', () => {
    const config = loadGatewayConfig({
      ...base,
      GATEWAY_WS_ALLOWED_ORIGINS: ' https://OPS.example:443 , http://localhost:5173,http://a.example:80',
    });
    expect(config.allowedOrigins).toEqual(['https://ops.example', 'http://localhost:5173', 'http://a.example']);
  });

  it('refuses what is not an origin', () => {
    expect(() => loadGatewayConfig({ ...base, GATEWAY_WS_ALLOWED_ORIGINS: 'https://ops.example/path' })).toThrow(
      /GATEWAY_WS_ALLOWED_ORIGINS/,
    );
  });
});

describe('gateway config: FLEETWATCH_ADMIN_PASSWORD (SPEC §11)', () => {
  // "its password is FLEETWATCH_ADMIN_PASSWORD when set": whatever it is, the site starts and admin signs in with it
  // (the first start warns when it is short); new passwords set through the API keep their 8-character minimum.
  it.each(['admin', 'secret', 'x', 'a long enough password'])('takes %j as it is', (password) => {
    expect(loadGatewayConfig({ ...base, FLEETWATCH_ADMIN_PASSWORD: password }).adminPassword).toBe(password);
  });

  it('unset or empty: none (a generated one is printed at the first start)', () => {
    expect(loadGatewayConfig(base).adminPassword).toBeUndefined();
    expect(loadGatewayConfig({ ...base, FLEETWATCH_ADMIN_PASSWORD: '' }).adminPassword).toBeUndefined();
  });

  it('refuses one no sign-in could present (over 1024 characters), naming it', () => {
    expect(() => loadGatewayConfig({ ...base, FLEETWATCH_ADMIN_PASSWORD: 'p'.repeat(1025) })).toThrow(
      /FLEETWATCH_ADMIN_PASSWORD/,
    );
  });
});

describe('gateway config: WebSocket socket cap and pings', () => {
  it('defaults to 16 sockets per session or API key and a ping every 30 s', () => {
    const config = loadGatewayConfig(base);
    expect(config.wsMaxSocketsPerPrincipal).toBe(16);
    expect(config.wsPingIntervalMs).toBe(30_000);
  });

  it('caps a user at 4 × the per-session cap unless told, and waits 10 s between resyncs', () => {
    expect(loadGatewayConfig(base).wsMaxSocketsPerUser).toBe(64);
    expect(loadGatewayConfig({ ...base, GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL: '5' }).wsMaxSocketsPerUser).toBe(20);
    expect(loadGatewayConfig({ ...base, GATEWAY_WS_MAX_SOCKETS_PER_USER: '7' }).wsMaxSocketsPerUser).toBe(7);
    expect(loadGatewayConfig(base).wsResyncMinIntervalMs).toBe(10_000);
    expect(loadGatewayConfig({ ...base, GATEWAY_WS_RESYNC_MIN_INTERVAL_MS: '500' }).wsResyncMinIntervalMs).toBe(500);
  });

  it('reads them from the environment', () => {
    const config = loadGatewayConfig({
      ...base,
      GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL: '4',
      GATEWAY_WS_PING_INTERVAL_MS: '5000',
    });
    expect([config.wsMaxSocketsPerPrincipal, config.wsPingIntervalMs]).toEqual([4, 5000]);
  });

  it.each([
    ['GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL', '0'],
    ['GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL', 'many'],
    ['GATEWAY_WS_PING_INTERVAL_MS', '10'],
    ['GATEWAY_WS_PING_INTERVAL_MS', '1e9'],
    ['GATEWAY_WS_MAX_SOCKETS_PER_USER', '0'],
    ['GATEWAY_WS_MAX_SOCKETS_PER_USER', 'lots'],
    ['GATEWAY_WS_MAX_SOCKETS_PER_USER', '1000000'],
    ['GATEWAY_WS_RESYNC_MIN_INTERVAL_MS', '0'],
  ])('refuses %s=%s naming it', (name, value) => {
    expect(() => loadGatewayConfig({ ...base, [name]: value })).toThrow(new RegExp(name));
  });
});

describe('gateway config: FLEETWATCH_COMPONENT_URLS', () => {
  it('unset: every other service at 127.0.0.1 on the port its variable gives', () => {
    expect(loadGatewayConfig({ ...base, AGGREGATOR_PORT: '4003' }).componentUrls).toEqual({
      'status-ingest': 'http://127.0.0.1:3001',
      collector: 'http://127.0.0.1:3002',
      aggregator: 'http://127.0.0.1:4003',
      'sync-orchestrator': 'http://127.0.0.1:3004',
    });
  });

  it('takes service=URL pairs (trailing slashes dropped); a service not named is not asked; none asks none', () => {
    expect(
      loadGatewayConfig({
        ...base,
        FLEETWATCH_COMPONENT_URLS: ' collector=http://collector:3002/ , aggregator = https://agg.internal/fw ',
      }).componentUrls,
    ).toEqual({
      'status-ingest': null,
      collector: 'http://collector:3002',
      aggregator: 'https://agg.internal/fw',
      'sync-orchestrator': null,
    });
    expect(loadGatewayConfig({ ...base, FLEETWATCH_COMPONENT_URLS: 'none' }).componentUrls).toEqual({
      'status-ingest': null,
      collector: null,
      aggregator: null,
      'sync-orchestrator': null,
    });
  });

  it.each([
    ['api-gateway=http://x:3000', /name one of status-ingest, collector, aggregator, sync-orchestrator/],
    ['colector=http://x:3002', /"colector=http:\/\/x:3002": name one of/],
    ['collector', /collector: "" is not a base URL/],
    ['collector=http://a:1,collector=http://b:1', /collector is named twice/],
    ['collector=ftp://a:1', /collector: "ftp:\/\/a:1" is not a base URL such as http:\/\/collector:3002/],
    ['collector=http://a:1?x=1', /is not a base URL/],
    ['collector=', /is not a base URL/],
  ])('refuses %j, saying why', (value, why) => {
    expect(() => loadGatewayConfig({ ...base, FLEETWATCH_COMPONENT_URLS: value })).toThrow(why);
    expect(() => loadGatewayConfig({ ...base, FLEETWATCH_COMPONENT_URLS: value })).toThrow(/FLEETWATCH_COMPONENT_URLS/);
  });
});

describe('gateway config: GATEWAY_CREDENTIAL_LOOKUP_*', () => {
  it('defaults to a 2 s wait and 64 lookups at once', () => {
    const config = loadGatewayConfig(base);
    expect(config.credentialLookupTimeoutMs).toBe(2000);
    expect(config.credentialLookupMaxConcurrent).toBe(64);
  });

  it.each([
    ['GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS', '50'],
    ['GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS', 'soon'],
    ['GATEWAY_CREDENTIAL_LOOKUP_MAX_CONCURRENT', '0'],
    ['GATEWAY_CREDENTIAL_LOOKUP_MAX_CONCURRENT', '1.5'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadGatewayConfig({ ...base, [name]: value })).toThrow(name);
  });
});
