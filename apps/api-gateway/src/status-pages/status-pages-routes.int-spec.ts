import type {
  ApiErrorBody,
  CreateApiKeyResponse,
  Page,
  PublicStatusPage,
  StatusPageDefinition,
} from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';

// Status pages through the gateway to their owner (sync-orchestrator, built from today's sources and
// run as a process): who may do what (401 / 403 per role), what the owner refuses (fields named, slug
// taken, stale If-Match), that a write is a config version with an audit entry — and the public view:
// no session needed, 404 until published, components' state, 90 daily bars and incidents computed
// from status events, and none of the internals (the check's URL, host and port, its name, target
// ids, failure reasons, locations, who edited it).

jest.setTimeout(150_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let sql: Client;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;

const SECRET_HOST = '127.0.0.1';
const SECRET_PORT = '48123';
const SECRET_PATH = 'zz-internal-health-path';
const CHECK_NAME = 'zz-internal-check-name';
const REASON = 'location zz-secret-location: connect ECONNREFUSED zz-secret-reason';

beforeAll(async () => {
  gw = await startGateway(testing, 'status-pages', { env: { GATEWAY_RPC_TIMEOUT_MS: '5000' } });
  dist = await privateOwnerDist(`owner-status-pages-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-status-pages:`,
  });
  sql = new Client({ connectionString: gw.database.databaseUrl });
  await sql.connect();
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    tokens[role] = await gw.login(role, `${role}-password`);
  }
  for (const [name, scope] of [
    ['readKey', 'read'],
    ['writeKey', 'write'],
  ] as const) {
    const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: tokens.admin,
      body: { name: `ci-${scope}`, scopes: [scope] },
    });
    tokens[name] = key.body.key;
  }
});

