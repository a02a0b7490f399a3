import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  TargetKind,
  TargetStatus,
  type HistoryResponse,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsResponse,
  type TargetListResponse,
  type TargetView,
} from '@fleetwatch/contracts';
import { buildDashboard, launchChromium, watchPage, type PageWatch } from './browser';

// A detail page (a target's, a host's) stays mounted when only its id changes: the browser's history list (a long
// press on Back) goes from one target's page straight to another's, two entries back. Its history (a host's
// metrics) was read with placeholderData: keepPreviousData, which keeps the data of the previous *key*, so the
// page of target A showed target B's status changes, latencies and charts under A's name until A's answer came
// (forever, when it failed). The answers are held here (page.route) to make that window as long as needed; the
// page's own layout and requests, no site.

jest.setTimeout(240_000);

declare const history: { go(delta: number): void };

const now = Date.now();
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();

function targetOf(id: string, name: string): TargetView {
  return {
    id,
    kind: TargetKind.Check,
    name,
    status: TargetStatus.Up,
    consensus: TargetStatus.Up,
    locations: [
      { location: 'eu-1', status: TargetStatus.Up, latencyMs: 12, lastSeen: iso(0), detail: null },
    ] as TargetView['locations'],
    lastSeen: iso(0),
    since: iso(3_600_000),
    tags: [],
    labels: {},
    lifecycle: null,
    instanceKind: null,
  };
}
function historyOf(id: string, minutes: number, reason: string, latencyMs: number): HistoryResponse {
  return {
    targetId: id,
    minutes,
    resolution: 'raw',
    points: [
      {
        bucket: iso(5 * 60_000),
        location: `${reason}-location`,
        count: 1,
        okCount: 1,
        minLatencyMs: latencyMs,
        avgLatencyMs: latencyMs,
        maxLatencyMs: latencyMs,
        p95LatencyMs: latencyMs,
      },
    ],
    // One event 10 minutes ago, one 3 hours ago (inside 24 h, outside 1 h): those of the window asked for.
    events: [
      { at: iso(3 * 3_600_000), location: 'eu-1', from: 'UP', to: 'DOWN', reason: `${reason} three hours ago` },
      { at: iso(10 * 60_000), location: 'eu-1', from: 'DOWN', to: 'UP', reason: `${reason} recent` },
    ].filter((e) => Date.parse(e.at) >= now - minutes * 60_000),
  };
}

const A = targetOf('check:aaa', 'alpha-target');
const B = targetOf('check:bbb', 'bravo-target');

function hostOf(id: string): HostDetailView {
  return { id, target: { ...targetOf(`host:${id}`, `${id}-name`), kind: TargetKind.Host }, system: null, sample: null };
}
function metricsOf(id: string, minutes: number, gpu: boolean): HostMetricsResponse {
  const point = { at: iso(60_000), avg: 42, max: 42, count: 1 };
  return {
    hostId: id,
    minutes,
    resolution: 'raw',
    stepSeconds: null,
    series: [
      { series: 'cpu_pct', device: null, points: [point] },
      ...(gpu ? [{ series: 'gpu_util_pct', device: '0', points: [point] }] : []),
    ],
  };
}

const API: Record<string, (q: URLSearchParams) => unknown> = {
  '/api/v1/auth/session': () => ({ user: { id: 'u1', username: 'admin', role: 'admin' }, csrfToken: 'c' }),
  '/api/v1/status/summary': () => ({
    total: 2,
    byStatus: { UP: 2 },
    byKind: {},
    alerts: { firing: 0 },
    generatedAt: iso(0),
  }),
  '/api/v1/targets': () => ({ items: [A, B], nextCursor: null, total: 2 }) satisfies TargetListResponse,
  '/api/v1/targets/sparklines': () => ({ targets: [] }),
  [`/api/v1/targets/${encodeURIComponent(A.id)}`]: () => A,
  [`/api/v1/targets/${encodeURIComponent(B.id)}`]: () => B,
  [`/api/v1/targets/${encodeURIComponent(A.id)}/history`]: (q) =>
    historyOf(A.id, Number(q.get('minutes')), 'alpha-reason', 111),
  [`/api/v1/targets/${encodeURIComponent(B.id)}/history`]: (q) =>
    historyOf(B.id, Number(q.get('minutes')), 'bravo-reason', 999),
  '/api/v1/hosts': () =>
    ({
      items: ['host-a', 'host-b'].map((id) => ({
        id,
        targetId: `host:${id}`,
        name: `${id}-name`,
        status: TargetStatus.Up,
        locations: ['eu-1'],
        lastSeen: iso(0),
        since: iso(0),
        system: null,
        lastSample: null,
      })),
      nextCursor: null,
      total: 2,
    }) satisfies HostListResponse,
  '/api/v1/hosts/host-a': () => hostOf('host-a'),
  '/api/v1/hosts/host-b': () => hostOf('host-b'),
  '/api/v1/hosts/host-a/metrics': (q) => metricsOf('host-a', Number(q.get('minutes')), false),
  '/api/v1/hosts/host-b/metrics': (q) => metricsOf('host-b', Number(q.get('minutes')), true),
};

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

/** Answers to a path wait while it is held; release() lets them (and later ones) through. */
const held = new Map<string, { gate: Promise<void>; release: () => void }>();
function hold(path: string): () => void {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  held.set(path, { gate, release });
  return () => {
    held.delete(path);
    release();
  };
}
const answered: string[] = [];

