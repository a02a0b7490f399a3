import { checkInputSchema, checkWriteIssues, resolverProblem } from './check.schema';
import { isIpv6Literal } from './check-fields';

// Check configuration the schema took and every run then failed on — or worse: a DNS resolver on port 0 aborted the
// collector, a URL with port 0 probed port 80. Each is refused here, naming the field; what works stays accepted.

const base = { name: 'c', intervalSeconds: 30 };
const issuesOf = (input: Record<string, unknown>) =>
  (checkInputSchema.safeParse({ ...base, ...input }).error?.issues ?? []).map(
    (i) => `${i.path.join('.')}: ${i.message}`,
  );

describe('check fields refused before they fail every run', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a DNS resolver on port 0',
      { type: 'dns', query: 'example.com', resolver: '127.0.0.1:0' },
      /^resolver: .*1–65535/,
    ],
    ['a DNS resolver on port 99999', { type: 'dns', query: 'example.com', resolver: 'ns1:99999' }, /^resolver: /],
    ['a bracketed resolver on port 0', { type: 'dns', query: 'example.com', resolver: '[::1]:0' }, /^resolver: /],
    ['a resolver that is no IPv6 address', { type: 'dns', query: 'example.com', resolver: 'dead:beef' }, /^resolver: /],
    ['a bracketed non-address', { type: 'dns', query: 'example.com', resolver: '[1:2:3]:53' }, /IPv6/],
    ['a URL on port 0', { type: 'http', url: 'http://127.0.0.1:0/' }, /^url: port 0/],
    ['an https URL on port 0', { type: 'http', url: 'https://example.com:0/x' }, /^url: port 0/],
    ['a host with a port', { type: 'tcp', host: 'db.internal:5432', port: 5432 }, /^host: .*`port`/],
    ['the reserved location', { type: 'tcp', host: 'db', port: 5432, locations: ['eu', 'all'] }, /^locations\.1: /],
    [
      'a header value with €',
      { type: 'http', url: 'http://a/', headers: { 'X-Note': 'price €5' } },
      /^headers\.X-Note/,
    ],
    ['a header value with a control', { type: 'http', url: 'http://a/', headers: { 'X-A': 'a\u0001b' } }, /headers/],
    ['a timeout of 5e-324 s', { type: 'tcp', host: 'db', port: 1, timeoutSeconds: 5e-324 }, /^timeoutSeconds: /],
    ['a queue of 400 bytes', { type: 'amqp', host: 'mq', queue: 'é'.repeat(200) }, /^queue: .*255 bytes/],
    ['a vhost of 400 bytes', { type: 'rabbitmq-queues', host: 'mq', vhost: 'é'.repeat(200) }, /^vhost: /],
    ['an exchange of 400 bytes', { type: 'rabbitmq-tap', host: 'mq', exchange: 'é'.repeat(200) }, /^exchange: /],
  ])('%s', (_name, input, expected) => {
    const issues = issuesOf(input);
    expect(issues.some((i) => expected.test(i))).toBe(true);
  });

  it.each<[string, Record<string, unknown>]>([
    ['a resolver with a port', { type: 'dns', query: 'example.com', resolver: '10.0.0.2:5353' }],
    ['a bracketed IPv6 resolver with a port', { type: 'dns', query: 'example.com', resolver: '[2001:db8::1]:53' }],
    ['a bare IPv6 resolver', { type: 'dns', query: 'example.com', resolver: '2001:db8::53' }],
    ['a name as resolver', { type: 'dns', query: 'example.com', resolver: 'ns1.example.com' }],
    ['an IPv6 host', { type: 'tcp', host: '::1', port: 22 }],
    ['an IPv4-mapped host', { type: 'tcp', host: '::ffff:10.0.0.1', port: 22 }],
    ['a URL with an explicit port', { type: 'http', url: 'http://[::1]:8080/' }],
    ['Latin-1 and tab in a header value', { type: 'http', url: 'http://a/', headers: { 'X-A': 'caf\u00e9\tok' } }],
    ['a Host header', { type: 'http', url: 'http://10.0.0.1/', headers: { Host: 'app.example.com' } }],
    ['a timeout of 50 ms', { type: 'tcp', host: 'db', port: 1, timeoutSeconds: 0.05 }],
    [
      'a Connection header and a 101 among the statuses',
      { type: 'http', url: 'http://a/', headers: { Connection: 'close' }, expectedStatus: [101, 200] },
    ],
    [
      'a queue listed twice (one series: alert-metrics checkSeries)',
      { type: 'rabbitmq-queues', host: 'mq', queues: ['q', 'q'] },
    ],
    ['a queue of 255 bytes', { type: 'amqp', host: 'mq', queue: 'q'.repeat(255) }],
    ['an empty routing key', { type: 'rabbitmq-tap', host: 'mq', exchange: 'x', routingKey: '' }],
  ])('%s is accepted', (_name, input) => {
    expect(issuesOf(input)).toEqual([]);
  });

  it('resolverProblem and isIpv6Literal agree with the forms dns.probe reads', () => {
    expect(resolverProblem('1.1.1.1')).toBeNull();
    expect(resolverProblem('1.1.1.1:65535')).toBeNull();
    expect(resolverProblem('1.1.1.1:65536')).not.toBeNull();
    expect(isIpv6Literal('fe80::1')).toBe(true);
    expect(isIpv6Literal('fe80::1::2')).toBe(false);
    expect(isIpv6Literal('10.0.0.1')).toBe(false);
  });
});

describe('checkWriteIssues: refused on write, still read when stored before', () => {
  const spec = (input: Record<string, unknown>) =>
    checkInputSchema.parse({ ...base, type: 'http', url: 'http://a/', ...input });
  it.each<[string, Record<string, unknown>, string[]]>([
    // No status would be UP: every run DOWN ("status 200 not in []").
    ['an empty expectedStatus', { expectedStatus: [] }, ['expectedStatus: at least one status code']],
    [
      'framing headers (the check sets them from its body)',
      {
        method: 'POST',
        body: 'x',
        headers: { 'Content-Length': '5', 'transfer-encoding': 'chunked', Expect: '100-continue' },
      },
      ['headers.Content-Length: ', 'headers.transfer-encoding: ', 'headers.Expect: '],
    ],
    [
      '65 headers',
      { headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`X-${i}`, 'v'])) },
      ['headers: at most 64 headers (65 given)'],
    ],
  ])('%s', (_name, input, expected) => {
    // The schema reads it (a stored check is still run)…
    const parsed = spec(input);
    // …the owner refuses it on write, naming the field.
    const issues = checkWriteIssues(parsed).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(issues[i].startsWith(e)).toBe(true));
  });

  it('has nothing to say about a check that works', () => {
    expect(checkWriteIssues(spec({ expectedStatus: [200], headers: { Host: 'a', 'X-A': '1' } }))).toEqual([]);
    expect(checkWriteIssues(checkInputSchema.parse({ ...base, type: 'tcp', host: 'db', port: 1 }))).toEqual([]);
  });
});
