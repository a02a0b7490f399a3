import type { ChannelConfig } from '@fleetwatch/contracts';
import { deliveryMessageId, emailMessage, EMAIL_LIMITS } from './email';
import {
  buildChannelRequest,
  channelSecretValues,
  scrubSecrets,
  WITHHELD_TEXT,
  type EmailChannelRequest,
  type HttpChannelRequest,
} from './format';
import { groupDedupKey } from './notification';
import { PAGERDUTY_LIMITS, pagerDutyEvent, pagerDutySeverity, type PagerDutyEvent } from './pagerduty';
import { slackMessage, SLACK_LIMITS, type SlackMessage } from './slack';
import { defuseMentions } from './text';
import { ADAPTIVE_CARD_CONTENT_TYPE, TEAMS_LIMITS, teamsMessage } from './teams';
import { alertOf, notificationOf } from './testing';

const NOW = Date.parse('2026-01-01T00:02:00Z');
const base = { enabled: true, sendResolved: true };
const CHANNELS: Array<[ChannelConfig, Record<string, string>]> = [
  [{ ...base, type: 'webhook', name: 'w', url: 'https://h.example.com/x', headers: {} }, { secret: 'sig-secret-1' }],
  [
    { ...base, type: 'slack', name: 's', channel: '#ops', username: 'fw' },
    { url: 'https://hooks.slack.com/services/T1/B2/abc' },
  ],
  [{ ...base, type: 'teams', name: 't' }, { url: 'https://example.webhook.office.com/webhookb2/xyz' }],
  [
    { ...base, type: 'pagerduty', name: 'p', eventsUrl: 'https://events.pagerduty.com/v2/enqueue' },
    { routingKey: 'R0UT1NGKEY' },
  ],
  [
    {
      ...base,
      type: 'email',
      name: 'e',
      host: 'smtp.example.com',
      port: 587,
      secure: false,
      username: 'fw',
      allowPlaintextLogin: false,
      from: 'fw@example.com',
      to: ['ops@example.com'],
    },
    { password: 'smtp-pass' },
  ],
];

const huge = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    alertOf(
      { fingerprint: `f${i}`, annotations: { summary: `S${i} ${'s'.repeat(2000)}`, description: 'd'.repeat(16_000) } },
      { target: `check:${i}`, zone: 'z'.repeat(1000) },
    ),
  );