let dir: string;
let browser: Browser;
let page: Page;
let watch: PageWatch;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fw-detail-nav-'));
  buildDashboard(dir);
  browser = await launchChromium();
});

beforeEach(async () => {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch = await watchPage(page);
  await page.route('http://dash.test/**', async (route) => {
    const url = new URL(route.request().url());
    const path = url.pathname;
    if (path.startsWith('/api/')) {
      const wait = held.get(path);
      if (wait) await wait.gate;
      const body = API[path]?.(url.searchParams);
      answered.push(`${path}?${url.searchParams}`);
      // The page may have cancelled the request meanwhile (it left that page).
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
  for (const h of [...held.values()]) h.release();
  held.clear();
  await page?.close();
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The page's text, sampled every 50 ms for `ms`: every sample that holds `text`. */
async function sampleFor(text: string, ms: number): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const body = await page.locator('main').innerText();
    // The text around the first match is enough to see what showed.
    const at = body.indexOf(text);
    if (at >= 0) seen.push(body.slice(Math.max(0, at - 300), at + 100));
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

async function until(done: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const historyPath = (t: TargetView) => `/api/v1/targets/${encodeURIComponent(t.id)}/history`;

describe("a target's page, its id changed in place", () => {
  it("never shows the previous target's history under the new target's name", async () => {
    // A's history is slow the first time: the user goes on to the list, then to B.
    let releaseA = hold(historyPath(A));
    await page.goto(`http://dash.test/targets/${encodeURIComponent(A.id)}`);
    await page.getByRole('heading', { name: A.name }).waitFor();
    await page.getByRole('link', { name: 'All targets' }).click();
    await page.getByRole('link', { name: B.name }).click();
    await page.getByText('bravo-reason recent').waitFor();
    releaseA();

    // Two entries back, straight to A (the list in between is skipped): the same page, another id. A's name and
    // facts come from the cache at once; its history is asked again, and held.
    releaseA = hold(historyPath(A));
    await page.evaluate(() => history.go(-2));
    await page.getByRole('heading', { name: A.name }).waitFor();
    await page.getByText(A.id, { exact: true }).waitFor();
    expect(await sampleFor('bravo', 1500)).toEqual([]);
    expect(await page.locator('main').innerText()).toContain('Loading…');

    releaseA();
    await page.getByText('alpha-reason recent').waitFor();
    expect(await page.locator('main').innerText()).not.toContain('bravo');
    expect(watch.errors).toEqual([]);
  });

  it("a late answer for the previous id never replaces the new one's", async () => {
    await page.goto(`http://dash.test/targets/${encodeURIComponent(B.id)}`);
    await page.getByText('bravo-reason recent').waitFor();
    await page.getByRole('link', { name: 'All targets' }).click();
    const releaseA = hold(historyPath(A));
    await page.getByRole('link', { name: A.name }).click();
    await page.getByRole('heading', { name: A.name }).waitFor();
    // Straight back to B while A's history is still on its way; then A's answer comes.
    await page.evaluate(() => history.go(-2));
    await page.getByText('bravo-reason recent').waitFor();
    releaseA();
    expect(await sampleFor('alpha-reason', 1500)).toEqual([]);
    expect(await page.locator('main').innerText()).toContain('bravo-reason recent');
  });

  it('a new range of the same target shows only what the new range takes while it loads', async () => {
    await page.goto(`http://dash.test/targets/${encodeURIComponent(A.id)}?range=24h`);
    await page.getByText('alpha-reason three hours ago').waitFor();
    const release = hold(historyPath(A));
    await page.getByRole('button', { name: '1 h' }).click();
    // From the render that shows "1 h" chosen on.
    await page.getByRole('button', { name: '1 h', pressed: true }).waitFor();
    // The 24 h answer's event of three hours ago is outside 1 h: never listed under "1 h"; the recent one may stay.
    expect(await sampleFor('three hours ago', 1500)).toEqual([]);
    const meanwhile = await page.locator('main').innerText();
    expect(meanwhile).toContain('alpha-reason recent');
    expect(meanwhile).toContain('Loading…');
    release();
    await until(() => answered.includes(`${historyPath(A)}?minutes=60`));
    await page.getByText('alpha-reason recent').waitFor();
    expect(await page.locator('main').innerText()).not.toContain('three hours ago');
  });
});

describe("a host's page, its id changed in place", () => {
  it("never shows the previous host's charts under the new host's name", async () => {
    let releaseA = hold('/api/v1/hosts/host-a/metrics');
    await page.goto('http://dash.test/hosts/host-a');
    await page.getByRole('heading', { name: 'host-a-name' }).waitFor();
    await page.getByRole('link', { name: 'All hosts' }).click();
    await page.locator('tr[data-host="host-b"] a').click();
    // Only host-b has a GPU series: its chart card is the tell.
    await page.getByText('GPU utilisation').waitFor();
    releaseA();

    releaseA = hold('/api/v1/hosts/host-a/metrics');
    await page.evaluate(() => history.go(-2));
    await page.getByRole('heading', { name: 'host-a-name' }).waitFor();
    expect(await sampleFor('GPU utilisation', 1500)).toEqual([]);
    releaseA();
    await page.getByRole('img', { name: 'CPU over time' }).waitFor();
    expect(await page.locator('main').innerText()).not.toContain('GPU utilisation');
    expect(watch.errors).toEqual([]);
  });
});
