import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type {
  ComponentsMatrixView,
  DriftArea,
  DriftCountsView,
  LeaderMemberView,
  MemberSnapshotView,
} from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from '../gateway-client';
import { createSite, E2E_ADMIN_PASSWORD, type E2eSite } from '../site-launcher';
import { buildDashboard, launchChromium, pageCspViolations, watchPage, type PageWatch } from './browser';

// The Fleet and Fleet config pages in real Chromium against a real leader: a site whose
// sync-orchestrator polls (FLEETWATCH_LEADER_CONFIG) simulated members served by
// tools/fleet-sim, and whose gateway serves what it cached. alpha is an exact copy of the
// leader's configuration; beta drifts (a changed check interval, one extra check) and runs
// newer components; gamma stops answering mid-test (STALE); delta never answers (NEVER).
// FW_SCREENSHOTS=1 writes the screenshots into docs/screenshots/.

jest.setTimeout(300_000);

// In-page code (page.evaluate) runs in the browser; the test program has no DOM library.
declare const document: {
  documentElement: { dataset: Record<string, string | undefined> };
  body: { innerText: string };
  querySelector(selector: string): { value: string; dispatchEvent(event: Event): boolean } | null;
};
declare const localStorage: { getItem(key: string): string | null };

interface Sim {
  url: string;
  members: { name: string; url: string }[];
  setBehaviour(name: string, b: Record<string, unknown>): void;
  close(): Promise<void>;
}
// The simulator is a tool (plain CommonJS, also run from the command line), loaded by path.
const { startFleetSim } = require(join(__dirname, '../../../tools/fleet-sim/fleet-sim.cjs')) as {
  startFleetSim(o: Record<string, unknown>): Promise<Sim>;
};

let site: E2eSite;
let sim: Sim;
let api: GatewayClient;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let base: string;
let shots: string;
let dashboardDir: string;
let plain: E2eSite | undefined;

const members = async () =>
  (await api.request<{ items: LeaderMemberView[] }>('GET', '/api/v1/leader/members')).body.items;
const stateOf = (items: LeaderMemberView[], name: string) => items.find((m) => m.name === name)?.state;

beforeAll(async () => {
  sim = await startFleetSim({
    members: [
      { name: 'alpha' },
      { name: 'beta' },
      { name: 'gamma' },
      { name: 'delta', fail: true },
      { name: 'epsilon' },
    ],
  });
  const url = (n: string) => sim.members.find((m) => m.name === n)?.url;
  const config = {
    members: [
      { name: 'alpha', url: url('alpha'), tags: ['eu', 'prod'] },
      {
        name: 'beta',
        url: url('beta'),
        tags: ['us', 'prod'],
        failoverOrder: 1,
        propertyOverrides: { region: 'us' },
      },
      { name: 'gamma', url: url('gamma'), tags: ['eu'] },
      { name: 'delta', url: url('delta'), tags: ['eu'] },
      { name: 'epsilon', url: url('epsilon'), tags: ['us'] },
    ],
  };
  site = await createSite('fleet-dash', { FLEETWATCH_CHECK_DENY_NETWORKS: '192.0.2.0/24' });
  dashboardDir = join(site.dir, 'dashboard');
  buildDashboard(dashboardDir);
  shots =
    process.env['FW_SCREENSHOTS'] === '1'
      ? join(__dirname, '../../../docs/screenshots')
      : join(site.dir, 'screenshots');
  mkdirSync(shots, { recursive: true });
  await Promise.all([
    site.start('sync-orchestrator', {
      env: {
        FLEETWATCH_ROLE: 'leader',
        FLEETWATCH_LEADER_CONFIG: JSON.stringify(config),
        FLEET_POLL_INTERVAL_SECONDS: '5',
        FLEET_POLL_TIMEOUT_SECONDS: '4',
      },
    }),
    site.start('api-gateway', { env: { DASHBOARD_DIR: dashboardDir } }),
  ]);
  base = site.service('api-gateway').url;
  api = await GatewayClient.login(base);

  // The leader's configuration: one check. alpha copies it; beta drifts from it and runs 1.1.0.
  await api.createCheck({ name: 'web', type: 'http', url: 'https://web.example/health', intervalSeconds: 45 });
  let own: MemberSnapshotView | null = null;
  await waitFor(
    async () => {
      own = (await api.request<MemberSnapshotView>('GET', '/api/v1/system/snapshot/current')).body;
      return own.areas.checks.some((c) => c.key === 'web');
    },
    { timeoutMs: 30_000, description: "the leader's snapshot has its check" },
  );
  const areas = (own as MemberSnapshotView | null)?.areas;
  sim.setBehaviour('alpha', { base: areas });
  // beta also has its own `region` property: overridden for it by the leader, so not drift.
  sim.setBehaviour('beta', {
    base: areas,
    drift: true,
    version: '1.1.0',
    properties: [{ key: 'region', value: 'us' }],
  });
  sim.setBehaviour('gamma', { base: areas });
  // epsilon runs a version from before properties were in snapshots: not compared there.
  sim.setBehaviour('epsilon', { base: areas, withoutAreas: ['properties'] });
  // Polled with those: alpha in sync, beta drifting, epsilon in sync where compared.
  await waitFor(
    async () => {
      const drift = (await api.request<DriftCountsView>('GET', '/api/v1/leader/config/drift')).body;
      const of = (n: string) => drift.members.find((m) => m.name === n);
      return (
        of('alpha')?.count === 0 &&
        (of('beta')?.areas?.checks ?? 0) === 2 &&
        of('gamma')?.count === 0 &&
        of('epsilon')?.notCompared?.includes('properties') === true
      );
    },
    { timeoutMs: 60_000, intervalMs: 500, description: 'members polled with their configuration' },
  );
  // gamma stops answering: its last good data stays, flagged STALE.
  sim.setBehaviour('gamma', { fail: true });
  await waitFor(async () => stateOf(await members(), 'gamma') === 'STALE', {
    timeoutMs: 30_000,
    description: 'gamma STALE',
  });

  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  watch = await watchPage(page);
  await page.goto(`${base}/fleet`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(E2E_ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await plain?.stop();
  await site?.stop();
  await sim?.close();
});

/** Light, then dark (switched with the page's own toggle), then back to light. */
async function screenshot(name: string): Promise<void> {
  await page.mouse.move(0, 0); // no hover state in the pictures
  await page.screenshot({ path: join(shots, `${name}-light.png`), fullPage: true });
  await page.getByRole('button', { name: /Switch to dark theme/ }).click();
  await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'dark');
  await page.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
  await page.getByRole('button', { name: /Switch to light theme/ }).click();
  await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'light');
}

