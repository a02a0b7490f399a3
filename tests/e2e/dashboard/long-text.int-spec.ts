import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  TargetKind,
  TargetStatus,
  type AlertView,
  type HistoryResponse,
  type RecentTargetsResponse,
  type TargetView,
} from '@fleetwatch/contracts';
import { buildDashboard, launchChromium, watchPage, type PageWatch } from './browser';

// Text pushed from outside (instance ids and names, locations, failure reasons, label values) may be one long
// word: a URL, a token, a pod id. It must wrap inside its card, never widen the page: before, one such value in a
// table cell or a page title stretched the whole page to thousands of pixels (the other columns — status,
// latency — were off screen). The dashboard's layout only, so the API is answered here (page.route), no site.

jest.setTimeout(180_000);

declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number };
};

const LONG = `https://example.test/${'a1b2c3d4'.repeat(64)}`;
const now = new Date().toISOString();
const target: TargetView = {
  id: `instance:pod-${'x'.repeat(200)}`,
  kind: TargetKind.Instance,
  name: `name-${LONG}`,
  status: TargetStatus.Down,
  consensus: TargetStatus.Down,
  locations: [
    {
      location: `loc-${'l'.repeat(120)}`,
      status: TargetStatus.Down,
      latencyMs: 1234.5,
      lastSeen: now,
      detail: `GET ${LONG}: certificate has expired`,
    } as TargetView['locations'][number],
  ],
  lastSeen: now,
  since: now,
  tags: [`tag-${'t'.repeat(120)}`],
  labels: { url: LONG },
  lifecycle: null,
  instanceKind: null,
};
const alert = {
  id: 'a1',
  ruleId: 'r1',
  ruleName: `rule-${'r'.repeat(200)}`,
  severity: 'critical',
  targetId: target.id,
  targetName: target.name,
  state: 'firing',
  labels: { alertname: 'x', severity: 'critical', target: target.name, url: LONG },
  value: 1,
  since: now,
  durationSeconds: 10,
  activeAt: now,
  firedAt: now,
  lastNotifiedAt: null,
  muted: null,
  silenced: false,
} as AlertView;
const history: HistoryResponse = {
  targetId: target.id,
  minutes: 60,
  resolution: 'raw',
  points: [],
  events: [{ at: now, location: target.locations[0].location, from: 'UP', to: 'DOWN', reason: `TLS: ${LONG}` }],
};

const API: Record<string, unknown> = {
  '/api/v1/auth/session': { user: { id: 'u1', username: 'admin', role: 'admin' }, csrfToken: 'c' },
  '/api/v1/status/summary': { total: 1, byStatus: { DOWN: 1 }, byKind: {}, alerts: { firing: 1 }, generatedAt: now },
  '/api/v1/targets/recent': { items: [target] } satisfies RecentTargetsResponse,
  '/api/v1/hosts': { items: [], nextCursor: null, total: 0 },
  '/api/v1/alerts': { items: [alert], counts: { firing: 1, pending: 0 }, generatedAt: now },
  [`/api/v1/targets/${encodeURIComponent(target.id)}`]: target,
  [`/api/v1/targets/${encodeURIComponent(target.id)}/history`]: history,
};

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

let dir: string;
let browser: Browser;
let page: Page;
let watch: PageWatch;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fw-long-text-'));
  buildDashboard(dir);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch = await watchPage(page);
  await page.route('http://dash.test/**', async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path.startsWith('/api/')) {
      const body = API[path];
      return route.fulfill({
        status: body === undefined ? 404 : 200,
        contentType: 'application/json',
        body: JSON.stringify(body ?? { error: { message: `not stubbed: ${path}` } }),
      });
    }
    const file = extname(path) ? path : '/index.html';
    return route.fulfill({
      status: 200,
      contentType: TYPES[extname(file)] ?? 'application/octet-stream',
      body: readFileSync(join(dir, file)),
    });
  });
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function pageWidth(path: string, ready: string): Promise<{ scroll: number; view: number }> {
  await page.goto(`http://dash.test${path}`);
  await page.getByText(ready, { exact: false }).first().waitFor();
  return page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    view: document.documentElement.clientWidth,
  }));
}

describe('long values from outside wrap in their cards', () => {
  it.each([
    ['the overview (latest changes)', '/', 'name-https'],
    ['the alerts page (labels, rule, target)', '/alerts', 'rule-rrrr'],
    [
      'a target (title, id, location, failure reason, status changes)',
      `/targets/${encodeURIComponent(target.id)}`,
      'TLS: https',
    ],
  ])('%s is no wider than the window', async (_name, path, ready) => {
    const { scroll, view } = await pageWidth(path, ready);
    expect(scroll).toBeLessThanOrEqual(view);
    expect(watch.errors).toEqual([]);
  });
});