afterAll(async () => {
  await sql?.end();
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const page = {
  slug: 'acme-public',
  title: 'Acme status',
  description: 'Services of Acme',
  components: [
    { name: 'Website', tags: ['public-web'] },
    { name: 'Nothing yet', tags: ['no-such-tag'] },
  ],
};

describe('admin routes', () => {
  it('401 without a session; viewers and read keys read but do not write (403)', async () => {
    expect((await gw.request('GET', '/api/v1/status-pages')).status).toBe(401);
    expect((await gw.request('POST', '/api/v1/status-pages', { body: page })).status).toBe(401);
    for (const token of [tokens.viewer, tokens.readKey]) {
      expect((await gw.request('GET', '/api/v1/status-pages', { token })).status).toBe(200);
      const res = await gw.request<ApiErrorBody>('POST', '/api/v1/status-pages', { token, body: page });
      expect(res.status).toBe(403);
    }
  });

  it('refuses a bad page with each field named', async () => {
    const res = await gw.request<ApiErrorBody>('POST', '/api/v1/status-pages', {
      token: tokens.operator,
      body: { slug: 'Not URL safe!', title: '', components: [{ name: 'x' }], published: 'yes' },
    });
    expect(res.status).toBe(400);
    const paths = res.body.error.issues?.map((i) => i.path) ?? [];
    expect(paths).toEqual(expect.arrayContaining(['slug', 'title', 'components.0.tags', 'published']));
  });

  let created: StatusPageDefinition;
  it('create (201, Location, ETag) → get → list; a taken slug is a 400 naming slug', async () => {
    const res = await gw.request<StatusPageDefinition>('POST', '/api/v1/status-pages', {
      token: tokens.writeKey,
      body: page,
    });
    expect(res.status).toBe(201);
    created = res.body;
    expect(res.headers.get('location')).toBe(`/api/v1/status-pages/${created.id}`);
    expect(res.headers.get('etag')).toBe(`"${created.version}"`);
    expect(created).toMatchObject({ slug: 'acme-public', published: false, announcements: [] });

    const one = await gw.request<StatusPageDefinition>('GET', `/api/v1/status-pages/${created.id}`, {
      token: tokens.viewer,
    });
    expect(one.status).toBe(200);
    expect(one.body.title).toBe('Acme status');
    const list = await gw.request<Page<StatusPageDefinition>>('GET', '/api/v1/status-pages', { token: tokens.viewer });
    expect(list.body.items.map((p) => p.id)).toEqual([created.id]);

    const dup = await gw.request<ApiErrorBody>('POST', '/api/v1/status-pages', {
      token: tokens.operator,
      body: { ...page, title: 'Another' },
    });
    expect(dup.status).toBe(400);
    expect(dup.body.error.issues?.map((i) => i.path)).toEqual(['slug']);
  });

  it('a write is a config version with an audit entry; a stale If-Match is a 409', async () => {
    const patched = await gw.request<StatusPageDefinition>('PATCH', `/api/v1/status-pages/${created.id}`, {
      token: tokens.operator,
      headers: { 'if-match': `"${created.version}"` },
      body: { description: 'All of Acme' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.version).toBeGreaterThan(created.version);
    const stale = await gw.request<ApiErrorBody>('PUT', `/api/v1/status-pages/${created.id}`, {
      token: tokens.operator,
      headers: { 'if-match': `"${created.version}"` },
      body: page,
    });
    expect(stale.status).toBe(409);
    const audit = await sql.query<{ action: string; actor: string }>(
      'SELECT action, actor FROM audit_log WHERE subject = $1 ORDER BY at',
      [created.id],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['status-page.create', 'status-page.patch']);
    const versions = await sql.query<{ summary: string }>('SELECT summary FROM config_versions ORDER BY version');
    expect(versions.rows.map((r) => r.summary)).toEqual(
      expect.arrayContaining(['create status page acme-public', 'patch status page acme-public']),
    );
    created = patched.body;
  });

  it('the site snapshot lists the page in its statusPages area, by slug', async () => {
    type Snapshot = { areas: { statusPages: Array<{ key: string; title: string }> } };
    let found: Snapshot['areas']['statusPages'] = [];
    for (let i = 0; i < 30 && found.length === 0; i++) {
      const res = await gw.request<Snapshot>('GET', '/api/v1/system/snapshot/current', { token: tokens.viewer });
      expect(res.status).toBe(200);
      found = res.body.areas.statusPages;
      if (found.length === 0) await new Promise((r) => setTimeout(r, 500));
    }
    expect(found).toEqual([expect.objectContaining({ key: 'acme-public', title: 'Acme status' })]);
  });

  it('unknown id 404, malformed id 400 naming id', async () => {
    const missing = await gw.request('GET', '/api/v1/status-pages/0190f0e0-0000-7000-8000-000000000000', {
      token: tokens.viewer,
    });
    expect(missing.status).toBe(404);
    const bad = await gw.request<ApiErrorBody>('GET', '/api/v1/status-pages/nope', { token: tokens.viewer });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(['id']);
  });

  describe('public view', () => {
    let checkId: string;
    beforeAll(async () => {
      const check = await gw.request<{ id: string }>('POST', '/api/v1/checks', {
        token: tokens.operator,
        body: {
          name: CHECK_NAME,
          type: 'http',
          url: `http://${SECRET_HOST}:${SECRET_PORT}/${SECRET_PATH}`,
          tags: ['public-web'],
        },
      });
      expect(check.status).toBe(201);
      checkId = check.body.id;
      // What the aggregator would have written: the check's state and its consensus events.
      const now = Date.now();
      const day = 86_400_000;
      await sql.query(
        `INSERT INTO target_states (target_id, kind, name, status, tags, seq) VALUES ($1, 'check', $2, 'DOWN', ARRAY['public-web'], 3)`,
        [`check:${checkId}`, CHECK_NAME],
      );
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence) VALUES
          ($1, NULL, 'UNKNOWN', 'UP', $2, $3, 1),
          ($1, 'zz-secret-location', 'UP', 'DOWN', $2, $4, 2),
          ($1, NULL, 'UP', 'DOWN', $2, $4, 3)`,
        [`check:${checkId}`, REASON, new Date(now - 3 * day), new Date(now - 60_000)],
      );
    });

    it('an unpublished page is a 404, like an unknown one', async () => {
      expect((await gw.request('GET', '/api/v1/public/status-pages/acme-public')).status).toBe(404);
      expect((await gw.request('GET', '/api/v1/public/status-pages/no-such-page')).status).toBe(404);
      expect((await gw.request('GET', '/api/v1/public/status-pages/..%2F..%2Fetc')).status).toBe(404);
    });

    it('published: no session needed, state, bars and incidents from events, no internals', async () => {
      const pub = await gw.request<StatusPageDefinition>('PATCH', `/api/v1/status-pages/${created.id}`, {
        token: tokens.operator,
        body: { published: true },
      });
      expect(pub.status).toBe(200);
      // The 404 above may still be cached for up to 15 s.
      let res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/acme-public');
      for (let i = 0; i < 40 && res.status === 404; i++) {
        await new Promise((r) => setTimeout(r, 500));
        res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/acme-public');
      }
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=15');
      const view = res.body;
      expect(view).toMatchObject({ slug: 'acme-public', title: 'Acme status', state: 'outage', days: 90 });
      const [web, none] = view.components;
      expect(web).toMatchObject({ name: 'Website', state: 'outage' });
      expect(web.days).toHaveLength(90);
      expect(web.days[0]).toEqual({ date: expect.any(String), uptime: null, state: 'unknown' });
      expect(web.days.filter((d) => d.uptime === 1).length).toBeGreaterThanOrEqual(1);
      expect(web.days[89].state).toBe('outage');
      expect(none).toMatchObject({ name: 'Nothing yet', state: 'unknown', uptime: null });
      expect(view.incidents).toEqual([
        { component: 'Website', state: 'outage', startedAt: expect.any(String), endedAt: null },
      ]);

      const text = res.text;
      for (const secret of [
        SECRET_HOST,
        SECRET_PORT,
        SECRET_PATH,
        CHECK_NAME,
        checkId,
        'zz-secret-location',
        'zz-secret-reason',
        'ECONNREFUSED',
        'operator',
        'public-web',
      ])
        expect(text).not.toContain(secret);
    });

    it("a component's state counts every target it selects, and one flapping target keeps the others' history", async () => {
      const now = Date.now();
      const hour = 3_600_000;
      const sixDaysAgo = Math.floor(now / (24 * hour)) * 24 * hour - 6 * 24 * hour; // that day's 00:00 UTC
      // 250 pods UP, and one DOWN whose id sorts past the first 200 (the sample the bars are drawn from).
      await sql.query(
        `INSERT INTO target_states (target_id, kind, name, status, tags, seq)
         SELECT 'instance:bulk-' || lpad(i::text, 3, '0'), 'instance', 'bulk', 'UP', ARRAY['bulk'], 1
         FROM generate_series(0, 249) i`,
      );
      await sql.query(
        `INSERT INTO target_states (target_id, kind, name, status, tags, seq) VALUES
          ('instance:zz-down', 'instance', 'zz', 'DOWN', ARRAY['bulk'], 1),
          ('instance:gg-steady', 'instance', 'gg', 'UP', '{}', 3),
          ('instance:ff-flap', 'instance', 'ff', 'UP', '{}', 60000)`,
      );
      // Steady: down for six hours six days ago. Flappy: 60,000 changes in the last five days (more than a page reads).
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence) VALUES
          ('instance:gg-steady', NULL, 'UNKNOWN', 'UP', 'r', $1, 1),
          ('instance:gg-steady', NULL, 'UP', 'DOWN', 'r', $2, 2),
          ('instance:gg-steady', NULL, 'DOWN', 'UP', 'r', $3, 3)`,
        // 06:00–12:00 UTC of the day six days ago: one day's bar whatever the time of day the test runs (from now − 6 d
        // it crossed midnight after 18:00 UTC, two days in outage).
        [new Date(now - 10 * 24 * hour), new Date(sixDaysAgo + 6 * hour), new Date(sixDaysAgo + 12 * hour)],
      );
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence)
         SELECT 'instance:ff-flap', NULL,
                (CASE WHEN i % 2 = 0 THEN 'DOWN' ELSE 'UP' END)::target_status,
                (CASE WHEN i % 2 = 0 THEN 'UP' ELSE 'DOWN' END)::target_status,
                'r', $1::timestamptz + i * interval '7 seconds', i
         FROM generate_series(1, 60000) i`,
        [new Date(now - 5 * 24 * hour)],
      );
      const created2 = await gw.request<StatusPageDefinition>('POST', '/api/v1/status-pages', {
        token: tokens.operator,
        body: {
          slug: 'big-fleet',
          title: 'Big fleet',
          published: true,
          components: [
            { name: 'Pods', tags: ['bulk'] },
            { name: 'Steady', targetIds: ['instance:gg-steady'] },
            { name: 'Flappy', targetIds: ['instance:ff-flap'] },
          ],
        },
      });
      expect(created2.status).toBe(201);
      const res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/big-fleet');
      expect(res.status).toBe(200);
      const [pods, steady] = res.body.components;
      try {
        // The DOWN pod is past the first 200 by id: the component said "operational" during the outage.
        expect(pods.state).toBe('outage');
        // Steady's outage of six days ago stays on the page beside the flapping target: it was pushed out of one
        // page-wide budget of changes (no data, no incident), and Flappy's many incidents filled the list.
        expect(steady.uptime).not.toBeNull();
        expect(steady.days.filter((d) => d.state === 'outage')).toHaveLength(1);
        expect(res.body.incidents).toContainEqual(
          expect.objectContaining({ component: 'Steady', state: 'outage', endedAt: expect.any(String) }),
        );
        // The flapping target's own bars: its last days, not one status painted over the 90 (its changes are cut
        // to its newest; what came before them is not known).
        const flappy = res.body.components[2];
        const known = flappy.days.filter((d) => d.state !== 'unknown');
        expect(known.length).toBeGreaterThanOrEqual(1);
        expect(known.length).toBeLessThanOrEqual(6);
      } finally {
        await gw.request('DELETE', `/api/v1/status-pages/${created2.body.id}`, { token: tokens.admin });
      }
    });

    it('planned maintenance: DOWN inside a window covering the target is maintenance, not an outage', async () => {
      const now = Date.now();
      const hour = 3_600_000;
      const day = 24 * hour;
      const D = Math.floor(now / day) * day - 3 * day; // 00:00 UTC three days ago: bar 86 of 90
      await sql.query(
        `INSERT INTO target_states (target_id, kind, name, status, tags, seq) VALUES
          ('instance:mw-in', 'instance', 'mw', 'UP', ARRAY['mw'], 3),
          ('instance:mw-part', 'instance', 'mw', 'UP', ARRAY['mw'], 3),
          ('instance:mw-other', 'instance', 'mw', 'UP', ARRAY['mw-other'], 3),
          ('instance:mw-now', 'instance', 'mw', 'DOWN', ARRAY['mw-now'], 2)`,
      );
      // In: DOWN 07:00–09:00 inside the window (06:00–12:00). Part: DOWN 10:00–14:00, two hours past it. Other: DOWN
      // 07:00–09:00 under a window for a tag it does not carry. Now: DOWN for the last 30 min, under a window open now.
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence)
         SELECT t.id, NULL, 'UNKNOWN', 'UP', 'r', $1, 1 FROM unnest($2::text[]) AS t(id)`,
        [new Date(now - 10 * day), ['instance:mw-in', 'instance:mw-part', 'instance:mw-other', 'instance:mw-now']],
      );
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence) VALUES
          ('instance:mw-in', NULL, 'UP', 'DOWN', 'r', $1, 2), ('instance:mw-in', NULL, 'DOWN', 'UP', 'r', $2, 3),
          ('instance:mw-other', NULL, 'UP', 'DOWN', 'r', $1, 2), ('instance:mw-other', NULL, 'DOWN', 'UP', 'r', $2, 3),
          ('instance:mw-part', NULL, 'UP', 'DOWN', 'r', $3, 2), ('instance:mw-part', NULL, 'DOWN', 'UP', 'r', $4, 3),
          ('instance:mw-now', NULL, 'UP', 'DOWN', 'r', $5, 2)`,
        [
          new Date(D + 7 * hour),
          new Date(D + 9 * hour),
          new Date(D + 10 * hour),
          new Date(D + 14 * hour),
          new Date(now - hour / 2),
        ],
      );
      const once = (name: string, scope: object, startsAt: number, endsAt: number) => [
        `mw-${name}`,
        name,
        JSON.stringify({
          name,
          createdBy: 'admin',
          scope,
          schedule: {
            type: 'once',
            startsAt: new Date(startsAt).toISOString(),
            endsAt: new Date(endsAt).toISOString(),
          },
        }),
      ];
      for (const row of [
        once('zz-win-planned', { targetIds: [], tags: ['mw'], sites: [] }, D + 6 * hour, D + 12 * hour),
        once('zz-win-elsewhere', { targetIds: [], tags: ['not-on-these'], sites: [] }, D, D + day),
        once('zz-win-now', { targetIds: ['instance:mw-now'], tags: [], sites: [] }, now - hour, now + hour),
      ])
        await sql.query(
          `INSERT INTO maintenance_windows (id, name, spec, content_hash, version) VALUES ($1, $2, $3::jsonb, 'h', 1)`,
          row,
        );
      const created3 = await gw.request<StatusPageDefinition>('POST', '/api/v1/status-pages', {
        token: tokens.operator,
        body: {
          slug: 'planned-work',
          title: 'Planned work',
          published: true,
          components: [
            { name: 'In', targetIds: ['instance:mw-in'] },
            { name: 'Part', targetIds: ['instance:mw-part'] },
            { name: 'Other', targetIds: ['instance:mw-other'] },
            { name: 'Now', targetIds: ['instance:mw-now'] },
          ],
        },
      });
      expect(created3.status).toBe(201);
      try {
        const res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/planned-work');
        expect(res.status).toBe(200);
        const [inside, part, other, underWay] = res.body.components;
        const date = new Date(D).toISOString().slice(0, 10);
        // Inside: a maintenance bar, 100 % up (the maintenance is not counted), no incident.
        expect(inside.days[86]).toEqual({ date, uptime: 1, state: 'maintenance' });
        expect(inside.uptime).toBe(1);
        expect(inside.days.filter((d) => d.state === 'outage')).toEqual([]);
        // Partly outside: the two hours after the window are an outage (and the only incident of it); the two inside
        // are not counted (20 h up of the 22 known).
        expect(part.days[86]).toEqual({ date, uptime: 20 / 22, state: 'outage' });
        // A window for another tag: no effect.
        expect(other.days[86]).toEqual({ date, uptime: 22 / 24, state: 'outage' });
        // Under a window open now: DOWN reads maintenance, and so does the page (everything else is up).
        expect(underWay.state).toBe('maintenance');
        expect(res.body.state).toBe('maintenance');
        expect(res.body.incidents).toEqual([
          {
            component: 'Part',
            state: 'outage',
            startedAt: new Date(D + 12 * hour).toISOString(),
            endedAt: new Date(D + 14 * hour).toISOString(),
          },
          {
            component: 'Other',
            state: 'outage',
            startedAt: new Date(D + 7 * hour).toISOString(),
            endedAt: new Date(D + 9 * hour).toISOString(),
          },
        ]);
        // Nothing of the windows leaves for the public.
        for (const secret of ['zz-win', 'not-on-these', 'instance:mw']) expect(res.text).not.toContain(secret);
      } finally {
        await gw.request('DELETE', `/api/v1/status-pages/${created3.body.id}`, { token: tokens.admin });
        await sql.query(`DELETE FROM maintenance_windows WHERE id LIKE 'mw-%'`);
      }
    });

    it('a deleted target keeps its past outage on the page; components not known do not make the headline "not known"', async () => {
      const now = Date.now();
      const hour = 3_600_000;
      const day = 24 * hour;
      const D = Math.floor(now / day) * day - 5 * day; // 00:00 UTC five days ago: bar 84 of 90
      // `gone`: DOWN 06:00–12:00 five days ago, deleted yesterday (the tombstone the aggregator leaves: tags kept, its
      // consensus to UNKNOWN at the delete). `live` UP; `stale` STALE; the fourth component selects nothing.
      await sql.query(
        `INSERT INTO target_states (target_id, kind, name, status, tags, seq, deleted_at) VALUES
          ('instance:hist-gone', 'instance', 'hist', 'UNKNOWN', ARRAY['hist-gone'], 4, $1),
          ('instance:hist-live', 'instance', 'hist', 'UP', ARRAY['hist-live'], 1, NULL),
          ('instance:hist-stale', 'instance', 'hist', 'STALE', ARRAY['hist-stale'], 2, NULL)`,
        [new Date(now - day)],
      );
      await sql.query(
        `INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence) VALUES
          ('instance:hist-gone', NULL, 'UNKNOWN', 'UP', 'r', $1, 1),
          ('instance:hist-gone', NULL, 'UP', 'DOWN', 'r', $2, 2),
          ('instance:hist-gone', NULL, 'DOWN', 'UP', 'r', $3, 3),
          ('instance:hist-gone', NULL, 'UP', 'UNKNOWN', 'check deleted', $4, 4),
          ('instance:hist-live', NULL, 'UNKNOWN', 'UP', 'r', $1, 1),
          ('instance:hist-stale', NULL, 'UNKNOWN', 'UP', 'r', $1, 1),
          ('instance:hist-stale', NULL, 'UP', 'STALE', 'r', $5, 2)`,
        [
          new Date(now - 10 * day),
          new Date(D + 6 * hour),
          new Date(D + 12 * hour),
          new Date(now - day),
          new Date(now - hour),
        ],
      );
      const created4 = await gw.request<StatusPageDefinition>('POST', '/api/v1/status-pages', {
        token: tokens.operator,
        body: {
          slug: 'history-kept',
          title: 'History',
          published: true,
          components: [
            { name: 'Gone', tags: ['hist-gone'] },
            { name: 'Live', tags: ['hist-live'] },
            { name: 'Stale', tags: ['hist-stale'] },
            { name: 'Empty', tags: ['hist-no-such-tag'] },
          ],
        },
      });
      expect(created4.status).toBe(201);
      try {
        const res = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/history-kept');
        expect(res.status).toBe(200);
        const [gone, live, stale, empty] = res.body.components;
        expect([gone.state, live.state, stale.state, empty.state]).toEqual([
          'unknown',
          'operational',
          'unknown',
          'unknown',
        ]);
        // The headline: the worst known state, and one component (Stale) whose state is not known; Gone and Empty
        // select no live target (nothing to know now).
        expect(res.body).toMatchObject({ state: 'operational', unknownComponents: 1 });
        // Gone's outage is still on its bar and in the incidents; after the delete its days have no data.
        const date = new Date(D).toISOString().slice(0, 10);
        expect(gone.days[84]).toEqual({ date, uptime: 18 / 24, state: 'outage' });
        expect(gone.days[89]).toEqual({ date: expect.any(String), uptime: null, state: 'unknown' });
        expect(res.body.incidents).toEqual([
          {
            component: 'Gone',
            state: 'outage',
            startedAt: new Date(D + 6 * hour).toISOString(),
            endedAt: new Date(D + 12 * hour).toISOString(),
          },
        ]);
        expect(res.text).not.toContain('hist-');
      } finally {
        await gw.request('DELETE', `/api/v1/status-pages/${created4.body.id}`, { token: tokens.admin });
      }
    });

    it('is cached: a change shows only after the cache period', async () => {
      const first = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/acme-public');
      await gw.request('PATCH', `/api/v1/status-pages/${created.id}`, {
        token: tokens.operator,
        body: { title: 'Acme status (renamed)' },
      });
      const again = await gw.request<PublicStatusPage>('GET', '/api/v1/public/status-pages/acme-public');
      expect(again.body.generatedAt).toBe(first.body.generatedAt);
      expect(again.body.title).toBe(first.body.title);
    });

    it('config as code: exported by slug, an export re-imported changes nothing, an edited one changes the page', async () => {
      const exported = await gw.request<string>('GET', '/api/v1/config/export', { token: tokens.viewer });
      expect(exported.status).toBe(200);
      expect(exported.text).toMatch(/^statusPages:\n {2}acme-public:\n/m);
      expect(exported.text).toContain('title: Acme status (renamed)');
      type Plan = { plan: Array<{ action: string; name: string }>; version: number };
      const again = await gw.request<Plan>('POST', '/api/v1/config/import?dryRun=true', {
        token: tokens.viewer,
        body: { yaml: exported.text },
      });
      expect(again.status).toBe(200);
      expect(again.body.plan.filter((i) => i.name.startsWith('statusPages/'))).toEqual([
        expect.objectContaining({ action: 'unchanged', name: 'statusPages/acme-public' }),
      ]);
      const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/config/import?dryRun=true', {
        token: tokens.viewer,
        body: { yaml: `${exported.text.replace('title: Acme status (renamed)', 'title: ""')}` },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues?.map((i) => i.path)).toContain('statusPages.acme-public.title');
      const edited = await gw.request<Plan>('POST', '/api/v1/config/import', {
        token: tokens.operator,
        body: { yaml: exported.text.replace('title: Acme status (renamed)', 'title: Acme via YAML') },
      });
      expect(edited.status).toBe(200);
      expect(edited.body.plan.filter((i) => i.name.startsWith('statusPages/'))).toEqual([
        expect.objectContaining({ action: 'change', name: 'statusPages/acme-public' }),
      ]);
      const one = await gw.request<StatusPageDefinition>('GET', `/api/v1/status-pages/${created.id}`, {
        token: tokens.viewer,
      });
      expect(one.body).toMatchObject({ title: 'Acme via YAML', version: edited.body.version });
      const audit = await sql.query<{ action: string; details: { via?: string } | null }>(
        'SELECT action, details FROM audit_log WHERE subject = $1 ORDER BY at DESC LIMIT 1',
        [created.id],
      );
      expect(audit.rows[0]).toEqual({ action: 'status-page.replace', details: { via: 'import' } });
    });

    it('a delete takes the page away (admins write too)', async () => {
      const del = await gw.request('DELETE', `/api/v1/status-pages/${created.id}`, { token: tokens.admin });
      expect(del.status).toBe(204);
      expect((await gw.request('GET', `/api/v1/status-pages/${created.id}`, { token: tokens.admin })).status).toBe(404);
    });

    it('each client address has a budget: past it a 429 with Retry-After', async () => {
      let limited: Awaited<ReturnType<GatewayHarness['request']>> | null = null;
      for (let i = 0; i < 200 && !limited; i++) {
        const res = await gw.request('GET', `/api/v1/public/status-pages/nope-${i}`);
        if (res.status === 429) limited = res;
        else expect(res.status).toBe(404);
      }
      expect(limited?.status).toBe(429);
      expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    });
  });
});