const card = (name: string) => page.locator(`[data-member="${name}"]`);
const shownMembers = () =>
  page.locator('[data-testid="fleet-cards"] [data-member]').evaluateAll((els) => els.map((e) => e.dataset['member']));

describe('Fleet page', () => {
  it('shows a card per member with its figures; a failing member greyed with its age and error, never hidden', async () => {
    await card('alpha').locator('[data-figure="cpu"] dd').waitFor();
    expect(await shownMembers()).toEqual(['alpha', 'beta', 'delta', 'epsilon', 'gamma']);
    // alpha reports: its state, targets, errors, broker, host and flow figures (fleet-sim's report for member 0).
    expect(await card('alpha').getAttribute('data-state')).toBe('OK');
    expect(await card('alpha').getAttribute('class')).not.toContain('fw-member--stale');
    const figure = (m: string, f: string) => card(m).locator(`[data-figure="${f}"] dd`).innerText();
    expect(await figure('alpha', 'cpu')).toBe('13 %');
    expect(await figure('alpha', 'memory')).toBe('40 %');
    expect(await figure('alpha', 'disk')).toBe('55 %');
    expect(await figure('alpha', 'gpu')).toBe('—');
    expect(await figure('alpha', 'flow-in')).toBe('600');
    // beta is member 1 in the simulator: 1 down, 1 in flight, 1 queued, 1 failed result.
    expect(await figure('beta', 'down')).toBe('1');
    expect(await figure('beta', 'in-flight')).toBe('1');
    expect(await figure('beta', 'queued')).toBe('1');
    expect(await figure('beta', 'errors')).toBe('1');

    // gamma: STALE, greyed, its last good figures still there, with the age and the poll's error.
    await waitFor(async () => (await card('gamma').getAttribute('data-state')) === 'STALE', {
      timeoutMs: 20_000,
      description: 'gamma card STALE',
    });
    expect(await card('gamma').getAttribute('class')).toContain('fw-member--stale');
    expect(await card('gamma').isVisible()).toBe(true);
    const problem = await card('gamma').getByTestId('member-problem').innerText();
    expect(problem).toMatch(/Not reporting — last good data \d+ (s|min) old/);
    expect(problem).toContain('answered 500');
    expect(await figure('gamma', 'memory')).toBe('40 %');
    // delta never answered: shown too, greyed, with its error.
    expect(await card('delta').getAttribute('data-state')).toBe('NEVER');
    expect(await card('delta').getAttribute('class')).toContain('fw-member--stale');
    expect(await card('delta').getByTestId('member-problem').innerText()).toContain('answered 500');
    expect(await page.getByTestId('fleet-stats').innerText()).toContain('5 members: 3 reporting, 1 stale, 1 never');
    await screenshot('fleet');
  });

  it('the chosen view is kept in the URL and across a reload and a new visit', async () => {
    await page.locator('button[data-view="egress"]').click();
    await page.waitForURL(/view=egress/);
    await waitFor(async () => (await page.evaluate(() => localStorage.getItem('fleetwatch.fleet.view'))) === 'egress', {
      timeoutMs: 5_000,
      description: 'view kept in localStorage',
    });
    // The flow view: a per-minute sparkline and the sum over the polled minutes.
    await card('alpha')
      .getByRole('img', { name: /egress per minute/ })
      .waitFor();
    await waitFor(async () => (await card('alpha').locator('[data-figure="egress-count"] dd').innerText()) !== '', {
      timeoutMs: 10_000,
      description: 'egress total',
    });
    expect(await card('alpha').locator('[data-figure="egress-count"] dd').innerText()).toMatch(/^[\d,]+$/);
    await screenshot('fleet-egress');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
    expect(await page.locator('button[data-view="egress"]').getAttribute('aria-pressed')).toBe('true');
    // An address without a view opens the one chosen last.
    await page.goto(`${base}/fleet`);
    await page.waitForURL(/view=egress/);
    // Once in CI (load from the whole suite) the buttons were not there 30 s after this visit, nor the tag buttons
    // in the next test; what the page showed then is printed, to tell a sign-in page from the not-a-leader note.
    await page
      .locator('button[data-view="egress"]')
      .waitFor({ timeout: 60_000 })
      .catch(async (err: unknown) => {
        const shown = await page.evaluate(() => document.body.innerText.slice(0, 600)).catch(() => '(unreadable)');
        throw new Error(`no view buttons on ${page.url()}: the page shows ${JSON.stringify(shown)} (${String(err)})`);
      });
    expect(await page.locator('button[data-view="egress"]').getAttribute('aria-pressed')).toBe('true');
    expect(await page.locator('button[data-view="summary"]').getAttribute('aria-pressed')).toBe('false');
    // Every view renders every member (a non-reporting one included).
    for (const v of ['detailed', 'ingress', 'storage', 'deleted', 'summary']) {
      await page.locator(`button[data-view="${v}"]`).click();
      await page.waitForURL(new RegExp(`view=${v}`));
      await page.locator(`[data-testid="fleet-cards"][data-shown-view="${v}"]`).waitFor();
      expect(await shownMembers()).toEqual(['alpha', 'beta', 'delta', 'epsilon', 'gamma']);
      if (v === 'detailed') {
        // The detailed view adds the member's URL, poll times and component versions.
        expect(await card('beta').innerText()).toContain('api-gateway 1.1.0');
        expect(await card('beta').innerText()).toContain('failover order 1');
        await screenshot('fleet-detailed');
      }
    }
    await page.reload();
    expect(await page.locator('button[data-view="summary"]').getAttribute('aria-pressed')).toBe('true');
  });

  it('filters by tag, a non-reporting member included when it carries the tag', async () => {
    await page.locator('[data-tag="us"]').click();
    await page.waitForURL(/tag=us/);
    await waitFor(async () => (await shownMembers()).join() === 'beta,epsilon', { description: 'tag us' });
    await page.locator('[data-tag="eu"]').click();
    await waitFor(async () => (await shownMembers()).join() === 'alpha,delta,gamma', { description: 'tag eu' });
    expect(await card('gamma').getAttribute('data-state')).toBe('STALE');
    await page.locator('[data-tag=""]').click();
    await waitFor(async () => (await shownMembers()).length === 5, { description: 'all tags' });
  });
});

