import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { matchesHostSearch, TargetStatus, type HostListResponse, type HostSummaryView } from '@fleetwatch/contracts';
import { buildDashboard, launchChromium, watchPage, type PageWatch } from './browser';

// The hosts page read every page of GET /api/v1/hosts (1,000 a page) every 10 s to show them all in one table:
// 10 requests and 10,000 rows in the DOM for 10,000 hosts, each refresh. It now reads the page it shows (by id,
// `?after=` the cursor), refreshed every 10 s, and pages on with Next / Previous: hosts after the 1,000th stay
// reachable (55746d5). The gateway's paging is served here with its rules (page.route: limit ≤ 1,000, cursor = the
// last id of the previous page), and its filters (status, q: the contract's matchesHostSearch); the page's own
// requests and DOM, no site. The page's counts by status (limit=1, one a status) are told apart from its pages.

jest.setTimeout(240_000);

const TOTAL = 2_345;
const now = new Date().toISOString();
const all: HostSummaryView[] = Array.from({ length: TOTAL }, (_, i) => {
  const id = `h-${String(i).padStart(5, '0')}`;
  return {
    id,
    targetId: `host:${id}`,
    name: `${id}-name`,
    status: i % 100 === 7 ? TargetStatus.Stale : TargetStatus.Up,
    locations: ['eu-1'],
    lastSeen: now,
    since: now,
    system: i % 2 ? { platform: 'linux', distro: 'Debian', release: '12' } : { platform: 'linux', distro: 'Ubuntu' },
    lastSample: null,
  };
});

interface Asked {
  at: number;
  limit: number;
  cursor: string | null;
  q: string | null;
  status: string | null;
}
const listed: Asked[] = [];
/** The page's requests for a page of hosts (not its counts by status: limit=1). */
const pages = () => listed.filter((a) => a.limit > 1);

function hostsAnswer(q: URLSearchParams): HostListResponse {
  const limit = Math.min(Number(q.get('limit') ?? 100), 1000);
  const cursor = q.get('cursor');
  listed.push({ at: Date.now(), limit, cursor, q: q.get('q'), status: q.get('status') });
  const statuses = q.get('status')?.split(',');
  const taken = all.filter((h) => (!statuses || statuses.includes(h.status)) && matchesHostSearch(h, q.get('q') ?? ''));
  const from = cursor === null ? 0 : taken.findIndex((h) => h.id > cursor);
  const items = from < 0 ? [] : taken.slice(from, from + limit);
  const last = items[items.length - 1];
  return { items, nextCursor: last && last !== taken[taken.length - 1] ? last.id : null, total: taken.length };
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

let dir: string;
let browser: Browser;
let page: Page;
let watch: PageWatch;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fw-hosts-paging-'));
  buildDashboard(dir);
  browser = await launchChromium();
});

beforeEach(async () => {
  listed.length = 0;
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch = await watchPage(page);
  await page.route('http://dash.test/**', async (route) => {
    const url = new URL(route.request().url());
    const path = url.pathname;
    if (path.startsWith('/api/')) {
      let body: unknown;
      if (path === '/api/v1/auth/session')
        body = { user: { id: 'u1', username: 'admin', role: 'admin' }, csrfToken: 'c' };
      else if (path === '/api/v1/hosts') body = hostsAnswer(url.searchParams);
      else if (/^\/api\/v1\/hosts\/[^/]+\/metrics$/.test(path))
        body = { hostId: '', minutes: 60, resolution: 'raw', stepSeconds: null, series: [] };
      return route
        .fulfill({
          status: body === undefined ? 404 : 200,
          contentType: 'application/json',
          body: JSON.stringify(body ?? { error: { message: `not stubbed: ${path}` } }),
        })
        .catch(() => undefined);
    }
    const file = extname(path) ? path : '/index.html';
    return route.fulfill({
      status: 200,
      contentType: TYPES[extname(file)] ?? 'application/octet-stream',
      body: readFileSync(join(dir, file)),
    });
  });
});

