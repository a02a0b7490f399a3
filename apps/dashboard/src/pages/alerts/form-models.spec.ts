import { describe, expect, it } from 'vitest';
import { TargetKind, type AlertRuleDefinition, type Channel } from '@fleetwatch/contracts';
import {
  draftFromChannel,
  draftToInput as channelInput,
  NEW_CHANNEL,
  validateChannel,
} from './channels/channel-form-model';
import {
  draftFromRule,
  draftToInput as ruleInput,
  errorsFromIssues as ruleErrors,
  NEW_RULE,
  validateRule,
} from './rules/rule-form-model';
import {
  draftFromWindow,
  newWindow,
  validateWindow,
  draftToInput as windowInput,
} from './maintenance/window-form-model';
import { newSilence, validateSilence } from './silences/silence-form-model';

const stamp = { version: 3, createdAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-12-01T00:00:00.000Z' };

describe('channel form: secrets are write-only', () => {
  const stored = {
    id: 'c1',
    ...stamp,
    pausedUntil: null,
    type: 'webhook',
    name: 'ops',
    enabled: true,
    sendResolved: true,
    url: 'https://hooks.example.com/in',
    headers: { 'X-Team': 'ops' },
    secret: { set: true },
    bearerToken: { set: false },
  } as Channel;

  it('an empty secret field is not sent (the stored one is kept); a typed one is; "remove" sends null', () => {
    const draft = draftFromChannel(stored);
    expect(draft.headers).toBe('X-Team: ops');
    const kept = channelInput(draft);
    expect(kept).not.toHaveProperty('secret');
    expect(kept).not.toHaveProperty('bearerToken');
    expect(kept).toMatchObject({ type: 'webhook', url: 'https://hooks.example.com/in', headers: { 'X-Team': 'ops' } });
    expect(channelInput({ ...draft, secrets: { secret: 'new' } })).toMatchObject({ secret: 'new' });
    expect(channelInput({ ...draft, clear: { secret: true } })).toMatchObject({ secret: null });
  });

  it('a required secret: needed for a new channel, not when one is stored', () => {
    const slack = { ...NEW_CHANNEL, type: 'slack' as const, name: 'chat' };
    expect(validateChannel(slack, undefined)).toEqual({ 'secret.url': 'required' });
    const storedSlack = {
      id: 's',
      ...stamp,
      type: 'slack',
      name: 'chat',
      enabled: true,
      sendResolved: true,
      url: { set: true, hint: 'https://hooks.slack.com/…' },
    } as Channel;
    expect(validateChannel(draftFromChannel(storedSlack), storedSlack)).toEqual({});
    // The Slack URL is a secret: never shown, never sent back unless typed.
    expect(draftFromChannel(storedSlack).url).toBe('');
    expect(channelInput(draftFromChannel(storedSlack))).not.toHaveProperty('url');
  });

  it('an email channel edited in the form keeps its plaintext-login choice (a PUT replaces the config whole)', () => {
    const mail = {
      id: 'm',
      ...stamp,
      type: 'email',
      name: 'relay',
      enabled: true,
      sendResolved: true,
      host: 'relay.internal',
      port: 25,
      secure: false,
      username: 'fw',
      allowPlaintextLogin: true,
      from: 'fw@example.com',
      to: ['ops@example.com'],
      password: { set: true },
    } as Channel;
    expect(channelInput(draftFromChannel(mail))).toMatchObject({ allowPlaintextLogin: true, username: 'fw' });
    const plain = { ...mail, allowPlaintextLogin: false } as Channel;
    expect(channelInput(draftFromChannel(plain))).toMatchObject({ allowPlaintextLogin: false });
    // The certificate check: on unless the channel says false, and sent as the form has it.
    expect(channelInput(draftFromChannel(mail))).not.toHaveProperty('tlsVerify');
    expect(channelInput(draftFromChannel({ ...mail, tlsVerify: false } as Channel))).toMatchObject({
      tlsVerify: false,
    });
  });

  it('the contract’s messages land on their fields', () => {
    const errors = validateChannel(
      { ...NEW_CHANNEL, name: 'x', url: 'ftp://x', headers: 'Authorization: Bearer t' },
      undefined,
    );
    expect(errors.url).toMatch(/scheme "ftp:" not allowed/);
    expect(errors.headers).toMatch(/credentials do not go in headers/);
  });
});

describe('rule form ↔ contract', () => {
  it('a stored rule round-trips, keeping what the form does not show', () => {
    const rule: AlertRuleDefinition = {
      id: 'r1',
      ...stamp,
      name: 'Disk full',
      enabled: true,
      selector: { targetIds: [], tags: ['prod', 'db'], sites: [], locations: [], kinds: [TargetKind.Host] },
      condition: { type: 'metric', metric: { kind: 'host_disk_pct', mount: '/var' }, op: 'above', threshold: 90 },
      for: '5m',
      keepFiringFor: '10m',
      severity: 'critical',
      labels: { team: 'storage' },
      annotations: { summary: '{{ target.name }}: {{ alert.value }} %' },
      channels: ['c1'],
      grouping: { groupBy: ['alertname'], groupWait: '0s', groupInterval: '1m', repeatInterval: '4h' },
    };
    const body = ruleInput(draftFromRule(rule));
    const { id: _id, version: _v, createdAt: _c, updatedAt: _u, ...spec } = rule;
    expect(body).toEqual(spec);
  });

  it.each([
    ['condition.statuses.0', 'statuses'],
    ['condition.threshold', 'threshold'],
    ['condition.metric.mount', 'metricFilter'],
    ['selector.tags.1', 'tags'],
    ['labels.severity', 'labels'],
    ['annotations.summary', 'annotations'],
    ['channels', 'channels'],
    ['for', 'for'],
    ['something.else', 'form'],
  ])('%s → %s', (path, field) => {
    expect(Object.keys(ruleErrors([{ path, message: 'bad' }]))).toEqual([field]);
  });

  it('the new-rule form is valid as it opens once named', () => {
    expect(validateRule({ ...NEW_RULE, name: 'x' })).toEqual({});
    expect(validateRule({ ...NEW_RULE, name: 'x', statuses: [] }).statuses).toBeTruthy();
  });

  it('a label or annotation line without `=` is refused, naming its line (it was saved as a name with no value)', () => {
    const d = { ...NEW_RULE, name: 'x', labels: 'team=ops\nowner\n\nenv prod', annotations: 'summary=down' };
    expect(validateRule(d)).toEqual({ labels: 'lines 2, 4: write one name=value per line' });
    expect(validateRule({ ...d, labels: 'team=ops', annotations: 'runbook' })).toEqual({
      annotations: 'line 1: write one name=value per line',
    });
    // A value may hold `=` and be empty on purpose.
    expect(validateRule({ ...d, labels: 'query=a=b\nempty=', annotations: '' })).toEqual({});
  });
});

describe('silence and window forms', () => {
  it('a silence needs a comment and a matcher that is not empty', () => {
    const d = newSilence(Date.parse('2026-12-02T10:00:00Z'));
    const errors = validateSilence(d, 'admin');
    expect(Object.keys(errors).sort()).toEqual(['comment', 'matchers']);
    expect(
      validateSilence({ ...d, comment: 'deploy', matchers: [{ name: 'team', op: '=', value: 'db' }] }, 'admin'),
    ).toEqual({});
    expect(
      validateSilence(
        { ...d, comment: 'c', endsAt: d.startsAt, matchers: [{ name: 'a', op: '=~', value: '(a+)+' }] },
        'x',
      ),
    ).toMatchObject({
      endsAt: 'must be after startsAt',
      'matcher.0': expect.stringMatching(/exponential/),
    });
  });

  it('a window names what it covers; a recurring one sends cron, duration and zone', () => {
    const d = { ...newWindow(Date.parse('2026-12-02T10:00:00Z')), name: 'w' };
    expect(validateWindow(d, 'admin')).toEqual({ scope: 'name at least one target, tag or site' });
    const recurring = {
      ...d,
      tags: 'db',
      scheduleType: 'recurring' as const,
      cron: '0 2 * * 0',
      duration: '2h',
      timezone: 'UTC',
    };
    expect(validateWindow(recurring, 'admin')).toEqual({});
    expect(windowInput(recurring)).toEqual({
      name: 'w',
      scope: { targetIds: [], tags: ['db'], sites: [] },
      schedule: { type: 'recurring', cron: '0 2 * * 0', duration: '2h', timezone: 'UTC' },
    });
  });

  it('a window saved without touching its times keeps them to the second; a time changed is taken', () => {
    const stored = {
      id: 'w1',
      name: 'db upgrade',
      scope: { targetIds: [], tags: ['db'], sites: [] },
      schedule: { type: 'once' as const, startsAt: '2026-12-02T10:00:30.250Z', endsAt: '2026-12-02T12:00:45.000Z' },
      createdBy: 'admin',
      ...stamp,
    };
    const d = draftFromWindow(stored);
    expect(windowInput(d)).toMatchObject({
      schedule: { type: 'once', startsAt: '2026-12-02T10:00:30.250Z', endsAt: '2026-12-02T12:00:45.000Z' },
    });
    const later = new Date(Date.parse('2026-12-02T13:00:00Z'));
    const pad = (n: number) => String(n).padStart(2, '0');
    const local = `${later.getFullYear()}-${pad(later.getMonth() + 1)}-${pad(later.getDate())}T${pad(later.getHours())}:${pad(later.getMinutes())}`;
    expect(windowInput({ ...d, endsAt: local })).toMatchObject({
      schedule: { startsAt: '2026-12-02T10:00:30.250Z', endsAt: '2026-12-02T13:00:00.000Z' },
    });
  });
});
