import { compileAlertRule } from '../rule';
import { renderBudget } from '../templates';
import { targetOf, ruleOf, T0, MIN } from '../testing/fixtures';
import type { AlertNotification } from '../engine';
import {
  alertLine,
  commonLabels,
  groupDedupKey,
  notificationForChannel,
  notificationOfFlush,
  notificationTitle,
  testNotification,
  type NotificationLookup,
} from './notification';
import { alertOf, notificationOf } from './testing';
import { ABSENT_SERIES_GRACE_MS } from '../rule';
import { emailMessage } from './email';
import { pagerDutyEvent } from './pagerduty';
import { slackMessage } from './slack';
import { webhookBody, type WebhookBody } from './webhook';

const rule = compileAlertRule(
  ruleOf('r1', {
    name: 'Target down',
    severity: 'critical',
    condition: { type: 'status', statuses: ['DOWN'] },
    annotations: { summary: '{{ target.name }} is {{ alert.state }}', runbook_url: 'https://wiki/{{ labels.target }}' },
  }),
);

function lookup(name: string): NotificationLookup {
  return {
    rule: (id) => (id === 'r1' ? rule : undefined),
    target: (id) => (id === 'check:web' ? targetOf('check:web', { name }) : undefined),
    externalURL: 'https://fleet.example.com/',
    site: 'site-a',
  };
}

function engineNotification(kind: AlertNotification['kind']): AlertNotification {
  return {
    kind,
    key: 'r1\u0000check:web',
    ruleId: 'r1',
    targetId: 'check:web',
    fingerprint: '0123456789abcdef',
    labels: { alertname: 'Target down', severity: 'critical', rule_id: 'r1', target: 'check:web' },
    value: null,
    activeAt: T0,
    firedAt: T0 + MIN,
    resolvedAt: kind === 'resolved' ? T0 + 5 * MIN : null,
    at: kind === 'resolved' ? T0 + 5 * MIN : T0 + MIN,
  };
}

const flush = (kinds: AlertNotification['kind'][]) => ({
  channelId: 'ch-1',
  groupKey: 'ch-1\u0000[["alertname","Target down"]]',
  groupLabels: { alertname: 'Target down' },
  firing: kinds.filter((k) => k !== 'resolved').map(engineNotification),
  resolved: kinds.filter((k) => k === 'resolved').map(engineNotification),
  at: T0 + MIN,
});

