import fc from 'fast-check';
import { isSecretName } from '@fleetwatch/contracts';

// Inputs a client may send for each kind of alert configuration (issue 18), broad enough to reach every
// branch of the schemas: optional fields left out or given, text with characters stores refuse (the
// schema must refuse those), durations in several units, every condition and channel type.

const text = fc.oneof(
  fc.string({ minLength: 1, maxLength: 24 }),
  fc.constantFrom('web api', 'Ünïcödé 😀', '{{ target.name }}', 'a\u0000b', '\ud800x', '  padded  '),
);
const slug = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
const tag = fc.stringMatching(/^[a-z][a-z0-9.:=-]{0,12}$/);
const duration = fc.constantFrom('0s', '30s', '1m', '5m', '1h30m', '2h', '1d');
const iso = (from: number, spanMs: number) =>
  fc.integer({ min: 0, max: spanMs }).map((d) => new Date(from + d).toISOString());

const statusCondition = fc.record({
  type: fc.constant('status'),
  statuses: fc.uniqueArray(fc.constantFrom('DOWN', 'PARTIAL', 'STALE'), { minLength: 1, maxLength: 3 }),
});
const metricCondition = fc.record({
  type: fc.constant('metric'),
  metric: fc.oneof(
    fc.constant({ kind: 'host_cpu_pct' }),
    fc.record({ kind: fc.constant('host_disk_pct'), mount: fc.constantFrom('/', '/var', '/data') }),
    fc.record({ kind: fc.constant('gpu_temperature_c'), device: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('check_metric'), name: slug, labels: fc.dictionary(slug, text, { maxKeys: 2 }) }),
  ),
  op: fc.constantFrom('above', 'below'),
  threshold: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
});

export const ruleInput = fc.record(
  {
    name: text,
    description: text,
    enabled: fc.boolean(),
    selector: fc.record(
      {
        tags: fc.uniqueArray(tag, { maxLength: 3 }),
        kinds: fc.uniqueArray(fc.constantFrom('check', 'host'), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
    condition: fc.oneof(statusCondition, metricCondition),
    for: duration,
    severity: fc.constantFrom('critical', 'warning', 'info'),
    labels: fc.dictionary(slug, text, { maxKeys: 3 }),
    annotations: fc.dictionary(
      slug,
      fc.constantFrom('{{ target.name }} is down', 'plain', '{{ alert.value | round: 1 }}'),
      {
        maxKeys: 2,
      },
    ),
    repeatInterval: fc.constantFrom('1m', '4h'),
  },
  { requiredKeys: ['name', 'condition'] },
);

const url = fc.constantFrom(
  'https://hooks.example.com/in',
  'http://127.0.0.1:9000/hook',
  'https://x.example/a?b=c',
  // The URL parser takes these; the stores do not (the schema must refuse them).
  'https://hooks.example.com/in\u0000',
  'https://x.example/a?b=\ud800',
);
export const channelInput = fc.oneof(
  fc.record(
    {
      type: fc.constant('webhook'),
      name: text,
      url,
      // Names like a credential (`x-token`) are the owner's refusal, not the schema's (channelHeaderSecrets).
      headers: fc.dictionary(
        fc.stringMatching(/^x-[a-z]{1,8}$/).filter((n) => !isSecretName(n)),
        fc.constantFrom('1', 'team a'),
      ),
      secret: text,
      bearerToken: text,
      sendResolved: fc.boolean(),
    },
    { requiredKeys: ['type', 'name', 'url'] },
  ),
  fc.record(
    { type: fc.constant('slack'), name: text, url, channel: fc.constant('#ops') },
    { requiredKeys: ['type', 'name', 'url'] },
  ),
  fc.record({ type: fc.constant('teams'), name: text, url }),
  fc.record(
    {
      type: fc.constant('email'),
      name: text,
      host: fc.constantFrom('smtp.example.com', '127.0.0.1'),
      port: fc.integer({ min: 1, max: 65535 }),
      from: fc.constantFrom('fw@example.com', 'f\u0000w@example.com'),
      to: fc.uniqueArray(fc.constantFrom('a@example.com', 'b@example.org'), { minLength: 1 }),
      password: text,
    },
    { requiredKeys: ['type', 'name', 'host', 'from', 'to'] },
  ),
  fc.record({ type: fc.constant('pagerduty'), name: text, routingKey: text }),
);

const NOW = Date.parse('2026-12-02T00:00:00Z');
/** Silences about the real now (a new one must end after it): starts within the last day, ends 2 h before to 48 h after. */
export const silenceInput = fc
  .record({
    matchers: fc.array(
      fc.record({
        name: slug,
        op: fc.constantFrom('=', '!=', '=~', '!~'),
        value: fc.constantFrom('web', 'api|db', 'x.*', 'critical', ''),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    startsAt: iso(Date.now() - 86_400_000, 86_400_000),
    hours: fc.integer({ min: -2, max: 48 }),
    comment: text,
  })
  .map(({ hours, ...s }) => ({ ...s, endsAt: new Date(Date.parse(s.startsAt) + hours * 3_600_000).toISOString() }));

export const windowInput = fc.record({
  name: text,
  scope: fc.record(
    {
      targetIds: fc.uniqueArray(fc.constantFrom('check:a', 'host:b', 'instance:c'), { maxLength: 2 }),
      tags: fc.uniqueArray(tag, { maxLength: 2 }),
      sites: fc.uniqueArray(fc.constantFrom('eu', 'us-east'), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
  schedule: fc.oneof(
    fc.record({ type: fc.constant('once'), startsAt: iso(NOW, 1e9), endsAt: iso(NOW + 5e8, 1e9) }),
    fc.record(
      {
        type: fc.constant('recurring'),
        cron: fc.constantFrom('0 2 * * *', '*/15 * * * 1-5', '0 0 1 * *', '61 * * * *', '0 2 * *'),
        duration: fc.constantFrom('1h', '30m', '10s'),
        timezone: fc.constantFrom('UTC', 'Europe/Berlin', 'Mars/Olympus'),
      },
      { requiredKeys: ['type', 'cron', 'duration'] },
    ),
  ),
  comment: text,
});