describe('channel requests', () => {
  it.each(CHANNELS)(
    '%j: a request for a firing group, nothing for a resolved one without sendResolved',
    (config, secrets) => {
      const firing = buildChannelRequest(config, secrets, notificationOf([alertOf()]), { now: NOW });
      expect(firing?.kind).toBe(config.type === 'email' ? 'email' : 'http');
      const resolved = notificationOf([alertOf({ status: 'resolved', endsAt: '2026-01-01T00:04:00.000Z' })]);
      expect(buildChannelRequest({ ...config, sendResolved: false }, secrets, resolved, { now: NOW })).toBeNull();
      expect(buildChannelRequest(config, secrets, resolved, { now: NOW })).not.toBeNull();
    },
  );

  it.each([
    ['slack', 'url'],
    ['teams', 'url'],
    ['pagerduty', 'routingKey'],
  ])('a %s channel without its %s is a configuration error', (type, field) => {
    const [config] = CHANNELS.find(([c]) => c.type === type) ?? CHANNELS[0];
    expect(() => buildChannelRequest(config, {}, notificationOf([alertOf()]), { now: NOW })).toThrow(
      new RegExp(`no ${field} stored`),
    );
  });

  it('secret values (and a webhook URL path) are scrubbed from text', () => {
    const [slack, s] = CHANNELS[1];
    const values = channelSecretValues(slack, s);
    expect(values).toContain('/services/T1/B2/abc');
    expect(scrubSecrets('POST https://hooks.slack.com/services/T1/B2/abc failed', values)).toBe('POST *** failed');
    expect(scrubSecrets('bad key R0UT1NGKEY', channelSecretValues(CHANNELS[3][0], CHANNELS[3][1]))).toBe('bad key ***');
  });

  it("an SMTP password is scrubbed in the base64 forms a server may echo (AUTH PLAIN's whole argument, AUTH LOGIN's)", () => {
    const email = CHANNELS.find(([c]) => c.type === 'email');
    if (!email || email[0].type !== 'email') throw new Error('no e-mail channel in CHANNELS');
    const config = { ...email[0], username: 'fleetwatch' };
    const values = channelSecretValues(config, { password: 'smtp-pässword' });
    const plain = Buffer.from('\u0000fleetwatch\u0000smtp-pässword', 'utf8').toString('base64');
    const login = Buffer.from('smtp-pässword', 'utf8').toString('base64');
    expect(scrubSecrets(`SMTP 535: 5.7.8 bad credentials ${plain}`, values)).toBe(
      'SMTP 535: 5.7.8 bad credentials ***',
    );
    expect(scrubSecrets(`SMTP 535: 5.7.8 rejected ${login}`, values)).toBe('SMTP 535: 5.7.8 rejected ***');
  });

  it.each([
    ['as written', 'auth failed for p@ss w/rd"x', ['p@ss w/rd"x'], 'auth failed for ***'],
    ['URL-escaped', 'GET /?k=p%40ss%20w%2Frd%22x 401', ['p@ss w/rd"x'], 'GET /?k=*** 401'],
    ['JSON-escaped', '{"password":"p@ss w/rd\\"x"}', ['p@ss w/rd"x'], '{"password":"***"}'],
    ['a short secret in the text: withheld whole', 'SMTP 535 bad password q7', ['q7'], WITHHELD_TEXT],
    [
      'a short secret not in the text: kept',
      'SMTP 535 authentication failed',
      ['z9'],
      'SMTP 535 authentication failed',
    ],
    ['longest first', 'token abcdefgh', ['abcd', 'abcdefgh'], 'token ***'],
  ])('scrubbing %s', (_what, text, secrets, expected) => {
    expect(scrubSecrets(text, secrets)).toBe(expected);
  });
});

describe('Slack-compatible webhook', () => {
  it('text, one attachment per alert, channel and username overrides', () => {
    const msg = slackMessage(
      { channel: '#ops', username: 'fw' },
      notificationOf([alertOf(), alertOf({ status: 'resolved' })]),
    );
    expect(msg).toMatchObject({ channel: '#ops', username: 'fw', text: '*[FIRING:1] Target down*' });
    expect(msg.attachments.map((a) => a.color)).toEqual(['#d63232', '#2eb67d']);
    expect(msg.attachments[0]).toMatchObject({
      title: '🔥 Web is down',
      title_link: 'https://fleet.example.com/alerts/abcdef0123456789',
    });
    expect(msg.attachments[0].fields).toContainEqual({ title: 'target', value: 'check:web', short: true });
  });

  it('escapes mrkdwn control characters: a target named <!channel> pings nobody', () => {
    const msg = slackMessage(
      {},
      notificationOf([
        alertOf({ annotations: { summary: '<!channel> & <https://evil|click>' } }, { target: '<!here>' }),
      ]),
    );
    const text = JSON.stringify(msg);
    expect(text).not.toMatch(/<!channel>|<!here>|<https/);
    expect(msg.attachments[0].title).toBe('🔥 &lt;!channel&gt; &amp; &lt;https://evil|click&gt;');
  });

  it('defuses channel-wide mentions (@channel, @here, @all, @everyone, any case); other @ text is left as it is', () => {
    expect(defuseMentions('@channel @Here, @ALL. (@everyone)')).toBe(
      '@\u2060channel @\u2060Here, @\u2060ALL. (@\u2060everyone)',
    );
    expect(defuseMentions('bob@example.com @allstate @channels @alice')).toBe(
      'bob@example.com @allstate @channels @alice',
    );
    // An address whose domain starts with a mention's word is no mention (an `@` after a letter or digit): kept whole.
    expect(defuseMentions('ops@here.com, admin@all.example.org, db1@channel:5432')).toBe(
      'ops@here.com, admin@all.example.org, db1@channel:5432',
    );
    expect(defuseMentions('(@here) "@all" _@channel')).toBe('(@\u2060here) "@\u2060all" _@\u2060channel');
  });

  it('stays within Slack limits with many large alerts', () => {
    const msg = slackMessage({}, notificationOf(huge(100))) as SlackMessage;
    expect(msg.attachments).toHaveLength(SLACK_LIMITS.maxAttachments);
    expect(msg.text).toMatch(/and 80 more/);
    for (const a of msg.attachments) {
      expect(a.title.length).toBeLessThanOrEqual(SLACK_LIMITS.maxTitle + 10);
      expect(a.text.length).toBeLessThanOrEqual(SLACK_LIMITS.maxText);
      expect(a.fields.length).toBeLessThanOrEqual(SLACK_LIMITS.maxFields);
    }
    expect(Buffer.byteLength(JSON.stringify(msg))).toBeLessThan(100 * 1024);
  });
});

