import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Page as ListPage, PublicStatusPage, StatusPageDefinition } from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from '../gateway-client';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite } from '../site-launcher';
import { buildDashboard, launchChromium, pageCspViolations, watchPage, type PageWatch } from './browser';

// Public status pages (issue 17) in real Chromium against a real site: sync-orchestrator (the
// owner of the pages), the gateway, status-ingest and the aggregator (a pushed instance with a
// label goes UP, DOWN and UP again: real status events). A person writes a page in the editor —
// title, description, a component selected by the instance's label, an announcement, all holding
// script payloads — sees the preview, publishes it, and a visitor with no session opens
// /status/{slug}: every payload is text, no script ran, no CSP violation, and neither the
// instance's id nor its messages appear. FW_SCREENSHOTS=1 writes the screenshots into docs/screenshots/.

jest.setTimeout(300_000);

declare const document: { documentElement: { dataset: Record<string, string | undefined> } };
declare const window: unknown;

const SCRIPT = '<script>window.__fwXss=1</script>';
const IMG = '<img src=x onerror="window.__fwXss=2">';
const TITLE = `Acme status ${SCRIPT}`;
const DESCRIPTION = `Everything Acme runs ${IMG}`;
const COMPONENT = `Web shop ${IMG}`;
const ANNOUNCEMENT = `Upgrade tonight ${SCRIPT}`;
const ANNOUNCEMENT_BODY = `Expect short pauses ${IMG}`;
const SLUG = 'acme-e2e';
const INSTANCE = 'zz-internal-shop-7';
const MESSAGE = 'zz-internal-oom-killed at 10.1.2.3';

let site: E2eSite;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let base: string;
let shots: string;
let gw: GatewayClient;
let ingestKey = '';

beforeAll(async () => {
  site = await createSite('status-pages-dash');
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
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  watch = await watchPage(page);
});

afterAll(async () => {
  await browser?.close();
  await site?.stop();
});

async function screenshot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(shots, `${name}-light.png`), fullPage: true });
  await p.getByRole('button', { name: /Switch to dark theme/ }).click();
  await p.waitForFunction(() => document.documentElement.dataset['theme'] === 'dark');
  await p.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
  await p.getByRole('button', { name: /Switch to light theme/ }).click();
  await p.waitForFunction(() => document.documentElement.dataset['theme'] === 'light');
}