describe('notification of a grouping flush', () => {
  it('renders annotations with the target and alert, and times as ISO', () => {
    const n = notificationOfFlush(flush(['firing']), lookup('Web'));
    expect(n).toMatchObject({
      status: 'firing',
      site: 'site-a',
      groupLabels: { alertname: 'Target down' },
      // Storable: no NUL from the grouping's key.
      groupKey: 'ch-1:[["alertname","Target down"]]',
    });
    expect(n.alerts[0]).toEqual({
      status: 'firing',
      labels: engineNotification('firing').labels,
      annotations: { summary: 'Web is firing', runbook_url: 'https://wiki/check:web' },
      startsAt: '2026-01-01T00:01:00.000Z',
      endsAt: null,
      fingerprint: '0123456789abcdef',
      value: null,
      generatorURL: 'https://fleet.example.com/alerts/0123456789abcdef',
    });
  });

  it("a decision's pass budget bounds its messages' templates: once spent, they read as skipped", () => {
    const spent = renderBudget(0, Date.now() - 1);
    const n = notificationOfFlush(flush(['firing']), lookup('Web'), spent);
    expect(n.alerts[0].annotations).toEqual({
      summary: '[template skipped: this message used its render time]',
      runbook_url: '[template skipped: this message used its render time]',
    });
    // A pass with time left: rendered.
    expect(notificationOfFlush(flush(['firing']), lookup('Web'), renderBudget()).alerts[0].annotations['summary']).toBe(
      'Web is firing',
    );
  });

  it('a resolved alert has its end time and a resolved state', () => {
    const n = notificationOfFlush(flush(['resolved']), lookup('Web'));
    expect(n.status).toBe('resolved');
    expect(n.alerts[0]).toMatchObject({ status: 'resolved', endsAt: '2026-01-01T00:05:00.000Z' });
    expect(n.alerts[0].annotations['summary']).toBe('Web is resolved');
  });

  it('a resolved alert whose series went absent says so in every format; one whose figures recovered does not', () => {
    const absent: AlertNotification = {
      ...engineNotification('resolved'),
      endReason: 'series_absent',
      absentSince: T0 + 5 * MIN - ABSENT_SERIES_GRACE_MS,
    };
    const n = notificationOfFlush({ ...flush([]), resolved: [absent] }, lookup('Web'));
    expect(n.alerts[0]).toMatchObject({
      status: 'resolved',
      endReason: 'series_absent',
      endReasonText: 'series absent (no data for 5 min)',
    });
    const line = 'Web is resolved — resolved: series absent (no data for 5 min)';
    expect(alertLine(n.alerts[0])).toBe(line);
    const email = emailMessage({ from: 'a@x', to: ['b@x'] }, n);
    expect(email.subject).toBe('[RESOLVED] Target down');
    expect(email.text).toContain(`[RESOLVED] ${line}`);
    expect(email.html).toContain('resolved: series absent (no data for 5 min)');
    const webhook = JSON.parse(webhookBody('hook', n)) as WebhookBody;
    expect(webhook.alerts[0]).toMatchObject({
      status: 'resolved',
      endReason: 'series_absent',
      endReasonText: 'series absent (no data for 5 min)',
    });
    expect(JSON.stringify(slackMessage({}, n))).toContain('resolved: series absent (no data for 5 min)');
    // PagerDuty: a resolve event carries no details (PagerDuty ignores them); a trigger lists the resolved one's reason.
    const mixed = notificationOfFlush(
      { ...flush(['firing']), resolved: [{ ...absent, fingerprint: 'f2' }] },
      lookup('Web'),
    );
    const details = pagerDutyEvent('rk', mixed).payload?.custom_details as { resolved: Array<Record<string, unknown>> };
    expect(details.resolved[0]).toMatchObject({ endReason: 'series_absent', summary: line });
    // As the webhook body and the docs have it: the reason as a person reads it too.
    expect(details.resolved[0]).toMatchObject({ endReasonText: 'series absent (no data for 5 min)' });
    // Templates read it too.
    const templated = compileAlertRule({
      ...rule.rule,
      annotations: { summary: '{{ alert.state }}{% if alert.endReason %}: {{ alert.endReasonText }}{% endif %}' },
    });
    const t = notificationOfFlush({ ...flush([]), resolved: [absent] }, { ...lookup('Web'), rule: () => templated });
    expect(t.alerts[0].annotations['summary']).toBe('resolved: series absent (no data for 5 min)');

    // Its figures back: the reason is kept (condition_cleared), the line and the text are as ever.
    const cleared = notificationOfFlush(
      { ...flush([]), resolved: [{ ...engineNotification('resolved'), endReason: 'condition_cleared' }] },
      lookup('Web'),
    );
    expect(cleared.alerts[0]).toMatchObject({ endReason: 'condition_cleared', endReasonText: 'condition cleared' });
    expect(alertLine(cleared.alerts[0])).toBe('Web is resolved');
    // Queued before reasons existed: nothing said, nothing added.
    const older = notificationOfFlush(flush(['resolved']), lookup('Web'));
    expect('endReason' in older.alerts[0]).toBe(false);
    expect(alertLine(older.alerts[0])).toBe('Web is resolved');
    // Other reasons read as what ended it.
    const deleted = notificationOfFlush(
      { ...flush([]), resolved: [{ ...engineNotification('resolved'), endReason: 'rule_deleted' }] },
      lookup('Web'),
    );
    expect(alertLine(deleted.alerts[0])).toBe('Web is resolved — resolved: rule deleted');
  });

  it('a summary template that says why the alert ended is not told it again: the reason appears once', () => {
    const absent: AlertNotification = {
      ...engineNotification('resolved'),
      endReason: 'series_absent',
      absentSince: T0 + 5 * MIN - ABSENT_SERIES_GRACE_MS,
    };
    const once = (summary: string, notification: AlertNotification = absent) => {
      const templated = compileAlertRule({ ...rule.rule, annotations: { summary } });
      const n = notificationOfFlush(
        { ...flush([]), resolved: [notification] },
        { ...lookup('Web'), rule: () => templated },
      );
      return { line: alertLine(n.alerts[0]), mail: emailMessage({ from: 'a@x', to: ['b@x'] }, n) };
    };
    const text = '{{ target.name }} {{ alert.state }}{% if alert.endReason %}: {{ alert.endReasonText }}{% endif %}';
    const withText = once(text);
    expect(withText.line).toBe('Web resolved: series absent (no data for 5 min)');
    expect(withText.mail.text.split('series absent').length - 1).toBe(1);
    expect(withText.mail.html.split('series absent').length - 1).toBe(1);
    // The code alone says it too (a template of its own wording keyed on it).
    expect(once('{{ target.name }} ended: {{ alert.endReason }}').line).toBe('Web ended: series_absent');
    // A summary that does not say it still gets the line.
    expect(once('{{ target.name }} is {{ alert.state }}').line).toBe(
      'Web is resolved — resolved: series absent (no data for 5 min)',
    );
    const deleted = { ...engineNotification('resolved'), endReason: 'rule_deleted' as const };
    expect(once(text, deleted).line).toBe('Web resolved: rule deleted');
    // Decided from the template: a webhook body does not carry the flag (its alerts are the receiver's contract).
    const templated = compileAlertRule({ ...rule.rule, annotations: { summary: text } });
    const n = notificationOfFlush({ ...flush([]), resolved: [absent] }, { ...lookup('Web'), rule: () => templated });
    expect(n.alerts[0].lineSaysEndReason).toBe(true);
    expect(Object.keys((JSON.parse(webhookBody('hook', n)) as WebhookBody).alerts[0])).not.toContain(
      'lineSaysEndReason',
    );
  });

  // Review of 5180a9d7 (saysEndReason): only a summary that prints the reason says it, not one whose own words match it.
  it('a summary whose own wording contains the reason\'s words (not printing it) still gets the "— resolved: …" line', () => {
    const paused: AlertNotification = { ...engineNotification('resolved'), endReason: 'target_paused' };
    const summary = '{{ target.name }} is {{ alert.state }} (planned work? set the target paused first)';
    const templated = compileAlertRule({ ...rule.rule, annotations: { summary } });
    const n = notificationOfFlush({ ...flush([]), resolved: [paused] }, { ...lookup('Web'), rule: () => templated });
    // Without the line the receiver reads a recovery: nothing says the check was paused rather than back up.
    expect(alertLine(n.alerts[0])).toBe(
      'Web is resolved (planned work? set the target paused first) — resolved: target paused',
    );
  });

  // Review of 24b48d7e (lineSaysEndReason from the template): a template that only tests the reason — its own words for
  // one reason, nothing of the others — does not print this alert's reason; the line must still say it.
  it('a summary keyed on one end reason still gets the "— resolved: …" line for another reason it does not print', () => {
    const summary =
      '{{ target.name }} {% if alert.endReason == "series_absent" %}stopped reporting{% else %}is {{ alert.state }}{% endif %}';
    const templated = compileAlertRule({ ...rule.rule, annotations: { summary } });
    const lineOf = (n: AlertNotification) =>
      alertLine(
        notificationOfFlush({ ...flush([]), resolved: [n] }, { ...lookup('Web'), rule: () => templated }).alerts[0],
      );
    // Without the line the receiver reads a recovery: nothing says the check was paused rather than back up.
    expect(lineOf({ ...engineNotification('resolved'), endReason: 'target_paused' })).toBe(
      'Web is resolved — resolved: target paused',
    );
    // A template that prints it (in one branch) still says it once.
    const printing = compileAlertRule({
      ...rule.rule,
      annotations: {
        summary: '{{ target.name }} {% if alert.state == "firing" %}down{% else %}{{ alert.endReasonText }}{% endif %}',
      },
    });
    const paused = notificationOfFlush(
      { ...flush([]), resolved: [{ ...engineNotification('resolved'), endReason: 'target_paused' }] },
      { ...lookup('Web'), rule: () => printing },
    );
    expect(alertLine(paused.alerts[0])).toBe('Web target paused');
  });

  it.each(['{{ 7 | plus: 1 }}', '{% include "/etc/passwd" %}', '{{ target.constructor }}'])(
    'template syntax in a target name (%j) comes out as text',
    (name) => {
      expect(notificationOfFlush(flush(['firing']), lookup(name)).alerts[0].annotations['summary']).toBe(
        `${name} is firing`,
      );
    },
  );

  it('an unknown rule or target still gives a message (no annotations, the id as name)', () => {
    const l = { ...lookup('x'), rule: () => undefined, target: () => undefined };
    const n = notificationOfFlush(flush(['repeat']), l);
    expect(n.alerts[0]).toMatchObject({ status: 'firing', annotations: {} });
  });
});

