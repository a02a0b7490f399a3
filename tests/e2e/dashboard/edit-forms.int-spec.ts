import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { CheckDefinition } from '@fleetwatch/contracts';
import { buildDashboard, launchChromium, watchPage, type PageWatch } from './browser';

// An edit form (a check's; rules, channels, maintenance windows and status pages share the code) copied the stored
// item into its draft whenever the query's data changed:
// - the page stays mounted when only the id changes (Back two entries, from check B's form straight to A's): while A
//   loaded, the form held B's fields under A's address, and Save wrote them to A — without If-Match, as no version
//   of A was known — replacing A by a copy of B;
// - a refetch (the window's focus after 5 s, the socket's resync) replaced what was being typed by the stored item,
//   and the save then named the refetched version: a change made meanwhile elsewhere was overwritten, not a 409.
// The API is answered here (page.route) with the owner's rule for If-Match; the page's own form and requests.

jest.setTimeout(240_000);

declare const window: { dispatchEvent(e: unknown): boolean };
declare const Event: new (type: string) => unknown;
declare const history: { go(delta: number): void };

const stamp = new Date().toISOString();
function checkOf(id: string, name: string, url: string, version = 1): CheckDefinition {
  return {
    id,
    targetId: `check:${id}`,
    version,
    createdAt: stamp,
    updatedAt: stamp,
    type: 'http',
    name,
    url,
    method: 'GET',
    intervalSeconds: 30,
    timeoutSeconds: 10,
    retries: 0,
    tags: [],
    locations: [],
    conditions: [],
    paused: false,
  } as unknown as CheckDefinition;
}

const stored = new Map<string, CheckDefinition>();
const writes: { id: string; ifMatch: string | undefined; body: Record<string, unknown> }[] = [];
const held = new Map<string, Promise<void>>();

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

let dir: string;
let browser: Browser;
let page: Page;
let watch: PageWatch;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fw-edit-forms-'));
  buildDashboard(dir);
  browser = await launchChromium();
});

beforeEach(async () => {
  stored.clear();
  writes.length = 0;
  held.clear();
  stored.set('aaa', checkOf('aaa', 'alpha-check', 'https://alpha.test/'));
  stored.set('bbb', checkOf('bbb', 'bravo-check', 'https://bravo.test/'));
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch = await watchPage(page);
  await page.route('http://dash.test/**', async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const path = url.pathname;
    if (!path.startsWith('/api/')) {
      const file = extname(path) ? path : '/index.html';
      return route.fulfill({
        status: 200,
        contentType: TYPES[extname(file)] ?? 'application/octet-stream',
        body: readFileSync(join(dir, file)),
      });
    }
    // Reads of a held path wait (writes go through at once).
    const wait = request.method() === 'GET' ? held.get(path) : undefined;
    if (wait) await wait;
    let status = 200;
    let body: unknown;
    const one = /^\/api\/v1\/checks\/([^/]+)$/.exec(path);
    const pause = /^\/api\/v1\/checks\/([^/]+)\/(pause|resume)$/.exec(path);
    if (path === '/api/v1/auth/session')
      body = { user: { id: 'u1', username: 'admin', role: 'admin' }, csrfToken: 'c' };
    else if (path === '/api/v1/checks') body = { items: [...stored.values()], nextCursor: null };
    else if (one && request.method() === 'GET') body = stored.get(decodeURIComponent(one[1]));
    else if (pause && request.method() === 'POST') {
      const current = stored.get(decodeURIComponent(pause[1]));
      if (current && request.headers()['if-match'] !== `"${current.version}"`) status = 409;
      else if (current) {
        body = { ...current, paused: pause[2] === 'pause', version: current.version + 1 };
        stored.set(current.id, body as CheckDefinition);
      }
    } else if (one && request.method() === 'PUT') {
      const id = decodeURIComponent(one[1]);
      const current = stored.get(id);
      const ifMatch = request.headers()['if-match'];
      writes.push({ id, ifMatch, body: request.postDataJSON() as Record<string, unknown> });
      // The owner's rule: a write naming another version than the stored one is a 409.
      const name = (request.postDataJSON() as { name?: string }).name;
      if (current && ifMatch !== undefined && ifMatch !== `"${current.version}"`) {
        // As the gateway answers a stale If-Match: the version held now.
        status = 409;
        body = { error: { code: 'conflict', message: 'changed meanwhile', currentVersion: current.version } };
      } else if ([...stored.values()].some((c) => c.id !== id && c.name === name)) {
        // Another conflict: the name is another check's (no version: reloading would not help).
        status = 409;
        body = { error: { code: 'conflict', message: `a check named "${name}" already exists` } };
      } else if (current) {
        body = { ...current, ...(request.postDataJSON() as object), version: current.version + 1 };
        stored.set(id, body as CheckDefinition);
      }
    }
    return route
      .fulfill({
        status: body === undefined ? 404 : status,
        contentType: 'application/json',
        body: JSON.stringify(body ?? { error: { message: `not stubbed: ${path}` } }),
      })
      .catch(() => undefined);
  });
});

