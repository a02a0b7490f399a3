import { contentSecurityPolicy } from './security-headers';

describe('contentSecurityPolicy', () => {
  it.each([
    ['fleetwatch.example:3000', '/', "connect-src 'self' ws://fleetwatch.example:3000 wss://fleetwatch.example:3000;"],
    ['[::1]:3000', '/targets', "connect-src 'self' ws://[::1]:3000 wss://[::1]:3000;"],
    [undefined, '/', "connect-src 'self';"],
    ["x; script-src 'unsafe-inline'", '/', "connect-src 'self';"],
    ['a b', '/', "connect-src 'self';"],
  ])('host %s on %s → %s', (host, path, connect) => {
    const csp = contentSecurityPolicy(host, path);
    expect(csp).toContain(connect);
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
  });

  it.each([
    ['/api/docs', true],
    ['/api/docs/swagger-ui.css', true],
    ['/api/docsx', false],
    ['/', false],
  ])('inline styles only for Swagger UI: %s → %s', (path, inline) => {
    const csp = contentSecurityPolicy('h:1', path);
    expect(csp.includes("style-src 'self' 'unsafe-inline'")).toBe(inline);
    expect(csp).toMatch(/script-src 'self';/);
  });
});
