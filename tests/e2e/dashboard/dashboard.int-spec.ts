import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import {
  checkInputSchema,
  TargetStatus,
  type CheckDefinition,
  type HostListResponse,
  type RecentTargetsResponse,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { createPrismaClient, HistoryRepository, runInTransaction } from '@fleetwatch/persistence';
import { testEnv, waitFor } from '@fleetwatch/testing';
import { GatewayClient } from '../gateway-client';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite } from '../site-launcher';
import {
  buildDashboard,
  clickInOneTask,
  launchChromium,
  pageCspViolations,
  percentile,
  scrollThrough,
  watchPage,
  type PageWatch,
} from './browser';
import { countsOf, HOSTILE_NAME, seedId, seedTargets } from './seed';

/** The Prisma client's raw statement, for seeding a table no repository here writes. */
type RawSql = { $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number> };

// The dashboard in real Chromium against a real gateway (and, for checks and hosts,
// sync-orchestrator, aggregator and a collector) on this run's isolated servers.
// The tests move around the way a person does — by links (a reload keeps the cookie
// session, one test checks that). FW_SCREENSHOTS=1 writes the
// screenshots into docs/screenshots/ (else into the site's own directory).

jest.setTimeout(300_000);

// In-page code (page.evaluate) runs in the browser; the test program has no DOM library.
declare const document: {
  cookie: string;
  documentElement: { dataset: Record<string, string | undefined> };
  activeElement: { textContent: string | null } | null;
};
declare const localStorage: unknown;
declare const window: unknown;

const TARGETS = 10_000;
const seeded = seedTargets(TARGETS);
const expected = countsOf(seeded);
const HOST = 'dash-host-1';

let site: E2eSite;
let redis: Redis;
let store: LiveStateStore;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let base: string;
let shots: string;
const figures: string[] = [];
/** Every sparklines request the page made (issue 17: only rows in view are asked for). */
const sparkRequests: URL[] = [];
/** When (test clock) each target-list request started — `first`: its first page (no cursor) — and each answer came. */
const listRequests: { at: number; first: boolean; url: URL }[] = [];
const listAnswers: number[] = [];
/** Target-list requests that failed (aborted: a page left before its answer). */
let listFailures = 0;
/** When each `resync` frame reached the page. */
const resyncFrames: number[] = [];
const isListRequest = (url: string) => new URL(url).pathname === '/api/v1/targets';

beforeAll(async () => {
  site = await createSite('dashboard', { FLEETWATCH_CHECK_DENY_NETWORKS: '192.0.2.0/24' });
  const dashboardDir = join(site.dir, 'dashboard');
  buildDashboard(dashboardDir);
  shots =
    process.env['FW_SCREENSHOTS'] === '1'
      ? join(__dirname, '../../../docs/screenshots')
      : join(site.dir, 'screenshots');
  mkdirSync(shots, { recursive: true });

  redis = new Redis(testEnv().redisUrl, { keyPrefix: site.redisPrefix, lazyConnect: true });
  await redis.connect();
  store = new LiveStateStore(redis, { keyPrefix: site.redisPrefix });
  for (let i = 0; i < seeded.length; i += 500) await store.writeTargets(seeded.slice(i, i + 500));

  await Promise.all([
    site.start('sync-orchestrator'),
    site.start('api-gateway', { env: { DASHBOARD_DIR: dashboardDir } }),
  ]);
  base = site.service('api-gateway').url;
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  watch = await watchPage(page);
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/targets/sparklines')) sparkRequests.push(new URL(r.url()));
    if (isListRequest(r.url()))
      listRequests.push({ at: Date.now(), first: !new URL(r.url()).searchParams.has('cursor'), url: new URL(r.url()) });
  });
  page.on('requestfinished', (r) => {
    if (isListRequest(r.url())) listAnswers.push(Date.now());
  });
  page.on('requestfailed', (r) => {
    if (isListRequest(r.url())) listFailures++;
  });
  page.on('websocket', (ws) =>
    ws.on('framereceived', (f) => {
      if (String(f.payload).includes('"resync"')) resyncFrames.push(Date.now());
    }),
  );
  await seedHistory();
});

