import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Client } from 'pg';
import {
  alertRuleSpecSchema,
  channelInputSchema,
  DEFAULT_ALERT_RULES,
  maintenanceWindowSpecSchema,
  redactChannel,
  silenceSpecSchema,
  silenceWriteIssues,
  splitChannelSecrets,
} from '@fleetwatch/contracts';
import {
  ConflictError,
  createTargetPolicy,
  DEFAULT_DENY_NETWORKS,
  ForbiddenError,
  InvalidError,
} from '@fleetwatch/domain';
import { alertRuleIssues, maintenanceWindowIssues } from '@fleetwatch/alerting';
import { SecretSealer, subscriptionSecretContext, SubscriptionsRepository } from '@fleetwatch/persistence';
import { rebuild, type HistoryRow } from '../config/config-history';
import { configHashOfSnapshot } from '../config/config-hash';
import { VersionConflictError } from '../config/config.errors';
import {
  ALICE,
  BOB,
  ConfigTestServers,
  startOwner,
  TEST_SEALING_KEY,
  type OwnerParts,
} from '../config/config.int-helpers';
import { channelInput, ruleInput, silenceInput, windowInput } from './alert-config.arbitrary';
import { sealContext } from './channel-secrets';
import { SubscriptionsService } from '../subscriptions/subscriptions.service';

// Alert rules, channels, maintenance windows and silences through the configuration owner's one
// writer, against a real Postgres of their own: each change a version with its hash (the same by SQL
// and by the snapshot), audited with who and the diff, a config.changed naming its area; stale
// versions conflict; refusals name the field; channel secrets are sealed at rest and never leave;
// the default rules are seeded once. Property: whatever is accepted is stored and read back equal.