describe('Slack text: escaped, then within the limit', () => {
  const brokenEscape = /&(?!amp;|lt;|gt;)/;
  const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

  it('text of & < > and emoji stays within each limit as sent, no escape or surrogate pair cut', () => {
    const many = (unit: string, n: number) => unit.repeat(n);
    const alerts = Array.from({ length: 25 }, (_, i) =>
      alertOf(
        {
          annotations: { summary: many('&<', 400), description: `${'x'.repeat(i)}${many('😀&', 2000)}` },
        },
        { target: many('>', 600), zone: `${'y'.repeat(i % 3)}${many('😀>', 400)}` },
      ),
    );
    const msg = slackMessage({}, notificationOf(alerts, { groupLabels: { alertname: many('&', 5000) } }));
    const texts = [
      msg.text,
      ...msg.attachments.flatMap((a) => [a.title, a.fallback, a.text, ...a.fields.map((f) => f.value)]),
    ];
    for (const t of texts) {
      expect(t).not.toMatch(brokenEscape);
      expect(t).not.toMatch(loneSurrogate);
    }
    expect(msg.text.length).toBeLessThanOrEqual(SLACK_LIMITS.maxText);
    expect(msg.text).toMatch(/…and 5 more \(alertname=(&amp;)+…\)$/);
    for (const a of msg.attachments) {
      expect(a.title.length).toBeLessThanOrEqual(SLACK_LIMITS.maxTitle);
      expect(a.fallback.length).toBeLessThanOrEqual(SLACK_LIMITS.maxTitle);
      expect(a.text.length).toBeLessThanOrEqual(SLACK_LIMITS.maxText);
      for (const f of a.fields) expect(f.value.length).toBeLessThanOrEqual(SLACK_LIMITS.maxFieldValue);
    }
  });

  it('a text that fits is only escaped', () => {
    const msg = slackMessage({}, notificationOf([alertOf({}, { target: 'a&b' })]));
    expect(msg.attachments[0].fields).toContainEqual({ title: 'target', value: 'a&amp;b', short: true });
  });
});

describe('Microsoft Teams webhook', () => {
  it('an Adaptive Card message', () => {
    const msg = JSON.parse(teamsMessage(notificationOf([alertOf()])));
    expect(msg.type).toBe('message');
    expect(msg.attachments[0].contentType).toBe(ADAPTIVE_CARD_CONTENT_TYPE);
    const card = msg.attachments[0].content;
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(card.body[0]).toMatchObject({ type: 'TextBlock', text: '\\[FIRING:1\\] Target down', color: 'Attention' });
    expect(card.body).toContainEqual(expect.objectContaining({ type: 'FactSet' }));
    expect(card.actions[0]).toEqual({
      type: 'Action.OpenUrl',
      title: 'Open in Fleetwatch',
      url: 'https://fleet.example.com',
    });
  });

  it('a label cannot become a link', () => {
    const msg = teamsMessage(notificationOf([alertOf({}, { target: '[click](https://evil)' })]));
    expect(msg).not.toContain('[click](https://evil)');
    expect(msg).toContain('\\\\[click\\\\](https://evil)');
  });

  it('fits 28 KB with many large alerts, saying how many are left out', () => {
    const text = teamsMessage(notificationOf(huge(200)));
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(TEAMS_LIMITS.maxBytes);
    expect(text).toMatch(/and \d+ more/);
  });
});