/**
 * The last hour of two seeded targets as the aggregator leaves it in Postgres: pushed updates
 * (seed 0: one DOWN in four, 20 minutes ago; seed 1: all UP, 5 minutes ago) and their rollups.
 */
async function seedHistory(): Promise<void> {
  const db = createPrismaClient(site.db.databaseUrl, { poolSize: 1 });
  try {
    const repo = new HistoryRepository(db);
    const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
    const m20 = minute(Date.now() - 20 * 60_000);
    const m5 = minute(Date.now() - 5 * 60_000);
    const update = (i: number, status: TargetStatus, at: number) => ({
      messageId: randomUUID(),
      updateId: randomUUID(),
      targetId: seedId(i),
      instanceId: seedId(i).slice('instance:'.length),
      kind: 'container',
      lifecycleStatus: status === TargetStatus.Up ? 'running' : 'exited',
      status,
      source: 'docker',
      location: 'default',
      occurredAt: at,
      receivedAt: at,
      labels: null,
      message: null,
      metadata: null,
    });
    await runInTransaction(db, async (tx) => {
      await repo.insertStatusUpdates(tx, [
        update(0, TargetStatus.Up, m20 + 1000),
        update(0, TargetStatus.Down, m20 + 2000),
        update(0, TargetStatus.Up, m20 + 3000),
        update(0, TargetStatus.Up, m20 + 4000),
        update(1, TargetStatus.Up, m5 + 1000),
      ]);
      // Seeds 3–14 (the rest of the first screen): an update a minute over the hour, as the screenshot shows them;
      // their live status decides, with a failed minute every 13 for the DOWN and PARTIAL ones.
      const hour: ReturnType<typeof update>[] = [];
      const marks: { targetId: string; location: string; bucket: number }[] = [];
      for (let i = 3; i < 15; i++)
        for (let m = 59; m >= 0; m--) {
          const at = minute(Date.now() - m * 60_000) + 500;
          const live = seeded[i].status;
          const bad = (live === TargetStatus.Down || live === TargetStatus.Partial) && (m + i) % 13 === 0;
          hour.push(update(i, bad ? TargetStatus.Down : TargetStatus.Up, at));
          marks.push({ targetId: seedId(i), location: 'default', bucket: minute(at) });
        }
      await repo.insertStatusUpdates(tx, hour);
      await repo.markRollupsDirty(tx, [
        { targetId: seedId(0), location: 'default', bucket: m20 },
        { targetId: seedId(1), location: 'default', bucket: m5 },
        ...marks,
      ]);
    });
    while ((await repo.recomputeDirtyRollups()) > 0);
    // The location they report from, as the aggregator keeps it (sparklines read rollups per location).
    for (let i = 0; i < 15; i++)
      await (db as unknown as RawSql).$executeRawUnsafe(
        `INSERT INTO target_location_states (target_id, location, status, observed_at, last_seen) VALUES ($1, 'default', 'UP', now(), now())`,
        seedId(i),
      );
  } finally {
    await db.$disconnect();
  }
}

afterAll(async () => {
  if (figures.length) process.stdout.write(`\ndashboard in Chromium:\n${figures.join('\n')}\n\n`);
  await browser?.close();
  redis?.disconnect();
  await site?.stop();
});

