import { alertRuleSpecSchema, alertGroupingSchema } from './rule.schema';
import { compileMatcherRegex, labelMatcherSchema, matcherRegexProblem } from './matchers.schema';
import {
  maintenanceScopeSchema,
  maintenanceWindowSpecSchema,
  silenceSpecSchema,
  silenceWriteIssues,
} from './silence.schema';
import {
  channelInputSchema,
  channelRedactedSchema,
  missingChannelSecrets,
  redactChannel,
  splitChannelSecrets,
} from './channel.schema';
import { DEFAULT_ALERT_GROUPING, DEFAULT_ALERT_RULES } from './default-rules';
import { listAlertsQuerySchema } from './alerts-read.schema';
import { subscriptionSpecSchema } from '../subscriptions/subscription.schema';
import { statusPageComponentSchema } from '../status-pages/status-page.schema';

const issues = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

describe('alert rule contract', () => {
  const minimal = { name: 'Down', condition: { type: 'status', statuses: ['DOWN'] } };

  it("selects by target kinds and pushed instances' own kinds, each once", () => {
    const all = ['check', 'host', 'instance', 'container', 'pod', 'process', 'service', 'job'];
    expect(alertRuleSpecSchema.parse({ ...minimal, selector: { kinds: all } }).selector.kinds).toEqual(all);
    expect(issues(alertRuleSpecSchema.safeParse({ ...minimal, selector: { kinds: ['pod', 'pod'] } }))).toEqual([
      'selector.kinds: each kind once',
    ]);
    expect(issues(alertRuleSpecSchema.safeParse({ ...minimal, selector: { kinds: ['Container'] } }))).toEqual([
      expect.stringMatching(/^selector\.kinds\.0: /),
    ]);
  });

  it("selects by a pushed instance's label as a tag, whatever text its value holds; refuses what no target carries", () => {
    const tags = ['team=Platform Ops', 'app.kubernetes.io/name=web (blue)', 'db', 'env:prod'];
    expect(alertRuleSpecSchema.parse({ ...minimal, selector: { tags } }).selector.tags).toEqual(tags);
    expect(maintenanceScopeSchema.safeParse({ tags }).success).toBe(true);
    expect(statusPageComponentSchema.safeParse({ name: 'Web', tags }).success).toBe(true);
    for (const bad of [
      'has space',
      '=x',
      'team=a\u0000b',
      `team=${'x'.repeat(1025)}`,
      'x'.repeat(65),
      'owners=alice,bob',
      'team= ops',
    ])
      expect(issues(alertRuleSpecSchema.safeParse({ ...minimal, selector: { tags: [bad] } }))).toEqual([
        expect.stringMatching(/^selector\.tags\.0: /),
      ]);
  });

  it('fills defaults: empty selector, for 0s, warning, no channels', () => {
    expect(alertRuleSpecSchema.parse(minimal)).toEqual({
      ...minimal,
      enabled: true,
      selector: { targetIds: [], tags: [], sites: [], locations: [], kinds: [] },
      for: '0s',
      severity: 'warning',
      labels: {},
      annotations: {},
      channels: [],
    });
  });

  it.each([
    [{ ...minimal, for: '5 minutes' }, /for: not a duration/],
    [{ ...minimal, condition: { type: 'status', statuses: ['UP'] } }, /condition.statuses.0/],
    [{ ...minimal, condition: { type: 'status', statuses: [] } }, /condition.statuses/],
    [{ ...minimal, labels: { severity: 'x' } }, /labels.severity: "severity" is set by the engine/],
    [{ ...minimal, labels: { __name__: 'x' } }, /labels.__name__: Invalid key/],
    [{ ...minimal, name: 'a\u0000b' }, /NUL/],
    [{ ...minimal, annotations: { summary: '\ud800' } }, /lone surrogate/],
    [{ ...minimal, annotations: { summary: 'x'.repeat(5000) } }, /annotations.summary/],
    [{ ...minimal, selector: { tags: ['a', 'a'] } }, /each tag once/],
    [{ ...minimal, selector: { kinds: ['vm'] } }, /selector.kinds.0/],
    [{ ...minimal, repeatInterval: '10s' }, /repeatInterval: at least 1m/],
    [{ ...minimal, extra: 1 }, /Unrecognized key/],
    [
      { ...minimal, condition: { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: NaN } },
      /threshold/,
    ],
    [
      { ...minimal, condition: { type: 'metric', metric: { kind: 'cpu' }, op: 'above', threshold: 1 } },
      /condition.metric.kind/,
    ],
    [
      {
        ...minimal,
        condition: { type: 'metric', metric: { kind: 'check_metric', name: 'Bad-Name' }, op: 'above', threshold: 1 },
      },
      /condition.metric.name/,
    ],
  ])('refuses %j naming the field', (input, message) => {
    expect(issues(alertRuleSpecSchema.safeParse(input)).join('\n')).toMatch(message);
  });

  it('accepts every metric kind', () => {
    for (const metric of [
      { kind: 'latency_p95_ms' },
      { kind: 'host_cpu_pct' },
      { kind: 'host_memory_pct' },
      { kind: 'host_disk_pct', mount: '/' },
      { kind: 'gpu_utilization_pct', device: 0 },
      { kind: 'gpu_temperature_c' },
      { kind: 'gpus_missing' },
      { kind: 'queue_depth', queue: 'orders' },
      { kind: 'check_metric', name: 'redis_connected_clients', labels: { role: 'master' } },
    ])
      expect(
        alertRuleSpecSchema.safeParse({ ...minimal, condition: { type: 'metric', metric, op: 'below', threshold: 3 } })
          .success,
      ).toBe(true);
  });

  it('gpus_missing is host-wide: a count per host, no device filter', () => {
    const rule = (metric: object) => ({ ...minimal, condition: { type: 'metric', metric, op: 'above', threshold: 0 } });
    expect(alertRuleSpecSchema.safeParse(rule({ kind: 'gpus_missing' })).success).toBe(true);
    expect(issues(alertRuleSpecSchema.safeParse(rule({ kind: 'gpus_missing', device: 0 }))).join('\n')).toMatch(
      /condition.metric/,
    );
  });

  it('grouping: "..." stands alone; durations bounded', () => {
    expect(DEFAULT_ALERT_GROUPING).toEqual({
      groupBy: ['alertname'],
      groupWait: '30s',
      groupInterval: '5m',
      repeatInterval: '4h',
    });
    expect(alertGroupingSchema.safeParse({ groupBy: ['...', 'target'] }).success).toBe(false);
    expect(alertGroupingSchema.safeParse({ groupInterval: '0s' }).success).toBe(false);
  });

  it('ships the default rules of the issue, valid and with stable ids', () => {
    expect(DEFAULT_ALERT_RULES.map((r) => [r.id, r.for, r.condition])).toEqual([
      ['default.target-down', '1m', { type: 'status', statuses: ['DOWN'] }],
      ['default.target-partial', '5m', { type: 'status', statuses: ['PARTIAL'] }],
      ['default.target-stale', '0s', { type: 'status', statuses: ['STALE'] }],
      ['default.host-cpu-high', '5m', { type: 'metric', metric: { kind: 'host_cpu_pct' }, op: 'above', threshold: 90 }],
      [
        'default.host-disk-full',
        '0s',
        { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
      ],
      [
        'default.gpu-temperature-high',
        '0s',
        { type: 'metric', metric: { kind: 'gpu_temperature_c' }, op: 'above', threshold: 85 },
      ],
      // A GPU reset (`nvidia-smi -r`) lists the GPU for a sample or two: only one still gone after a minute pages.
      ['default.gpus-missing', '1m', { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 }],
    ]);
    expect(DEFAULT_ALERT_RULES.find((r) => r.id === 'default.gpus-missing')).toMatchObject({
      name: 'GPU fallen off the bus',
      severity: 'critical',
      selector: { kinds: ['host'] },
    });
    // A metric rule firing at once is kept firing a while: about its threshold it would page and resolve every sample.
    expect(
      DEFAULT_ALERT_RULES.filter((r) => r.for === '0s' && r.condition.type === 'metric').map((r) => [
        r.id,
        r.keepFiringFor,
      ]),
    ).toEqual([
      ['default.host-disk-full', '10m'],
      ['default.gpu-temperature-high', '5m'],
    ]);
  });
});

describe('label matchers', () => {
  it.each([
    ['web|api', null],
    ['check:web-.*', null],
    ['(foo|bar)-[0-9]+', null],
    ['(abc)+', null],
    ['(a+)+', /exponential/],
    ['(a|aa)*', /exponential/],
    ['((ab)*c)+', /exponential/],
    ['(x{2,})*', /exponential/],
    ['(.*a){12}', /exponential/],
    ['(ab){3}', null],
    ['.*web.*', null],
    ['.*.*.*.*.*.*.*.*z', /unbounded repetitions/],
    ['a+b+c+', /unbounded repetitions/],
    ['[*+]{2}x', null],
    // Bounded repetitions backtrack too: a long range like an unbounded one, short ones by their product, and a
    // group repeated up to a bound like one repeated for ever.
    // (each of these passed before and took seconds to minutes on a label of 26–500 characters)
    ['.{0,99}'.repeat(5) + 'z', /unbounded repetitions/],
    ['.{0,9}'.repeat(8) + 'z', /bounded repetitions/],
    ['(a|aa){0,60}b', /exponential/],
    ['(a{0,20}){0,20}b', /exponential/],
    ['(a{0,9}){0,9}b', /exponential/],
    ['\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}', null],
    ['(\\d{1,3}\\.){3}\\d{1,3}', null],
    ['web-.*?-[0-9]{2,4}', null],
    ['(?:eu|us)-(?:west|east)-\\d', null],
    ['(a', /not a valid regular expression/],
    ['(?=a)a', /look-ahead/],
    ['(a)\\1', /back-references/],
    ['a'.repeat(600), /longer than 512/],
    // RE2's leading inline flags are JavaScript flags; other RE2-only syntax is refused, saying what to write.
    ['(?i)critical', null],
    ['(?s)a.b', null],
    ['(?m)^a$', null],
    ['(?is)crit.*', null],
    ['(?i)(?s)crit.*', null],
    ['(?U)a+', /ungreedy/],
    ['(?-i)a', /cannot be cleared/],
    ['(?x)a', /unknown inline flag x/],
    ['a(?i)b', /only at the start/],
    ['(?i:a)b', /only at the start/],
    ['(?P<n>a)', /\(\?<name>…\)/],
    ['\\Aweb\\z', /\\A is RE2-only/],
    ['[[:alpha:]]+', /POSIX classes/],
    ['[x[:^digit:]', /POSIX classes/], // RE2 reads a POSIX class (and wants another ]), JavaScript the characters
    ['[a[:digit:]x[b]', /POSIX classes/], // valid in both, read differently
    // Top level, `[:alpha:]` is a class of the characters `:alph` in RE2 as in JavaScript (a POSIX class only inside
    // brackets): accepted before, so stored silences hold it, and still accepted.
    ['[:alpha:]+', null],
    ['\\[[:alpha:]', null], // an escaped bracket, then a top-level class
    ['\\\\A', null], // an escaped backslash, then a letter
    ['[(?i)]', null], // a character class, not flags
    // The backtracking guards hold for the translated pattern, and the length bound counts its flags.
    ['(?i)(a+)+', /exponential/],
    ['(?is).*.*.*z', /unbounded repetitions/],
    ['(?i)' + 'a'.repeat(509), /longer than 512/],
    // A stray `)` closes the anchoring group: `^(?:.*)+(x)$` is neither a full match nor what the guards read.
    ['.*)+(x', /^not a valid regular expression: .*Unmatched '\)'/],
    ['a)|(b', /^not a valid regular expression/],
    ['(?i)a)|(b', /^not a valid regular expression/],
    ['(?m)a)|(b', /^not a valid regular expression/],
  ])('regex %j → %s', (pattern, problem) => {
    const p = matcherRegexProblem(pattern);
    if (problem === null) expect(p).toBeNull();
    else expect(p).toMatch(problem);
  });

  it.each([
    ['(?i)critical', 'CRITICAL', true],
    ['(?i)CRITICAL', 'critical', true],
    ['(?i)crit', 'critical', false], // still a full match
    ['critical', 'CRITICAL', false],
    ['(?s)a.b', 'a\nb', true],
    ['a.b', 'a\nb', false],
    ['(?m)web', 'web\nx', false], // (?m) makes ^ and $ line anchors inside, never the match partial
    ['(?m)a$\n^b', 'a\nb', true],
    ['(?im)A$\n^B', 'a\nb', true],
    ['a$\n^b', 'a\nb', false],
    // A flag group followed by an alternation: the whole alternation is anchored, each branch a full match.
    ['(?i)crit|warning', 'critical', false],
    ['(?i)crit|warning', 'prewarning', false],
    ['(?i)crit|warning', 'WARNING', true],
    ['(?m)crit|warning', 'critical', false],
    ['(?m)crit|warning', 'prewarning', false],
    ['(?m)crit|warning', 'warning', true],
  ])('compiled %j on %j: %s', (pattern, value, expected) => {
    expect(matcherRegexProblem(pattern)).toBeNull();
    expect(compileMatcherRegex(pattern).test(value)).toBe(expected);
  });

  it('refuses a bad regex at validation time, naming the value', () => {
    expect(issues(labelMatcherSchema.safeParse({ name: 'target', op: '=~', value: '(a+)+$' }))).toEqual([
      expect.stringMatching(/^value: a repeated group/),
    ]);
    // An equality matcher takes any text literally.
    expect(labelMatcherSchema.safeParse({ name: 'target', op: '=', value: '(a+)+' }).success).toBe(true);
  });
});

describe('silences and maintenance windows', () => {
  const silence = {
    matchers: [{ name: 'alertname', op: '=', value: 'Target down' }],
    startsAt: '2026-01-01T00:00:00Z',
    endsAt: '2026-01-01T02:00:00Z',
    createdBy: 'alice',
    comment: 'deploy',
  };

  it('a silence needs end after start, a comment, and a matcher that does not match everything', () => {
    expect(silenceSpecSchema.safeParse(silence).success).toBe(true);
    expect(issues(silenceSpecSchema.safeParse({ ...silence, endsAt: silence.startsAt }))).toEqual([
      'endsAt: must be after startsAt',
    ]);
    expect(issues(silenceSpecSchema.safeParse({ ...silence, comment: '  ' }))[0]).toMatch(/^comment/);
    expect(
      issues(silenceSpecSchema.safeParse({ ...silence, matchers: [{ name: 'target', op: '=~', value: '.*' }] })),
    ).toEqual([expect.stringMatching(/^matchers: .*silence every alert/)]);
  });

  it.each([
    ['0000-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'startsAt'],
    ['2026-01-01T00:00:00Z', '9999-12-31T23:59:59-01:00', 'endsAt'],
  ])('refuses times Postgres cannot store (%s → %s)', (startsAt, endsAt, field) => {
    expect(issues(silenceSpecSchema.safeParse({ ...silence, startsAt, endsAt }))).toEqual([
      `${field}: must be between 1970 and 9999`,
    ]);
  });

  it('a silence written must end after now (no upper bound but year 9999); startsAt after endsAt names endsAt', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    expect(silenceWriteIssues(silence, now)).toEqual([]);
    expect(silenceWriteIssues(silence, Date.parse(silence.endsAt))).toEqual([
      { path: 'endsAt', message: expect.stringMatching(/^can't be in the past/) },
    ]);
    expect(silenceWriteIssues(silence, Date.parse(silence.endsAt) + 86_400_000)).toEqual([
      { path: 'endsAt', message: expect.stringMatching(/^can't be in the past/) },
    ]);
    const ends = (ms: number) => ({ endsAt: new Date(now + ms).toISOString() });
    expect(silenceWriteIssues(ends(1), now)).toEqual([]);
    expect(silenceWriteIssues(ends(10 * 366 * 86_400_000), now)).toEqual([]);
    // The schema reads stored silences too: an expired one (a past end) still parses.
    expect(silenceSpecSchema.safeParse(silence).success).toBe(true);
    expect(
      issues(silenceSpecSchema.safeParse({ ...silence, startsAt: silence.endsAt, endsAt: silence.startsAt })),
    ).toEqual(['endsAt: must be after startsAt']);
  });

  it('a silence stored before RE2 syntax was refused still parses when read (a regex accepted then is accepted now)', () => {
    const stored = { ...silence, matchers: [{ name: 'port', op: '=~', value: '[:digit:]+' }] };
    expect(silenceSpecSchema.safeParse(stored).success).toBe(true);
  });

  it('a (?i) regex matcher that matches the empty string silences every alert: refused', () => {
    expect(
      issues(silenceSpecSchema.safeParse({ ...silence, matchers: [{ name: 'severity', op: '=~', value: '(?i)|x' }] })),
    ).toEqual([expect.stringMatching(/^matchers: .*silence every alert/)]);
    expect(
      silenceSpecSchema.safeParse({ ...silence, matchers: [{ name: 'severity', op: '=~', value: '(?i)critical' }] })
        .success,
    ).toBe(true);
  });

  const window = {
    name: 'Patch Tuesday',
    scope: { tags: ['db'] },
    createdBy: 'alice',
    schedule: { type: 'recurring', cron: '0 22 * * 2', duration: '2h', timezone: 'Europe/Berlin' },
  };

  it('accepts one-off and recurring windows', () => {
    expect(maintenanceWindowSpecSchema.parse(window).scope).toEqual({ targetIds: [], tags: ['db'], sites: [] });
    expect(
      maintenanceWindowSpecSchema.safeParse({
        ...window,
        schedule: { type: 'once', startsAt: '2026-01-01T00:00:00Z', endsAt: '2026-01-01T01:00:00Z' },
      }).success,
    ).toBe(true);
  });

  it.each([
    [{ scope: {} }, /scope: name at least one/],
    [{ schedule: { ...window.schedule, cron: '0 22 * *' } }, /5 fields .* got 4/],
    [{ schedule: { ...window.schedule, cron: '0 22 * * 2 2026' } }, /got 6/],
    [{ schedule: { ...window.schedule, cron: '0 22 * * $(x)' } }, /field 5/],
    [{ schedule: { ...window.schedule, timezone: 'Mars/Olympus' } }, /IANA time zone/],
    [{ schedule: { ...window.schedule, duration: '30s' } }, /at least 1m/],
    [
      { schedule: { type: 'once', startsAt: '2026-01-01T01:00:00Z', endsAt: '2026-01-01T00:00:00Z' } },
      /endsAt: must be after/,
    ],
  ])('refuses %j', (over, message) => {
    expect(issues(maintenanceWindowSpecSchema.safeParse({ ...window, ...over })).join('\n')).toMatch(message);
  });
});

describe('channels: header values the HTTP client would refuse are refused when written', () => {
  const hook = { type: 'webhook', name: 'h', url: 'https://hooks.example.com/in' };
  it.each([
    [{ headers: { 'X-Team': 'café ops' } }, true],
    [{ headers: { 'X-Team': 'café€' } }, false],
    [{ headers: { 'X-Team': ' padded' } }, false],
    [{ headers: { 'X-Team': 'a\tb' } }, true],
    [{ bearerToken: 'tok€n' }, false],
    [{ bearerToken: 'tok-456' }, true],
  ])('%j → accepted %s', (extra, ok) => {
    expect(channelInputSchema.safeParse({ ...hook, ...extra }).success).toBe(ok);
  });
});

describe('URLs and addresses hold only what the stores can (else a 500 at save, not a 400)', () => {
  // The URL parser takes these (it drops or escapes the character), but the stored text is the text written.
  const urls = [
    'https://hooks.example.com/in\u0000',
    'https://hooks.example.com/in?a=\ud800',
    'http://e.example/#\u0000',
  ];
  it.each(urls)('a webhook, PagerDuty, Slack URL or subscription URL %j is refused, naming it', (url) => {
    const refused = [
      [channelInputSchema.safeParse({ type: 'webhook', name: 'h', url }), 'url'],
      [channelInputSchema.safeParse({ type: 'pagerduty', name: 'p', routingKey: 'k', eventsUrl: url }), 'eventsUrl'],
      [channelInputSchema.safeParse({ type: 'slack', name: 's', url }), 'url'],
      [subscriptionSpecSchema.safeParse({ name: 's', url }), 'url'],
    ] as const;
    for (const [r, field] of refused) {
      expect(r.success).toBe(false);
      expect(issues(r).join('\n')).toMatch(new RegExp(`^${field}: contains a (NUL|lone surrogate)`, 'm'));
    }
  });

  it.each([
    [{ from: 'fw\u0000@example.com' }, 'from'],
    [{ to: ['ops\u0000@example.com'] }, 'to.0'],
    [{ to: ['o\ud800ps@example.com'] }, 'to.0'],
    [{ to: ['o\u0001ps@example.com'] }, 'to.0'],
  ])('an e-mail address %j is refused, naming %s', (over, field) => {
    const r = channelInputSchema.safeParse({
      type: 'email',
      name: 'mail',
      host: 'smtp.example.com',
      from: 'fw@example.com',
      to: ['ops@example.com'],
      ...over,
    });
    expect(r.success).toBe(false);
    expect(issues(r).every((i) => i.startsWith(`${field}: `))).toBe(true);
  });

  it('still accepts the ordinary forms', () => {
    expect(
      channelInputSchema.safeParse({ type: 'webhook', name: 'h', url: 'https://h.example/in?a=é#x' }).success,
    ).toBe(true);
    expect(
      channelInputSchema.safeParse({
        type: 'email',
        name: 'mail',
        host: 'smtp.example.com',
        from: 'fw+alerts@example.com',
        to: ['ops.team@example.co.uk'],
      }).success,
    ).toBe(true);
  });
});

describe('alert list cursor', () => {
  it.each([
    ['1764633600000_0123456789abcdef', true],
    ['253402300799999_0123456789abcdef', true],
    // Past 9999 an ISO time has a six-digit year, which Postgres refuses (a 500).
    ['253402300800000_0123456789abcdef', false],
    ['999999999999999_0123456789abcdef', false],
  ])('%s → accepted %s', (cursor, ok) => {
    expect(listAlertsQuerySchema.safeParse({ cursor }).success).toBe(ok);
  });
});

describe('channels: secrets are write-only', () => {
  it('splits secrets from the public config, and the redacted form never holds them', () => {
    const input = channelInputSchema.parse({
      type: 'webhook',
      name: 'ops hook',
      url: 'https://hooks.example.com/in',
      secret: 'hmac-key-123',
      bearerToken: 'tok-456',
    });
    const { config, secrets } = splitChannelSecrets(input);
    expect(secrets).toEqual({ secret: 'hmac-key-123', bearerToken: 'tok-456' });
    expect(JSON.stringify(config)).not.toMatch(/hmac-key|tok-456/);
    const redacted = channelRedactedSchema.parse(redactChannel(config, secrets as Record<string, string>));
    expect(redacted).toMatchObject({ secret: { set: true }, bearerToken: { set: true } });
    expect(JSON.stringify(redacted)).not.toMatch(/hmac-key|tok-456/);
  });

  it('a secret URL shows its origin only', () => {
    const input = channelInputSchema.parse({
      type: 'slack',
      name: 'slack',
      url: 'https://hooks.slack.com/services/T0/B0/SECRETTOKEN',
    });
    const { config, secrets } = splitChannelSecrets(input);
    const redacted = redactChannel(config, secrets as Record<string, string>);
    expect(redacted).toEqual({
      type: 'slack',
      name: 'slack',
      enabled: true,
      sendResolved: true,
      url: { set: true, hint: 'https://hooks.slack.com/…' },
    });
  });

  it('absent keeps a stored secret, null removes it; a required one cannot be removed', () => {
    const update = splitChannelSecrets(channelInputSchema.parse({ type: 'pagerduty', name: 'pd' }));
    expect(update.secrets).toEqual({});
    expect(missingChannelSecrets('pagerduty', new Set(['routingKey']), update.secrets)).toEqual([]);
    expect(missingChannelSecrets('pagerduty', new Set(), update.secrets)).toEqual(['routingKey']);
    const removal = splitChannelSecrets(channelInputSchema.parse({ type: 'pagerduty', name: 'pd', routingKey: null }));
    expect(missingChannelSecrets('pagerduty', new Set(['routingKey']), removal.secrets)).toEqual(['routingKey']);
  });

  it.each([
    [{ type: 'webhook', name: 'w', url: 'file:///etc/passwd' }, /scheme/],
    [{ type: 'webhook', name: 'w', url: 'https://u:p@x.example/' }, /credentials/],
    [{ type: 'webhook', name: 'w', url: 'https://x.example/', headers: { Authorization: 'Bearer x' } }, /bearerToken/],
    [{ type: 'email', name: 'e', host: 'smtp.example.com', from: 'a@example.com', to: [] }, /to/],
    [{ type: 'email', name: 'e', host: 'smtp.example.com', from: 'not-an-address', to: ['b@example.com'] }, /from/],
    [{ type: 'pagerduty', name: 'p', routingKey: 'k\u0000' }, /NUL/],
    // The port in `host`: every delivery failed looking it up.
    [{ type: 'email', name: 'e', host: 'smtp.example.com:587', from: 'a@example.com', to: ['b@x.org'] }, /port/],
    [{ type: 'sms', name: 's' }, /type/],
  ])('refuses %j', (input, message) => {
    expect(issues(channelInputSchema.safeParse(input)).join('\n')).toMatch(message);
  });
});

describe('silence with a bad regex', () => {
  it('reports the matcher, once, without throwing', () => {
    const r = silenceSpecSchema.safeParse({
      matchers: [{ name: 'target', op: '=~', value: '(' }],
      startsAt: '2026-01-01T00:00:00Z',
      endsAt: '2026-01-01T01:00:00Z',
      createdBy: 'a',
      comment: 'c',
    });
    expect(issues(r)).toEqual([expect.stringMatching(/^matchers.0.value: not a valid regular expression/)]);
  });
});