describe('Fleet config page', () => {
  it('members tab: reporting state and drift counts per member and area, as the API counts them', async () => {
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Fleet config', exact: true })
      .click();
    await page.getByRole('heading', { level: 1, name: 'Fleet config' }).waitFor();
    const row = (n: string) => page.locator(`tr[data-row="${n}"]`);
    await row('beta').locator('[data-drift]').waitFor();
    const drift = (await api.request<DriftCountsView>('GET', '/api/v1/leader/config/drift')).body;
    for (const m of drift.members) {
      if (m.count === null) {
        expect(await row(m.name).locator('[data-drift]').count()).toBe(0);
        continue;
      }
      expect(await row(m.name).locator('[data-drift]').getAttribute('data-drift')).toBe(String(m.count));
      for (const [area, n] of Object.entries(m.areas ?? {}))
        expect(await row(m.name).locator(`[data-area="${area}"]`).innerText()).toBe(
          m.notCompared?.includes(area as DriftArea) ? 'not sent' : String(n),
        );
    }
    // An older member's area it does not send reads "not sent", not a 0 that looks in sync.
    expect(await row('epsilon').locator('[data-area="properties"]').getAttribute('data-not-compared')).toBe('true');
    // Then how old the compared snapshot is (the API's ageSeconds).
    expect(await row('epsilon').locator('[data-drift]').innerText()).toMatch(
      /^in sync \(1 area not compared\) · snapshot \d+ (s|min) old$/,
    );
    expect(await row('alpha').locator('[data-not-compared]').count()).toBe(0);
    expect(await row('alpha').locator('[data-drift]').innerText()).toMatch(/^in sync · snapshot \d+ (s|min) old$/);
    expect(await row('beta').locator('[data-area="checks"]').innerText()).toBe('2');
    expect(await row('beta').locator('[data-area="checks"]').getAttribute('class')).toContain('fw-drift-area--differs');
    // Users and status pages are each site's own: no drift column for them.
    expect(await row('beta').locator('[data-area="usersAndRoles"]').count()).toBe(0);
    expect(await row('gamma').locator('[data-state]').getAttribute('data-state')).toBe('STALE');
    expect(await row('gamma').innerText()).toContain('answered 500');
    expect(await row('delta').innerText()).toContain('no snapshot');
    await screenshot('fleet-config');
  });

  it('components tab: versions per member, the differing ones highlighted', async () => {
    await page.locator('[data-tab="components"]').click();
    await page.locator('tr[data-component="api-gateway"]').waitFor();
    const matrix = (await api.request<ComponentsMatrixView>('GET', '/api/v1/leader/config/components')).body;
    expect(matrix.differing).toContain('api-gateway');
    const cell = (c: string, m: string) => page.locator(`tr[data-component="${c}"] td[data-member="${m}"]`);
    expect(await cell('api-gateway', 'beta').innerText()).toBe('1.1.0');
    expect(await cell('api-gateway', 'beta').getAttribute('data-differs')).toBe('true');
    expect(await cell('api-gateway', 'beta').getAttribute('class')).toContain('fw-version--differs');
    expect(await cell('api-gateway', 'alpha').innerText()).toBe('1.0.0');
    expect(await cell('api-gateway', 'alpha').getAttribute('data-differs')).toBe('false');
    // Exactly beta's cells are marked, one per component.
    expect(await page.locator('td[data-differs="true"]').count()).toBe(matrix.components.length);
    expect(await page.locator('td[data-differs="true"][data-member="beta"]').count()).toBe(matrix.components.length);
    await screenshot('fleet-config-components');
  });

  it('snapshot tab: side by side, only the changed values highlighted; non-reporting members cannot be picked', async () => {
    await page.locator('[data-tab="snapshot"]').click();
    const left = page.getByLabel('Left');
    const right = page.getByLabel('Right');
    await left.waitFor();
    expect(await left.locator('option[value="gamma"]').isDisabled()).toBe(true);
    expect(await left.locator('option[value="delta"]').isDisabled()).toBe(true);
    expect(await right.locator('option[value="gamma"]').isDisabled()).toBe(true);
    expect(await right.locator('option[value="beta"]').isDisabled()).toBe(false);
    // Both pickers changed in one task, before the first change's navigation has rendered: neither choice is lost
    // (React Router's own setter started both from the same params, and the left one was dropped).
    await page.evaluate(() => {
      for (const [name, value] of [
        ['left', 'alpha'],
        ['right', 'beta'],
      ]) {
        const select = document.querySelector(`select[name="${name}"]`);
        if (select === null) throw new Error(`no ${name} picker`);
        select.value = value;
        select.dispatchEvent(new Event('change', { bubbles: true }));
      }
    });
    await page.waitForURL(/left=alpha.*right=beta|right=beta.*left=alpha/, { timeout: 10_000 });
    // The address moves before the render (a transition) that shows it: wait for the pickers, do not read them once.
    await left.locator('option[value="alpha"]:checked').waitFor({ state: 'attached' });
    await right.locator('option[value="beta"]:checked').waitFor({ state: 'attached' });
    const web = page.locator('[data-area="checks"] table[data-item="web"]');
    await web.waitFor();
    expect(await web.getAttribute('data-state')).toBe('changed');
    // Every field of the item is shown; only intervalSeconds is marked, with both values.
    const changed = await web
      .locator('tr[data-changed="true"]')
      .evaluateAll((rows) => rows.map((r) => r.dataset['path']));
    expect(changed).toEqual(['intervalSeconds']);
    expect(await web.locator('tr[data-changed="false"]').count()).toBeGreaterThan(0);
    expect(await web.locator('mark').allInnerTexts()).toEqual(['45', '15']);
    expect(await web.locator('tr[data-path="intervalSeconds"] td[data-side="left"]').innerText()).toBe('45');
    expect(await web.locator('tr[data-path="intervalSeconds"] td[data-side="right"]').innerText()).toBe('15');
    // The extra check exists on beta only.
    expect(await page.locator('[data-area="checks"] table[data-item="extra"]').getAttribute('data-state')).toBe(
      'right',
    );
    // Areas that do not differ are not listed (only differing items by default).
    expect(await page.locator('[data-area="usersAndRoles"]').count()).toBe(0);
    // Between two members nothing is overridden: beta's own region property is one more difference.
    const region = page.locator('[data-area="properties"] table[data-item="region"]');
    expect(await region.getAttribute('data-state')).toBe('right');
    expect(await region.getAttribute('data-overridden')).toBe('false');
    const betaDrift = (await api.request<DriftCountsView>('GET', '/api/v1/leader/config/drift')).body.members.find(
      (m) => m.name === 'beta',
    );
    expect(betaDrift?.areas?.properties).toBe(0);
    expect(await page.getByTestId('diff-total').innerText()).toContain(
      `${(betaDrift?.count ?? 0) + 1} items differ between alpha and beta`,
    );
    await screenshot('fleet-config-diff-members');

    // Against this site's own snapshot: alpha is an exact copy.
    await left.selectOption('@self');
    await right.selectOption('alpha');
    await waitFor(async () => /same configuration/.test(await page.getByTestId('diff-total').innerText()), {
      timeoutMs: 10_000,
      description: 'alpha equals the leader',
    });
    expect(await page.locator('mark').count()).toBe(0);
    await right.selectOption('beta');
    // This site against beta: the counts the leader's drift has; the overridden property shown, flagged, not counted.
    await waitFor(
      async () =>
        (await page.getByTestId('diff-total').innerText()).includes(
          `${betaDrift?.count ?? -1} items differ between this site and beta`,
        ),
      {
        timeoutMs: 10_000,
        description: 'beta differs from the leader',
      },
    );
    expect(await region.getAttribute('data-overridden')).toBe('true');
    expect(await region.locator('[data-overridden]').innerText()).toContain('not drift');
    expect(await page.locator('[data-area="properties"] [data-testid="area-differing"]').innerText()).toBe(
      'overridden only',
    );
    await screenshot('fleet-config-diff-leader');

    // epsilon's version does not send properties: compared everywhere else, that area said not compared.
    await right.selectOption('epsilon');
    await waitFor(async () => /and epsilon have the same/.test(await page.getByTestId('diff-total').innerText()), {
      timeoutMs: 10_000,
      description: 'epsilon equals the leader where compared',
    });
    expect(await page.getByTestId('diff-total').innerText()).toContain(
      'Not compared (not sent by an older version): Properties.',
    );
  });

  it('a site that is not a leader says so on both pages', async () => {
    plain = await createSite('fleet-none');
    await plain.start('api-gateway', { env: { DASHBOARD_DIR: dashboardDir } });
    const url = plain.service('api-gateway').url;
    expect(
      (await (await GatewayClient.login(url)).request<{ items: unknown[] }>('GET', '/api/v1/leader/members')).body
        .items,
    ).toEqual([]);
    // Its own browser context: the two sites share the host, so their session cookies would collide.
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    try {
      const other = await context.newPage();
      await other.goto(`${url}/fleet`);
      await other.getByLabel('Username').fill('admin');
      await other.getByLabel('Password').fill(E2E_ADMIN_PASSWORD);
      await other.getByRole('button', { name: 'Sign in' }).click();
      await other.getByTestId('not-leader').waitFor();
      expect(await other.getByTestId('not-leader').innerText()).toContain('This site is not a leader');
      expect(await other.locator('[data-testid="fleet-cards"]').count()).toBe(0);
      await other.goto(`${url}/fleet/config`);
      await other.getByTestId('not-leader').waitFor();
      expect(await other.getByRole('tab').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('no CSP violation or script error on the fleet pages (the inline favicon included)', async () => {
    expect(await page.locator('link[rel="icon"]').getAttribute('href')).toMatch(/^data:image\/svg\+xml,/);
    expect(watch.errors).toEqual([]);
    expect(watch.csp).toEqual([]);
    expect(await pageCspViolations(page)).toEqual([]);
  });
});