describe('notification helpers', () => {
  it.each([
    [[alertOf()], '[FIRING:1] Target down'],
    [[alertOf(), alertOf({ status: 'resolved', fingerprint: 'b' })], '[FIRING:1] Target down'],
    [[alertOf({ status: 'resolved' })], '[RESOLVED] Target down'],
  ])('title of %#', (alerts, title) => expect(notificationTitle(notificationOf(alerts))).toBe(title));

  it('titles carry the other group labels, and a test notification says so', () => {
    expect(notificationTitle(notificationOf([alertOf()], { groupLabels: { alertname: 'A', site: 'eu' } }))).toBe(
      '[FIRING:1] A (eu)',
    );
    const t = testNotification('site-a', 'https://f', 0);
    expect(notificationTitle(t)).toBe('[TEST] [FIRING:1] FleetwatchTestNotification');
    expect(t.test).toBe(true);
  });

  it('common labels are those every alert shares', () => {
    expect(commonLabels([alertOf({}, { zone: 'a' }), alertOf({}, { zone: 'b' })])).toEqual({
      alertname: 'Target down',
      severity: 'critical',
      target: 'check:web',
      rule_id: 'r1',
    });
  });

  it('dedup keys are stable per group and differ between groups', () => {
    expect(groupDedupKey('g1')).toBe(groupDedupKey('g1'));
    expect(groupDedupKey('g1')).not.toBe(groupDedupKey('g2'));
    expect(groupDedupKey('g1')).toMatch(/^fleetwatch-[0-9a-f]{40}$/);
  });

  it('without sendResolved a channel gets only firing alerts', () => {
    const mixed = notificationOf([alertOf(), alertOf({ status: 'resolved', fingerprint: 'b' })]);
    expect(notificationForChannel({ sendResolved: true }, mixed)).toBe(mixed);
    expect(notificationForChannel({ sendResolved: false }, mixed)?.alerts).toHaveLength(1);
  });
});
