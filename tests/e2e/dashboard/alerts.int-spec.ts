import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  alertRuleSpecSchema,
  type AlertHistoryResponse,
  type AlertListResponse,
  type AlertRuleDefinition,
  type Channel,
  type DeliveryLogResponse,
  type MaintenanceWindowDefinition,
  type Page as ListPage,
  type SilenceDefinition,
} from '@fleetwatch/contracts';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import { generateSealingKeyText } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from '../gateway-client';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite } from '../site-launcher';
import {
  buildDashboard,
  clickInOneTask,
  launchChromium,
  pageCspViolations,
  watchPage,
  type PageWatch,
} from './browser';

// The alerting pages (issue 18) in real Chromium against a real site: sync-orchestrator (the owner
// of rules, channels, windows and silences), the gateway, status-ingest and the aggregator (which
// evaluates the rule and delivers to the channel). A person creates a webhook channel pointing at a
// receiver this test starts (it verifies the HMAC), tries it with test-send, writes a rule through
// the form (after the contract's inline messages), and a pushed instance goes DOWN: the alert shows
// on the alerts page and the overview, one signed notification arrives, the delivery log shows it,
// a silence is made from the alert, and a maintenance window is planned. Names, annotations and
// comments hold markup that must come out as text. FW_SCREENSHOTS=1 writes the screenshots into
// docs/screenshots/ (else into the site's own directory).

jest.setTimeout(300_000);

declare const document: { documentElement: { dataset: Record<string, string | undefined> } };
declare const window: unknown;

const XSS = '<img src=x onerror="window.__fwXss=1">';
const RULE_NAME = `API down ${XSS}`;
const INSTANCE = 'dash-api-1';
const TARGET = `instance:${INSTANCE}`;
const SECRET = 'dashboard e2e signing secret';

interface Received {
  verified: boolean;
  headers: IncomingHttpHeaders;
  body: { status?: string; alerts?: Array<{ status: string; labels: Record<string, string> }> } & Record<
    string,
    unknown
  >;
}

let site: E2eSite;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let base: string;
let shots: string;
let gw: GatewayClient;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
let ingestKey = '';

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const header = (name: string) => [req.headers[name]].flat()[0];
      let body: Received['body'] = {};
      try {
        body = JSON.parse(text) as Received['body'];
      } catch {
        // kept empty: the assertions below say what was expected
      }
      received.push({
        verified: verifyWebhookSignature({
          secret: SECRET,
          body: text,
          timestamp: header(WEBHOOK_TIMESTAMP_HEADER),
          signature: header(WEBHOOK_SIGNATURE_HEADER),
          now: Date.now(),
        }),
        headers: req.headers,
        body,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/fleetwatch`;

  site = await createSite('alerts-dash', {
    FLEETWATCH_ENCRYPTION_KEY: generateSealingKeyText(),
    // Only the rule written here: the shipped defaults (DOWN for 1 m …) would fire for the same outage.
    FLEETWATCH_DEFAULT_ALERT_RULES: 'false',
  });
  const dashboardDir = join(site.dir, 'dashboard');
  buildDashboard(dashboardDir);
  shots =
    process.env['FW_SCREENSHOTS'] === '1'
      ? join(__dirname, '../../../docs/screenshots')
      : join(site.dir, 'screenshots');
  mkdirSync(shots, { recursive: true });
  await site.start('sync-orchestrator');
  await Promise.all([
    site.start('api-gateway', { env: { DASHBOARD_DIR: dashboardDir } }),
    site.start('status-ingest'),
    site.start('aggregator', { env: { AGGREGATOR_BATCH_WAIT_MS: '5' } }),
  ]);
  base = site.service('api-gateway').url;
  gw = await GatewayClient.login(base);
  const key = await gw.request<{ key: string }>('POST', '/api/v1/api-keys', { name: 'e2e-push', scopes: ['ingest'] });
  if (key.status !== 201) throw new Error(`api key: ${key.status} ${key.text}`);
  ingestKey = key.body.key;

  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  watch = await watchPage(page);
});

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  await new Promise((r) => receiver?.close(r));
});

/** Light, then dark (the page's own toggle), then light again. */
async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}-light.png`), fullPage: true });
  await page.getByRole('button', { name: /Switch to dark theme/ }).click();
  await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'dark');
  await page.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
  await page.getByRole('button', { name: /Switch to light theme/ }).click();
  await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'light');
}

