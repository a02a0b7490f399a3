import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Dialog, Page } from 'playwright-core';
import type { ApiKeyView, UserAdminView } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { testEnv, waitFor } from '@fleetwatch/testing';
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
import { HOSTILE_NAME, seedTargets } from './seed';

// The pushed instances, API keys and users pages (issue 17) in real Chromium against a real site:
// sync-orchestrator, the gateway serving the built dashboard, status-ingest and the aggregator.
// An admin creates an API key through the page (the contract's messages first), sees it once and
// copies it; a reload shows it no more. The key pushes an instance that appears on the open instances
// page over the socket, without reload; revoked through the page, its next pushes are refused (401).
// Users: created (the contract's messages, then the API's 409 on the username field), role changed,
// password reset, seen as an operator (no Users page, no admin scopes), disabled — and their sign-in
// is refused, their open page sent back to the login. Script payloads in an instance's name, labels
// and message and in a key's name are text; no script runs, no CSP violation.
// FW_SCREENSHOTS=1 writes the screenshots into docs/screenshots/.

jest.setTimeout(300_000);

// In-page code (page.evaluate) runs in the browser; the test program has no DOM library.
declare const document: {
  documentElement: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): { value: string; dispatchEvent(event: Event): boolean } | null;
};
declare const window: unknown;
declare const navigator: { clipboard: { readText(): Promise<string> } };

const SCRIPT = '<script>window.__fwXss=1</script>';
const IMG = '<img src=x onerror="window.__fwXss=2">';
const KEY_NAME = `pusher ${IMG}`;
const INSTANCE = 'e2e-pushed-1';
const CAROL = 'carol';

let site: E2eSite;
let redis: Redis;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let watch: PageWatch;
let base: string;
let shots: string;
let gw: GatewayClient;
let pushKey = '';
const dialogs: string[] = [];
const figures: string[] = [];

