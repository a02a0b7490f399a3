import { checkInputSchema, DNS_RECORD_TYPES, type CheckSpec } from '@fleetwatch/contracts';
import fc from 'fast-check';

// Valid checks of every type for property tests (fast-check): each field present or
// not, at its default or elsewhere, strings with awkward characters where the schema
// allows them. Only what the contract's schema accepts comes out.

/** Any text Postgres can hold, including YAML's awkward cases (`: `, `#`, `- `, quotes, `null`, leading spaces). */
const text = (max: number) =>
  fc
    .oneof(
      fc.string({ unit: 'binary', maxLength: max }),
      fc.constantFrom(
        'null',
        'true',
        '~',
        '- a',
        'a: b',
        '# x',
        "'q'",
        '"dq"',
        ' lead',
        'trail ',
        '0x1F',
        '1e3',
        '\n',
        '\t',
      ),
    )
    .filter((s) => s.isWellFormed() && !s.includes('\u0000'));

const name = text(40).filter((s) => s.trim().length > 0 && s.length <= 256);
const host = fc.oneof(fc.domain(), fc.ipV4(), fc.constantFrom('localhost', '::1', 'db-1.internal'));
const port = fc.integer({ min: 1, max: 65_535 });
const location = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
const tag = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/=-]{0,20}$/);
const envName = fc.stringMatching(/^FLEETWATCH_SECRET_[A-Z0-9_]{1,20}$/);
const condition = fc.constantFrom(
  'status == 200',
  'latency < 300',
  'body.status == "UP"',
  'cert.daysLeft > 14',
  'metric("pg_lag_seconds") < 30',
  'ok && latency < 1000',
);
const url = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true, validSchemes: ['http', 'https'] }),
  fc.constantFrom('http://127.0.0.1:8080/health', 'https://[::1]/metrics'),
);

const common = {
  name,
  description: text(60),
  intervalSeconds: fc.constantFrom(30, 60, 300, 86_400),
  // ≤ 30, so never above the smallest interval.
  timeoutSeconds: fc.oneof(fc.constant(10), fc.double({ min: 0.001, max: 30, noNaN: true, noDefaultInfinity: true })),
  retries: fc.integer({ min: 0, max: 10 }),
  locations: fc.uniqueArray(location, { maxLength: 4 }),
  tags: fc.array(tag, { maxLength: 4 }),
  conditions: fc.array(condition, { maxLength: 3 }),
  downQuorumPct: fc.integer({ min: 1, max: 100 }),
  paused: fc.boolean(),
};