afterEach(async () => {
  await page?.close();
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const inventoryRows = () => page.locator('table:has(caption:text-is("Hosts")) tbody tr').count();

describe('the hosts page', () => {
  it('reads only the page it shows, at first and at each 10 s refresh', async () => {
    // The page's clock (Playwright's) runs at its natural pace until it is moved on to the refresh below.
    await page.clock.install();
    await page.goto('http://dash.test/hosts');
    await page.getByRole('link', { name: 'h-00000-name' }).first().waitFor();
    await new Promise((r) => setTimeout(r, 500));
    const opened = Date.now();
    const atOpen = pages().length;
    // Past one refresh (LIVE_POLL_MS = 10 s) on the page's clock.
    await page.clock.fastForward(10_000);
    while (
      !pages()
        .slice(atOpen)
        .some((a) => a.at > opened)
    ) {
      if (Date.now() > opened + 10_000) throw new Error('no refresh within 10 s of the page clock moving 10 s on');
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 500));
    // Every list request asks for the first page (no cursor): one request a refresh, whatever the fleet's size.
    expect(listed.filter((a) => a.cursor !== null)).toEqual([]);
    expect(pages().length).toBeLessThanOrEqual(3);
    // And its counts by status (the filter's buttons, "n of m hosts"): one small request a status, each refresh.
    expect(listed.filter((a) => a.limit === 1).length).toBeLessThanOrEqual(3 * Object.values(TargetStatus).length);
    expect(listed.every((a) => a.limit <= 100)).toBe(true);
    expect(await inventoryRows()).toBe(100);
    expect(await page.getByTestId('hosts-count').innerText()).toBe(`${TOTAL.toLocaleString('en-US')} hosts`);
    expect(watch.errors).toEqual([]);
  });

  it('pages on past the 1,000th host with Next, back with Previous, and keeps the page in the address', async () => {
    await page.goto('http://dash.test/hosts');
    await page.getByRole('link', { name: 'h-00000-name' }).first().waitFor();
    // Eleven pages on (each a page of 100 rendered, with the sparklines' reads of its first 50: ~3 s a page on a
    // loaded box): past the 1,000th host, which the old page's read of every page (1,000 a page) topped at.
    for (let i = 1; i <= 11; i++) {
      await page.getByRole('button', { name: 'Next' }).click();
      await page
        .getByRole('link', { name: `h-${String(i * 100).padStart(5, '0')}-name` })
        .first()
        .waitFor();
    }
    // Hosts 1,101–1,200: the 1,000th and later are reachable, and only this page is in the table.
    expect(await inventoryRows()).toBe(100);
    expect(new URL(page.url()).searchParams.get('after')).toBe('h-01099');
    expect(pages().at(-1)).toMatchObject({ cursor: 'h-01099' });
    expect(await page.getByTestId('hosts-shown').innerText()).toBe('1,101–1,200');

    await page.getByRole('button', { name: 'Previous' }).click();
    await page.getByRole('link', { name: 'h-01000-name' }).first().waitFor();
    expect(await page.getByRole('link', { name: 'h-01100-name' }).count()).toBe(0);

    // A reload opens the same page; the last page has no Next.
    await page.goto('http://dash.test/hosts?after=h-02299');
    await page.getByRole('link', { name: 'h-02300-name' }).first().waitFor();
    expect(await inventoryRows()).toBe(45);
    expect(await page.getByTestId('hosts-shown').innerText()).toBe('45 after h-02299');
    expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'First page' }).click();
    await page.getByRole('link', { name: 'h-00000-name' }).first().waitFor();
    expect(watch.errors).toEqual([]);
  });

  it('filters by search and status on the gateway, keeps the filter in the address, and says when nothing matches', async () => {
    await page.goto('http://dash.test/hosts');
    await page.getByRole('link', { name: 'h-00000-name' }).first().waitFor();
    // The OS as the System column shows it: every odd host runs Debian 12. Typed with a pause after the space: the
    // search goes out trimmed ('DEBIAN'), and the box keeps the space for what is typed next.
    const search = page.getByRole('searchbox', { name: 'Search' });
    await search.pressSequentially('DEBIAN ');
    await page.waitForURL((url) => url.searchParams.get('q') === 'DEBIAN');
    await page.getByRole('link', { name: 'h-00001-name' }).first().waitFor();
    await page.getByText(`1,172 of ${TOTAL.toLocaleString('en-US')} hosts`).waitFor();
    expect(await page.getByRole('link', { name: 'h-00000-name' }).count()).toBe(0);
    expect(pages().at(-1)).toMatchObject({ q: 'DEBIAN', cursor: null });
    await search.pressSequentially('12');
    expect(await search.inputValue()).toBe('DEBIAN 12');
    await page.waitForURL((url) => url.searchParams.get('q') === 'DEBIAN 12');

    // STALE as well: hosts 7, 107, 207 … of which the odd ones; shared by its address (a reload keeps it).
    await page.getByRole('button', { name: /^STALE/ }).click();
    await page.waitForURL((url) => url.searchParams.get('status') === 'STALE');
    await page.reload();
    await page.getByRole('link', { name: 'h-00007-name' }).first().waitFor();
    expect(await inventoryRows()).toBe(24);
    expect(await page.getByTestId('hosts-count').innerText()).toBe(`24 of ${TOTAL.toLocaleString('en-US')} hosts`);
    expect(await page.getByRole('searchbox', { name: 'Search' }).inputValue()).toBe('DEBIAN 12');
    expect(pages().at(-1)).toMatchObject({ q: 'DEBIAN 12', status: 'STALE' });

    await page.getByRole('searchbox', { name: 'Search' }).fill('ubuntu 12');
    await page.getByText('No hosts match this filter.').waitFor();
    expect(await page.getByTestId('hosts-count').innerText()).toBe(`0 of ${TOTAL.toLocaleString('en-US')} hosts`);
    await page.getByRole('button', { name: 'Clear filter' }).click();
    await page.getByRole('link', { name: 'h-00000-name' }).first().waitFor();
    expect(new URL(page.url()).search).toBe('');
    // The boxes follow the address when it changes otherwise than by their typing.
    expect(await search.inputValue()).toBe('');
    expect(watch.errors).toEqual([]);
  });
});