jest.setTimeout(180_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let sql: Client;
const sealer = SecretSealer.fromText(TEST_SEALING_KEY);

beforeAll(async () => {
  servers = await ConfigTestServers.create('alert-config');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

async function rejection(p: Promise<unknown>): Promise<Error & { issues?: { path: string }[] }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function must<T>(v: T | null | undefined): T {
  if (v === null || v === undefined) throw new Error('expected a value');
  return v;
}

/** The subscriptions owner over this file's writer, pool and sealer (the default deny-list policy). */
function subscriptionsService(repository = new SubscriptionsRepository(owner.pool)): SubscriptionsService {
  return new SubscriptionsService(owner.writer, repository, sealer, createTargetPolicy(DEFAULT_DENY_NETWORKS));
}

/** The head's hash is what the version's rebuilt snapshot hashes to (SQL and TypeScript agree). */
async function expectHashConsistent(): Promise<void> {
  const head = await owner.versions.head();
  const h = await owner.versions.history(head.version);
  expect(configHashOfSnapshot(rebuild(must(h).rows as HistoryRow[]))).toBe(head.hash);
}

const rule = {
  name: 'API slow',
  condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
  for: '5m',
};

describe('alert rules', () => {
  it('create, read, replace, patch and delete: each a version, audited, with config.changed area rules', async () => {
    const before = (await owner.versions.head()).version;
    const created = await owner.alerts.create('rule', ALICE, rule);
    expect(created.version).toBe(before + 1);
    expect(created.item).toMatchObject({ name: 'API slow', for: '5m', severity: 'warning', version: created.version });
    expect(await owner.alerts.get('rule', created.item.id)).toEqual(created.item);
    await expectHashConsistent();

    const stale = await rejection(owner.alerts.change('rule', BOB, created.item.id, { patch: { for: '1m' } }, 0));
    expect(stale).toBeInstanceOf(VersionConflictError);
    expect((stale as VersionConflictError).currentVersion).toBe(created.version);

    const patched = await owner.alerts.change(
      'rule',
      BOB,
      created.item.id,
      { patch: { for: '1m', labels: { team: 'a' } } },
      created.version,
    );
    expect(patched.item).toMatchObject({ for: '1m', labels: { team: 'a' }, version: created.version + 1 });
    // The same again changes nothing: no version.
    const same = await owner.alerts.change('rule', BOB, created.item.id, { patch: { for: '1m' } });
    expect(same.version).toBe(patched.version);
    const replaced = await owner.alerts.change('rule', ALICE, created.item.id, {
      replace: { ...rule, severity: 'critical' },
    });
    expect(replaced.item).toMatchObject({ severity: 'critical', for: '5m', labels: {} });
    await expectHashConsistent();

    const audit = (await owner.config.audit({ limit: 10, subject: created.item.id })).items;
    expect(audit.map((a) => [a.action, a.actor])).toEqual([
      ['alert-rule.replace', 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)'],
      ['alert-rule.patch', `${BOB.name} (${BOB.id})`],
      ['alert-rule.create', 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)'],
    ]);
    expect(audit[1].diff).toEqual(expect.arrayContaining([{ path: 'for', before: '5m', after: '1m' }]));
    const pending = await owner.versions.pendingChanged(1000);
    expect(pending.find((p) => p.version === replaced.version)?.payload).toMatchObject({
      areas: ['rules'],
      actor: expect.stringContaining('alice'),
    });
    expect(pending.find((p) => p.version === replaced.version)?.lifecycle).toEqual([]);

    const deleted = await owner.alerts.delete('rule', ALICE, created.item.id);
    expect(deleted.version).toBe(replaced.version + 1);
    expect(await rejection(owner.alerts.get('rule', created.item.id))).toHaveProperty('name', 'NotFoundError');
    await expectHashConsistent();
  });

  it.each([
    [{ ...rule, condition: { type: 'status', statuses: ['UP'] } }, 'condition.statuses.0'],
    [{ ...rule, for: '5 minutes' }, 'for'],
    [{ ...rule, labels: { severity: 'x' } }, 'labels.severity'],
    [{ ...rule, annotations: { summary: '{{ target.name ' } }, 'annotations.summary'],
    [{ ...rule, channels: ['no-such-channel'] }, 'channels.0'],
    [{ ...rule, name: 'a\u0000b' }, 'name'],
  ])('refuses %j naming %s, writing nothing', async (input, path) => {
    const before = (await owner.versions.head()).version;
    const e = await rejection(owner.alerts.create('rule', ALICE, input));
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues?.map((i) => i.path)).toContain(path);
    expect((await owner.versions.head()).version).toBe(before);
  });
});

describe('channels and their secrets', () => {
  const CANARY = 'canary-7f3a9-do-not-leak';

  it('seals secrets at rest, answers only the redacted form, keeps them on writes without them', async () => {
    const { item: ch } = await owner.alerts.create('channel', ALICE, {
      type: 'webhook',
      name: 'ops',
      url: 'https://hooks.example.com/in',
      secret: `${CANARY}-hmac`,
      bearerToken: `${CANARY}-bearer`,
    });
    expect(ch).toMatchObject({ type: 'webhook', secret: { set: true }, bearerToken: { set: true } });
    expect(JSON.stringify(ch)).not.toContain(CANARY);
    const sealed = must(await owner.alertRepo.sealedSecrets(ch.id));
    expect(sealer.open(sealed.secret, sealContext(ch.id, 'secret'))).toBe(`${CANARY}-hmac`);

    // A replace without secrets keeps them; `null` removes one.
    const kept = await owner.alerts.change('channel', BOB, ch.id, {
      replace: { type: 'webhook', name: 'ops 2', url: 'https://hooks.example.com/in' },
    });
    expect(kept.item).toMatchObject({ name: 'ops 2', secret: { set: true }, bearerToken: { set: true } });
    const removed = await owner.alerts.change('channel', BOB, ch.id, { patch: { bearerToken: null } });
    expect(removed.item).toMatchObject({ secret: { set: true }, bearerToken: { set: false } });
    // A secret-only change is a version too (the public form, and so the hash, stay).
    const rotated = await owner.alerts.change('channel', BOB, ch.id, { patch: { secret: `${CANARY}-2` } });
    expect(rotated.version).toBe(removed.version + 1);
    expect(sealer.open(must(await owner.alertRepo.sealedSecrets(ch.id)).secret, sealContext(ch.id, 'secret'))).toBe(
      `${CANARY}-2`,
    );

    const slack = await owner.alerts.create('channel', ALICE, {
      type: 'slack',
      name: 's',
      url: `https://hooks.slack.example/${CANARY}`,
    });
    expect(slack.item).toMatchObject({ url: { set: true, hint: 'https://hooks.slack.example/…' } });

    // Nowhere but the sealed column: versions, audit, outbox, recorded answers.
    const { rows } = await sql.query<{ t: string }>(
      `SELECT row_to_json(x)::text AS t FROM (
         SELECT snapshot, changes, summary FROM config_versions UNION ALL
         SELECT diff, details, action FROM audit_log UNION ALL
         SELECT payload, lifecycle, message_id::text FROM config_changed_outbox UNION ALL
         SELECT spec, secrets_redacted, name FROM notification_channels) x`,
    );
    expect(rows.filter((r) => r.t.includes(CANARY))).toEqual([]);
    await expectHashConsistent();
  });

  it('refuses a missing required secret (named), and any secret without an encryption key', async () => {
    const missing = await rejection(owner.alerts.create('channel', ALICE, { type: 'pagerduty', name: 'pd' }));
    expect(missing).toBeInstanceOf(InvalidError);
    expect(missing.issues?.map((i) => i.path)).toEqual(['routingKey']);
    const keyless = startOwner(servers.db.databaseUrl, null, undefined, null);
    try {
      const e = await rejection(
        keyless.alerts.create('channel', ALICE, { type: 'pagerduty', name: 'pd', routingKey: 'k' }),
      );
      expect(e).toBeInstanceOf(ForbiddenError);
      expect(e.message).toContain('FLEETWATCH_ENCRYPTION_KEY');
      // Without secrets a channel still works.
      expect(
        (await keyless.alerts.create('channel', ALICE, { type: 'webhook', name: 'plain', url: 'https://x.example/' }))
          .item,
      ).toMatchObject({ secret: { set: false } });
    } finally {
      await keyless.close();
    }
  });

  it.each([
    ['a webhook URL', { type: 'webhook', name: 'w', url: 'http://169.254.169.254/latest' }, 'url'],
    ['a webhook URL in another encoding', { type: 'webhook', name: 'w', url: 'http://2852039166/x' }, 'url'],
    ['a Slack URL (a secret)', { type: 'slack', name: 's', url: 'http://[fe80::1]/services/x' }, 'url'],
    [
      'a PagerDuty URL',
      { type: 'pagerduty', name: 'p', routingKey: 'k', eventsUrl: 'http://169.254.1.1/' },
      'eventsUrl',
    ],
    [
      'an SMTP host',
      { type: 'email', name: 'e', host: 'metadata.google.internal', from: 'a@b.example', to: ['c@d.example'] },
      'host',
    ],
  ])('the target policy refuses %s at save time, naming the field', async (_what, body, path) => {
    const e = await rejection(owner.alerts.create('channel', ALICE, body));
    expect(e).toBeInstanceOf(ForbiddenError);
    expect(e.issues?.map((i) => i.path)).toEqual([path]);
    expect(e.message).toMatch(/denied/);
    // A replace to such an address is refused too; the stored channel stays as it was.
    const { item: ok } = await owner.alerts.create('channel', ALICE, {
      type: 'webhook',
      name: `fine ${path}`,
      url: 'http://127.0.0.1:9/in',
    });
    const replaced = await rejection(
      owner.alerts.change('channel', ALICE, ok.id, { patch: { url: 'http://169.254.169.254/' } }),
    );
    expect(replaced.issues?.map((i) => i.path)).toEqual(['url']);
    await owner.alerts.delete('channel', ALICE, ok.id);
  });

  it.each([
    ['a webhook URL with a NUL', { type: 'webhook', name: 'w', url: 'https://hooks.example.com/in\u0000' }, 'url'],
    [
      'a PagerDuty URL with a lone surrogate',
      { type: 'pagerduty', name: 'p', routingKey: 'k', eventsUrl: 'https://pd.example/v2?x=\ud800' },
      'eventsUrl',
    ],
    [
      'an e-mail address with a NUL',
      { type: 'email', name: 'e', host: 'smtp.example.com', from: 'a\u0000@b.example', to: ['c@d.example'] },
      'from',
    ],
  ])(
    'refuses %s naming the field (the stores cannot hold it: it was a database error, a 500)',
    async (_w, body, path) => {
      const before = (await owner.versions.head()).version;
      const e = await rejection(owner.alerts.create('channel', ALICE, body));
      expect(e).toBeInstanceOf(InvalidError);
      expect(e.issues?.map((i) => i.path)).toContain(path);
      expect((await owner.versions.head()).version).toBe(before);
    },
  );

  it('a subscription URL with a NUL is refused naming url, nothing written (it was a database error, a 500)', async () => {
    const subscriptions = subscriptionsService();
    const before = (await owner.versions.head()).version;
    const e = await rejection(
      subscriptions.create(ALICE, {
        name: 's',
        url: 'https://hooks.example.com/x\u0000',
        secret: 'a signing secret 0123',
      }),
    );
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues?.map((i) => i.path)).toEqual(['url']);
    expect((await owner.versions.head()).version).toBe(before);
    // The same subscription without it is stored.
    const ok = await subscriptions.create(ALICE, {
      name: 's',
      url: 'https://hooks.example.com/x',
      secret: 'a signing secret 0123',
    });
    expect(ok.subscription).toMatchObject({ url: 'https://hooks.example.com/x', secret: { set: true } });
  });

  it('a subscription secret with a lone surrogate is refused naming secret (sealed as UTF-8 it opened as U+FFFD: the deliveries were signed with another key); a pair is kept exactly', async () => {
    const repository = new SubscriptionsRepository(owner.pool);
    const subscriptions = subscriptionsService(repository);
    const before = (await owner.versions.head()).version;
    for (const secret of ['signing secret \ud800 0123', 'signing secret 0123 \udc00']) {
      const e = await rejection(subscriptions.create(ALICE, { name: 's', url: 'https://hooks.example.com/x', secret }));
      expect(e).toBeInstanceOf(InvalidError);
      expect(e.issues).toEqual([{ path: 'secret', message: expect.stringMatching(/lone surrogate/) }]);
    }
    expect((await owner.versions.head()).version).toBe(before);
    // What delivery opens is what was accepted.
    const secret = 'signing secret 😀 0123';
    const ok = await subscriptions.create(ALICE, { name: 's', url: 'https://hooks.example.com/x', secret });
    const sealed = await repository.sealedSecret(ok.subscription.id);
    expect(sealed).not.toBeNull();
    expect(sealer.open(sealed ?? '', subscriptionSecretContext(ok.subscription.id))).toBe(secret);
  });

  it('config as code: a channel on a denied address is refused, naming it, whether a dry run or not', async () => {
    const yaml =
      'checks: {}\nchannels:\n  meta-hook:\n    type: webhook\n    name: meta\n    url: http://169.254.169.254/x\n';
    for (const dryRun of [true, false]) {
      const e = await rejection(owner.asCode.import(ALICE, yaml, { dryRun, prune: false }));
      expect(e).toBeInstanceOf(ForbiddenError);
      expect(e.issues?.map((i) => i.path)).toEqual(['channels.meta-hook.url']);
    }
    expect(await owner.alertRepo.find('channels', 'meta-hook')).toBeNull();
  });

  it('a channel saved back with its secrets unchanged (redacted form or the same value) is no change', async () => {
    const { item: ch, version } = await owner.alerts.create('channel', ALICE, {
      type: 'webhook',
      name: 'same',
      url: 'https://hooks.example.com/same',
      secret: `${CANARY}-same`,
    });
    const sealedBefore = must(await owner.alertRepo.sealedSecrets(ch.id)).secret;
    // The answer as read, sent back whole (its secret fields are `{set, hint}`): no new version.
    const {
      id: _i,
      version: _v,
      createdAt: _c,
      updatedAt: _u,
      pausedUntil: _p,
      ...asRead
    } = ch as unknown as Record<string, unknown>;
    void [_i, _v, _c, _u, _p];
    const back = await owner.alerts.change('channel', BOB, ch.id, { replace: asRead });
    expect(back.version).toBe(version);
    // The same plaintext again: not sealed anew, no new version.
    const same = await owner.alerts.change('channel', BOB, ch.id, { patch: { secret: `${CANARY}-same` } });
    expect(same.version).toBe(version);
    expect(must(await owner.alertRepo.sealedSecrets(ch.id)).secret).toBe(sealedBefore);
    // A real change still is one.
    const changed = await owner.alerts.change('channel', BOB, ch.id, { patch: { secret: `${CANARY}-other` } });
    expect(changed.version).toBeGreaterThan(version);
    expect(must(await owner.alertRepo.sealedSecrets(ch.id)).secret).not.toBe(sealedBefore);
  });

  it('config as code: a channel moved to another host without its secrets is refused, naming them, dry run or not', async () => {
    const yaml = (eventsUrl: string, routingKey?: string) =>
      `checks: {}\nchannels:\n  pd-moving:\n    type: pagerduty\n    name: pd moving\n    eventsUrl: ${eventsUrl}\n` +
      (routingKey ? `    routingKey: ${routingKey}\n` : '');
    await owner.asCode.import(ALICE, yaml('https://events.pagerduty.com/v2/enqueue', `${CANARY}-rk`), {
      dryRun: false,
      prune: false,
    });
    for (const dryRun of [true, false]) {
      const e = await rejection(
        owner.asCode.import(BOB, yaml('https://collector.elsewhere.example/v2/enqueue'), { dryRun, prune: false }),
      );
      expect(e).toBeInstanceOf(InvalidError);
      expect(e.issues?.map((i) => i.path)).toEqual(['channels.pd-moving.routingKey']);
      expect(e.message).toContain('https://collector.elsewhere.example');
    }
    expect(await owner.alertRepo.find('channels', 'pd-moving')).toMatchObject({
      spec: { eventsUrl: 'https://events.pagerduty.com/v2/enqueue' },
    });
    const moved = await owner.asCode.import(BOB, yaml('https://collector.elsewhere.example/v2/enqueue', 'rk-2'), {
      dryRun: false,
      prune: false,
    });
    expect(moved.plan.find((i) => i.name === 'channels/pd-moving')?.action).toBe('change');
    expect(
      sealer.open(
        must(await owner.alertRepo.sealedSecrets('pd-moving')).routingKey,
        sealContext('pd-moving', 'routingKey'),
      ),
    ).toBe('rk-2');
  });

  it('a dry run does not tell whether a secret it is given is the one stored (viewers and read keys plan)', async () => {
    const yaml = (secret: string) =>
      `checks: {}\nchannels:\n  guessed:\n    type: email\n    name: mail\n    host: smtp.example.com\n` +
      `    from: alerts@example.com\n    to: [ops@example.com]\n    username: alerts\n    password: ${secret}\n`;
    await owner.asCode.import(ALICE, yaml('summer2024'), { dryRun: false, prune: false });
    const planOf = async (guess: string) =>
      (await owner.asCode.import(BOB, yaml(guess), { dryRun: true, prune: false })).plan.find(
        (i) => i.name === 'channels/guessed',
      );
    const right = await planOf('summer2024');
    const wrong = await planOf('winter2024');
    expect(right).toEqual(wrong);
    expect(right).toMatchObject({ action: 'change', diff: [{ path: 'password', before: '(set)' }] });
    // Applying the same value is still no change (no new version), a different one is.
    const head = (await owner.versions.head()).version;
    expect((await owner.asCode.import(BOB, yaml('summer2024'), { dryRun: false, prune: false })).version).toBe(head);
  });

  it('a channel a rule uses cannot be deleted', async () => {
    const { item: ch } = await owner.alerts.create('channel', ALICE, {
      type: 'teams',
      name: 't',
      url: 'https://teams.example/x',
    });
    const { item: r } = await owner.alerts.create('rule', ALICE, { ...rule, name: 'uses t', channels: [ch.id] });
    expect(await rejection(owner.alerts.delete('channel', ALICE, ch.id))).toBeInstanceOf(ConflictError);
    await owner.alerts.delete('rule', ALICE, r.id);
    await owner.alerts.delete('channel', ALICE, ch.id);
  });
});

describe('maintenance windows and silences', () => {
  it('windows: one-off and recurring, the author is the caller, a bad cron is named', async () => {
    const once = await owner.alerts.create('window', ALICE, {
      name: 'db upgrade',
      scope: { tags: ['db'] },
      schedule: { type: 'once', startsAt: '2026-12-24T22:00:00Z', endsAt: '2026-12-25T02:00:00Z' },
      createdBy: 'someone else',
    });
    expect(once.item).toMatchObject({ createdBy: 'alice', scope: { tags: ['db'], targetIds: [], sites: [] } });
    const weekly = await owner.alerts.create('window', BOB, {
      name: 'weekly',
      scope: { sites: ['eu'] },
      schedule: { type: 'recurring', cron: '0 3 * * 0', duration: '2h', timezone: 'Europe/Berlin' },
    });
    expect(weekly.item.schedule).toMatchObject({ type: 'recurring', cron: '0 3 * * 0', timezone: 'Europe/Berlin' });
    // The author stays who created it.
    expect(
      (await owner.alerts.change('window', ALICE, weekly.item.id, { patch: { name: 'weekly 2' } })).item.createdBy,
    ).toBe(BOB.name);
    const bad = await rejection(
      owner.alerts.create('window', ALICE, {
        name: 'x',
        scope: { tags: ['a'] },
        schedule: { type: 'recurring', cron: '61 * * * *', duration: '1h' },
      }),
    );
    expect(bad.issues?.map((i) => i.path)).toEqual(['schedule.cron']);
    expect((await owner.versions.pendingChanged(1000)).at(-1)?.payload.areas).toEqual(['maintenance']);
    await expectHashConsistent();
  });

  it('silences: created by the caller, listed by state, expired (kept) and deleted, each a version outside the hash', async () => {
    const hashBefore = (await owner.versions.head()).hash;
    const now = Date.now();
    const { silence, version } = await owner.silences.create(ALICE, {
      matchers: [{ name: 'alertname', op: '=', value: 'API slow' }],
      startsAt: new Date(now - 60_000).toISOString(),
      endsAt: new Date(now + 3_600_000).toISOString(),
      comment: 'deploying',
      createdBy: 'mallory',
    });
    expect(silence).toMatchObject({ state: 'active', createdBy: 'alice', version });
    expect((await owner.versions.head()).hash).toBe(hashBefore);
    expect((await owner.versions.pendingChanged(1000)).at(-1)?.payload.areas).toEqual(['silences']);
    expect((await owner.silences.list({ state: 'active', limit: 10 })).items.map((s) => s.id)).toEqual([silence.id]);
    const expired = await owner.silences.expire(BOB, silence.id);
    expect(expired.silence.state).toBe('expired');
    expect(Date.parse(expired.silence.endsAt)).toBeLessThanOrEqual(Date.now());
    expect((await owner.silences.list({ state: 'active', limit: 10 })).items).toEqual([]);
    expect((await owner.silences.list({ state: 'expired', limit: 10 })).items.map((s) => s.id)).toEqual([silence.id]);
    const bad = await rejection(
      owner.silences.create(ALICE, {
        matchers: [{ name: 'a', op: '=', value: 'b' }],
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now - 1).toISOString(),
        comment: 'c',
      }),
    );
    expect(bad.issues?.map((i) => i.path)).toEqual(['endsAt']);
    // Alertmanager's rule: a new silence that has already ended (it would be listed as expired at once) is refused,
    // naming endsAt; nothing is written.
    const headBefore = (await owner.versions.head()).version;
    for (const [startsAt, endsAt, message] of [
      [now - 7_200_000, now - 3_600_000, /^can't be in the past/],
      [now - 7_200_000, now - 1, /^can't be in the past/],
    ] as const) {
      const late = await rejection(
        owner.silences.create(ALICE, {
          matchers: [{ name: 'a', op: '=', value: 'b' }],
          startsAt: new Date(startsAt).toISOString(),
          endsAt: new Date(endsAt).toISOString(),
          comment: 'c',
        }),
      );
      expect(late).toBeInstanceOf(InvalidError);
      expect(late.issues).toEqual([{ path: 'endsAt', message: expect.stringMatching(message) }]);
    }
    expect((await owner.versions.head()).version).toBe(headBefore);
    // A cursor carrying a time Postgres refuses (year 0000, which an ISO date-time allows) is a 400, not a 500.
    const forged = Buffer.from(JSON.stringify({ at: '0000-01-01T00:00:00Z', id: silence.id })).toString('base64url');
    const badCursor = await rejection(owner.silences.list({ limit: 10, cursor: forged }));
    expect(badCursor).toBeInstanceOf(InvalidError);
    expect(badCursor.issues?.map((i) => i.path)).toEqual(['cursor']);
    await owner.silences.delete(ALICE, silence.id);
    expect((await owner.silences.list({ limit: 10 })).items).toEqual([]);
    expect((await owner.config.audit({ limit: 5, subject: silence.id })).items.map((a) => a.action)).toEqual([
      'silence.delete',
      'silence.expire',
      'silence.create',
    ]);
  });
});

describe('a silence create redelivered (same request id)', () => {
  it('after the silence has ended gets its recorded answer, not a 400 for a past end; nothing written again', async () => {
    const now = Date.now();
    const request = { id: randomUUID(), method: 'silences.create', deadline: new Date(now + 60_000) };
    const input = {
      matchers: [{ name: 'alertname', op: '=', value: 'short' }],
      startsAt: new Date(now - 60_000).toISOString(),
      endsAt: new Date(now + 1_500).toISOString(),
      comment: 'brief',
    };
    const first = await owner.silences.create(ALICE, input, request);
    expect(first.silence.state).toBe('active');
    const head = (await owner.versions.head()).version;
    await new Promise((r) => setTimeout(r, Date.parse(input.endsAt) - Date.now() + 100));
    expect(silenceWriteIssues(input, Date.now())).not.toEqual([]); // a new request would now be refused
    expect(await owner.silences.create(ALICE, input, request)).toEqual(first);
    expect((await owner.versions.head()).version).toBe(head);
    await owner.silences.delete(ALICE, first.silence.id);
  });
});

describe('default rules', () => {
  it('seeded once as a version by system; a deleted one is not created again', async () => {
    const first = await owner.seeder.seed();
    expect(first.seeded).toBe(DEFAULT_ALERT_RULES.length);
    expect((await owner.config.version(first.version)).actor).toBe('system (system:defaults)');
    for (const r of DEFAULT_ALERT_RULES)
      expect(await owner.alerts.get('rule', r.id)).toMatchObject({ ...r, version: first.version });
    await owner.alerts.delete('rule', ALICE, 'default.target-stale');
    const again = await owner.seeder.seed();
    expect(again.seeded).toBe(0);
    expect(await rejection(owner.alerts.get('rule', 'default.target-stale'))).toHaveProperty('name', 'NotFoundError');
    await expectHashConsistent();
  });
});

describe('what the owner accepts is stored and read back equal (property)', () => {
  const RUNS = { numRuns: 20 };
  const strip = <T extends object>(o: T) => {
    const {
      id: _i,
      version: _v,
      createdAt: _c,
      updatedAt: _u,
      pausedUntil: _p,
      ...rest
    } = o as Record<string, unknown>;
    return rest;
  };

  it('rules', async () => {
    await fc.assert(
      fc.asyncProperty(ruleInput, async (input) => {
        const parsed = alertRuleSpecSchema.safeParse(input);
        const r = await owner.alerts.create('rule', ALICE, input).catch((e: Error) => e);
        // Refused only what the contract or libs/alerting's checks refuse, and as a 400 (InvalidError).
        const valid = parsed.success && alertRuleIssues(parsed.data).length === 0;
        if (r instanceof Error) return void expect([r, valid]).toEqual([expect.any(InvalidError), false]);
        expect(valid).toBe(true);
        expect(strip(await owner.alerts.get('rule', r.item.id))).toEqual(parsed.data);
      }),
      RUNS,
    );
  });

  it('channels (secrets opened from the store equal what was sent)', async () => {
    await fc.assert(
      fc.asyncProperty(channelInput, async (input) => {
        const r = await owner.alerts.create('channel', ALICE, input).catch((e: Error) => e);
        const valid = channelInputSchema.safeParse(input).success;
        if (r instanceof Error) return void expect([r, valid]).toEqual([expect.any(InvalidError), false]);
        const { config, secrets } = splitChannelSecrets(channelInputSchema.parse(input));
        const stored = await owner.alerts.get('channel', r.item.id);
        expect(strip(stored)).toEqual(redactChannel(config, secrets as Record<string, string>));
        const sealed = must(await owner.alertRepo.sealedSecrets(r.item.id));
        for (const [f, v] of Object.entries(secrets)) expect(sealer.open(sealed[f], sealContext(r.item.id, f))).toBe(v);
      }),
      RUNS,
    );
  });

  it('maintenance windows', async () => {
    await fc.assert(
      fc.asyncProperty(windowInput, async (input) => {
        const r = await owner.alerts.create('window', ALICE, input).catch((e: Error) => e);
        const w = maintenanceWindowSpecSchema.safeParse({ ...input, createdBy: ALICE.name });
        const valid = w.success && maintenanceWindowIssues(w.data).length === 0;
        if (r instanceof Error) return void expect([r, valid]).toEqual([expect.any(InvalidError), false]);
        expect(valid).toBe(true);
        const parsed = maintenanceWindowSpecSchema.parse({ ...input, createdBy: ALICE.name });
        expect(strip(await owner.alerts.get('window', r.item.id))).toEqual(parsed);
      }),
      RUNS,
    );
  });

  it('silences', async () => {
    await fc.assert(
      fc.asyncProperty(silenceInput, async (input) => {
        const now = Date.now();
        fc.pre(Math.abs(Date.parse(input.endsAt) - now) > 5_000); // not ending while the owner is asked
        const r = await owner.silences.create(BOB, input).catch((e: Error) => e);
        const spec = silenceSpecSchema.safeParse({ ...input, createdBy: BOB.name });
        const valid = spec.success && silenceWriteIssues(spec.data, now).length === 0;
        if (r instanceof Error) return void expect([r, valid]).toEqual([expect.any(InvalidError), false]);
        expect(valid).toBe(true);
        const parsed = silenceSpecSchema.parse({ ...input, createdBy: BOB.name });
        const { state: _s, ...stored } = strip(await owner.silences.get(r.silence.id));
        expect(stored).toEqual(parsed);
      }),
      RUNS,
    );
  });
});

describe('rate-limit pauses end when the channel or subscription changes', () => {
  const pause = async (table: 'alert_channel_pauses' | 'subscription_pauses', id: string) => {
    const key = table === 'alert_channel_pauses' ? 'channel_id' : 'subscription_id';
    await sql.query(
      `INSERT INTO ${table} (${key}, paused_until, http_status, reason) VALUES ($1, now() + interval '1 hour', 429, 'HTTP 429')
       ON CONFLICT (${key}) DO UPDATE SET paused_until = EXCLUDED.paused_until`,
      [id],
    );
  };
  const paused = async (table: 'alert_channel_pauses' | 'subscription_pauses', id: string) => {
    const key = table === 'alert_channel_pauses' ? 'channel_id' : 'subscription_id';
    return (await sql.query(`SELECT 1 FROM ${table} WHERE ${key} = $1`, [id])).rowCount === 1;
  };

  it('a channel: a change or disabling ends its pause, in its write; a write that changes nothing or fails does not; a delete removes it', async () => {
    const input = { type: 'webhook', name: 'limited', url: 'https://hooks.example.com/limited' };
    const { item: ch } = await owner.alerts.create('channel', ALICE, input);
    const { item: other } = await owner.alerts.create('channel', ALICE, { ...input, name: 'other' });
    expect(ch.pausedUntil).toBeNull();
    await pause('alert_channel_pauses', ch.id);
    await pause('alert_channel_pauses', other.id);
    // The answers show when the pause ends (the database's clock), null for a channel not paused.
    const { rows } = await sql.query<{ until: Date }>(
      'SELECT paused_until AS until FROM alert_channel_pauses WHERE channel_id = $1',
      [ch.id],
    );
    const until = rows[0].until.toISOString();
    expect((await owner.alerts.get('channel', ch.id)).pausedUntil).toBe(until);
    const page = await owner.alerts.list('channel', { limit: 1000 });
    expect(page.items.find((c) => c.id === ch.id)?.pausedUntil).toBe(until);
    // Nothing changed: no write, the pause holds.
    const same = await owner.alerts.change('channel', BOB, ch.id, { patch: { name: 'limited' } });
    expect(same.item.pausedUntil).toBe(until);
    expect(await paused('alert_channel_pauses', ch.id)).toBe(true);
    // A stale version: refused, nothing written, the pause holds.
    await rejection(owner.alerts.change('channel', BOB, ch.id, { patch: { url: 'https://hooks.example.com/2' } }, 0));
    expect(await paused('alert_channel_pauses', ch.id)).toBe(true);
    // The receiver's config fixed: the pause ends (the other channel's holds).
    const fixed = await owner.alerts.change('channel', BOB, ch.id, { patch: { url: 'https://hooks.example.com/2' } });
    expect(fixed.item.pausedUntil).toBeNull();
    expect(await paused('alert_channel_pauses', ch.id)).toBe(false);
    expect((await owner.alerts.get('channel', ch.id)).pausedUntil).toBeNull();
    expect(await paused('alert_channel_pauses', other.id)).toBe(true);
    // Turned off: the same.
    await pause('alert_channel_pauses', ch.id);
    await owner.alerts.change('channel', BOB, ch.id, { patch: { enabled: false } });
    expect(await paused('alert_channel_pauses', ch.id)).toBe(false);
    // Deleted (no foreign key to cascade): its pause goes with it.
    await pause('alert_channel_pauses', ch.id);
    await owner.alerts.delete('channel', ALICE, ch.id);
    expect(await paused('alert_channel_pauses', ch.id)).toBe(false);
    expect(await paused('alert_channel_pauses', other.id)).toBe(true);
    await owner.alerts.delete('channel', ALICE, other.id);
  });

  it('a subscription: a change or disabling ends its pause, in its write; a write that changes nothing does not; a delete removes it', async () => {
    const subscriptions = subscriptionsService();
    const spec = { name: 'limited', url: 'https://hooks.example.com/s' };
    const { subscription: s } = await subscriptions.create(ALICE, { ...spec, secret: 'a signing secret 0123' });
    expect(s.pausedUntil).toBeNull();
    await pause('subscription_pauses', s.id);
    const { rows } = await sql.query<{ until: Date }>(
      'SELECT paused_until AS until FROM subscription_pauses WHERE subscription_id = $1',
      [s.id],
    );
    const until = rows[0].until.toISOString();
    expect((await subscriptions.get(s.id)).pausedUntil).toBe(until);
    expect((await subscriptions.list({ limit: 1000 })).items.find((x) => x.id === s.id)?.pausedUntil).toBe(until);
    expect((await subscriptions.replace(BOB, s.id, spec)).subscription.pausedUntil).toBe(until);
    expect(await paused('subscription_pauses', s.id)).toBe(true);
    expect((await subscriptions.replace(BOB, s.id, { ...spec, enabled: false })).subscription.pausedUntil).toBeNull();
    expect(await paused('subscription_pauses', s.id)).toBe(false);
    expect((await subscriptions.get(s.id)).pausedUntil).toBeNull();
    await pause('subscription_pauses', s.id);
    await subscriptions.replace(BOB, s.id, { ...spec, name: 'renamed' });
    expect(await paused('subscription_pauses', s.id)).toBe(false);
    await pause('subscription_pauses', s.id);
    await subscriptions.delete(ALICE, s.id);
    expect(await paused('subscription_pauses', s.id)).toBe(false);
  });

  it('a subscription: its stored secret sent again is no change (no version, no pause ended); another secret is', async () => {
    const subscriptions = subscriptionsService();
    const spec = { name: 'resent', url: 'https://hooks.example.com/r' };
    const { subscription: s, version: created } = await subscriptions.create(ALICE, {
      ...spec,
      secret: 'the signing secret 0123',
    });
    await pause('subscription_pauses', s.id);
    // A client that always sends its whole subscription, secret included: nothing changed.
    const same = await subscriptions.replace(BOB, s.id, { ...spec, secret: 'the signing secret 0123' });
    expect(same.version).toBe(created);
    expect(same.subscription.version).toBe(s.version);
    expect(await paused('subscription_pauses', s.id)).toBe(true);
    // The same secret with a move to another origin: allowed (the secret was sent with the move), a change.
    const moved = await subscriptions.replace(BOB, s.id, {
      ...spec,
      url: 'https://other.example.com/r',
      secret: 'the signing secret 0123',
    });
    expect(moved.version).toBeGreaterThan(created);
    // Another secret: a new version, audited as a new value.
    const changed = await subscriptions.replace(BOB, s.id, {
      ...spec,
      url: 'https://other.example.com/r',
      secret: 'another signing secret 4567',
    });
    expect(changed.version).toBeGreaterThan(moved.version);
    const { rows } = await sql.query<{ diff: unknown }>(
      `SELECT diff FROM audit_log WHERE subject = $1 AND action = 'subscription.replace'`,
      [s.id],
    );
    // The move (no new value) and the new secret: two entries; the secret sent again wrote none.
    expect(rows.map((r) => JSON.stringify(r.diff).includes('new value')).sort()).toEqual([false, true]);
    await subscriptions.delete(ALICE, s.id);
  });
});