const typed = [
  fc.record(
    {
      ...common,
      type: fc.constant('http'),
      url,
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
      headers: fc.dictionary(
        // Credential headers (write-only: exported as `{set: true}`) among them.
        fc.oneof(
          fc
            .stringMatching(/^[A-Za-z0-9-]{1,20}$/)
            .filter((k) => !/^(content-length|transfer-encoding|expect)$/i.test(k)),
          fc.constantFrom('Authorization', 'cookie', 'X-Api-Key', 'X-Auth-Token'),
        ),
        text(30).filter((v) => !/[\r\n]/.test(v)),
        { maxKeys: 3 },
      ),
      body: text(100),
      expectedStatus: fc.array(fc.integer({ min: 100, max: 599 }), { minLength: 1, maxLength: 3 }),
      bodyContains: text(20).filter((s) => s.length > 0),
      jsonPath: fc.array(
        fc.record(
          {
            path: fc.constantFrom('$.status', '$.items[0].ok', '$["a b"]', '$'),
            equals: fc.oneof(
              text(10),
              fc.double({ noNaN: true, noDefaultInfinity: true }),
              fc.boolean(),
              fc.constant(null),
            ),
          },
          { requiredKeys: ['path'] },
        ),
        { maxLength: 2 },
      ),
      followRedirects: fc.boolean(),
      maxRedirects: fc.integer({ min: 0, max: 20 }),
      tlsVerify: fc.boolean(),
      certMinDaysLeft: fc.integer({ min: 0, max: 3650 }),
    },
    { requiredKeys: ['name', 'type', 'url'] },
  ),
  fc.record({ ...common, type: fc.constant('tcp'), host, port }, { requiredKeys: ['name', 'type', 'host', 'port'] }),
  fc.record(
    { ...common, type: fc.constant('icmp'), host, count: fc.integer({ min: 1, max: 10 }) },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('dns'),
      query: host,
      recordType: fc.constantFrom(...DNS_RECORD_TYPES),
      resolver: fc.constantFrom('1.1.1.1', '127.0.0.1:5353', '[::1]:53', 'ns1.example.com'),
      expected: fc.array(
        text(20).filter((s) => s.length > 0),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: ['name', 'type', 'query'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('tls'),
      host,
      port,
      servername: host,
      minDaysLeft: fc.integer({ min: 0, max: 3650 }),
      tlsVerify: fc.boolean(),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    { ...common, type: fc.constant('prometheus'), url, tlsVerify: fc.boolean() },
    { requiredKeys: ['name', 'type', 'url'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('postgres'),
      host,
      port,
      database: fc.constantFrom('postgres', 'app', 'fw test'),
      user: fc.constantFrom('postgres', 'monitor'),
      passwordEnv: envName,
      query: fc.constantFrom('SELECT 1', 'SELECT now() AS t'),
      ssl: fc.boolean(),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('redis'),
      host,
      port,
      username: fc.constantFrom('default', 'monitor'),
      passwordEnv: envName,
      db: fc.integer({ min: 0, max: 1024 }),
      tls: fc.boolean(),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('amqp'),
      host,
      port,
      vhost: fc.constantFrom('/', 'fleet', 'a/b'),
      username: fc.constantFrom('guest', 'monitor'),
      passwordEnv: envName,
      tls: fc.boolean(),
      queue: fc.constantFrom('jobs', 'q.with.dots'),
      managementUrl: url,
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.oneof(
    fc.record(
      { ...common, type: fc.constant('process'), processName: fc.constantFrom('postgres', 'node') },
      {
        requiredKeys: ['name', 'type', 'processName'],
      },
    ),
    fc.record(
      { ...common, type: fc.constant('process'), pidFile: fc.constantFrom('/run/app.pid') },
      {
        requiredKeys: ['name', 'type', 'pidFile'],
      },
    ),
  ),
  // Service collectors (issue 16): nested key reads and exchange names travel the YAML round trip too.
  fc.record(
    {
      ...common,
      type: fc.constant('redis-stats'),
      host,
      port,
      passwordEnv: envName,
      db: fc.integer({ min: 0, max: 1024 }),
      keys: fc.array(
        fc.record(
          {
            key: text(40).filter((k) => k.length > 0),
            type: fc.constantFrom('auto', 'hash', 'set', 'list', 'zset', 'string'),
            maxFields: fc.integer({ min: 1, max: 100_000 }),
            maxValues: fc.integer({ min: 1, max: 100 }),
          },
          { requiredKeys: ['key'] },
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('rabbitmq-queues'),
      host,
      vhost: fc.constantFrom('/', 'fleet'),
      queues: fc.array(fc.constantFrom('jobs', 'q.with.dots', 'a b'), { maxLength: 3 }),
      managementUrl: url,
      maxQueues: fc.integer({ min: 1, max: 200 }),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('rabbitmq-tap'),
      host,
      exchange: fc.constantFrom('orders', 'amq.topic', 'x: y'),
      routingKey: fc.constantFrom('#', 'order.*', ''),
      timestampPath: fc.constantFrom('$.sentAt', '$.meta["sent at"]', '$.items[0].ts'),
      timestampUnit: fc.constantFrom('auto', 'iso', 'ms', 's'),
      prefetch: fc.integer({ min: 1, max: 1000 }),
    },
    { requiredKeys: ['name', 'type', 'host', 'exchange'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('postgres-stats'),
      host,
      port,
      database: fc.constantFrom('postgres', 'app'),
      passwordEnv: envName,
      maxDatabases: fc.integer({ min: 1, max: 200 }),
    },
    { requiredKeys: ['name', 'type', 'host'] },
  ),
  fc.record(
    {
      ...common,
      type: fc.constant('s3'),
      endpoint: url,
      bucket: fc.constantFrom('fleet-bucket', 'a.b-c'),
      accessKeyIdEnv: envName,
      secretAccessKeyEnv: envName,
      roundTrip: fc.boolean(),
      prefix: fc.constantFrom('', 'fleetwatch-probe/', "a!_.*'()/-"),
    },
    { requiredKeys: ['name', 'type', 'endpoint', 'bucket', 'accessKeyIdEnv', 'secretAccessKeyEnv'] },
  ),
  fc.record(
    {
      ...common,
      // Push checks name no locations and no conditions.
      locations: fc.constant([]),
      conditions: fc.constant([]),
      type: fc.constant('push'),
      periodSeconds: fc.integer({ min: 1, max: 31 * 86_400 }),
      graceSeconds: fc.integer({ min: 0, max: 7 * 86_400 }),
      maxRuntimeSeconds: fc.integer({ min: 1, max: 7 * 86_400 }),
    },
    { requiredKeys: ['name', 'type', 'periodSeconds', 'graceSeconds'] },
  ),
];

/** A check as a client might write it (valid), with the spec the contract makes of it. */
export const arbitraryCheck: fc.Arbitrary<{ input: Record<string, unknown>; spec: CheckSpec }> = fc
  .oneof(...typed)
  .map((input) => ({ input: input as Record<string, unknown>, parsed: checkInputSchema.safeParse(input) }))
  .filter((x) => x.parsed.success)
  .map((x) => ({ input: x.input, spec: x.parsed.data as CheckSpec }));

/** Valid checks with distinct (trimmed) names. */
export const arbitraryChecks = (maxLength = 8) =>
  fc.uniqueArray(arbitraryCheck, { maxLength, selector: (c) => c.spec.name });
