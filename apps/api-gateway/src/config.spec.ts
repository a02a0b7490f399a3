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
