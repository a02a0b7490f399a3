import type { ChannelConfig } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { alertEntryHash } from '../alerting/alert-forms';
import { ALICE, BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// What a configuration write must refuse or keep, against a real Postgres of its own:
// - a webhook channel's headers named like a credential (contracts' SECRET_NAME) are write-only: taken and sent, masked
//   in answers, exports and version snapshots, and a masked value written back keeps the stored one;
// - an export writes every section, so importing an older export with prune deletes what was added since;
// - an import never changes a check's type (its id, which rules, windows and pages name, would change);
// - an import's maintenance window takes `createdBy` from the importer (create) or keeps the stored one;

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-guards');
  owner = startOwner(servers.db.databaseUrl, null);
});
afterAll(async () => {
  await owner?.close();
  await servers?.dispose();
});

async function rejection(p: Promise<unknown>): Promise<InvalidError> {
  try {
    await p;
  } catch (e) {
    return e as InvalidError;
  }
  throw new Error('expected a rejection');
}

const CANARY = 'legacy-token-canary-93d1';

/** A channel as stored before credential-named headers were refused: written straight through the one writer. */
async function storeLegacyChannel(id: string, spec: ChannelConfig): Promise<void> {
  await owner.writer.write(ALICE, async ({ tx, next }) => {
    const form = spec as unknown as Record<string, unknown>;
    await owner.alertRepo.insertNew(
      tx,
      'channels',
      [
        {
          id,
          name: spec.name,
          type: spec.type,
          spec: form,
          hash: alertEntryHash('channels', id, form),
          secrets: {},
          secretsRedacted: { secret: { set: false }, bearerToken: { set: false } },
        },
      ],
      next,
    );
    return {
      changed: true,
      result: {},
      summary: 'legacy channel',
      audit: [],
      touched: [],
      alertChanges: { channels: { [id]: form } },
    };
  });
}