/** Light, then dark (switched with the page's own toggle), then light again. */
async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}-light.png`), fullPage: true });
  const toggle = page.getByRole('button', { name: /Switch to dark theme/ });
  if (await toggle.count()) {
    await toggle.click();
    await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'dark');
    await page.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
    await page.getByRole('button', { name: /Switch to light theme/ }).click();
    await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'light');
  }
}

async function go(link: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: link }).waitFor();
}

const countOn = async (selector: string) =>
  (await page.locator(selector).locator('.fw-count__n').innerText()).replace(/\D/g, '');

describe('dashboard in Chromium', () => {
  it('serves the built page with its CSP, and a deep link signs in first', async () => {
    await page.goto(`${base}/targets?status=DOWN`);
    await page.waitForURL(/\/login\?next=/);
    const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    await screenshot('login');
  });

  it('the login form works from the keyboard alone, with labelled fields', async () => {
    await page.reload(); // fresh, as a person arrives (the screenshot above used the theme button)
    const user = page.getByLabel('Username');
    const password = page.getByLabel('Password');
    await user.waitFor();
    await expect(user.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    // A wrong password first: announced, and the form stays.
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    await expect(password.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await page.keyboard.type('wrong-password');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('alert').innerText()).resolves.toMatch(/\S/);
    await password.fill('');
    await password.focus();
    await page.keyboard.type(E2E_ADMIN_PASSWORD);
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.textContent);
    expect(focused).toBe('Sign in');
    await page.keyboard.press('Enter');
    // Back where the deep link pointed, with its filter.
    await page.getByRole('heading', { level: 1, name: 'Targets' }).waitFor();
    expect(new URL(page.url()).search).toBe('?status=DOWN');
    // The session is an HttpOnly cookie: nothing a script could read or steal.
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'fw_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('fw_session');
    expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toMatch(/token|session/i);
    // A reload keeps the session (no password again).
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Targets' }).waitFor();
  });

  it('the overview counts every status over the whole set', async () => {
    // The targets page the test before left (filtered to DOWN) may still be paging through its list, and its
    // poll (every 10 s) may start one more read until the click on Overview unmounts it: counted from when it
    // is done, and its own reads (status=DOWN) set apart, so what follows counts the overview's list reads (none).
    await waitFor(async () => listRequests.length === listAnswers.length + listFailures, {
      timeoutMs: 15_000,
      description: 'the targets page done reading its list',
    });
    const listsBefore = listRequests.length;
    const overviewReads = () =>
      listRequests.slice(listsBefore).filter((r) => r.url.searchParams.get('status') !== TargetStatus.Down);
    await go('Overview');
    await waitFor(async () => (await countOn('[data-count="all"]')) === String(expected.all), {
      timeoutMs: 30_000,
      description: `All = ${expected.all}`,
    });
    for (const s of Object.values(TargetStatus)) expect(await countOn(`[data-count="${s}"]`)).toBe(String(expected[s]));
    // The hostile name from live state is text on the page, and nothing ran.
    await page.getByText(HOSTILE_NAME, { exact: true }).first().waitFor();
    expect(await page.evaluate(() => (window as unknown as { __fwXss?: number }).__fwXss)).toBeUndefined();
    // "Latest status changes" shows what GET /api/v1/targets/recent answers, and the page never read the whole list.
    const gw = await GatewayClient.login(base);
    const links = page.getByRole('table', { name: 'Targets whose status changed most recently' }).locator('tbody a');
    let asked: string[] = [];
    let shown: (string | null)[] = [];
    await waitFor(
      async () => {
        const recent = (await gw.request<RecentTargetsResponse>('GET', '/api/v1/targets/recent')).body.items;
        asked = recent.map((t) => `/targets/${encodeURIComponent(t.id)}`);
        shown = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
        return asked.length === 12 && JSON.stringify(shown) === JSON.stringify(asked);
      },
      { timeoutMs: 15_000, description: 'the 12 latest changes shown as the API lists them' },
    ).catch(() => expect(shown).toEqual(asked));
    expect(overviewReads()).toEqual([]);
    await screenshot('overview');
  });

  it('a status filter keeps "All" and every other count right', async () => {
    await go('Targets');
    const all = page.locator('[data-filter="all"]');
    // The page reopens the filter used last (DOWN, from the deep link): start from none.
    await page.waitForURL(/status=DOWN/);
    await all.click();
    await page.waitForURL((u) => !u.search.includes('status='));
    await page.locator('[data-filter="DOWN"]').click();
    const started = Date.now();
    await page.waitForURL(/status=DOWN/);
    await waitFor(
      async () =>
        (await page.getByTestId('targets-shown').innerText()) === `${expected.DOWN.toLocaleString('en-US')} shown`,
      {
        timeoutMs: 30_000,
        description: 'DOWN targets shown',
      },
    );
    figures.push(`filter change to DOWN (${expected.DOWN} rows), click to rows: ${Date.now() - started} ms`);
    expect(await all.innerText()).toBe(`All (${expected.all})`);
    for (const s of Object.values(TargetStatus))
      expect(await page.locator(`[data-filter="${s}"]`).innerText()).toBe(`${s} (${expected[s]})`);
    expect(await page.locator('[data-filter="DOWN"]').getAttribute('aria-pressed')).toBe('true');
    const shown = await page
      .locator('[data-target]')
      .evaluateAll((rows) => rows.map((r) => r.querySelector('.fw-status')?.textContent));
    expect(new Set(shown)).toEqual(new Set(['DOWN']));
    // Two more toggled in one task, before the first one's navigation has rendered: both count (each started
    // from the filter its render showed, and the first was lost).
    await clickInOneTask(page, ['[data-filter="UP"]', '[data-filter="STALE"]']);
    await page.waitForURL((u) => u.searchParams.get('status') === 'DOWN,STALE,UP', { timeout: 10_000 });
    await page.locator('[data-filter="UP"][aria-pressed="true"]').waitFor();
    expect(await page.locator('[data-filter="STALE"]').getAttribute('aria-pressed')).toBe('true');
    await all.click();
    await page.waitForURL((u) => !u.search.includes('status='));
  });

  it(`scrolls ${TARGETS.toLocaleString('en-US')} targets with only a window of rows in the DOM`, async () => {
    await waitFor(
      async () => (await page.getByTestId('targets-shown').innerText()) === `${TARGETS.toLocaleString('en-US')} shown`,
      {
        timeoutMs: 60_000,
        description: 'every target loaded',
      },
    );
    await screenshot('targets');
    const r = await scrollThrough(page, '[data-testid="targets-scroller"]', '[data-target]', 120);
    expect(r.scrollHeight).toBeGreaterThan(TARGETS * 30);
    expect(r.maxRows).toBeLessThan(80);
    await page.locator(`[data-target="${seedId(TARGETS - 1)}"]`).waitFor();
    const f = (v: number) => v.toFixed(1);
    const workP95 = percentile(r.work, 95);
    figures.push(
      `scroll ${TARGETS} rows in 120 jumps: render work per jump p50 ${f(percentile(r.work, 50))} ms, p95 ${f(workP95)} ms, max ${f(Math.max(...r.work))} ms; ` +
        `frame interval p50 ${f(percentile(r.frames, 50))} ms, p95 ${f(percentile(r.frames, 95))} ms (idle frames p50 ${f(percentile(r.idleFrames, 50))} ms); ` +
        `at most ${r.maxRows} rows in the DOM`,
    );
    // A frame is 16 ms. Held to that with FW_BENCH=1 (a quiet machine); on a shared box the figure above is the
    // record, and what is asserted is the behaviour: only a window of rows is in the DOM (maxRows above).
    if (process.env['FW_BENCH'] === '1') expect(workP95).toBeLessThan(16);
  });

  // The gateway's WebSocket (issue 17, gateway side) — skipped only on a build without it.
  const withSocket = existsSync(join(__dirname, '../../../dist/apps/api-gateway/src/ws/ws.route.js')) ? it : it.skip;
  withSocket('a status change reaches the open page over the WebSocket, without a reload, within 5 s', async () => {
    await page.locator('[data-testid="targets-scroller"]').evaluate((el) => (el.scrollTop = 0));
    await page.locator('[data-live="live"]').waitFor({ timeout: 30_000 });
    const row = page.locator(`[data-target="${seedId(2)}"] .fw-status`).first();
    expect(await row.innerText()).toBe('UP');
    // What the aggregator does on a transition: the live view, then the event on the status channel.
    const now = Date.now();
    const down = {
      ...seeded[2],
      status: TargetStatus.Down,
      previousStatus: TargetStatus.Up,
      since: now,
      lastSeen: now,
      seq: 2,
    };
    for (const loc of Object.values(down.locations))
      Object.assign(loc, { status: TargetStatus.Down, observedAt: now, lastSeen: now });
    await store.writeTargets([down]);
    const started = Date.now();
    await store.publishStatusChange(
      JSON.stringify({
        targetId: seedId(2),
        kind: 'instance',
        location: null,
        from: 'UP',
        to: 'DOWN',
        reason: 'e2e',
        at: new Date(now).toISOString(),
        sequence: 2,
      }),
    );
    await waitFor(async () => (await row.innerText()) === 'DOWN', {
      timeoutMs: 5_000,
      intervalMs: 100,
      description: `${seedId(2)} DOWN on the page`,
    });
    figures.push(`status change published → shown on the open page: ${Date.now() - started} ms`);
    // It came over the socket (not by the 10 s polling).
    expect(watch.socketFrames.some((f) => f.includes('"status.changed"') && f.includes(seedId(2)))).toBe(true);
  });

  withSocket(
    'a change lost while the gateway’s Redis subscriber was cut shows once the gateway says resync',
    async () => {
      await page.locator('[data-live="live"]').waitFor({ timeout: 30_000 });
      const row = page.locator(`[data-target="${seedId(2)}"] .fw-status`).first();
      expect(await row.innerText()).toBe('DOWN');
      // Cut only this site's gateway subscriber (named by host and pid, see subscriberConnectionName); Redis stays up.
      const pid = site.service('api-gateway').child.pid;
      const name = `api-gateway-ws-${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${pid}`;
      const clients = String(await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      const id = clients
        .split('\n')
        .find((l) => l.includes(` name=${name} `))
        ?.match(/\bid=(\d+)/)?.[1];
      expect(id).toBeDefined();
      // The page also polls its list every 10 s (LIVE_POLL_MS), and TanStack restarts that interval at each update
      // of the query: a poll starts ≥ 10 s after the list's last answer. Cut right after an answer (its pages all
      // in), so a list request within 8 s of that answer cannot be the poll: only the resync explains it.
      const answersBefore = listAnswers.length;
      await waitFor(async () => listAnswers.length > answersBefore, {
        timeoutMs: 15_000,
        intervalMs: 20,
        description: 'an answer to the page’s target list (its poll)',
      });
      let quiet = listAnswers.length;
      await waitFor(
        async () => {
          const settled = listAnswers.length === quiet && Date.now() - listAnswers[listAnswers.length - 1] >= 400;
          quiet = listAnswers.length;
          return settled;
        },
        { timeoutMs: 5_000, intervalMs: 50, description: 'the list’s pages all answered' },
      );
      const lastAnswer = listAnswers[listAnswers.length - 1];
      // The change is committed to live state, but its status.changed is never seen by the gateway: published
      // while its subscriber connection is gone (here: not published at all, the same to the page).
      const now = Date.now();
      const up = {
        ...seeded[2],
        status: TargetStatus.Up,
        previousStatus: TargetStatus.Down,
        since: now,
        lastSeen: now,
        seq: 3,
      };
      for (const loc of Object.values(up.locations))
        Object.assign(loc, { status: TargetStatus.Up, observedAt: now, lastSeen: now });
      await store.writeTargets([up]);
      const framesBefore = resyncFrames.length;
      const requestsBefore = listRequests.length;
      const started = Date.now();
      expect(await redis.call('CLIENT', 'KILL', 'ID', id as string)).toBe(1);
      await waitFor(async () => resyncFrames.length > framesBefore, {
        timeoutMs: 5_000,
        intervalMs: 50,
        description: 'a resync frame on the page',
      });
      const frameAt = resyncFrames[framesBefore];
      // Up to 9 s (5 s ran out on a loaded box): the assertions below tell the resync's re-read from the poll.
      await waitFor(async () => (await row.innerText()) === 'UP', {
        timeoutMs: 9_000,
        intervalMs: 100,
        description: `${seedId(2)} UP again on the page after the resync`,
      });
      // The re-read the resync asked for: a list fetch started after the frame, within the page's 0–2 s spread,
      // and before the poll could have started.
      const refetch = listRequests.slice(requestsBefore).find((r) => r.first && r.at >= frameAt);
      expect(refetch).toBeDefined();
      const { at } = refetch as { at: number };
      expect(at - frameAt).toBeLessThan(3_000);
      expect(at - lastAnswer).toBeLessThan(8_000);
      figures.push(
        `subscriber cut → resync → lost change shown on the open page: ${Date.now() - started} ms ` +
          `(list re-read ${at - frameAt} ms after the frame, ${at - lastAnswer} ms after the list's last answer)`,
      );
    },
  );

  it('each row in view shows its last hour, asked for only for the rows in view', async () => {
    await page.locator('[data-testid="targets-scroller"]').evaluate((el) => (el.scrollTop = 0));
    const trend = (i: number) => page.locator(`[data-target="${seedId(i)}"] [data-testid="row-trend"] svg`);
    await trend(0).waitFor({ timeout: 10_000 });
    // seed 0: one minute with one failed sample in four; seed 1: one good minute; seed 2: no history.
    expect(await trend(0).getAttribute('data-measure')).toBe('availability');
    expect(await trend(0).getAttribute('data-fails')).toBe('1');
    expect(await trend(0).getAttribute('aria-label')).toBe('Last hour: availability, failures in 1 of 1 min');
    expect(await trend(1).getAttribute('aria-label')).toBe('Last hour: availability, no failures in 1 min');
    expect(await trend(1).locator('polyline').count()).toBe(1);
    expect(await trend(2).getAttribute('data-measure')).toBe('none');
    // A row far down gets its line once scrolled into view.
    await page.locator('[data-testid="targets-scroller"]').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await trend(TARGETS - 1).waitFor({ timeout: 10_000 });
    // Every request within the server's bound, and the rows never in view never asked for.
    const asked = new Set(sparkRequests.flatMap((u) => u.searchParams.getAll('id')));
    for (const u of sparkRequests) expect(u.searchParams.getAll('id').length).toBeLessThanOrEqual(100);
    expect(asked.has(seedId(0)) && asked.has(seedId(TARGETS - 1))).toBe(true);
    expect(asked.size).toBeLessThan(TARGETS);
    figures.push(
      `sparklines: ${sparkRequests.length} requests for ${asked.size} of ${TARGETS} rows after scrolling the whole list`,
    );
  });

  it('a target opens its detail page', async () => {
    await page.locator('[data-testid="targets-scroller"]').evaluate((el) => (el.scrollTop = 0));
    await page.locator(`[data-target="${seedId(1)}"] a`).click();
    await page.getByRole('heading', { level: 1, name: 'web-00001' }).waitFor();
    await page.getByText('eu-west').first().waitFor();
    await screenshot('target-detail');
  });

  it('a check created through the form, after the contract’s inline messages, appears in the list', async () => {
    await go('Checks');
    await page.getByRole('link', { name: 'New check' }).click();
    await page.getByLabel('Name').fill('Shop health');
    await page.getByLabel('URL').fill('not a url');
    await page.getByLabel('Interval (seconds)').fill('5');
    await page.getByRole('button', { name: 'Create check' }).click();
    // The very messages the API would answer with: the shared contract's.
    const refusal = checkInputSchema.safeParse({ type: 'http', name: 'x', url: 'not a url', intervalSeconds: 5 });
    const urlMessage = refusal.success ? '' : refusal.error.issues.find((i) => i.path[0] === 'url')?.message;
    expect(urlMessage).toBeTruthy();
    await page.getByText(urlMessage as string).waitFor();
    expect(await page.getByLabel('URL').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Timeout (seconds)').getAttribute('aria-invalid')).toBe('true');
    await screenshot('check-form');
    await page.getByLabel('URL').fill('https://shop.example.test/health');
    await page.getByLabel('Timeout (seconds)').fill('4');
    await page.getByLabel('Tags').fill('shop, e2e');
    await page.getByLabel('Conditions').fill('status == 200');
    await page.getByRole('button', { name: 'Create check' }).click();
    await page.getByRole('heading', { level: 1, name: 'Checks' }).waitFor();
    await page.getByRole('link', { name: 'Shop health' }).waitFor();

    const gw = await GatewayClient.login(base);
    const listed = await gw.request<{ items: CheckDefinition[] }>('GET', '/api/v1/checks');
    expect(listed.body.items.find((c) => c.name === 'Shop health')).toMatchObject({
      type: 'http',
      url: 'https://shop.example.test/health',
      intervalSeconds: 5,
      timeoutSeconds: 4,
      tags: ['shop', 'e2e'],
      conditions: ['status == 200'],
    });

    // Pause from the list: the row says so.
    await page.getByRole('button', { name: 'Pause Shop health' }).click();
    await page.getByRole('button', { name: 'Resume Shop health' }).waitFor();
    await screenshot('checks');
  });

  it('hosts list and host detail chart a real collector’s samples', async () => {
    await site.start('aggregator', { env: { AGGREGATOR_ROLLUP_INTERVAL_MS: '1000' } });
    await site.start('collector', {
      env: {
        FLEETWATCH_LOCATION: 'lab',
        COLLECTOR_HOST_ID: HOST,
        COLLECTOR_HOST_INTERVAL_SECONDS: '1',
        COLLECTOR_SPOOL_DIR: 'spool',
      },
    });
    const gw = await GatewayClient.login(base);
    await waitFor(
      async () => {
        const r = await gw.request<HostListResponse>('GET', '/api/v1/hosts');
        return r.body.items?.find((h) => h.id === HOST && h.lastSample);
      },
      { timeoutMs: 90_000, intervalMs: 500, description: `${HOST} reporting` },
    );
    await new Promise((resolve) => setTimeout(resolve, 4000)); // a few samples for the lines
    await go('Hosts');
    await page.locator(`[data-host="${HOST}"]`).first().waitFor();
    await page.locator(`[data-host="${HOST}"] canvas`).first().waitFor({ timeout: 30_000 });
    await screenshot('hosts');
    await page.getByRole('link', { name: HOST }).last().click();
    await page.getByRole('heading', { level: 1, name: new RegExp(HOST) }).waitFor();
    await page.getByRole('img', { name: 'CPU over time' }).locator('canvas').waitFor({ timeout: 30_000 });
    await screenshot('host-detail');
    await go('Overview');
    await page.locator(`[data-host="${HOST}"] canvas`).first().waitFor({ timeout: 30_000 });
    await screenshot('overview-hosts');
  });

  it("at a phone's width the navigation sits above the page, and no page scrolls sideways", async () => {
    const size = page.viewportSize();
    await page.setViewportSize({ width: 375, height: 740 });
    try {
      for (const name of ['Overview', 'Targets', 'Pushed instances', 'Checks', 'Hosts', 'Alerts', 'API keys']) {
        await go(name);
        const measure = async () => {
          const nav = await page.locator('.fw-shell__nav').boundingBox();
          const main = await page.locator('.fw-shell__main').boundingBox();
          return {
            width: await page.evaluate(
              () => (document.documentElement as unknown as { scrollWidth: number }).scrollWidth,
            ),
            navBottom: (nav?.y ?? 0) + (nav?.height ?? 0),
            mainTop: main?.y ?? 0,
            mainWidth: main?.width ?? 0,
          };
        };
        // The layout once the page has settled (measured again for up to 3 s: on a loaded box the first measure can
        // come while the page's data is still arriving and its parts are being laid out).
        let layout = await measure();
        for (
          const until = Date.now() + 3000;
          Date.now() < until &&
          !(layout.width === 375 && layout.mainWidth === 375 && layout.navBottom <= layout.mainTop + 1);
        ) {
          await new Promise((r) => setTimeout(r, 100));
          layout = await measure();
        }
        expect({ page: name, ...layout, navAbove: layout.navBottom <= layout.mainTop + 1 }).toMatchObject({
          page: name,
          width: 375,
          mainWidth: 375,
          navAbove: true,
        });
        if (name === 'Targets') {
          // Its filters wrap within the width (the rows' grid widened the page, pushing them past the edge).
          for (const control of [page.locator('[data-filter="UNKNOWN"]'), page.getByLabel('Search')]) {
            const box = await control.boundingBox();
            expect({ page: name, right: Math.round((box?.x ?? 0) + (box?.width ?? 0)) <= 375 }).toEqual({
              page: name,
              right: true,
            });
          }
          await page.screenshot({ path: join(shots, 'phone-targets-light.png'), fullPage: true });
        }
      }
      await screenshot('phone-checks');
    } finally {
      if (size) await page.setViewportSize(size);
    }
  });

  it('signs out to the login page', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Fleetwatch' }).waitFor();
    // The session is gone on the server too: a reload asks for the password.
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Fleetwatch' }).waitFor();
    expect((await page.context().cookies()).find((c) => c.name === 'fw_session')).toBeUndefined();
  });

  it('no page broke the CSP or threw', async () => {
    expect(await pageCspViolations(page)).toEqual([]);
    expect(watch.csp).toEqual([]);
    expect(watch.errors).toEqual([]);
  });
});