beforeAll(async () => {
  site = await createSite('admin-pages');
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
  // An instance whose name is markup, straight into live state (a pushed instance's name is its id, which
  // cannot hold markup; a name from elsewhere must still be text).
  redis = new Redis(testEnv().redisUrl, { keyPrefix: site.redisPrefix, lazyConnect: true });
  await redis.connect();
  await new LiveStateStore(redis, { keyPrefix: site.redisPrefix }).writeTargets(seedTargets(1));

  browser = await launchChromium();
  context = await browser.newContext({
    viewport: { width: 1360, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  page = await context.newPage();
  watch = await watchPage(page);
  // Every confirmation is accepted, and kept to check what it said.
  page.on('dialog', (d: Dialog) => {
    dialogs.push(d.message());
    void d.accept();
  });
});

afterAll(async () => {
  if (figures.length) process.stdout.write(`\nadmin pages in Chromium:\n${figures.join('\n')}\n\n`);
  await browser?.close();
  await redis?.quit();
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

async function push(key: string, status = 'running'): Promise<Response> {
  return fetch(`${site.service('status-ingest').url}/api/v1/status/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({
      instanceId: INSTANCE,
      kind: 'container',
      status,
      location: 'lab-1',
      labels: { note: IMG },
      message: SCRIPT,
    }),
    signal: AbortSignal.timeout(15_000),
  });
}

const nav = (p: Page, name: string) => p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
const xssRuns = (p: Page) => p.evaluate(() => (window as unknown as { __fwXss?: number }).__fwXss);

async function signIn(p: Page, username: string, password: string): Promise<void> {
  await p.getByLabel('Username').fill(username);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

async function users(): Promise<UserAdminView[]> {
  const r = await gw.request<UserAdminView[]>('GET', '/api/v1/users');
  expect(r.status).toBe(200);
  return r.body;
}

describe('admin pages in Chromium', () => {
  it('signs in to the pushed instances page: the links by role, a name holding markup shown as text', async () => {
    await page.goto(`${base}/instances`);
    await page.waitForURL(/\/login\?next=/);
    await signIn(page, 'admin', E2E_ADMIN_PASSWORD);
    await page.getByRole('heading', { level: 1, name: 'Pushed instances' }).waitFor();
    for (const name of ['Pushed instances', 'API keys', 'Users']) expect(await nav(page, name).count()).toBe(1);
    await page.locator('[data-live="live"]').waitFor({ timeout: 30_000 });
    const hostile = page.locator('[data-instance="seed-00000"]');
    await hostile.waitFor();
    expect(await hostile.getByRole('link').first().textContent()).toBe(HOSTILE_NAME);
    await page.getByRole('button', { name: /^All \(1\)$/ }).waitFor();
    expect(await xssRuns(page)).toBeUndefined();
  });

  it("creates an API key through the form (the contract's messages first), shows it once, copies it", async () => {
    await nav(page, 'API keys').click();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    const form = page.getByRole('form', { name: 'New API key' });
    // Every scope the API knows, an admin may grant all.
    for (const scope of ['ingest', 'read', 'write', 'admin', 'fleet'])
      expect(await form.getByRole('checkbox', { name: scope, exact: true }).isEnabled()).toBe(true);
    await form.getByRole('checkbox', { name: 'ingest', exact: true }).uncheck();
    await form.getByLabel('Allowed networks').fill('10.0.0.0/8\nnot-a-network');
    await form.getByRole('button', { name: 'Create API key' }).click();
    await form.getByText('give at least one scope').waitFor();
    await form.getByText(/^entry 2: /).waitFor();
    expect(await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByLabel('Allowed networks').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByTestId('created-key').count()).toBe(0);

    await form.getByLabel('Name', { exact: true }).fill(KEY_NAME);
    await form.getByRole('checkbox', { name: 'ingest', exact: true }).check();
    await form.getByLabel('Allowed networks').fill('');
    await form.getByRole('button', { name: 'Create API key' }).click();
    const created = page.getByTestId('created-key');
    await created.waitFor();
    await created.getByText('this is the only time it is shown').waitFor();
    await created.getByRole('heading', { name: `API key “${KEY_NAME}” created` }).waitFor();
    pushKey = await created.getByLabel('Key', { exact: true }).inputValue();
    expect(pushKey.length).toBeGreaterThan(20);

    await created.getByRole('button', { name: 'Copy the key' }).click();
    await created.getByText('Copied to the clipboard').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(pushKey);

    // The list: by name (as text) and prefix, never the key.
    const listed = await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys');
    const mine = listed.body.find((k) => k.name === KEY_NAME);
    expect(mine?.scopes).toEqual(['ingest']);
    expect(pushKey.startsWith(mine?.prefix ?? '?')).toBe(true);
    const row = page.locator(`tr[data-row="${mine?.id}"]`);
    await row.getByRole('cell', { name: KEY_NAME, exact: true }).waitFor();
    await row.getByText(`${mine?.prefix}…`).waitFor();
    await screenshot(page, 'api-keys');

    // Shown once: a reload (the same cookie session) lists the key but shows it no more.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await page.locator(`tr[data-row="${mine?.id}"]`).waitFor();
    expect(await page.getByTestId('created-key').count()).toBe(0);
    expect(await page.content()).not.toContain(pushKey);
    expect(await xssRuns(page)).toBeUndefined();
  });

  it('the key pushes an instance that appears on the open instances page without reload', async () => {
    await nav(page, 'Pushed instances').click();
    await page.getByRole('heading', { level: 1, name: 'Pushed instances' }).waitFor();
    await page.locator('[data-live="live"]').waitFor({ timeout: 30_000 });
    await page.locator('[data-instance="seed-00000"]').waitFor();
    // A mark in the page's memory: gone if the page were reloaded.
    await page.evaluate(() => ((window as unknown as { __fwMark?: number }).__fwMark = 1));
    const framesBefore = watch.socketFrames.length;

    const t0 = Date.now();
    const res = await push(pushKey);
    expect(res.status).toBe(202);
    const row = page.locator(`[data-instance="${INSTANCE}"]`);
    await row.waitFor({ timeout: 20_000 });
    figures.push(`pushed instance on the open page ${Date.now() - t0} ms after the push's 202`);
    expect(await page.evaluate(() => (window as unknown as { __fwMark?: number }).__fwMark)).toBe(1);
    // It came over the socket: the status change of this instance was a frame the page received.
    expect(
      watch.socketFrames
        .slice(framesBefore)
        .some((f) => f.includes('"status.changed"') && f.includes(`instance:${INSTANCE}`)),
    ).toBe(true);

    await row.getByText('UP', { exact: true }).first().waitFor();
    await row.getByText(/^running$/i).waitFor();
    await row.getByText(`note=${IMG}`, { exact: true }).waitFor();
    await row.getByText(SCRIPT, { exact: true }).waitFor();
    await page.getByRole('button', { name: /^All \(2\)$/ }).waitFor({ timeout: 15_000 });

    // Two status toggles in one task, before the first one's navigation has rendered: both count (each started
    // from the filter its render showed, and the first was lost).
    await clickInOneTask(page, ['[data-filter="DOWN"]', '[data-filter="UP"]']);
    await page.waitForURL((u) => u.searchParams.get('status') === 'DOWN,UP', { timeout: 10_000 });
    await page.locator('[data-filter="DOWN"][aria-pressed="true"]').waitFor();
    expect(await page.locator('[data-filter="UP"]').getAttribute('aria-pressed')).toBe('true');
    await page.locator('[data-filter="all"]').click();
    await page.waitForURL((u) => !u.searchParams.has('status'));

    // The search and the status filter, kept in the URL. Typed key by key in one task, each key before the last
    // one's navigation has rendered: no key is lost (the box bound to the address alone was put back after each).
    await page.evaluate(() => {
      const box = document.querySelector('input[name="q"]');
      if (box === null) throw new Error('no search box');
      // The prototype's setter, as a key press sets it (React's tracker on the element would hide the change).
      const setValue = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(box), 'value')?.set;
      if (setValue === undefined) throw new Error('no value setter');
      for (const key of 'note=<img') {
        setValue.call(box, box.value + key);
        box.dispatchEvent(new Event('input', { bubbles: true }));
      }
    });
    expect(await page.getByLabel('Search').inputValue()).toBe('note=<img');
    await waitFor(async () => (await page.locator('[data-instance]').count()) === 1, {
      timeoutMs: 5_000,
      description: 'search narrows to the pushed instance',
    });
    expect(new URL(page.url()).searchParams.get('q')).toBe('note=<img');
    await page.getByLabel('Search').fill('');
    await page.locator('[data-instance="seed-00000"]').waitFor();

    // What each instance is (the pushed one said container; the seeded one said nothing), and a filter by it kept in
    // the URL: the container is no pod; an instance whose kind is not known is none of them.
    await row.getByText('container', { exact: true }).waitFor();
    // A box is ticked once the address says so (the filter lives in the URL): click, then wait for the URL.
    const kind = (name: string) => page.getByRole('group', { name: 'Kinds' }).getByLabel(name, { exact: true });
    const kindsInUrl = (value: string | null) =>
      page.waitForURL((u) => u.searchParams.get('kind') === value, { timeout: 10_000 });
    await kind('pod').click();
    await kindsInUrl('pod');
    // The address first, then the render that follows it (a loaded box showed the box unticked for a moment).
    await waitFor(() => kind('pod').isChecked(), { timeoutMs: 5_000, description: 'the pod box ticked' });
    await waitFor(async () => (await page.locator('[data-instance]').count()) === 0, {
      timeoutMs: 15_000,
      description: 'no row left: neither instance is a pod',
    });
    await page.getByText('No pushed instances match.').waitFor({ timeout: 5_000 });
    // Two boxes ticked in one task, before the first one's navigation has rendered: both count.
    const box = (name: string) => `[aria-label="Kinds"] input[data-option="${name}"]`;
    await clickInOneTask(page, [box('container'), box('job')]);
    await kindsInUrl('container,pod,job');
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-instance]').count()).toBe(1);
    await clickInOneTask(page, [box('pod'), box('job'), box('container')]);
    await kindsInUrl(null);
    await page.locator('[data-instance="seed-00000"]').waitFor();
    expect(await xssRuns(page)).toBeUndefined();
    await screenshot(page, 'instances');
  });

  it('removes a pushed instance from its page (its pusher gone): confirmed, it leaves the list', async () => {
    const target = `instance:${INSTANCE}`;
    await page.goto(`${base}/targets/${encodeURIComponent(target)}`);
    await page.getByRole('heading', { level: 1, name: INSTANCE }).waitFor();
    await page.getByRole('button', { name: 'Remove instance' }).click();
    await page.waitForURL((u) => u.pathname === '/instances', { timeout: 10_000 });
    expect(dialogs.at(-1)).toContain(`Remove the instance “${INSTANCE}”?`);
    await page.getByRole('heading', { level: 1, name: 'Pushed instances' }).waitFor();
    await waitFor(async () => (await page.locator(`[data-instance="${INSTANCE}"]`).count()) === 0, {
      timeoutMs: 15_000,
      description: 'the removed instance gone from the open list',
    });
    expect((await gw.request('GET', `/api/v1/targets/${encodeURIComponent(target)}`)).status).toBe(404);
    expect(await xssRuns(page)).toBeUndefined();
  });

  it('revoking the key through the page refuses its pushes (401)', async () => {
    await nav(page, 'API keys').click();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    const listed = await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys');
    const id = listed.body.find((k) => k.name === KEY_NAME)?.id;
    await page.getByRole('button', { name: `Revoke ${KEY_NAME}`, exact: true }).click();
    await page.locator(`tr[data-row="${id}"]`).waitFor({ state: 'detached', timeout: 15_000 });
    expect(dialogs.at(-1)).toContain(`Revoke the API key “${KEY_NAME}”`);
    expect((await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys')).body.map((k) => k.id)).not.toContain(id);
    // status-ingest forgets it within its 5 s cache.
    const t0 = Date.now();
    let last = 0;
    await waitFor(
      async () => {
        last = (await push(pushKey, 'exited')).status;
        return last === 401;
      },
      { timeoutMs: 15_000, intervalMs: 250, description: 'push with the revoked key refused' },
    );
    figures.push(`revoked key refused by status-ingest ${Date.now() - t0} ms after the revoke answered`);
    expect(last).toBe(401);
  });

  it("users: the contract's messages and the API's 409 on their fields; create, change role, reset password", async () => {
    await nav(page, 'Users').click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    // The only admin is yourself: no demoting, disabling or deleting it.
    expect(await page.getByLabel('Role of admin').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Disable admin' }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Delete admin' }).isDisabled()).toBe(true);

    const form = page.getByRole('form', { name: 'New user' });
    await form.getByLabel('Username').fill(IMG);
    await form.getByLabel('Password').fill('short');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByText(/use letters, digits and \. _ @ -/).waitFor();
    await form.getByText('must be at least 8 characters').waitFor();
    expect(await form.getByLabel('Username').getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByLabel('Password').getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'user-form');

    await form.getByLabel('Username').fill(CAROL);
    await form.getByLabel('Password').fill('carol-password-1');
    await form.getByLabel('Role').selectOption('viewer');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByText(`User ${CAROL} created.`).waitFor();
    await page.getByLabel(`Role of ${CAROL}`).waitFor();
    const carol = (await users()).find((u) => u.username === CAROL);
    expect(carol).toMatchObject({ role: 'viewer', disabled: false });

    // The same name again: the API's 409, beside the username.
    await form.getByLabel('Username').fill(CAROL);
    await form.getByLabel('Password').fill('carol-password-1');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByText(`username "${CAROL}" is taken`).waitFor();
    const username = form.getByLabel('Username');
    expect(await username.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await username.getAttribute('aria-describedby')) ?? '';
    expect(await page.locator(`[id="${describedBy.split(' ')[0]}"]`).textContent()).toContain('is taken');

    await page.getByLabel(`Role of ${CAROL}`).selectOption('operator');
    await waitFor(async () => (await users()).find((u) => u.username === CAROL)?.role === 'operator', {
      timeoutMs: 10_000,
      description: 'carol an operator',
    });
    expect(dialogs.at(-1)).toContain(`Make ${CAROL} operator?`);

    await page.getByRole('button', { name: `Reset the password of ${CAROL}` }).click();
    const reset = page.getByRole('form', { name: `Reset password of ${CAROL}` });
    await reset.getByLabel('New password').fill('short');
    await reset.getByRole('button', { name: 'Set password' }).click();
    await reset.getByText('must be at least 8 characters').waitFor();
    await reset.getByLabel('New password').fill('carol-password-2');
    await reset.getByRole('button', { name: 'Set password' }).click();
    await reset.getByText(/Password set/).waitFor();
    const anonymous = GatewayClient.anonymous(base);
    const login = (password: string) => anonymous.request('POST', '/api/v1/auth/login', { username: CAROL, password });
    expect((await login('carol-password-1')).status).toBe(401);
    expect((await login('carol-password-2')).status).toBe(200);
    await reset.getByRole('button', { name: 'Close' }).click();
    expect(await xssRuns(page)).toBeUndefined();
  });

  it('an operator sees no Users page and no admin scopes; disabled, their page and their sign-in are refused', async () => {
    const other = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const carolPage = await other.newPage();
    const seen = await watchPage(carolPage);
    try {
      await carolPage.goto(`${base}/settings/api-keys`);
      await carolPage.waitForURL(/\/login\?next=/);
      await signIn(carolPage, CAROL, 'carol-password-2');
      await carolPage.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
      expect(await nav(carolPage, 'Users').count()).toBe(0);
      expect(await nav(carolPage, 'API keys').count()).toBe(1);
      const form = carolPage.getByRole('form', { name: 'New API key' });
      for (const [scope, enabled] of [
        ['ingest', true],
        ['write', true],
        ['admin', false],
        ['fleet', false],
      ] as const)
        expect(await form.getByRole('checkbox', { name: scope, exact: true }).isEnabled()).toBe(enabled);
      await carolPage.goto(`${base}/settings/users`);
      await carolPage.getByText('Only admins manage users; you are signed in with the operator role.').waitFor();
      await carolPage.locator('[data-live="live"]').waitFor({ timeout: 30_000 });

      // The admin disables carol: her open page goes back to sign-in, and sign-in is refused.
      await page.getByRole('button', { name: `Disable ${CAROL}` }).click();
      await waitFor(async () => (await users()).find((u) => u.username === CAROL)?.disabled === true, {
        timeoutMs: 10_000,
        description: 'carol disabled',
      });
      expect(dialogs.at(-1)).toContain(`Disable ${CAROL}?`);
      await page
        .locator('tr', { hasText: CAROL })
        .getByText(/^disabled/)
        .waitFor();
      await carolPage.waitForURL(/\/login/, { timeout: 20_000 });
      await signIn(carolPage, CAROL, 'carol-password-2');
      await carolPage.getByText('this account is disabled: ask an admin to enable it').waitFor();
      const refused = await GatewayClient.anonymous(base).request('POST', '/api/v1/auth/login', {
        username: CAROL,
        password: 'carol-password-2',
      });
      expect(refused.status).toBe(403);
      expect(seen.errors).toEqual([]);
      expect([...seen.csp, ...(await pageCspViolations(carolPage))]).toEqual([]);
    } finally {
      await other.close();
    }

    // Enabled again, then another user deleted through the page.
    await page.getByRole('button', { name: `Enable ${CAROL}` }).click();
    await waitFor(async () => (await users()).find((u) => u.username === CAROL)?.disabled === false, {
      timeoutMs: 10_000,
      description: 'carol enabled',
    });
    const form = page.getByRole('form', { name: 'New user' });
    await form.getByLabel('Username').fill('dave');
    await form.getByLabel('Password').fill('dave-password-1');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('button', { name: 'Delete dave' }).click();
    await page.getByLabel('Role of dave').waitFor({ state: 'detached', timeout: 10_000 });
    expect(dialogs.at(-1)).toContain('Delete the user dave?');
    expect((await users()).map((u) => u.username).sort()).toEqual(['admin', CAROL]);

    await page.getByRole('button', { name: `Disable ${CAROL}` }).click();
    await page
      .locator('tr', { hasText: CAROL })
      .getByText(/^disabled/)
      .waitFor();
    await screenshot(page, 'users');
  });

  it('a viewer is not offered what the gateway would refuse: no New or row buttons, forms read only', async () => {
    expect(
      (await gw.request('POST', '/api/v1/users', { username: 'vera', password: 'vera-password-1', role: 'viewer' }))
        .status,
    ).toBe(201);
    const check = await gw.request<{ id: string }>('POST', '/api/v1/checks', {
      name: 'viewer-sees',
      type: 'tcp',
      host: '127.0.0.1',
      port: 9,
      intervalSeconds: 60,
    });
    expect(check.status).toBe(201);
    const other = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const veraPage = await other.newPage();
    try {
      await veraPage.goto(`${base}/checks`);
      await veraPage.waitForURL(/\/login\?next=/);
      await signIn(veraPage, 'vera', 'vera-password-1');
      await veraPage.getByRole('heading', { level: 1, name: 'Checks' }).waitFor();
      await veraPage.locator('tr', { hasText: 'viewer-sees' }).waitFor();
      expect(await veraPage.getByRole('link', { name: 'New check' }).count()).toBe(0);
      expect(await veraPage.locator('tr', { hasText: 'viewer-sees' }).getByRole('button').count()).toBe(0);
      await veraPage.getByRole('link', { name: 'viewer-sees' }).click();
      await veraPage.getByTestId('read-only').waitFor();
      expect(
        await veraPage.getByRole('form', { name: 'Check' }).locator('fieldset').first().getAttribute('disabled'),
      ).not.toBeNull();
      expect(await veraPage.getByLabel('Name', { exact: true }).isDisabled()).toBe(true);
      // An admin gets them.
      await page.goto(`${base}/checks`);
      await page.getByRole('link', { name: 'New check' }).waitFor();
      await page.locator('tr', { hasText: 'viewer-sees' }).getByRole('button').first().waitFor();
    } finally {
      await other.close();
      await gw.request('DELETE', `/api/v1/checks/${check.body.id}`);
    }
  });

  it('no script ran and no CSP violation or script error on any page', async () => {
    expect(await xssRuns(page)).toBeUndefined();
    expect([...watch.csp, ...(await pageCspViolations(page))]).toEqual([]);
    expect(watch.errors).toEqual([]);
  });
});
