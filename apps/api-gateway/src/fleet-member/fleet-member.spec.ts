import { REDACTED } from '@fleetwatch/contracts';
import { incrementsPerMinute, managementUrlOf, totalsOf, vhostOf } from './broker-stats';
import { loadGatewayConfig } from '../config';
import { componentVersions, KnownVersions, versionFromMetrics } from './component-versions';
import {
  canonicalJson,
  etagMatches,
  finishSnapshot,
  redactSecrets,
  snapshotEtag,
  withChannelNames,
} from './snapshot.service';

describe('broker figures', () => {
  it.each([
    ['amqp://guest:guest@127.0.0.1:5672', 'http://guest:guest@127.0.0.1:15672', '/'],
    ['amqp://u:p%40ss@mq.example:5672/fw-site', 'http://u:p%40ss@mq.example:15672', 'fw-site'],
    ['amqp://mq.example/a%2Fb', 'http://guest:guest@mq.example:15672', 'a/b'],
    ['amqps://u:p@mq.example:5671/s', 'https://u:p@mq.example:15671', 's'],
  ])('%s → management %s, vhost %s', (amqp, mgmt, vhost) => {
    expect(managementUrlOf(amqp)).toBe(mgmt);
    expect(vhostOf(amqp)).toBe(vhost);
  });

  it('counts dead-letter queues apart and in-flight only from the management API', () => {
    const queues = [
      { name: 'q.a', ready: 2, unacked: 1, consumers: 1 },
      { name: 'q.b', ready: 3, unacked: 4, consumers: 2 },
      { name: 'q.a.dlq', ready: 5, unacked: 0, consumers: 0 },
    ];
    expect(
      totalsOf(
        'management',
        queues.map((q) => ({ ...q })),
      ),
    ).toMatchObject({
      inFlight: 5,
      queued: 5,
      deadLettered: 5,
    });
    expect(
      totalsOf(
        'passive',
        queues.map((q) => ({ ...q, unacked: null })),
      ),
    ).toMatchObject({
      inFlight: null,
      queued: 5,
      deadLettered: 5,
    });
  });

  it.each([
    ['no samples', undefined, []],
    ['one sample gives no increment', [{ sample: 10, timestamp: 60_000 }], []],
    [
      'increments per minute from cumulative samples, newest first as RabbitMQ sends them',
      [
        { sample: 25, timestamp: 180_000 },
        { sample: 15, timestamp: 120_000 },
        { sample: 10, timestamp: 60_000 },
      ],
      [
        [120_000, 5],
        [180_000, 10],
      ],
    ],
    [
      'a counter reset is no negative flow',
      [
        { sample: 3, timestamp: 120_000 },
        { sample: 50, timestamp: 60_000 },
      ],
      [[120_000, 0]],
    ],
  ])('%s', (_n, samples, expected) => expect([...incrementsPerMinute(samples)]).toEqual(expected));
});

describe('component versions', () => {
  it.each([
    ['fleetwatch_service_info{service="collector",site="s",location="l",version="1.2.3"} 1\n', '1.2.3'],
    ['# HELP x\nfleetwatch_service_info{version="2.0.0-rc.1",service="aggregator"} 1', '2.0.0-rc.1'],
    ['fleetwatch_service_info{service="collector"} 1', null],
    ['other_metric{version="9"} 1', null],
  ])('%j → %s', (text, version) => expect(versionFromMetrics(text)).toBe(version));
});