describe('PagerDuty Events v2', () => {
  it('trigger with a stable dedup key, then resolve with the same key', () => {
    const n = notificationOf([alertOf()]);
    const trigger = pagerDutyEvent('rk', n);
    expect(trigger).toMatchObject({
      routing_key: 'rk',
      event_action: 'trigger',
      dedup_key: groupDedupKey(n.groupKey),
      payload: {
        severity: 'critical',
        source: 'check:web',
        summary: '[FIRING:1] Target down: Web is down',
        component: 'check:web',
      },
      client: 'Fleetwatch',
    });
    const resolve = pagerDutyEvent('rk', notificationOf([alertOf({ status: 'resolved' })]));
    expect(resolve).toEqual({ routing_key: 'rk', event_action: 'resolve', dedup_key: trigger.dedup_key });
    expect(groupDedupKey('other')).not.toBe(trigger.dedup_key);
    expect(trigger.dedup_key.length).toBeLessThanOrEqual(255);
  });

  it.each([
    ['critical', 'critical'],
    ['warning', 'warning'],
    ['info', 'info'],
    ['page-me', 'error'],
  ])('severity %s → %s', (ours, theirs) => expect(pagerDutySeverity(ours)).toBe(theirs));

  it('the gravest firing severity wins', () => {
    const n = notificationOf([
      alertOf({}, { severity: 'info' }),
      alertOf({ fingerprint: 'b' }, { severity: 'warning' }),
    ]);
    expect(pagerDutyEvent('rk', n).payload?.severity).toBe('warning');
  });

  it('summary ≤ 1024 characters and details bounded with many large alerts', () => {
    const e = pagerDutyEvent('rk', notificationOf(huge(300))) as Required<PagerDutyEvent>;
    expect(e.payload.summary.length).toBeLessThanOrEqual(PAGERDUTY_LIMITS.maxSummary);
    expect(e.payload.custom_details['num_firing']).toBe(300);
    expect(Buffer.byteLength(JSON.stringify(e.payload.custom_details))).toBeLessThanOrEqual(
      PAGERDUTY_LIMITS.maxDetailsBytes,
    );
    expect(Buffer.byteLength(JSON.stringify(e))).toBeLessThan(512 * 1024);
  });
});