async function push(status: string): Promise<void> {
  const res = await fetch(`${site.service('status-ingest').url}/api/v1/status/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
    body: JSON.stringify({
      instanceId: INSTANCE,
      kind: 'container',
      status,
      location: 'lab-1',
      labels: { statuspage: 'e2e' },
      message: MESSAGE,
    }),
  });
  expect(res.status).toBe(202);
}

async function targetStatus(): Promise<string | null> {
  const r = await gw.request<{ status: string }>(
    'GET',
    `/api/v1/targets/${encodeURIComponent(`instance:${INSTANCE}`)}`,
  );
  return r.status === 200 ? r.body.status : null;
}

const xssRuns = (p: Page) => p.evaluate(() => (window as unknown as { __fwXss?: number }).__fwXss);

describe('status pages in Chromium', () => {
  it('a pushed instance goes UP, DOWN and UP again (status events to show)', async () => {
    for (const [status, expected] of [
      ['running', 'UP'],
      ['exited', 'DOWN'],
      ['running', 'UP'],
    ] as const) {
      await push(status);
      await waitFor(async () => (await targetStatus()) === expected, {
        timeoutMs: 20_000,
        description: `instance ${expected}`,
      });
    }
  });

  it('the editor: inline messages from the API, a preview, then the page is created', async () => {
    await page.goto(`${base}/status-pages`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(E2E_ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Status pages' }).waitFor();
    expect(
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Status pages' }).count(),
    ).toBe(1);
    await page.getByRole('link', { name: 'New status page' }).click();
    await page.getByLabel('Title', { exact: true }).fill(TITLE);
    // Clicked into after the title, the slug field holds what is typed there (the title's slug is its placeholder:
    // written in as the title lost focus, it joined what was typed next).
    const slugField = page.getByLabel('Slug', { exact: true });
    await slugField.click();
    await slugField.pressSequentially('my-page');
    expect(await slugField.inputValue()).toBe('my-page');
    expect(await slugField.getAttribute('placeholder')).toMatch(/^[a-z0-9-]+$/);
    await slugField.fill('Not A Slug!');
    await page.getByLabel('Description', { exact: true }).fill(DESCRIPTION);
    await page.getByLabel('Component 1 name').fill(COMPONENT);
    await page.getByRole('button', { name: 'Create status page' }).click();
    // The owner's messages, on their fields: the slug's form, and a component that selects nothing.
    await page
      .getByText(/lowercase letters, digits and single dashes/)
      .first()
      .waitFor();
    expect(await page.getByLabel('Slug', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByText('select targets: give tags, target ids or both').waitFor();

    await page.getByLabel('Slug', { exact: true }).fill(SLUG);
    await page.getByLabel('Component 1 tags').fill('statuspage=e2e');
    await page.getByRole('button', { name: 'Add announcement' }).click();
    await page.getByLabel('Announcement 1 title').fill(ANNOUNCEMENT);
    await page.getByLabel('Announcement 1 text').fill(ANNOUNCEMENT_BODY);
    await page.getByLabel('Announcement 1 severity').selectOption('maintenance');
    await page.getByLabel(/^Published/).check();
    // The preview shows the texts as they are, as text.
    const preview = page.getByRole('region', { name: 'Preview' });
    await preview.getByRole('heading', { level: 1, name: TITLE }).waitFor();
    await preview.getByText(COMPONENT, { exact: true }).waitFor();
    expect(await xssRuns(page)).toBeUndefined();
    await screenshot(page, 'status-page-editor');

    await page.getByRole('button', { name: 'Create status page' }).click();
    await page.getByRole('heading', { level: 1, name: 'Status pages' }).waitFor();
    await page.getByRole('link', { name: TITLE, exact: true }).waitFor();
    await page.getByRole('link', { name: `/status/${SLUG}` }).waitFor();
    const listed = await gw.request<ListPage<StatusPageDefinition>>('GET', '/api/v1/status-pages');
    expect(listed.body.items).toEqual([
      expect.objectContaining({ slug: SLUG, title: TITLE, description: DESCRIPTION, published: true }),
    ]);
    await screenshot(page, 'status-page-list');
    expect(await xssRuns(page)).toBeUndefined();
    expect([...watch.csp, ...(await pageCspViolations(page))]).toEqual([]);
    expect(watch.errors).toEqual([]);
  });

  it('a visitor without a session sees the page: payloads as text, no script, no internals', async () => {
    const context: BrowserContext = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const visitor = await context.newPage();
    const seen = await watchPage(visitor);
    try {
      await visitor.goto(`${base}/status/${SLUG}`);
      await visitor.getByRole('heading', { level: 1, name: TITLE }).waitFor({ timeout: 30_000 });
      expect(visitor.url()).toBe(`${base}/status/${SLUG}`);
      await visitor.getByText(DESCRIPTION, { exact: true }).waitFor();
      // Once as the component, once as the incident's component.
      await visitor.locator('.sp-component__name', { hasText: COMPONENT }).waitFor();
      await visitor.getByRole('strong').filter({ hasText: COMPONENT }).waitFor();
      await visitor.getByText(ANNOUNCEMENT, { exact: true }).waitFor();
      await visitor.getByText(ANNOUNCEMENT_BODY, { exact: true }).waitFor();
      // The outage pushed above, under the component's display name.
      await visitor.getByRole('heading', { name: 'Incidents' }).waitFor();
      const bars = visitor.getByRole('list', { name: /daily uptime, last 90 days/ });
      expect(await bars.locator('li').count()).toBe(90);
      expect(await bars.locator('li').last().getAttribute('class')).toMatch(/sp-state--outage/);
      expect(await visitor.getByRole('navigation', { name: 'Main' }).count()).toBe(0);

      const html = await visitor.content();
      for (const secret of [INSTANCE, 'zz-internal-oom-killed', '10.1.2.3', 'lab-1', 'statuspage=e2e', 'admin'])
        expect(html).not.toContain(secret);
      const json = await fetch(`${base}/api/v1/public/status-pages/${SLUG}`);
      const text = await json.text();
      expect(json.status).toBe(200);
      for (const secret of [INSTANCE, 'zz-internal-oom-killed', '10.1.2.3', 'lab-1', 'statuspage=e2e', 'admin'])
        expect(text).not.toContain(secret);
      const view = JSON.parse(text) as PublicStatusPage;
      expect(view.incidents[0]).toMatchObject({ component: COMPONENT, state: 'outage' });

      await screenshot(visitor, 'status-page-public');
      expect(await xssRuns(visitor)).toBeUndefined();
      expect([...seen.csp, ...(await pageCspViolations(visitor))]).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('an unknown slug says so, without a session', async () => {
    const context = await browser.newContext();
    const visitor = await context.newPage();
    try {
      await visitor.goto(`${base}/status/no-such-page`);
      await visitor.getByRole('heading', { level: 1, name: 'No such status page' }).waitFor({ timeout: 30_000 });
    } finally {
      await context.close();
    }
  });
});