describe('component versions remembered', () => {
  it('a failed probe reports the version read within the TTL, then null', () => {
    let now = 0;
    const known = new KnownVersions(60_000, () => now);
    expect(known.settle('aggregator', null)).toBeNull(); // never read
    expect(known.settle('aggregator', '1.2.3')).toBe('1.2.3');
    now = 59_000;
    expect(known.settle('aggregator', null)).toBe('1.2.3');
    expect(known.settle('collector', null)).toBeNull(); // per component
    now = 59_000 + 60_001;
    expect(known.settle('aggregator', null)).toBeNull();
    expect(known.settle('aggregator', '1.2.4')).toBe('1.2.4'); // a new version read wins at once
  });

  it('componentVersions: a sibling that answered once and then is silent keeps its version', async () => {
    const { createServer } = await import('node:http');
    let up = true;
    const server = createServer((_req, res) => {
      if (!up) return res.destroy();
      res.end('# HELP x\nfleetwatch_service_info{service="aggregator",version="9.9.9"} 1\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      // The aggregator is asked at this server; the collector at a closed port; the others are not asked.
      const urls = { aggregator: `http://127.0.0.1:${port}`, collector: 'http://127.0.0.1:9', 'status-ingest': null };
      const known = new KnownVersions();
      const self = { service: 'api-gateway', version: '1.0.0' };
      const first = await componentVersions(self, urls, known);
      expect(first.find((c) => c.component === 'aggregator')?.version).toBe('9.9.9');
      up = false;
      const second = await componentVersions(self, urls, known);
      expect(second.find((c) => c.component === 'aggregator')?.version).toBe('9.9.9');
      expect(second.find((c) => c.component === 'collector')?.version).toBeNull();
      expect(second.map((c) => c.component)).toEqual(['aggregator', 'api-gateway', 'collector', 'status-ingest']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

const BASE_ENV = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fw',
  REDIS_URL: 'redis://127.0.0.1:6379',
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
};

describe('component versions asked only where configured', () => {
  it('a service without a URL is reported null and never asked, even with a service on its default port', async () => {
    // A service of another site (or test) on the port a sibling's variable would name: the 127.0.0.1 default read
    // its version and reported it as this site's (the leader then saw version drift for 10 minutes).
    const { createServer } = await import('node:http');
    let asked = 0;
    const server = createServer((_req, res) => {
      asked++;
      res.end('fleetwatch_service_info{service="collector",version="6.6.6"} 1\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const self = { service: 'api-gateway', version: '1.0.0' };
      const unset = loadGatewayConfig({ ...BASE_ENV, COLLECTOR_PORT: String(port) }).componentUrls;
      expect(unset).toEqual({
        'status-ingest': 'http://127.0.0.1:3001',
        collector: `http://127.0.0.1:${port}`,
        aggregator: 'http://127.0.0.1:3003',
        'sync-orchestrator': 'http://127.0.0.1:3004',
      });
      expect(
        (await componentVersions(self, unset, new KnownVersions())).find((c) => c.component === 'collector'),
      ).toEqual({ component: 'collector', version: '6.6.6' });
      expect(asked).toBe(1);
      const named = loadGatewayConfig({
        ...BASE_ENV,
        COLLECTOR_PORT: String(port),
        FLEETWATCH_COMPONENT_URLS: 'sync-orchestrator=http://127.0.0.1:9/',
      }).componentUrls;
      expect(named).toEqual({
        'status-ingest': null,
        collector: null,
        aggregator: null,
        'sync-orchestrator': 'http://127.0.0.1:9',
      });
      const versions = await componentVersions(self, named, new KnownVersions());
      expect(versions).toEqual([
        { component: 'aggregator', version: null },
        { component: 'api-gateway', version: '1.0.0' },
        { component: 'collector', version: null },
        { component: 'status-ingest', version: null },
        { component: 'sync-orchestrator', version: null },
      ]);
      expect(asked).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('snapshot', () => {
  it.each([
    [{ password: 'p' }, { password: REDACTED }],
    // The name of the collector's variable holding the password: content, not a secret.
    [
      { passwordEnv: 'FLEETWATCH_SECRET_PG', secretAccessKeyEnv: 'FLEETWATCH_SECRET_S3' },
      { passwordEnv: 'FLEETWATCH_SECRET_PG', secretAccessKeyEnv: 'FLEETWATCH_SECRET_S3' },
    ],
    // ...but a field so named holding anything else (a property value of a user's) is redacted as before.
    [{ apiTokenEnv: 'hunter2' }, { apiTokenEnv: REDACTED }],
    [{ smtp: { Password: 'p', host: 'h' } }, { smtp: { Password: REDACTED, host: 'h' } }],
    [{ headers: [{ name: 'x', authorization: 'Bearer t' }] }, { headers: [{ name: 'x', authorization: REDACTED }] }],
    [
      { headers: { Cookie: 'sid=s', 'Set-Cookie': 'a=b', 'X-Trace': 't' } },
      { headers: { Cookie: REDACTED, 'Set-Cookie': REDACTED, 'X-Trace': 't' } },
    ],
    [
      { apiKey: 'k', api_key: 'k', webhookUrl: 'https://hooks/x' },
      { apiKey: REDACTED, api_key: REDACTED, webhookUrl: REDACTED },
    ],
    [
      { token: null, secret: '' },
      { token: null, secret: '' },
    ],
    [
      { name: 'passes', interval: 5 },
      { name: 'passes', interval: 5 },
    ],
  ])('redacts %j', (input, output) => expect(redactSecrets(input)).toEqual(output));

  it('hashes the canonical JSON: the same content in another order hashes alike', () => {
    const areas = (checks: { key: string; b: number; a: number }[]) => ({
      checks,
      alertRules: [],
      channels: [],
      properties: [],
      statusPages: [],
      usersAndRoles: [],
      componentVersions: [],
    });
    const one = finishSnapshot(
      's',
      1,
      areas([
        { key: 'b', b: 1, a: 2 },
        { key: 'a', b: 1, a: 2 },
      ]),
      0,
    );
    const two = finishSnapshot(
      's',
      1,
      areas([
        { key: 'a', a: 2, b: 1 },
        { key: 'b', a: 2, b: 1 },
      ]),
      0,
    );
    expect(one.hash).toBe(two.hash);
    expect(one.areas.checks.map((c) => c.key)).toEqual(['a', 'b']);
    expect(finishSnapshot('s', 1, areas([{ key: 'a', a: 3, b: 1 }]), 0).hash).not.toBe(one.hash);
    expect(canonicalJson({ b: [1, { d: 1, c: undefined }], a: 'x' })).toBe('{"a":"x","b":[1,{"d":1}]}');
  });

  it('two alert rules of one name: both in the snapshot, and the same two hash alike in either order', () => {
    const areas = (alertRules: { key: string; for: string }[]) => ({
      checks: [],
      alertRules,
      channels: [],
      properties: [],
      statusPages: [],
      usersAndRoles: [],
      componentVersions: [],
    });
    const slow = { key: 'down', for: '10m' };
    const fast = { key: 'down', for: '1m' };
    const one = finishSnapshot('s', 1, areas([slow, fast]), 0);
    const two = finishSnapshot('s', 1, areas([fast, slow]), 0);
    expect(one.hash).toBe(two.hash);
    expect(one.areas.alertRules).toEqual([slow, { ...fast, key: 'down (2)' }]);
    expect(finishSnapshot('s', 1, areas([slow]), 0).hash).not.toBe(one.hash);
  });

  it('two sites configured alike hash alike: channels by name (their ids differ), set-like lists in any order', () => {
    const site = (ids: Record<string, string>, reversed: boolean) => {
      const names = new Map(Object.entries(ids).map(([name, id]) => [id, name]));
      const list = <T>(xs: T[]) => (reversed ? [...xs].reverse() : xs);
      return finishSnapshot(
        's',
        1,
        {
          checks: [{ key: 'api', type: 'http', url: 'https://a/', tags: list(['prod', 'eu']), conditions: ['a', 'b'] }],
          alertRules: [
            withChannelNames(
              {
                key: 'web down',
                channels: list([ids.ops, ids.pager]),
                selector: { tags: list(['web', 'edge']), sites: [] },
                condition: { type: 'status', statuses: list(['DOWN', 'STALE']) },
              },
              names,
            ),
          ],
          channels: [{ key: 'ops', type: 'email', to: list(['a@x.org', 'b@x.org']) }],
          properties: [],
          statusPages: [{ key: 'public', components: list([{ name: 'a' }, { name: 'b' }]) }],
          usersAndRoles: [],
          componentVersions: [],
        },
        0,
      );
    };
    const leader = site({ ops: '5075-a', pager: '5075-b' }, false);
    const member = site({ ops: 'ee19-a', pager: 'ee19-b' }, true);
    expect(member.areas.alertRules).toEqual(leader.areas.alertRules);
    expect(leader.areas.alertRules[0]).toMatchObject({ channels: ['ops', 'pager'] });
    expect(member.areas.checks).toEqual(leader.areas.checks);
    expect(member.areas.channels).toEqual(leader.areas.channels);
    // A status page's components are shown in their order: that order is content.
    expect(member.areas.statusPages).not.toEqual(leader.areas.statusPages);
    // ...and so are a check's conditions.
    const conditions = (c: string[]) =>
      finishSnapshot('s', 1, { ...leader.areas, checks: [{ key: 'api', type: 'http', conditions: c }] }, 0).hash;
    expect(conditions(['a', 'b'])).not.toBe(conditions(['b', 'a']));
    // An id no channel has stays an id.
    expect(withChannelNames({ key: 'r', channels: ['gone'] }, new Map())).toEqual({ key: 'r', channels: ['gone'] });
  });

  it("a property named as a secret (db.password, smtp:apiKey) has its value redacted, whatever the value's shape", () => {
    const snapshot = finishSnapshot(
      's',
      1,
      {
        checks: [],
        alertRules: [],
        channels: [],
        properties: [
          { key: 'db.password', value: 'canary-prop-PASSWORD' },
          { key: 'smtp:apiKey', value: { primary: 'canary-prop-APIKEY' } },
          { key: 'empty.token', value: '' },
          { key: 'region', value: 'eu-west-1' },
        ],
        statusPages: [],
        usersAndRoles: [],
        componentVersions: [],
      },
      0,
    );
    expect(JSON.stringify(snapshot)).not.toContain('canary-prop');
    expect(snapshot.areas.properties).toEqual([
      { key: 'db.password', value: REDACTED },
      { key: 'empty.token', value: '' },
      { key: 'region', value: 'eu-west-1' },
      { key: 'smtp:apiKey', value: REDACTED },
    ]);
  });

  it('a `__proto__` member inside a property value (config as code takes one) is content: kept, and hashed', () => {
    const areas = (value: unknown) => ({
      checks: [],
      alertRules: [],
      channels: [],
      properties: [{ key: 'k', value }],
      statusPages: [],
      usersAndRoles: [],
      componentVersions: [],
    });
    const one = finishSnapshot('s', 1, areas(JSON.parse('{"__proto__":{"a":1},"b":2}')), 0);
    const two = finishSnapshot('s', 1, areas(JSON.parse('{"__proto__":{"a":2},"b":2}')), 0);
    expect(two.hash).not.toBe(one.hash);
    expect(JSON.stringify(one.areas.properties)).toBe('[{"key":"k","value":{"__proto__":{"a":1},"b":2}}]');
    const redacted = redactSecrets(JSON.parse('{"__proto__":{"password":"p"}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype);
    expect(JSON.stringify(redacted)).toBe(`{"__proto__":{"password":${JSON.stringify(REDACTED)}}}`);
  });
});

describe('snapshot ETag', () => {
  const etag = snapshotEtag('ab12');
  it.each([
    [undefined, false],
    ['', false],
    ['"ab12"', true],
    ['W/"ab12"', true],
    ['"zz", "ab12"', true],
    ['*', true],
    ['"ab1"', false],
    ['ab12', false],
    ['"AB12"', false],
  ])('If-None-Match %p matches: %p', (header, expected) => {
    expect(etag).toBe('"ab12"');
    expect(etagMatches(header, etag)).toBe(expected);
  });
});
