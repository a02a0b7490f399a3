import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { CheckView } from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from '../gateway-client';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite } from '../site-launcher';
import { buildDashboard, launchChromium, watchPage, type PageWatch } from './browser';

// A check's edit form in real Chromium against a real site (sync-orchestrator, the gateway serving the dashboard, a
// collector probing a local server): an http check's credential headers are write-only (SPEC §10), so the API
// answers `{set: true}` for each. The form shows such a header as set and not shown — its value nowhere in the
// page — a save of another field keeps it (the collector still sends it), and the person can replace or remove it.

jest.setTimeout(300_000);

const CANARY = 'zz-form-canary';
const LOCATION = 'lab';

let site: E2eSite;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let base: string;
let gw: GatewayClient;
let target: Server;
let targetUrl: string;
/** What the probed server saw: when, and the credential headers. */
const seen: { at: number; authorization?: string; apiKey?: string }[] = [];

beforeAll(async () => {
  target = createServer((req, res) => {
    seen.push({
      at: Date.now(),
      authorization: req.headers.authorization,
      apiKey: [req.headers['x-api-key']].flat()[0],
    });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/private/health`;

  site = await createSite('check-secret-headers');
  const dashboardDir = join(site.dir, 'dashboard');
  buildDashboard(dashboardDir);
  await site.start('sync-orchestrator');
  await Promise.all([
    site.start('api-gateway', { env: { DASHBOARD_DIR: dashboardDir } }),
    site.start('collector', {
      env: { FLEETWATCH_LOCATION: LOCATION, COLLECTOR_HOST_ID: 'e2e-lab', COLLECTOR_SPOOL_DIR: 'spool' },
    }),
  ]);
  base = site.service('api-gateway').url;
  gw = await GatewayClient.login(base);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch = await watchPage(page);
});

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  await new Promise((r) => target?.close(r));
});

/** Waits until the probed server has seen a request after `since` that passes `ok`, and answers it. */
async function probedAfter(since: number, ok: (s: (typeof seen)[number]) => boolean): Promise<(typeof seen)[number]> {
  return waitFor(() => seen.find((s) => s.at > since && ok(s)), {
    timeoutMs: 20_000,
    description: 'a probe with the expected headers',
  });
}

async function save(): Promise<number> {
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(`${base}/checks`);
  // Probes after the collector has had the new assignment: config.changed reaches it within ~1 s.
  return Date.now() + 2_000;
}

describe('a check with credential headers in the edit form', () => {
  let check: CheckView;

  it('shows them as set and not shown, and a save of another field keeps them', async () => {
    const created = await gw.request<CheckView>('POST', '/api/v1/checks', {
      name: 'private page',
      type: 'http',
      url: targetUrl,
      intervalSeconds: 1,
      timeoutSeconds: 1,
      locations: [LOCATION],
      headers: { Authorization: `Bearer ${CANARY}`, 'X-Api-Key': `${CANARY}-key`, Accept: 'text/plain' },
    });
    expect(created.status).toBe(201);
    check = created.body;
    await probedAfter(0, (s) => s.authorization === `Bearer ${CANARY}`);

    await page.goto(`${base}/checks/${check.id}`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(E2E_ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Edit private page' }).waitFor();

    const group = page.getByRole('group', { name: 'Credential headers' });
    await group.getByText('Stored: set, not shown').first().waitFor();
    expect(await group.getByLabel('Authorization', { exact: true }).inputValue()).toBe('');
    expect(await group.getByLabel('X-Api-Key', { exact: true }).inputValue()).toBe('');
    expect(await page.getByLabel('Headers', { exact: true }).inputValue()).toBe('Accept: text/plain');
    expect(await page.content()).not.toContain(CANARY);

    await page.getByLabel('Tags').fill('edited');
    const after = await save();
    const stored = await gw.request<CheckView>('GET', `/api/v1/checks/${check.id}`);
    expect(stored.body).toMatchObject({
      tags: ['edited'],
      headers: { Authorization: { set: true }, 'X-Api-Key': { set: true }, Accept: 'text/plain' },
    });
    await probedAfter(after, (s) => s.authorization === `Bearer ${CANARY}` && s.apiKey === `${CANARY}-key`);
    expect(watch.errors).toEqual([]);
  });

  it('replaces one and removes another', async () => {
    await page.goto(`${base}/checks/${check.id}`);
    await page.getByRole('heading', { name: 'Edit private page' }).waitFor();
    const group = page.getByRole('group', { name: 'Credential headers' });
    await group.getByLabel('Authorization', { exact: true }).fill('Bearer replaced-in-the-form');
    await group.getByLabel('Remove the stored X-Api-Key').check();
    const after = await save();
    const stored = await gw.request<CheckView>('GET', `/api/v1/checks/${check.id}`);
    expect(stored.body).toMatchObject({ headers: { Authorization: { set: true }, Accept: 'text/plain' } });
    expect(Object.keys((stored.body as { headers: object }).headers).sort()).toEqual(['Accept', 'Authorization']);
    await probedAfter(after, (s) => s.authorization === 'Bearer replaced-in-the-form' && s.apiKey === undefined);
    expect(watch.errors).toEqual([]);
  });
});