afterEach(async () => {
  await page?.close();
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

function hold(path: string): () => void {
  let release!: () => void;
  held.set(path, new Promise<void>((r) => (release = r)));
  return () => {
    held.delete(path);
    release();
  };
}

async function until(ok: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not so within ${timeoutMs} ms: ${ok.toString()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const nameField = () => page.getByLabel('Name', { exact: true });
const urlField = () => page.getByLabel('URL', { exact: true });

describe('a check’s edit form', () => {
  it('its id changed in place: never holds the previous check, and never writes it to the new id', async () => {
    // A's form opened while A's answer is slow; the user goes back to the list and edits B instead.
    const releaseA = hold('/api/v1/checks/aaa');
    await page.goto('http://dash.test/checks/aaa');
    await page.getByRole('heading', { name: 'Edit check' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('link', { name: 'bravo-check' }).click();
    await page.getByRole('heading', { name: 'Edit bravo-check' }).waitFor();
    expect(await nameField().inputValue()).toBe('bravo-check');

    // Two entries back, straight to A's form (A still on its way), and Save.
    await page.evaluate(() => history.go(-2));
    await page.waitForURL('**/checks/aaa');
    await page.getByRole('heading', { name: 'Edit check' }).waitFor();
    expect(await nameField().inputValue()).not.toBe('bravo-check');
    await page
      .getByRole('button', { name: 'Save' })
      .click({ timeout: 2000 })
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(writes).toEqual([]);

    releaseA();
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    expect(await nameField().inputValue()).toBe('alpha-check');
    expect(stored.get('aaa')?.name).toBe('alpha-check');
    expect(watch.errors).toEqual([]);
  });

  it('a refetch never replaces what is being typed, and the save names the version it was shown', async () => {
    // The page's clock (Playwright's) runs at its natural pace; fastForward moves it past the 5 s staleTime at once.
    await page.clock.install();
    await page.goto('http://dash.test/checks/aaa');
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    await urlField().fill('https://typed.test/');
    // Someone else renames the check meanwhile (version 2); the window gets focus again past the 5 s staleTime.
    stored.set('aaa', checkOf('aaa', 'alpha-renamed', 'https://alpha.test/', 2));
    await page.clock.fastForward(5500);
    await page.evaluate(() => window.dispatchEvent(new Event('visibilitychange')));
    await page.getByRole('heading', { name: 'Edit alpha-renamed' }).waitFor();
    await new Promise((r) => setTimeout(r, 300));
    expect(await urlField().inputValue()).toBe('https://typed.test/');

    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Someone changed this check meanwhile').waitFor();
    expect(writes).toMatchObject([{ id: 'aaa', ifMatch: '"1"' }]);
    // The other change stands.
    expect(stored.get('aaa')).toMatchObject({ name: 'alpha-renamed', version: 2 });
    expect(watch.errors).toEqual([]);
  });

  it("a name another check has is said so, not taken for someone's change meanwhile", async () => {
    stored.set('ccc', checkOf('ccc', 'gamma-check', 'https://gamma.test/'));
    await page.goto('http://dash.test/checks/aaa');
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('gamma-check');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('a check named "gamma-check" already exists').waitFor();
    expect(await page.getByText('Someone changed this check meanwhile').count()).toBe(0);
    expect(stored.get('aaa')).toMatchObject({ name: 'alpha-check', version: 1 });
  });

  it('opened over a stale cached answer: follows the refetch until the user types, and saves the current version', async () => {
    // A's form opened once (its answer cached), back to the list, A paused from there (version 2): the cache still
    // holds version 1 when A's form opens again. The form showed version 1 and kept it past the refetch, so Save —
    // with nothing typed — named version 1 and got a 409.
    await page.clock.install();
    await page.goto('http://dash.test/checks/aaa');
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Pause alpha-check' }).click();
    await page.getByRole('button', { name: 'Resume alpha-check' }).waitFor();
    expect(stored.get('aaa')).toMatchObject({ paused: true, version: 2 });

    // The refetch of A is held so the cached version 1 is what the form gets first.
    const releaseA = hold('/api/v1/checks/aaa');
    await page.getByRole('link', { name: 'alpha-check' }).click();
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    const paused = page.getByLabel('Paused', { exact: true });
    expect(await paused.isChecked()).toBe(false);
    releaseA();
    await until(() => paused.isChecked());

    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL('**/checks');
    expect(writes).toMatchObject([{ id: 'aaa', ifMatch: '"2"', body: { paused: true } }]);
    expect(stored.get('aaa')).toMatchObject({ paused: true, version: 3 });

    // Once typed into, the draft is the user's again: a later refetch does not move it, and its save names the
    // version it was built from (a change meanwhile is a 409, as before).
    writes.length = 0;
    await page.getByRole('link', { name: 'alpha-check' }).click();
    await page.getByRole('heading', { name: 'Edit alpha-check' }).waitFor();
    await until(() => paused.isChecked());
    await urlField().fill('https://typed.test/');
    stored.set('aaa', { ...checkOf('aaa', 'alpha-renamed', 'https://alpha.test/', 4), paused: true });
    await page.clock.fastForward(5500);
    await page.evaluate(() => window.dispatchEvent(new Event('visibilitychange')));
    await page.getByRole('heading', { name: 'Edit alpha-renamed' }).waitFor();
    await new Promise((r) => setTimeout(r, 300));
    expect(await urlField().inputValue()).toBe('https://typed.test/');
    expect(await nameField().inputValue()).toBe('alpha-check');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Someone changed this check meanwhile').waitFor();
    expect(writes).toMatchObject([{ id: 'aaa', ifMatch: '"3"' }]);
    expect(watch.errors).toEqual([]);
  });
});