describe('webhook headers named like a credential', () => {
  it.each(['X-Auth-Token', 'X-Gitlab-Token', 'Api-Key', 'x-vault-token'])(
    'takes %s on create (a receiver may need it) and never shows its value',
    async (header) => {
      const { item: created } = await owner.alerts.create('channel', ALICE, {
        type: 'webhook',
        name: `w-${header}`,
        url: 'https://hooks.example.com/in',
        headers: { [header]: `${CANARY}-${header}`, Accept: 'application/json' },
      });
      expect(created).toMatchObject({ headers: { [header]: '(set)', Accept: 'application/json' } });
      expect(JSON.stringify(await owner.alerts.get('channel', created.id))).not.toContain(CANARY);
      const stored = (await owner.alertRepo.find('channels', created.id))?.spec as {
        headers: Record<string, string>;
      };
      expect(stored.headers[header]).toBe(`${CANARY}-${header}`);
    },
  );

  it("'(set)' for a header the channel does not hold is refused, in an import too (dry run as well)", async () => {
    const e = await rejection(
      owner.alerts.create('channel', ALICE, {
        type: 'webhook',
        name: 'w-masked',
        url: 'https://hooks.example.com/in',
        headers: { 'X-Auth-Token': '(set)' },
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(['headers.X-Auth-Token']);
    const file = [
      'checks: {}',
      'channels:',
      '  gl:',
      '    type: webhook',
      '    name: gitlab',
      '    url: https://gitlab.example.com/hook',
      "    headers: {X-Gitlab-Token: '(set)'}",
      '',
    ].join('\n');
    for (const dryRun of [true, false]) {
      const r = await rejection(owner.asCode.import(ALICE, file, { dryRun, prune: false }));
      expect(r).toBeInstanceOf(InvalidError);
      expect(r.issues.map((i) => i.path)).toEqual(['channels.gl.headers.X-Gitlab-Token']);
    }
    expect(await owner.alertRepo.find('channels', 'gl')).toBeNull();
  });

  it('one stored before is masked everywhere, kept (what deliveries send) by export → import and masked writes', async () => {
    const id = 'legacy-hook';
    await storeLegacyChannel(id, {
      type: 'webhook',
      name: 'legacy',
      enabled: true,
      sendResolved: true,
      url: 'https://hooks.example.com/legacy',
      headers: { 'X-Auth-Token': CANARY, Accept: 'application/json' },
    });
    const version = (await owner.versions.head()).version;

    const answer = await owner.alerts.get('channel', id);
    expect(answer).toMatchObject({ headers: { 'X-Auth-Token': '(set)', Accept: 'application/json' } });
    expect(JSON.stringify((await owner.alerts.list('channel', { limit: 50 })).items)).not.toContain(CANARY);
    const exported = await owner.asCode.export();
    expect(exported.yaml).not.toContain(CANARY);
    expect(exported.yaml).toContain('X-Auth-Token: (set)');
    expect(JSON.stringify(await owner.config.version(version))).not.toContain(CANARY);

    // Export → import: nothing changes, the stored value stays (what deliveries send).
    const again = await owner.asCode.import(BOB, exported.yaml, { dryRun: false, prune: true });
    expect(again.version).toBe(version);
    expect(again.plan.find((i) => i.name === `channels/${id}`)?.action).toBe('unchanged');
    const storedHeaders = async () =>
      ((await owner.alertRepo.find('channels', id))?.spec as { headers: object }).headers;
    expect(await storedHeaders()).toEqual({ 'X-Auth-Token': CANARY, Accept: 'application/json' });

    // A patch of another field and a replace sending the masked value back keep it.
    await owner.alerts.change('channel', BOB, id, { patch: { name: 'legacy 2' } });
    expect(await storedHeaders()).toEqual({ 'X-Auth-Token': CANARY, Accept: 'application/json' });
    const form = { type: 'webhook', name: 'legacy 3', url: 'https://hooks.example.com/legacy' };
    await owner.alerts.change('channel', BOB, id, {
      replace: { ...form, headers: { 'X-Auth-Token': '(set)', Accept: 'application/json' } },
    });
    expect(await storedHeaders()).toEqual({ 'X-Auth-Token': CANARY, Accept: 'application/json' });

    // The stored one moving to another destination is refused; a new value is taken; leaving it out removes it.
    const moved = await rejection(
      owner.alerts.change('channel', BOB, id, {
        replace: { ...form, url: 'https://elsewhere.example.net/', headers: { 'X-Auth-Token': '(set)' } },
      }),
    );
    expect(moved.issues.map((i) => i.path)).toEqual(['headers.X-Auth-Token']);
    expect(await storedHeaders()).toEqual({ 'X-Auth-Token': CANARY, Accept: 'application/json' });
    // A dry run of an import deleting it shows no value in its plan.
    const plan = await owner.asCode.import(
      BOB,
      exported.yaml.replace(/^channels:[\s\S]*?(?=^maintenanceWindows:)/m, 'channels: {}\n'),
      {
        dryRun: true,
        prune: true,
      },
    );
    expect(JSON.stringify(plan)).not.toContain(CANARY);
    await owner.alerts.change('channel', BOB, id, { replace: { ...form, headers: { 'X-Auth-Token': 'new-token' } } });
    expect(await storedHeaders()).toEqual({ 'X-Auth-Token': 'new-token' });
    await owner.alerts.change('channel', BOB, id, { replace: form });
    expect(await storedHeaders()).toEqual({});
  });
});

describe('an export writes every section', () => {
  it('importing an export of an empty site with prune removes rules, channels, windows and properties added since', async () => {
    const fresh = await ConfigTestServers.create('config-guards-sections');
    const site = startOwner(fresh.db.databaseUrl, null);
    try {
      const old = await site.asCode.export();
      for (const section of ['alertRules', 'channels', 'maintenanceWindows', 'properties'])
        expect(old.yaml).toMatch(new RegExp(`^${section}: \\{\\}$`, 'm'));
      // On the same site, export → import changes nothing.
      expect((await site.asCode.import(ALICE, old.yaml, { dryRun: false, prune: true })).version).toBe(old.version);

      const { item: channel } = await site.alerts.create('channel', ALICE, {
        type: 'webhook',
        name: 'ops',
        url: 'https://hooks.example.com/in',
      });
      await site.alerts.create('rule', ALICE, {
        name: 'down',
        condition: { type: 'status', statuses: ['DOWN'] },
        for: '1m',
        channels: [channel.id],
        annotations: { summary: '{{ target.name }} is down' },
      });
      await site.alerts.create('window', ALICE, {
        name: 'nightly',
        scope: { tags: ['db'] },
        schedule: { type: 'recurring', cron: '0 2 * * *', duration: '1h' },
      });
      await site.properties.put(ALICE, 'site.displayName', { value: 'lab' });

      const applied = await site.asCode.import(ALICE, old.yaml, { dryRun: false, prune: true });
      expect(applied.plan.filter((i) => i.action === 'delete').map((i) => i.name.split('/')[0])).toEqual([
        'alertRules',
        'channels',
        'maintenanceWindows',
        'properties',
      ]);
      for (const area of ['alertRules', 'channels', 'maintenanceWindows'] as const)
        expect(await site.alertRepo.all(area)).toEqual([]);
      expect((await site.properties.list()).items).toEqual([]);
    } finally {
      await site.close();
      await fresh.dispose();
    }
  });
});

describe("an import never changes a check's type", () => {
  it('refuses it (dry run and apply), naming the check; the check keeps its id', async () => {
    const { check } = await owner.config.create(ALICE, {
      name: 'typed',
      type: 'tcp',
      host: 'db.internal',
      port: 5432,
    });
    const file = 'checks:\n  typed:\n    type: icmp\n    host: db.internal\n';
    for (const dryRun of [true, false]) {
      const e = await rejection(owner.asCode.import(ALICE, file, { dryRun, prune: false }));
      expect(e).toBeInstanceOf(InvalidError);
      expect(e.issues.map((i) => i.path)).toEqual(['checks.typed.type']);
      expect(e.message).toContain(check.id);
    }
    expect((await owner.checks.findById(check.id))?.type).toBe('tcp');
    // As PATCH /api/v1/checks/{id} does.
    const patched = await rejection(owner.config.patch(ALICE, check.id, { type: 'icmp' }));
    expect(patched).toBeInstanceOf(InvalidError);
  });
});

describe("an import's maintenance windows", () => {
  it('are created by the importer, keep their author on a change, and need no createdBy in the file', async () => {
    const file = (comment: string, createdBy?: string) =>
      [
        'checks: {}',
        'maintenanceWindows:',
        '  imported-window:',
        '    name: patching',
        '    scope: {tags: [db]}',
        '    schedule: {type: recurring, cron: "0 3 * * 0", duration: 2h}',
        `    comment: ${comment}`,
        ...(createdBy === undefined ? [] : [`    createdBy: ${createdBy}`]),
        '',
      ].join('\n');
    await owner.asCode.import(ALICE, file('first'), { dryRun: false, prune: false });
    const author = async () => (await owner.alertRepo.find('maintenanceWindows', 'imported-window'))?.spec['createdBy'];
    expect(await author()).toBe(ALICE.name);
    await owner.asCode.import(BOB, file('second', 'mallory'), { dryRun: false, prune: false });
    expect(await author()).toBe(ALICE.name);
    expect((await owner.alertRepo.find('maintenanceWindows', 'imported-window'))?.spec['comment']).toBe('second');
    // Given but not a valid author: ignored all the same.
    await owner.asCode.import(BOB, file('third', '""'), { dryRun: false, prune: false });
    expect(await author()).toBe(ALICE.name);
  });
});
