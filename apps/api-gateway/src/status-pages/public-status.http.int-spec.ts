import type { PublicStatusPage } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { Client } from 'pg';
import { type GatewayHarness, startGateway } from '../int-spec.helpers';

// The public status page over HTTP against the real gateway and database (pages written straight into status_pages,
// as the owner stores them): what shared caches are told about a 404, and which incidents a busy page lists.

jest.setTimeout(120_000);

let gw: GatewayHarness;
let sql: Client;
const DAY = 86_400_000;
const HOUR = 3_600_000;

async function storePage(slug: string, published: boolean, components: Array<{ name: string; tags: string[] }>) {
  const spec = {
    slug,
    title: slug,
    description: '',
    published,
    components: components.map((c) => ({ ...c, description: '', targetIds: [] })),
    announcements: [],
  };
  await sql.query(`INSERT INTO status_pages (id, slug, spec, version) VALUES (gen_random_uuid(), $1, $2::jsonb, 1)`, [
    slug,
    JSON.stringify(spec),
  ]);
}

/** A target with tag `tag`, status `status` now, through consensus changes `changes` (oldest first). */
async function storeTarget(id: string, tag: string, status: string, changes: Array<{ at: number; to: string }>) {
  await sql.query(
    `INSERT INTO target_states (target_id, kind, name, status, tags, seq) VALUES ($1, 'check', $1, $2, ARRAY[$3], $4)`,
    [id, status, tag, changes.length],
  );
  let from = 'UNKNOWN';
  for (const [i, c] of changes.entries()) {
    await sql.query(
      `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence)
       VALUES ($1, NULL, $2, $3, 'r', $4, $5)`,
      [id, from, c.to, new Date(c.at), i + 1],
    );
    from = c.to;
  }
}

beforeAll(async () => {
  gw = await startGateway(testing, 'public-status-http');
  sql = new Client({ connectionString: gw.database.databaseUrl });
  await sql.connect();
});

afterAll(async () => {
  await sql?.end();
  await gw?.close();
});

it('a 404 (unknown, unpublished or malformed slug) tells shared caches how long it holds, as a page does', async () => {
  await storePage('draft-page', false, [{ name: 'A', tags: ['a'] }]);
  await storePage('live-page', true, [{ name: 'A', tags: ['a'] }]);
  const ok = await gw.request('GET', '/api/v1/public/status-pages/live-page');
  expect(ok.status).toBe(200);
  expect(ok.headers.get('cache-control')).toBe('public, max-age=15');
  // Without a Cache-Control a 404 is cacheable by heuristics: a CDN's default TTL (an hour) kept "no such page" long
  // after the page was published.
  for (const slug of ['no-such-page', 'draft-page', 'Not%20A%20Slug']) {
    for (let i = 0; i < 2; i++) {
      // The second from the gateway's cache of misses.
      const res = await gw.request('GET', `/api/v1/public/status-pages/${slug}`);
      expect([slug, res.status, res.headers.get('cache-control')]).toEqual([slug, 404, 'public, max-age=15']);
    }
  }
});

it('an incident going on since long ago stays listed however many newer ones ended', async () => {
  const now = Date.now();
  const components: Array<{ name: string; tags: string[] }> = [];
  // Six components flapping: 10 outages each over the last days (60 incidents, newer than the one going on).
  for (let c = 0; c < 6; c++) {
    components.push({ name: `Flappy ${c}`, tags: [`flappy-${c}`] });
    const changes = [{ at: now - 40 * DAY, to: 'UP' }];
    for (let k = 10; k >= 1; k--) {
      const down = now - k * 6 * HOUR - c * 10 * 60_000;
      changes.push({ at: down, to: 'DOWN' }, { at: down + 5 * 60_000, to: 'UP' });
    }
    await storeTarget(`check:flappy-${c}`, `flappy-${c}`, 'UP', changes);
  }
  // One degraded for 30 days, still.
  components.push({ name: 'Slow', tags: ['slow'] });
  await storeTarget('check:slow', 'slow', 'PARTIAL', [
    { at: now - 40 * DAY, to: 'UP' },
    { at: now - 30 * DAY, to: 'PARTIAL' },
  ]);
  await storePage('busy', true, components);

  const res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/busy');
  expect(res.status).toBe(200);
  const slow = res.body.components.find((c) => c.name === 'Slow');
  expect(slow?.state).toBe('degraded');
  expect(res.body.incidents).toHaveLength(50);
  const ongoing = res.body.incidents.filter((i) => i.component === 'Slow');
  expect(ongoing).toEqual([{ component: 'Slow', state: 'degraded', startedAt: expect.any(String), endedAt: null }]);
  expect(Math.abs(Date.parse(ongoing[0].startedAt) - (now - 30 * DAY))).toBeLessThanOrEqual(1);
});

it('a database failure is a 503 with Retry-After that says nothing of the database to visitors', async () => {
  await storePage('db-probe', true, [{ name: 'A', tags: ['a'] }]);
  // What Postgres says is the database's own words (a relation, a role, a database name): an operator's business.
  await sql.query('ALTER TABLE status_pages RENAME TO status_pages_away');
  try {
    const res = await gw.request<{ error: { code: string; message: string } }>(
      'GET',
      '/api/v1/public/status-pages/db-probe',
    );
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.body.error.code).toBe('unavailable');
    for (const word of ['status_pages', 'relation', '42P01', 'database'])
      expect([word, res.text.includes(word)]).toEqual([word, false]);
  } finally {
    await sql.query('ALTER TABLE status_pages_away RENAME TO status_pages');
  }
  // Not kept: the next request builds the page again.
  expect((await gw.request('GET', '/api/v1/public/status-pages/db-probe')).status).toBe(200);
});