describe('e-mail', () => {
  it('subject, text and HTML parts, with the SMTP login from the secrets', () => {
    const [config, secrets] = CHANNELS[4];
    const req = buildChannelRequest(config, secrets, notificationOf([alertOf()]), { now: NOW }) as EmailChannelRequest;
    expect(req.smtp).toEqual({
      host: 'smtp.example.com',
      port: 587,
      secure: false,
      requireTls: true,
      tlsVerify: true,
      username: 'fw',
      password: 'smtp-pass',
    });
    expect(req.message).toMatchObject({
      from: 'fw@example.com',
      to: ['ops@example.com'],
      subject: '[FIRING:1] Target down',
    });
    expect(req.message.text).toContain('[FIRING] Web is down');
    expect(req.message.html).toContain('<h3 style="margin:4px 0">[FIRING] Web is down</h3>');
  });

  it('requires STARTTLS before a login unless TLS is on from the start or a plaintext login is allowed', () => {
    const [config, secrets] = CHANNELS[4];
    const smtpOf = (c: Partial<Extract<ChannelConfig, { type: 'email' }>>) =>
      (
        buildChannelRequest({ ...config, ...c } as ChannelConfig, secrets, notificationOf([alertOf()]), {
          now: NOW,
        }) as EmailChannelRequest
      ).smtp.requireTls;
    expect(smtpOf({})).toBe(true); // a login over a connection that may stay in clear: never
    expect(smtpOf({ allowPlaintextLogin: true })).toBe(false); // a trusted relay, said so
    expect(smtpOf({ secure: true, port: 465 })).toBe(false); // TLS from the start
    expect(smtpOf({ username: undefined })).toBe(false); // no login: STARTTLS when offered, as before
    const verifyOf = (c: Partial<Extract<ChannelConfig, { type: 'email' }>>) =>
      (
        buildChannelRequest({ ...config, ...c } as ChannelConfig, secrets, notificationOf([alertOf()]), {
          now: NOW,
        }) as EmailChannelRequest
      ).smtp.tlsVerify;
    expect(verifyOf({})).toBe(true); // unsaid: the certificate must verify
    expect(verifyOf({ tlsVerify: true })).toBe(true);
    expect(verifyOf({ tlsVerify: false })).toBe(false); // a relay of one's own with a self-signed certificate
  });

  it('HTML-escapes every value and keeps the subject on one line', () => {
    const evil = '<script>alert(1)</script>\r\nBcc: victim@example.com';
    const m = emailMessage(
      { from: 'a@example.com', to: ['b@example.com'] },
      notificationOf([alertOf({ annotations: { summary: evil } }, { target: '"><img src=x>' })], {
        groupLabels: { alertname: evil },
      }),
    );
    expect(m.html).not.toMatch(/<script>|<img/);
    expect(m.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(m.html).toContain('&quot;&gt;&lt;img src=x&gt;');
    expect(m.subject).not.toMatch(/[\r\n]/);
    expect(m.subject.length).toBeLessThanOrEqual(EMAIL_LIMITS.maxSubject);
  });

  it('names the delivery in its Message-ID, in the sender’s domain, one line whatever the sender is written as', () => {
    const id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    expect(deliveryMessageId(id, 'alerts@ops.example.com')).toBe(`<fleetwatch.${id}@ops.example.com>`);
    expect(deliveryMessageId(id, 'Fleetwatch <alerts@ops.example.com>')).toBe(`<fleetwatch.${id}@ops.example.com>`);
    expect(deliveryMessageId('a>\r\nBcc: x@y', 'odd\r\n@evil>')).toBe('<fleetwatch.aBccxy@evil>');
    expect(deliveryMessageId(id, 'no-domain\r\nBcc: x')).toBe(`<fleetwatch.${id}@fleetwatch.invalid>`);
    const m = emailMessage({ from: 'a@example.com', to: ['b@example.com'] }, notificationOf([alertOf()]), id);
    expect(m.messageId).toBe(`<fleetwatch.${id}@example.com>`);
  });

  it('lists at most maxAlerts alerts and says how many more', () => {
    const m = emailMessage({ from: 'a@example.com', to: ['b@example.com'] }, notificationOf(huge(150)));
    expect(m.text).toContain('…and 50 more');
    expect(m.html).toContain('…and 50 more');
  });
});

describe('http requests carry no secret outside their credential slot', () => {
  it.each(CHANNELS.filter(([c]) => c.type !== 'email'))('%j', (config, secrets) => {
    const req = buildChannelRequest(config, secrets, notificationOf([alertOf()]), { now: NOW }) as HttpChannelRequest;
    // The webhook key signs but is never sent; a Slack/Teams URL is only the address; a routing key only in its field.
    if (config.type === 'webhook') expect(JSON.stringify(req)).not.toContain(secrets['secret']);
    if (config.type === 'slack' || config.type === 'teams') {
      expect(req.url).toBe(secrets['url']);
      expect(req.body).not.toContain(secrets['url']);
    }
    if (config.type === 'pagerduty')
      expect((JSON.parse(req.body) as PagerDutyEvent).routing_key).toBe(secrets['routingKey']);
  });
});
