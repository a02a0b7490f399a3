import { buildChannelRequest, type HttpChannelRequest } from './format';
import { alertOf, notificationOf } from './testing';
import {
  verifyWebhookSignature,
  WEBHOOK_LIMITS,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  webhookBody,
  webhookSignature,
  type WebhookBody,
} from './webhook';

const NOW = Date.parse('2026-01-01T00:02:00Z');
const channel = {
  type: 'webhook' as const,
  name: 'ops hook',
  enabled: true,
  sendResolved: true,
  url: 'https://hooks.example.com/in',
  headers: { 'X-Team': 'ops', 'Content-Type': 'text/plain' },
};

function request(secrets: Record<string, string>, n = notificationOf([alertOf()])): HttpChannelRequest {
  return buildChannelRequest(channel, secrets, n, { now: NOW, deliveryId: 'd-1' }) as HttpChannelRequest;
}

describe('generic webhook', () => {
  it('sends an Alertmanager-like body, signed over timestamp.body', () => {
    const req = request({ secret: 's3cret' });
    const body = JSON.parse(req.body) as WebhookBody;
    expect(body).toMatchObject({
      version: '4',
      status: 'firing',
      receiver: 'ops hook',
      truncatedAlerts: 0,
      groupLabels: { alertname: 'Target down' },
      commonLabels: { alertname: 'Target down', severity: 'critical', target: 'check:web' },
      commonAnnotations: { summary: 'Web is down' },
      externalURL: 'https://fleet.example.com',
      alerts: [
        { status: 'firing', startsAt: '2026-01-01T00:01:00.000Z', endsAt: null, fingerprint: 'abcdef0123456789' },
      ],
    });
    const ts = req.headers[WEBHOOK_TIMESTAMP_HEADER];
    expect(ts).toBe(String(NOW / 1000));
    expect(req.headers[WEBHOOK_SIGNATURE_HEADER]).toBe(webhookSignature('s3cret', ts, req.body));
    expect(req.headers[WEBHOOK_SIGNATURE_HEADER]).toMatch(/^sha256=[0-9a-f]{64}$/);
    // The channel's headers go along; they never replace ours.
    expect(req.headers['x-team']).toBe('ops');
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(req.headers['x-fleetwatch-delivery']).toBe('d-1');
    expect(req.headers['authorization']).toBeUndefined();
  });

  it.each(['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Expect', 'Proxy-Connection'])(
    'a channel header %s that the transport owns is left out',
    (name) => {
      const req = buildChannelRequest(
        { ...channel, headers: { [name]: 'x', 'X-Keep': 'y' } },
        {},
        notificationOf([alertOf()]),
        {
          now: NOW,
        },
      ) as HttpChannelRequest;
      expect(req.headers[name.toLowerCase()]).toBeUndefined();
      expect(req.headers['x-keep']).toBe('y');
    },
  );

  it('adds a bearer token only when one is stored, and no signature without a secret', () => {
    const req = request({ bearerToken: 'tok-123' });
    expect(req.headers['authorization']).toBe('Bearer tok-123');
    expect(req.headers[WEBHOOK_SIGNATURE_HEADER]).toBeUndefined();
  });

  const signed = request({ secret: 'k' });
  const ts = signed.headers[WEBHOOK_TIMESTAMP_HEADER];
  const sig = signed.headers[WEBHOOK_SIGNATURE_HEADER];
  it.each([
    ['the request as sent', 'k', signed.body, ts, sig, NOW, true],
    ['a body changed by one character', 'k', signed.body.replace('Web', 'Wep'), ts, sig, NOW, false],
    ['another key', 'k2', signed.body, ts, sig, NOW, false],
    ['a timestamp changed (replay with a fresh header)', 'k', signed.body, String(Number(ts) + 1), sig, NOW, false],
    ['a stale timestamp (6 minutes old)', 'k', signed.body, ts, sig, NOW + 6 * 60_000, false],
    ['within the tolerance (4 minutes)', 'k', signed.body, ts, sig, NOW + 4 * 60_000, true],
    ['no signature', 'k', signed.body, ts, undefined, NOW, false],
    ['no timestamp', 'k', signed.body, undefined, sig, NOW, false],
    ['a truncated signature', 'k', signed.body, ts, sig.slice(0, 20), NOW, false],
    ['a non-numeric timestamp', 'k', signed.body, 'abc', sig, NOW, false],
  ])('verification: %s', (_name, secret, body, timestamp, signature, now, ok) => {
    expect(verifyWebhookSignature({ secret, body, timestamp, signature, now })).toBe(ok);
  });

  it('keeps the body within its byte bound, counting the alerts left out', () => {
    const big = 'x'.repeat(20_000);
    const alerts = Array.from({ length: 400 }, (_, i) =>
      alertOf({ fingerprint: `f${i}`, annotations: { summary: `s${i}`, description: big } }, { target: `check:${i}` }),
    );
    const body = JSON.parse(webhookBody('r', notificationOf(alerts))) as WebhookBody;
    const size = Buffer.byteLength(webhookBody('r', notificationOf(alerts)));
    expect(size).toBeLessThanOrEqual(WEBHOOK_LIMITS.maxBodyBytes);
    expect(body.alerts.length).toBeGreaterThan(10);
    expect(body.alerts.length + body.truncatedAlerts).toBe(400);
    // Each annotation is clipped to its bound, with a mark.
    expect(body.alerts[0].annotations['description']).toHaveLength(WEBHOOK_LIMITS.maxAnnotationLength);
    expect(body.alerts[0].annotations['description'].endsWith('…')).toBe(true);
  });

  it('always carries at least one alert, and at most maxAlerts', () => {
    const many = Array.from({ length: 700 }, (_, i) => alertOf({ fingerprint: `f${i}` }));
    const body = JSON.parse(webhookBody('r', notificationOf(many))) as WebhookBody;
    expect(body.alerts).toHaveLength(WEBHOOK_LIMITS.maxAlerts);
    expect(body.truncatedAlerts).toBe(200);
  });

  it('a resolved group without sendResolved is not sent at all; a mixed one loses its resolved alerts', () => {
    const quiet = { ...channel, sendResolved: false };
    const resolved = notificationOf([alertOf({ status: 'resolved', endsAt: '2026-01-01T00:05:00.000Z' })]);
    expect(buildChannelRequest(quiet, {}, resolved, { now: NOW })).toBeNull();
    const mixed = notificationOf([alertOf(), alertOf({ status: 'resolved', fingerprint: 'r' })]);
    const req = buildChannelRequest(quiet, {}, mixed, { now: NOW }) as HttpChannelRequest;
    expect((JSON.parse(req.body) as WebhookBody).alerts.map((a) => a.status)).toEqual(['firing']);
  });
});
