import { parseCookies, serializeCookie } from './cookies';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  checkOrigin,
  csrfTokenFor,
  csrfTokenMatches,
  isSafeMethod,
  requestOrigin,
  warnOtherSchemeOnce,
} from './browser-session';

describe('checkOrigin', () => {
  const allowed = ['https://ops.example', 'http://localhost:5173'];
  it.each([
    // [origin, referer, the request's own origin, required, ok]
    ['http://gw.local:3000', undefined, 'http://gw.local:3000', false, true],
    ['http://GW.local:3000', undefined, 'http://gw.local:3000', true, true],
    // Same host and port, other scheme: another origin (a page served over https is not this http gateway).
    ['https://gw.local:3000', undefined, 'http://gw.local:3000', true, false],
    ['https://gw.local:3000', undefined, 'http://gw.local:3000', false, false],
    ['http://gw.local', undefined, 'https://gw.local', true, false],
    ['https://gw.local', undefined, 'https://gw.local', true, true],
    ['https://gw.local:443', undefined, 'https://gw.local', true, true],
    [undefined, 'https://gw.local:3000/targets', 'http://gw.local:3000', false, false],
    ['https://ops.example', undefined, 'http://gw.local:3000', true, true],
    ['https://ops.example/', undefined, 'http://gw.local:3000', true, true],
    ['http://ops.example', undefined, 'http://gw.local:3000', true, false],
    ['http://localhost:5173', undefined, 'http://gw.local:3000', true, true],
    ['https://evil.example', undefined, 'http://gw.local:3000', false, false],
    ['https://gw.local:3000.evil.example', undefined, 'http://gw.local:3000', false, false],
    ['http://gw.local:3001', undefined, 'http://gw.local:3000', false, false],
    ['null', undefined, 'http://gw.local:3000', false, false],
    ['file:///etc/passwd', undefined, 'http://gw.local:3000', false, false],
    [undefined, 'https://evil.example/page', 'http://gw.local:3000', false, false],
    [undefined, 'http://gw.local:3000/targets', 'http://gw.local:3000', false, true],
    [undefined, undefined, 'http://gw.local:3000', false, true],
    [undefined, undefined, 'http://gw.local:3000', true, false],
    [undefined, 'http://gw.local:3000/', 'http://gw.local:3000', true, false],
    ['http://gw.local:3000', undefined, null, true, false],
  ])('origin %s referer %s self %s required %s → %s', (origin, referer, self, required, ok) => {
    expect(checkOrigin({ origin, referer }, self, allowed, required).ok).toBe(ok);
  });

  it.each([
    // [origin, the request's own origin, refused for its scheme only]
    ['https://gw.local', 'http://gw.local', true], // TLS proxy on 443 forwarding Host: gw.local to an http gateway
    ['https://gw.local:3000', 'http://gw.local:3000', true],
    ['http://gw.local', 'https://gw.local', true],
    ['https://gw.local:8443', 'http://gw.local', false],
    ['https://other.local', 'http://gw.local', false],
    ['https://evil.example', 'http://gw.local:3000', false],
  ])('origin %s self %s: refused for its scheme only → %s', (origin, self, otherScheme) => {
    const verdict = checkOrigin({ origin }, self, allowed, true);
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.otherSchemeOnly === true).toBe(otherScheme);
  });

  it('a refusal for the scheme only is logged once per process, naming GATEWAY_TRUST_PROXY and GATEWAY_WS_ALLOWED_ORIGINS', () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const self = 'http://gw.local';
    const foreign = checkOrigin({ origin: 'https://evil.example' }, self, allowed, true);
    expect(warnOtherSchemeOnce(logger, foreign, self)).toBe(false);
    const scheme = checkOrigin({ origin: 'https://gw.local' }, self, allowed, true);
    expect(warnOtherSchemeOnce(logger, scheme, self)).toBe(true);
    expect(warnOtherSchemeOnce(logger, scheme, self)).toBe(false);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]) as { msg: string; level: number; requestOrigin: string };
    expect(line.level).toBe(40);
    expect(line.msg).toMatch(/GATEWAY_TRUST_PROXY/);
    expect(line.msg).toMatch(/GATEWAY_WS_ALLOWED_ORIGINS/);
    expect(line.requestOrigin).toBe(self);
  });

  it.each([
    [{ protocol: 'http', host: 'gw.local:3000' }, 'http://gw.local:3000'],
    [{ protocol: 'https', host: 'GW.local:443' }, 'https://gw.local'],
    [{ protocol: 'http', host: 'gw.local:80' }, 'http://gw.local'],
    [{ protocol: 'https', host: '[::1]:3000' }, 'https://[::1]:3000'],
    [{ protocol: 'http', host: undefined }, null],
    [{ protocol: 'http', host: 'bad host/x' }, null],
  ])('requestOrigin(%j) is %s', (request, origin) => expect(requestOrigin(request)).toBe(origin));
});

describe('CSRF token', () => {
  const session = 'fws_0_' + 'a'.repeat(43);
  it('is derived from the session token and checked in constant time', () => {
    const token = csrfTokenFor(session);
    expect(token).not.toContain(session);
    expect(csrfTokenMatches(session, token)).toBe(true);
    expect(csrfTokenMatches(session, undefined)).toBe(false);
    expect(csrfTokenMatches(session, '')).toBe(false);
    expect(csrfTokenMatches(session, token.slice(1))).toBe(false);
    expect(csrfTokenMatches('fws_0_' + 'b'.repeat(43), token)).toBe(false);
  });

  it.each([
    ['GET', true],
    ['head', true],
    ['OPTIONS', true],
    ['POST', false],
    ['PUT', false],
    ['PATCH', false],
    ['DELETE', false],
  ])('%s safe: %s', (method, safe) => expect(isSafeMethod(method)).toBe(safe));
});

describe('cookies', () => {
  it.each([
    [undefined, {}],
    ['fw_session=fws_1_abc; fw_csrf=xyz', { fw_session: 'fws_1_abc', fw_csrf: 'xyz' }],
    ['a=1;a=2', { a: '1' }],
    ['junk; =v; b="q"; c', { b: 'q' }],
    ['bad name=1; ok=2', { ok: '2' }],
  ])('parses %s', (header, expected) => expect(parseCookies(header)).toEqual(expected));

  it('serialises with the session attributes, and refuses values that would need encoding', () => {
    const a = { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: true, maxAge: 60 };
    expect(serializeCookie('fw_session', 'fws_1_x', a)).toBe(
      'fw_session=fws_1_x; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict',
    );
    expect(serializeCookie('fw_csrf', '', { ...a, httpOnly: false, secure: false, maxAge: 0 })).toBe(
      'fw_csrf=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict',
    );
    expect(() => serializeCookie('fw_session', 'a;b', a)).toThrow(TypeError);
  });
});