/** By the alerting pages' own navigation, as a person moves. */
async function section(link: string, heading: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Alerting' }).getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

async function push(status: string): Promise<void> {
  const ingest = site.service('status-ingest').url;
  const res = await fetch(`${ingest}/api/v1/status/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
    body: JSON.stringify({ instanceId: INSTANCE, kind: 'container', status, location: 'lab-1' }),
  });
  expect(res.status).toBe(202);
}

const noXss = async () =>
  expect(await page.evaluate(() => (window as unknown as { __fwXss?: number }).__fwXss)).toBeUndefined();

const firingFor = (r: Received) =>
  r.body.status === 'firing' && (r.body.alerts ?? []).some((a) => a.labels['target'] === TARGET);

describe('alerting pages in Chromium', () => {
  it('signs in and reaches the alerts page from the main navigation', async () => {
    await page.goto(`${base}/alerts`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(E2E_ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    await page.getByText('Nothing is firing or pending.').waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).count()).toBe(1);
  });

  it('a webhook channel: inline messages first, the secret write-only, and a test-send shows its outcome', async () => {
    await section('Channels', 'Channels');
    await page.getByRole('link', { name: 'New channel' }).click();
    await page.getByLabel('Name', { exact: true }).fill(`ops hook ${XSS}`);
    await page.getByLabel(/Signing secret/).fill(SECRET);
    await page
      .getByText(/Stored: not set/)
      .first()
      .waitFor();
    await page.getByLabel('URL', { exact: true }).fill('ftp://nowhere');
    await page.getByRole('button', { name: 'Create channel' }).click();
    await page.getByText(/scheme "ftp:" not allowed/).waitFor();
    expect(await page.getByLabel('URL', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await screenshot('alerts-channel-form');
    await page.getByLabel('URL', { exact: true }).fill(receiverUrl);
    await page.getByRole('button', { name: 'Create channel' }).click();
    await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor();
    const row = page.locator('tr', { hasText: receiverUrl });
    await row.getByText('secret: set').waitFor();

    // The API never returns the secret; the edit form says "set" and an empty field keeps it.
    const listed = await gw.request<ListPage<Channel>>('GET', '/api/v1/channels');
    const channel = listed.body.items.find((c) => c.type === 'webhook');
    expect(channel).toMatchObject({ secret: { set: true }, bearerToken: { set: false } });
    expect(listed.text).not.toContain(SECRET);
    await row.getByRole('link').first().click();
    await page
      .getByText(/Stored: set/)
      .first()
      .waitFor();
    expect(await page.getByLabel(/Signing secret/).inputValue()).toBe('');
    await page.getByLabel('Also notify when resolved').uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor();
    await waitFor(
      async () => {
        const r = await gw.request<Channel>('GET', `/api/v1/channels/${channel?.id}`);
        return r.body.sendResolved === false && r.body.type === 'webhook' && r.body.secret.set;
      },
      { timeoutMs: 10_000, description: 'the edit kept the secret' },
    );

    // Test-send: the receiver gets one signed request, and the page says how it went.
    const before = received.length;
    await page.getByRole('button', { name: /^Send a test through ops hook/ }).click();
    const outcome = page.getByRole('status').filter({ hasText: /^Test / });
    await outcome.waitFor({ timeout: 30_000 });
    expect(await outcome.innerText()).toMatch(/^Test delivered: HTTP 200/);
    expect(await outcome.getAttribute('data-ok')).toBe('true');
    expect(received.length).toBe(before + 1);
    expect(received[before].verified).toBe(true);
    await page.getByText(`ops hook ${XSS}`, { exact: true }).waitFor();
    await noXss();
    await screenshot('alerts-channels');
  });

  it('a rule written through the form, after the contract’s inline messages', async () => {
    await section('Rules', 'Alert rules');
    await page.getByRole('link', { name: 'New rule' }).click();
    await page.getByLabel('Name', { exact: true }).fill(RULE_NAME);
    await page.getByLabel('For', { exact: true }).fill('soon');
    await page.getByLabel('Labels').fill('severity=high\nteam=payments');
    await page.getByRole('button', { name: 'Create rule' }).click();
    // The contract's own messages: `for` is not a duration, and severity is the engine's label.
    const refusal = alertRuleSpecSchema.safeParse({
      name: 'x',
      condition: { type: 'status', statuses: ['DOWN'] },
      for: 'soon',
    });
    const forMessage = refusal.success ? '' : refusal.error.issues.find((i) => i.path[0] === 'for')?.message;
    expect(forMessage).toBeTruthy();
    await page.getByText(forMessage as string).waitFor();
    expect(await page.getByLabel('For', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByText('severity: "severity" is set by the engine').waitFor();
    expect(await page.getByLabel('Labels').getAttribute('aria-invalid')).toBe('true');
    await screenshot('alerts-rule-form');

    await page.getByLabel('For', { exact: true }).fill('1s');
    await page.getByLabel('Labels').fill('team=payments');
    await page.getByLabel('Target ids').fill(TARGET);
    await page.getByLabel('Severity').selectOption('critical');
    await page.getByLabel('Annotations').fill(`summary={{ target.name }} is down ${XSS}`);
    await page.getByRole('group', { name: 'Channels' }).getByRole('checkbox').first().check();
    // Two status boxes ticked in one task, before the first one's change has rendered: both count; then both
    // unticked the same way (each change applies to the draft as it is then, not as the last render saw it).
    const status = (name: string) => `[aria-label="Statuses"] input[data-option="${name}"]`;
    const ticked = async () => {
      // Past the clicks' renders (a frame is ~16 ms), then what the boxes show.
      await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
      return Promise.all(['DOWN', 'PARTIAL', 'STALE'].map((name) => page.locator(status(name)).isChecked()));
    };
    await clickInOneTask(page, [status('PARTIAL'), status('STALE')]);
    expect(await ticked()).toEqual([true, true, true]);
    await clickInOneTask(page, [status('PARTIAL'), status('STALE')]);
    expect(await ticked()).toEqual([true, false, false]);
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByRole('heading', { level: 1, name: 'Alert rules' }).waitFor();
    await page.getByRole('link', { name: RULE_NAME, exact: true }).waitFor();
    await page.getByText(`{{ target.name }} is down ${XSS}`, { exact: true }).waitFor();
    await noXss();

    const rules = await gw.request<ListPage<AlertRuleDefinition>>('GET', '/api/v1/alert-rules');
    const rule = rules.body.items.find((r) => r.name === RULE_NAME);
    expect(rule).toMatchObject({
      severity: 'critical',
      for: '1s',
      labels: { team: 'payments' },
      selector: { targetIds: [TARGET] },
      condition: { type: 'status', statuses: ['DOWN'] },
    });
    expect(rule?.channels).toHaveLength(1);
    // Notifications at once for this test (the default group wait is 30 s); the form keeps what it does not show.
    const patched = await gw.request('PATCH', `/api/v1/alert-rules/${rule?.id}`, {
      grouping: { groupBy: ['alertname', 'target'], groupWait: '0s', groupInterval: '1s' },
    });
    expect(patched.status).toBe(200);
    await screenshot('alerts-rules');
  });

  it('a target goes DOWN: the alert fires on the alerts page and the overview, and one signed notification arrives', async () => {
    await push('running');
    await waitFor(async () => (await gw.target(TARGET))?.status === 'UP', {
      timeoutMs: 30_000,
      description: `${TARGET} UP`,
    });
    await push('exited');
    await section('Alerts', 'Alerts');
    const row = page.locator('tr', { hasText: RULE_NAME });
    await waitFor(async () => (await row.count()) > 0 && (await row.locator('[data-state="firing"]').count()) > 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
      description: 'the alert firing on the page',
    });
    expect(await row.getByRole('link', { name: INSTANCE, exact: true }).count()).toBe(1);
    expect(await row.locator('[data-duration]').innerText()).toMatch(/^\d+ (s|min)$/);
    expect(await page.getByTestId('alert-counts').innerText()).toContain('1 firing');
    await noXss();
    await screenshot('alerts');

    await waitFor(() => received.some(firingFor), { timeoutMs: 60_000, description: 'the firing notification' });
    await new Promise((r) => setTimeout(r, 3000)); // a group interval and ticks: nothing more
    const firing = received.filter(firingFor);
    expect(firing).toHaveLength(1);
    expect(firing[0].verified).toBe(true);
    expect(firing[0].body.alerts?.[0].labels['alertname']).toBe(RULE_NAME);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await waitFor(async () => (await page.getByTestId('firing-count').innerText()) === '1', {
      timeoutMs: 20_000,
      description: 'overview: 1 firing',
    });
    await page.locator('section', { hasText: 'Firing alerts' }).getByText(RULE_NAME, { exact: true }).waitFor();
    await noXss();
    await screenshot('alerts-overview');
  });

  it('the delivery log shows the notification and the test-send', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await section('Delivery log', 'Delivery log');
    const firingRow = page.locator('tr', { hasText: RULE_NAME });
    await firingRow.first().waitFor({ timeout: 30_000 });
    expect(await firingRow.first().locator('[data-state="delivered"]').count()).toBe(1);
    expect(await firingRow.first().innerText()).toContain('HTTP 200');
    await page.locator('tr', { hasText: 'test-send' }).first().waitFor();
    const log = await gw.request<DeliveryLogResponse>('GET', '/api/v1/alerts/deliveries');
    expect(log.body.items.filter((d) => !d.test && d.outcome === 'delivered')).toHaveLength(1);
    await noXss();
    await screenshot('alerts-deliveries');
  });

  it('the alert history lists the changes newest first, filters by rule and target, and shows on the target page', async () => {
    const changes = async () =>
      (
        await gw.request<AlertHistoryResponse>('GET', `/api/v1/alerts/history?targetId=${encodeURIComponent(TARGET)}`)
      ).body.items.map((e) => `${e.from} → ${e.to}`);
    expect(await changes()).toEqual(['pending → firing', 'inactive → pending']);

    await section('Alert history', 'Alert history');
    const rows = page.locator('tbody tr', { hasText: RULE_NAME });
    await waitFor(async () => (await rows.count()) === 2, {
      timeoutMs: 20_000,
      intervalMs: 250,
      description: 'the two changes on the history page',
    });
    // Newest first: the alert fired after it went pending.
    expect(await rows.nth(0).locator('[data-change]').getAttribute('data-change')).toBe('pending → firing');
    expect(await rows.nth(1).locator('[data-change]').getAttribute('data-change')).toBe('inactive → pending');
    expect(await rows.nth(0).locator('[data-change]').innerText()).toMatch(/^pending\s*→\s*firing$/);
    expect(await rows.nth(0).locator('[data-state="firing"]').count()).toBe(1);
    expect(await rows.nth(0).locator('[data-state="critical"]').innerText()).toBe('critical');
    expect(await rows.nth(0).getByRole('link', { name: TARGET, exact: true }).getAttribute('href')).toBe(
      `/targets/${encodeURIComponent(TARGET)}`,
    );
    expect(await rows.nth(0).getByRole('link', { name: RULE_NAME, exact: true }).count()).toBe(1);
    // Relative time, the absolute one in its title.
    expect(await rows.nth(0).locator('time').getAttribute('title')).toBeTruthy();
    await noXss();
    await screenshot('alerts-history');

    // The rule filter: in the address, the same two changes.
    await page.getByLabel('Rule', { exact: true }).selectOption({ label: RULE_NAME });
    await page.waitForURL(/\/alerts\/history\?rule=/);
    await waitFor(async () => (await rows.count()) === 2, { timeoutMs: 10_000, description: 'filtered by rule' });
    // A target with no alert: nothing, said so.
    await page.getByLabel('Target', { exact: true }).fill('instance:nobody');
    await page.waitForURL(/target=instance%3Anobody/);
    await page.getByText('No alert changed state for this filter.').waitFor();
    expect(await rows.count()).toBe(0);
    // Clear: every change again, and no filter in the address.
    await page.getByRole('button', { name: 'Clear filter' }).click();
    await waitFor(async () => (await rows.count()) === 2, { timeoutMs: 10_000, description: 'filter cleared' });
    expect(new URL(page.url()).search).toBe('');
    expect(await page.getByLabel('Target', { exact: true }).inputValue()).toBe('');
    // And it stays cleared (the box's debounce does not send the old target back).
    await new Promise((r) => setTimeout(r, 600));
    expect(new URL(page.url()).search).toBe('');

    // The target's own page lists its changes, and links the history filtered to it.
    await rows.nth(0).getByRole('link', { name: TARGET, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: INSTANCE }).waitFor();
    const card = page.locator('section', { has: page.getByRole('heading', { level: 2, name: 'Alert history' }) });
    const cardRows = card.locator('tbody tr', { hasText: RULE_NAME });
    await waitFor(async () => (await cardRows.count()) === 2, {
      timeoutMs: 10_000,
      description: 'the target page’s alert history',
    });
    expect(await cardRows.nth(0).locator('[data-change]').getAttribute('data-change')).toBe('pending → firing');
    await card.getByRole('link', { name: /All of this target/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Alert history' }).waitFor();
    expect(new URL(page.url()).searchParams.get('target')).toBe(TARGET);
    expect(await page.getByLabel('Target', { exact: true }).inputValue()).toBe(TARGET);
    await waitFor(async () => (await rows.count()) === 2, { timeoutMs: 10_000, description: 'filtered by target' });
    await noXss();
  });

  it('a silence made from the alert: prefilled matchers, the author is the user, the comment is text; expire', async () => {
    await section('Alerts', 'Alerts');
    await page
      .getByRole('link', { name: /^Silence API down/ })
      .first()
      .click();
    await page.getByRole('heading', { level: 1, name: 'New silence' }).waitFor();
    // Every label of the alert, matched exactly.
    const names = await page
      .getByLabel(/^Label \d+$/)
      .evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value));
    expect(names).toEqual(expect.arrayContaining(['alertname', 'target', 'severity', 'team']));
    const alertnameRow = names.indexOf('alertname') + 1;
    expect(await page.getByLabel(`Value ${alertnameRow}`).inputValue()).toBe(RULE_NAME);
    expect(await page.getByLabel('Author').inputValue()).toBe('admin');
    await page.getByRole('button', { name: 'Create silence' }).click();
    // No comment yet: the contract's message, on the field.
    await waitFor(async () => (await page.getByLabel('Comment').getAttribute('aria-invalid')) === 'true', {
      timeoutMs: 5_000,
      description: 'the comment marked invalid',
    });
    await page.getByLabel('Comment').fill(`deploying the fix ${XSS}`);
    await screenshot('alerts-silence-form');
    await page.getByRole('button', { name: 'Create silence' }).click();
    await page.getByRole('heading', { level: 1, name: 'Silences' }).waitFor();
    const row = page.locator('tr', { hasText: 'deploying the fix' });
    await row.locator('[data-state="active"]').waitFor();
    expect(await row.locator('[data-comment]').innerText()).toBe(`deploying the fix ${XSS}`);
    expect(await row.innerText()).toContain('admin');
    await noXss();

    // The alert says it is silenced.
    const silences = await gw.request<ListPage<SilenceDefinition>>('GET', '/api/v1/silences?state=active');
    expect(silences.body.items).toHaveLength(1);
    expect(silences.body.items[0].matchers).toEqual(
      expect.arrayContaining([{ name: 'alertname', op: '=', value: RULE_NAME }]),
    );
    await waitFor(
      async () =>
        (await gw.request<AlertListResponse>('GET', '/api/v1/alerts')).body.items.some(
          (a) => a.targetId === TARGET && a.silenced,
        ),
      { timeoutMs: 30_000, description: 'the alert silenced' },
    );
    await section('Alerts', 'Alerts');
    await page.locator('tr', { hasText: RULE_NAME }).getByText('silenced').waitFor({ timeout: 15_000 });
    // The overview's card marks it too (it still counts as firing: nobody is paged for it).
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
    await page
      .locator('section', { hasText: 'Firing alerts' })
      .locator('tr', { hasText: RULE_NAME })
      .getByText('silenced')
      .waitFor({ timeout: 15_000 });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();

    await section('Silences', 'Silences');
    await screenshot('alerts-silences');
    await page.getByRole('button', { name: /^Expire silence deploying the fix/ }).click();
    await row.locator('[data-state="expired"]').waitFor();
  });

  it('maintenance windows: a recurring one after the cron message, a one-off one, edited and deleted', async () => {
    await section('Maintenance', 'Maintenance windows');
    await page.getByRole('link', { name: 'New window' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Sunday patching');
    await page.getByLabel('Tags').fill('payments, db');
    await page.getByLabel('Schedule').selectOption('recurring');
    await page.getByLabel('Cron').fill('0 2 * *');
    await page.getByLabel('Time zone').fill('Europe/Berlin');
    await page.getByRole('button', { name: 'Create window' }).click();
    await page.getByText(/a cron expression has 5 fields/).waitFor();
    expect(await page.getByLabel('Cron').getAttribute('aria-invalid')).toBe('true');
    await screenshot('alerts-maintenance-form');
    await page.getByLabel('Cron').fill('0 2 * * 0');
    await page.getByLabel('Comment').fill(`weekly ${XSS}`);
    await page.getByRole('button', { name: 'Create window' }).click();
    await page.getByRole('heading', { level: 1, name: 'Maintenance windows' }).waitFor();
    await page.getByText('cron 0 2 * * 0 (Europe/Berlin) for 2h').waitFor();

    await page.getByRole('link', { name: 'New window' }).click();
    await page.getByLabel('Name', { exact: true }).fill('API one-off');
    await page.getByLabel('Target ids').fill(TARGET);
    await page.getByRole('button', { name: 'Create window' }).click();
    await page.getByRole('link', { name: 'API one-off' }).waitFor();
    await page.getByRole('link', { name: 'API one-off' }).click();
    await page.getByLabel('Name', { exact: true }).fill('API one-off (moved)');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: 'API one-off (moved)' }).waitFor();

    const windows = await gw.request<ListPage<MaintenanceWindowDefinition>>('GET', '/api/v1/maintenance-windows');
    expect(windows.body.items.find((w) => w.name === 'Sunday patching')).toMatchObject({
      scope: { tags: ['payments', 'db'] },
      schedule: { type: 'recurring', cron: '0 2 * * 0', duration: '2h', timezone: 'Europe/Berlin' },
      createdBy: 'admin',
    });
    expect(windows.body.items.find((w) => w.name === 'API one-off (moved)')).toMatchObject({
      scope: { targetIds: [TARGET] },
      schedule: { type: 'once' },
    });
    await page.getByText(`weekly ${XSS}`, { exact: true }).waitFor();
    await screenshot('alerts-maintenance');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete API one-off (moved)' }).click();
    await waitFor(async () => (await page.getByRole('link', { name: 'API one-off (moved)' }).count()) === 0, {
      timeoutMs: 10_000,
      description: 'the window gone from the list',
    });
    await noXss();
  });

  it('the target comes back UP: the alert history shows the alert resolved, newest first', async () => {
    await push('running');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await section('Alert history', 'Alert history');
    const newest = page.locator('tbody tr', { hasText: RULE_NAME }).first();
    await waitFor(
      async () => (await newest.locator('[data-change]').getAttribute('data-change')) === 'firing → resolved',
      {
        timeoutMs: 60_000,
        intervalMs: 500,
        description: 'firing → resolved at the top of the history',
      },
    );
    expect(await newest.locator('[data-state="resolved"]').count()).toBe(1);
    await noXss();
  });

  it('no page broke the CSP, threw, or ran injected markup', async () => {
    await noXss();
    expect(await pageCspViolations(page)).toEqual([]);
    expect(watch.csp).toEqual([]);
    expect(watch.errors).toEqual([]);
  });
});
