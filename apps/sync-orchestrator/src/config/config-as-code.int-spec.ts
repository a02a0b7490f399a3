import { Messages } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { waitFor } from '@fleetwatch/testing';
import { stringify } from 'yaml';
import { TargetDeniedError, VersionConflictError } from './config.errors';
import { ALICE, BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// Config as code and the config.changed outbox against real Postgres and RabbitMQ:
// import dry run shows the plan and writes nothing; apply writes all of it as one
// version; export → import is a no-op; 1,000 checks import in one version; every
// version's config.changed is published after commit, also when the process died
// between commit and publish (a restarted one picks the outbox row up).

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-as-code');
  owner = startOwner(servers.db.databaseUrl, { amqpUrl: servers.vhost.amqpUrl });
  await waitFor(() => owner.busReady(), { description: 'owner connected to the bus' });
});
afterAll(async () => {
  await owner?.close();
  await servers?.dispose();
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const FILE = `
checks:
  api:
    type: http
    url: http://127.0.0.1:8080/health
    conditions: ["status == 200"]
    tags: [team-a]
  db:
    type: tcp
    host: db.internal
    port: 5432
  ping:
    type: icmp
    host: 127.0.0.1
    locations: [lab-1]
`;

describe('import and export', () => {
  it('dry run shows the plan and writes nothing; apply writes it as one version', async () => {
    const dry = await owner.asCode.import(ALICE, FILE, { dryRun: true, prune: true });
    expect(dry).toEqual({
      dryRun: true,
      version: 0,
      plan: [
        { action: 'create', name: 'api', id: null, diff: expect.any(Array) },
        { action: 'create', name: 'db', id: null, diff: expect.any(Array) },
        { action: 'create', name: 'ping', id: null, diff: expect.any(Array) },
      ],
    });
    expect(await servers.versions()).toEqual([]);

    const applied = await owner.asCode.import(BOB, FILE, { dryRun: false, prune: true, expectedVersion: 0 });
    expect(applied.version).toBe(1);
    expect(applied.plan.every((i) => i.action === 'create' && typeof i.id === 'string')).toBe(true);
    expect((await owner.config.version(1)).summary).toBe('import: 3 created');
    const listed = await owner.config.list({ limit: 10 });
    expect(listed.items.map((c) => [c.name, c.version])).toEqual([
      ['api', 1],
      ['db', 1],
      ['ping', 1],
    ]);

    // Change one, drop one (prune), add one: a plan per check, one version.
    const next = FILE.replace('port: 5432', 'port: 6432').replace(
      / {2}ping:[\s\S]*$/,
      '  dns:\n    type: dns\n    query: example.com\n',
    );
    const plan = await owner.asCode.import(ALICE, next, { dryRun: true, prune: true, expectedVersion: 1 });
    expect(plan.plan.map((i) => [i.action, i.name])).toEqual([
      ['unchanged', 'api'],
      ['change', 'db'],
      ['create', 'dns'],
      ['delete', 'ping'],
    ]);
    expect(plan.plan.find((i) => i.name === 'db')?.diff).toEqual([{ path: 'port', before: 5432, after: 6432 }]);
    const done = await owner.asCode.import(ALICE, next, { dryRun: false, prune: true, expectedVersion: 1 });
    expect(done.version).toBe(2);
    expect(await servers.versions()).toEqual([1, 2]);
    // The version's hash (computed from the plan, not read back) is the hash of what is stored.
    expect((await owner.asCode.export()).hash).toBe((await owner.versions.head()).hash);
    const audit = (await owner.config.audit({ limit: 10 })).items.filter((a) => a.version === 2);
    expect(audit.map((a) => a.action).sort()).toEqual(['check.create', 'check.delete', 'check.replace']);

    // Without prune, checks the file leaves out stay.
    const keep = await owner.asCode.import(
      ALICE,
      'checks:\n  db:\n    type: tcp\n    host: db.internal\n    port: 6432\n',
      {
        dryRun: true,
        prune: false,
      },
    );
    expect(keep.plan.every((i) => i.action === 'unchanged')).toBe(true);
  });

  it('a stale expected version, a bad file or a denied target changes nothing', async () => {
    const head = (await owner.versions.head()).version;
    const stale = await rejection(owner.asCode.import(ALICE, FILE, { dryRun: false, prune: true, expectedVersion: 1 }));
    expect(stale).toBeInstanceOf(VersionConflictError);
    expect((stale as VersionConflictError).currentVersion).toBe(head);
    const bad = (await rejection(
      owner.asCode.import(ALICE, 'checks:\n  x:\n    type: http\n    url: gopher://a/\n', {
        dryRun: false,
        prune: true,
      }),
    )) as InvalidError;
    expect(bad.issues).toEqual([
      { path: 'checks.x.url', message: expect.stringMatching(/line 2, column 3: scheme "gopher:"/) },
    ]);
    const broken = (await rejection(
      owner.asCode.import(ALICE, 'checks: [\n', { dryRun: true, prune: true }),
    )) as InvalidError;
    expect(broken.message).toMatch(/^not valid YAML: line \d+, column \d+/);
    const denied = (await rejection(
      owner.asCode.import(ALICE, 'checks:\n  m:\n    type: tcp\n    host: "fd00:ec2::254"\n    port: 80\n', {
        dryRun: true,
        prune: true,
      }),
    )) as TargetDeniedError;
    expect(denied).toBeInstanceOf(TargetDeniedError);
    expect(denied.issues).toEqual([{ path: 'checks.m.host', message: expect.stringMatching(/fd00:ec2::254/) }]);
    expect((await owner.versions.head()).version).toBe(head);
  });

  it('export → import is a no-op; the export hashes to the head', async () => {
    await owner.config.bulkCreate(ALICE, [
      {
        name: 'full',
        type: 'http',
        url: 'https://a.internal/x?y=1#z',
        method: 'POST',
        headers: { 'X-B': 'b: c', Accept: '*/*' },
        body: '{"a": 1}\n',
        expectedStatus: [200, 204],
        jsonPath: [{ path: '$.status', equals: 'UP' }, { path: '$["a b"]' }],
        followRedirects: false,
        certMinDaysLeft: 14,
        retries: 2,
        downQuorumPct: 50,
        description: 'multi\nline: yes # no comment',
      },
      {
        name: ' spaced name: with # and "quotes" ',
        type: 'postgres',
        host: '::1',
        passwordEnv: 'FLEETWATCH_SECRET_PG_PASSWORD',
        query: 'SELECT 1',
        paused: true,
      },
      { name: 'true', type: 'process', pidFile: '/run/x.pid', timeoutSeconds: 0.25, intervalSeconds: 1 },
      { name: 'amqp', type: 'amqp', host: 'localhost', queue: 'jobs', managementUrl: 'http://localhost:15672' },
    ]);
    const head = await owner.versions.head();
    const exported = await owner.asCode.export();
    expect(exported.version).toBe(head.version);
    expect(exported.hash).toBe(head.hash);
    expect(exported.yaml).toMatch(/^# Fleetwatch configuration as code: version \d+/);
    expect(exported.yaml).not.toMatch(/\bid:|version:|createdAt|updatedAt|targetId/);
    const plan = await owner.asCode.import(BOB, exported.yaml, {
      dryRun: false,
      prune: true,
      expectedVersion: head.version,
    });
    expect(plan.version).toBe(head.version);
    expect(plan.plan.every((i) => i.action === 'unchanged')).toBe(true);
    expect((await owner.versions.head()).version).toBe(head.version);
    // The same content written another way (defaults spelled out, other order) is no change either.
    const verbose = stringify({
      checks: Object.fromEntries(
        (await owner.config.list({ limit: 100 })).items.map(
          ({ id: _i, targetId: _t, version: _v, createdAt: _c, updatedAt: _u, name, ...spec }) => [
            name,
            Object.fromEntries(Object.entries(spec).reverse()),
          ],
        ),
      ),
    });
    expect((await owner.asCode.import(BOB, verbose, { dryRun: false, prune: true })).version).toBe(head.version);
  });

  it('imports 1,000 checks as one version, fast', async () => {
    const lines = ['checks:'];
    for (let i = 0; i < 1000; i++)
      lines.push(
        `  imported-${i}:`,
        '    type: http',
        `    url: http://10.1.${i % 250}.2:8080/health`,
        '    conditions: ["status == 200"]',
      );
    const head = (await owner.versions.head()).version;
    const started = performance.now();
    const r = await owner.asCode.import(ALICE, lines.join('\n'), { dryRun: false, prune: false });
    const ms = performance.now() - started;
    process.stderr.write(`YAML import of 1,000 checks: ${ms.toFixed(0)} ms\n`);
    expect(r.version).toBe(head + 1);
    expect(r.plan.filter((i) => i.action === 'create')).toHaveLength(1000);
    // Well under a second on a quiet box; the bound leaves room for a loaded CI runner (2 cores, suites in parallel).
    expect(ms).toBeLessThan(10_000);
  });
});

describe('config.changed outbox', () => {
  it('publishes every version after commit, in order, once confirmed the outbox is empty', async () => {
    // What earlier tests wrote may still be on its way (an import of 1,000 checks publishes their
    // check.lifecycle messages first): let it arrive before reading this test's own.
    await waitFor(async () => (await servers.outbox()).length === 0, { description: 'earlier versions published' });
    await servers.takeConfigChanged();
    const first = await owner.config.create(ALICE, { name: 'outbox-1', type: 'tcp', host: 'a', port: 1 });
    const second = await owner.config.setPaused(BOB, first.check.id, true);
    const got = await waitFor(
      async () => {
        const m = await servers.takeConfigChanged();
        return m.length ? m : null;
      },
      { description: 'config.changed published' },
    );
    const seen = [...got];
    await waitFor(async () => (await servers.outbox()).length === 0, { description: 'outbox empty' });
    seen.push(...(await servers.takeConfigChanged()));
    expect(seen.map((m) => m.type)).toEqual([Messages.ConfigChanged.type, Messages.ConfigChanged.type]);
    const head = await owner.versions.head();
    expect(seen.map((m) => m.payload)).toEqual([
      expect.objectContaining({
        version: first.version,
        areas: ['checks'],
        origin: 'local',
        actor: expect.stringMatching(/^alice/),
      }),
      {
        version: second.version,
        hash: head.hash,
        areas: ['checks'],
        origin: 'local',
        actor: expect.stringMatching(/^ci-pipeline/),
      },
    ]);
  });

  it('a version committed by a process that died before publishing is published by the next one', async () => {
    await servers.takeConfigChanged();
    // The "crashed" process: commits, but has no broker to publish to, then is gone.
    const crashed = startOwner(servers.db.databaseUrl, null);
    const { version } = await crashed.config.create(ALICE, { name: 'orphan', type: 'tcp', host: 'b', port: 2 });
    const [orphan] = await crashed.versions.pendingChanged();
    await crashed.close();
    expect(orphan.version).toBe(version);
    expect(await servers.outbox()).toEqual([version]);

    // The restarted process: its relay looks at the outbox on start.
    const restarted = startOwner(servers.db.databaseUrl, { amqpUrl: servers.vhost.amqpUrl });
    try {
      await waitFor(() => restarted.busReady(), { description: 'restarted owner connected' });
      restarted.relay.onApplicationBootstrap();
      const got = await waitFor(
        async () => {
          const m = await servers.takeConfigChanged();
          return m.length ? m : null;
        },
        { description: 'orphaned config.changed published' },
      );
      expect(got.map((m) => [m.id, (m.payload as { version: number }).version])).toEqual([[orphan.messageId, version]]);
      await waitFor(async () => (await servers.outbox()).length === 0, { description: 'outbox empty' });
    } finally {
      await restarted.close();
    }
  });
});

describe('alert configuration as code (issue 18)', () => {
  it('export carries rules, channels (no secrets) and windows, never silences; export → import is a no-op and keeps secrets', async () => {
    const { item: channel } = await owner.alerts.create('channel', ALICE, {
      type: 'pagerduty',
      name: 'on-call',
      routingKey: 'routing-canary-42',
    });
    await owner.alerts.create('rule', ALICE, {
      name: 'down',
      condition: { type: 'status', statuses: ['DOWN'] },
      for: '1m',
      channels: [channel.id],
      annotations: { summary: '{{ target.name }} is down' },
    });
    await owner.alerts.create('window', BOB, {
      name: 'nightly',
      scope: { tags: ['db'] },
      schedule: { type: 'recurring', cron: '0 2 * * *', duration: '1h' },
    });
    const now = Date.now();
    await owner.silences.create(ALICE, {
      matchers: [{ name: 'alertname', op: '=', value: 'down' }],
      startsAt: new Date(now).toISOString(),
      endsAt: new Date(now + 3_600_000).toISOString(),
      comment: 'operational state, not configuration',
    });

    const exported = await owner.asCode.export();
    expect(exported.yaml).toMatch(/^alertRules:$/m);
    expect(exported.yaml).toMatch(/^channels:$/m);
    expect(exported.yaml).toMatch(/^maintenanceWindows:$/m);
    expect(exported.yaml).not.toContain('routing-canary-42');
    expect(exported.yaml).not.toContain('routingKey');
    expect(exported.yaml).not.toContain('operational state');

    const head = (await owner.versions.head()).version;
    const again = await owner.asCode.import(BOB, exported.yaml, { dryRun: false, prune: true, expectedVersion: head });
    expect(again.version).toBe(head);
    expect(again.plan.every((i) => i.action === 'unchanged')).toBe(true);
    expect(again.plan.map((i) => i.name)).toEqual(expect.arrayContaining([`channels/${channel.id}`]));
    expect((await owner.asCode.export()).hash).toBe(exported.hash);
    expect(await owner.alerts.get('channel', channel.id)).toMatchObject({ routingKey: { set: true } });
    expect((await owner.silences.list({ limit: 10 })).items).toHaveLength(1);

    // A file without alert sections leaves them; a changed rule section is a plan and one version.
    const checksOnly = await owner.asCode.import(BOB, exported.yaml.split(/^alertRules:$/m)[0], {
      dryRun: true,
      prune: true,
    });
    expect(checksOnly.plan.every((i) => i.action === 'unchanged')).toBe(true);
    const edited = exported.yaml.replace('for: 1m', 'for: 2m');
    const applied = await owner.asCode.import(ALICE, edited, { dryRun: false, prune: true });
    expect(applied.version).toBe(head + 1);
    expect(applied.plan.filter((i) => i.action !== 'unchanged').map((i) => i.action)).toEqual(['change']);
    expect((await owner.config.version(applied.version)).summary).toBe('import: 1 changed');
    // A rule naming a channel the file deletes is refused, naming it.
    const orphan = edited.replace(/^channels:[\s\S]*?(?=^maintenanceWindows:)/m, 'channels: {}\n');
    const refused = (await rejection(
      owner.asCode.import(ALICE, orphan, { dryRun: true, prune: true }),
    )) as InvalidError;
    expect(refused.issues.map((i) => i.path)).toEqual([expect.stringMatching(/^alertRules\..+\.channels\.0$/)]);
  });
});
