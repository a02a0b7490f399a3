import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

// Real Chromium for the dashboard's tests: Debian's build driven by playwright-core (no
// browser download, ever), with the flags that keep it quiet on a box without network.

const root = join(__dirname, '../../..');

// Code passed to page.evaluate / addInitScript runs in the browser. The test program is
// type-checked without the DOM library, so the little of it used there is declared here
// (module-local declarations: the compiled code still names the browser's globals).
interface PageElement {
  scrollTop: number;
  readonly scrollHeight: number;
  readonly clientHeight: number;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
  dispatchEvent(event: unknown): boolean;
  getBoundingClientRect(): unknown;
  click(): void;
}
interface Violation {
  violatedDirective: string;
  blockedURI: string;
  sourceFile: string;
  lineNumber: number;
}
declare const document: {
  addEventListener(type: 'securitypolicyviolation', listener: (e: Violation) => void): void;
  querySelector(selector: string): PageElement | null;
};
declare const window: unknown;
declare function requestAnimationFrame(callback: (time: number) => void): number;
declare const Event: new (type: string) => unknown;

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Builds the dashboard with Vite into `outDir` (fresh for this run: never a stale dist/). */
export function buildDashboard(outDir: string): void {
  const built = dashboardBuildOfThisRun();
  rmSync(outDir, { recursive: true, force: true });
  if (built) cpSync(built, outDir, { recursive: true });
  else viteBuild(outDir);
  if (!existsSync(join(outDir, 'index.html'))) throw new Error(`dashboard build: no index.html in ${outDir}`);
}

function viteBuild(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'],
    { cwd: join(root, 'apps/dashboard'), stdio: 'pipe', timeout: 180_000 },
  );
  if (r.status !== 0 || !existsSync(join(outDir, 'index.html')))
    throw new Error(`dashboard build failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
}

/**
 * The browser specs each built the dashboard (3–5 s apiece); within one test run (libs/testing's FW_TEST_RUN_ID)
 * it is built once and copied. A build is reused only by the run that made it and only while the sources are as
 * they were (sizes and modification times of apps/dashboard and libs/*\/src). Outside a test run: a build each time.
 */
function dashboardBuildOfThisRun(): string | null {
  const runId = process.env['FW_TEST_RUN_ID'];
  if (!runId) return null;
  const cacheRoot = join(tmpdir(), 'fw-dashboard-build');
  const dir = join(cacheRoot, `${runId.replace(/[^\w-]/g, '_')}-${sourcesFingerprint()}`);
  if (existsSync(join(dir, 'index.html'))) return dir;
  mkdirSync(cacheRoot, { recursive: true });
  // Builds of runs a day old or more are gone for good (another run may still be using a newer one).
  for (const name of readdirSync(cacheRoot))
    if (Date.now() - statSync(join(cacheRoot, name)).mtimeMs > 86_400_000)
      rmSync(join(cacheRoot, name), { recursive: true, force: true });
  const building = `${dir}.${process.pid}.building`;
  viteBuild(building);
  try {
    renameSync(building, dir);
  } catch {
    // Another spec of this run got there first: use its build.
    rmSync(building, { recursive: true, force: true });
  }
  return dir;
}

function sourcesFingerprint(): string {
  const hash = createHash('sha256');
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue;
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const st = statSync(full);
        hash.update(`${full}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(join(root, 'apps/dashboard'));
  for (const lib of readdirSync(join(root, 'libs')))
    if (existsSync(join(root, 'libs', lib, 'src'))) walk(join(root, 'libs', lib, 'src'));
  return hash.digest('hex').slice(0, 16);
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives each launch a fresh --user-data-dir of its own.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
}

export interface PageWatch {
  /** CSP violations the page reported (securitypolicyviolation events and console lines). */
  csp: string[];
  /** Uncaught errors of the page's scripts. */
  errors: string[];
  /** Text frames the page received on its WebSockets. */
  socketFrames: string[];
}

/** Listens for CSP violations and script errors from the first document on. */
export async function watchPage(page: Page): Promise<PageWatch> {
  const watch: PageWatch = { csp: [], errors: [], socketFrames: [] };
  page.on('websocket', (ws) => ws.on('framereceived', (f) => watch.socketFrames.push(String(f.payload))));
  // Injected by the browser's debugging protocol, not by the page: the CSP does not apply to it.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const w = window as unknown as { __fwCsp?: string[] };
      (w.__fwCsp ??= []).push(
        `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`,
      );
    });
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|apply|execute|evaluate|connect)/i.test(m.text()))
      watch.csp.push(m.text());
  });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  return watch;
}

/** Violations the page itself saw (the event list survives until the next full load). */
export async function pageCspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __fwCsp?: string[] }).__fwCsp ?? []);
}

/**
 * Scrolls a virtualised list top to bottom in `steps` jumps. For each jump: the work the
 * page does to show the new window (scroll handler, React render, layout — measured
 * synchronously, so independent of how often this headless browser paints), and the
 * interval to the next animation frame; also the idle frame interval before, for scale.
 */
export async function scrollThrough(
  page: Page,
  selector: string,
  rowSelector: string,
  steps: number,
): Promise<{ work: number[]; frames: number[]; idleFrames: number[]; maxRows: number; scrollHeight: number }> {
  return page.evaluate(
    async ({ selector, rowSelector, steps }) => {
      const el = document.querySelector(selector) as PageElement;
      const frame = () => new Promise<number>((resolve) => requestAnimationFrame((t) => resolve(t)));
      const idleFrames: number[] = [];
      let last = await frame();
      for (let i = 0; i < 20; i++) {
        const now = await frame();
        idleFrames.push(now - last);
        last = now;
      }
      const work: number[] = [];
      const frames: number[] = [];
      let maxRows = el.querySelectorAll(rowSelector).length;
      const stride = (el.scrollHeight - el.clientHeight) / steps;
      last = await frame();
      for (let i = 1; i <= steps; i++) {
        const t0 = performance.now();
        el.scrollTop = Math.round(stride * i);
        el.dispatchEvent(new Event('scroll'));
        void el.querySelector(rowSelector)?.getBoundingClientRect();
        work.push(performance.now() - t0);
        const now = await frame();
        frames.push(now - last);
        last = now;
        maxRows = Math.max(maxRows, el.querySelectorAll(rowSelector).length);
      }
      await frame();
      return { work, frames, idleFrames, maxRows, scrollHeight: el.scrollHeight };
    },
    { selector, rowSelector, steps },
  );
}

/**
 * Clicks the elements matched by `selectors`, in order, in one task of the page: every click lands before React has
 * rendered the first one's result (a handler that builds on the rendered state loses all but the last).
 */
export async function clickInOneTask(page: Page, selectors: readonly string[]): Promise<void> {
  await page.evaluate((all) => {
    for (const selector of all) {
      const element = document.querySelector(selector);
      if (element === null) throw new Error(`nothing matches ${selector}`);
      element.click();
    }
  }, selectors);
}

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};
