import { Client } from 'pg';
import { createTargetPolicy, InvalidError, NotFoundError, ConflictError } from '@fleetwatch/domain';
import { canonicalJson } from './canonical-json';
import { configHashOfSnapshot } from './config-hash';
import type { ConfigSnapshot } from './config-yaml';
import { TargetDeniedError, VersionConflictError } from './config.errors';
import { ALICE, BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';
import { EMPTY_CONFIG_HASH } from './config.service';

// ConfigService against a real Postgres (a database of its own: versions start at 1):
// every change is a version (gap-free, strictly increasing, none for a no-op), audited
// with who and the diff, hashed from the checks' content hashes; stale expected versions are
// conflicts naming the current one; validation and the target policy refuse with paths;
// 10 writers at once get 10 consecutive versions; 1,000 checks in one bulk are one version.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
/** Counts behind the repositories' back. */
let sql: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-service');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const tcp = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'tcp',
  host: 'db.internal',
  port: 5432,
  ...extra,
});

describe('versions and audit', () => {
  it('starts at version 0 with the empty configuration', async () => {
    expect(await owner.versions.head()).toEqual({ version: 0, hash: null });
    const a = await owner.config.assignment('lab-1');
    expect(a).toEqual({ version: 0, hash: EMPTY_CONFIG_HASH, location: 'lab-1', checks: [] });
  });

  it('versions every change gap-free, audits who and what, and makes no version for a no-op', async () => {
    const before = (await owner.versions.head()).version;
    const created = await owner.config.create(ALICE, {
      name: 'web',
      type: 'http',
      url: 'http://127.0.0.1:8080/health',
      conditions: ['status == 200'],
    });
    expect(created.version).toBe(before + 1);
    expect(created.check).toMatchObject({
      name: 'web',
      type: 'http',
      method: 'GET',
      intervalSeconds: 30,
      version: before + 1,
      targetId: `check:${created.check.id}`,
    });
    const id = created.check.id;

    const patched = await owner.config.patch(BOB, id, { conditions: ['status == 200', 'latency < 300'] }, before + 1);
    expect(patched.version).toBe(before + 2);
    // The same patch again changes nothing: no version, the check as it is.
    const again = await owner.config.patch(BOB, id, { conditions: ['status == 200', 'latency < 300'] });
    expect(again).toEqual({ check: patched.check, version: before + 2 });

    const paused = await owner.config.setPaused(ALICE, id, true, before + 2);
    expect(paused.check.paused).toBe(true);
    expect((await owner.config.setPaused(ALICE, id, true)).version).toBe(before + 3);
    const replaced = await owner.config.replace(
      ALICE,
      id,
      { name: 'web-2', type: 'http', url: 'https://web.internal/' },
      before + 3,
    );
    expect(replaced.check).toMatchObject({ name: 'web-2', paused: false, conditions: [], version: before + 4 });
    const deleted = await owner.config.delete(BOB, id, before + 4);
    expect(deleted).toEqual({ version: before + 5 });
    await expect(owner.config.get(id)).rejects.toBeInstanceOf(NotFoundError);

    expect(await servers.versions()).toEqual(Array.from({ length: before + 5 }, (_, i) => i + 1));
    const audit = (await owner.config.audit({ limit: 50, subject: id })).items;
    expect(audit.map((a) => [a.version, a.action, a.actor])).toEqual([
      [before + 5, 'check.delete', 'ci-pipeline (api-key:0190f0e0-0000-7000-8000-000000000b0b)'],
      [before + 4, 'check.replace', 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)'],
      [before + 3, 'check.pause', 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)'],
      [before + 2, 'check.patch', 'ci-pipeline (api-key:0190f0e0-0000-7000-8000-000000000b0b)'],
      [before + 1, 'check.create', 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)'],
    ]);
    const diffOf = (v: number) => audit.find((a) => a.version === v)?.diff;
    expect(diffOf(before + 2)).toEqual([{ path: 'conditions.1', after: 'latency < 300' }]);
    expect(diffOf(before + 3)).toEqual([{ path: 'paused', after: true }]);
    expect(diffOf(before + 4)).toEqual([
      // Back to the default (none): the field is left out of the config form, so it goes as a whole.
      { path: 'conditions', before: ['status == 200', 'latency < 300'] },
      { path: 'name', before: 'web', after: 'web-2' },
      { path: 'paused', before: true },
      { path: 'url', before: 'http://127.0.0.1:8080/health', after: 'https://web.internal/' },
    ]);
    // A create shows what was written (defaults left out); a delete what was there.
    expect(diffOf(before + 1)).toEqual([
      { path: 'conditions', after: ['status == 200'] },
      { path: 'name', after: 'web' },
      { path: 'type', after: 'http' },
      { path: 'url', after: 'http://127.0.0.1:8080/health' },
    ]);
    expect(diffOf(before + 5)).toEqual(expect.arrayContaining([{ path: 'name', before: 'web-2' }]));

    const v = await owner.config.version(before + 4);
    expect(v).toMatchObject({
      version: before + 4,
      actor: 'alice (user:0190f0e0-0000-7000-8000-00000000a11c)',
      summary: 'replace check web-2',
    });
    // The hash is the config hash of the snapshot (config-hash.ts), rebuilt from the changes here.
    expect(v.hash).toBe(configHashOfSnapshot(v.snapshot as unknown as ConfigSnapshot));
    expect(v.snapshot).toEqual({ checks: { 'web-2': { type: 'http', url: 'https://web.internal/' } } });
    expect((await owner.config.versionsList(2)).items.map((s) => s.version)).toEqual([before + 5, before + 4]);
    expect((await owner.config.versionsList(2, before + 4)).items.map((s) => s.version)).toEqual([
      before + 3,
      before + 2,
    ]);
  });

  it('a patched interval takes a timeout left at its default along; a timeout its owner named stays', async () => {
    const tcp = (name: string, extra: Record<string, unknown> = {}) =>
      owner.config.create(ALICE, { name, type: 'tcp', host: '127.0.0.1', port: 9, intervalSeconds: 10, ...extra });
    const plain = (await tcp('timeout-default')).check;
    expect(plain.timeoutSeconds).toBe(10);
    expect((await owner.config.patch(ALICE, plain.id, { intervalSeconds: 7 })).check).toMatchObject({
      intervalSeconds: 7,
      timeoutSeconds: 7,
    });
    expect((await owner.config.patch(ALICE, plain.id, { intervalSeconds: 60 })).check).toMatchObject({
      intervalSeconds: 60,
      timeoutSeconds: 10,
    });
    const named = (await tcp('timeout-named', { timeoutSeconds: 3 })).check;
    expect((await owner.config.patch(ALICE, named.id, { intervalSeconds: 7 })).check.timeoutSeconds).toBe(3);
    // Named in the patch, it is checked as it is.
    await expect(owner.config.patch(ALICE, plain.id, { intervalSeconds: 5, timeoutSeconds: 10 })).rejects.toThrow(
      /timeoutSeconds: must not exceed intervalSeconds \(5\)/,
    );
  });

  it('a stale expected version is a conflict naming the current one, and changes nothing', async () => {
    const { check } = await owner.config.create(ALICE, tcp('stale'));
    await owner.config.patch(ALICE, check.id, { port: 5433 }, check.version);
    const head = (await owner.versions.head()).version;
    for (const write of [
      () => owner.config.patch(BOB, check.id, { port: 1 }, check.version),
      () => owner.config.replace(BOB, check.id, tcp('stale', { port: 2 }), check.version),
      () => owner.config.setPaused(BOB, check.id, true, check.version),
      () => owner.config.delete(BOB, check.id, check.version),
    ]) {
      const e = await rejection(write());
      expect(e).toBeInstanceOf(VersionConflictError);
      expect(e).toBeInstanceOf(ConflictError);
      expect((e as VersionConflictError).currentVersion).toBe(check.version + 1);
    }
    expect((await owner.versions.head()).version).toBe(head);
    expect((await owner.config.get(check.id)).check).toMatchObject({ port: 5433 });
  });

  it('refuses invalid checks with pathed issues, and what a check may not change', async () => {
    const e = (await rejection(
      owner.config.create(ALICE, {
        name: 'x',
        type: 'http',
        url: 'http://a/',
        conditions: ['status == 200', 'status =='],
      }),
    )) as InvalidError;
    expect(e).toBeInstanceOf(InvalidError);
    expect(e.issues).toEqual([{ path: 'conditions.1', message: expect.stringMatching(/^line 1, column \d+: /) }]);

    const bulk = (await rejection(
      owner.config.bulkCreate(ALICE, [tcp('b0'), tcp('b1', { port: 0 }), tcp('b0'), { name: 'b3', type: 'nope' }]),
    )) as InvalidError;
    expect(bulk.issues.map((i) => i.path)).toEqual(['checks.1.port', 'checks.2.name', 'checks.3.type']);

    const { check } = await owner.config.create(ALICE, tcp('typed'));
    expect(((await rejection(owner.config.patch(ALICE, check.id, { type: 'icmp' }))) as InvalidError).issues).toEqual([
      { path: 'type', message: expect.stringMatching(/cannot change type/) },
    ]);
    expect(((await rejection(owner.config.patch(ALICE, check.id, { port: 'x' }))) as InvalidError).issues[0].path).toBe(
      'port',
    );
    // A name is unique: config as code keys checks by it.
    expect(await rejection(owner.config.create(ALICE, tcp('typed')))).toBeInstanceOf(ConflictError);
    const other = await owner.config.create(ALICE, tcp('other'));
    expect(await rejection(owner.config.patch(ALICE, other.check.id, { name: 'typed' }))).toBeInstanceOf(ConflictError);
    // Removing a field (null) brings its default back.
    const p = await owner.config.patch(ALICE, check.id, { retries: 3 });
    expect((await owner.config.patch(ALICE, check.id, { retries: null }, p.version)).check.retries).toBe(0);
  });

  it('refuses targets the policy denies, naming the field and why', async () => {
    const head = (await owner.versions.head()).version;
    const meta = (await rejection(
      owner.config.create(ALICE, { name: 'meta', type: 'http', url: 'http://169.254.169.254/latest/meta-data/' }),
    )) as TargetDeniedError;
    expect(meta).toBeInstanceOf(TargetDeniedError);
    expect(meta.kind).toBe('forbidden');
    expect(meta.issues).toEqual([{ path: 'url', message: expect.stringMatching(/169\.254\.0\.0\/16/) }]);
    // 2852039166 is 169.254.169.254 written as one number.
    const decimal = (await rejection(
      owner.config.create(ALICE, tcp('meta2', { host: '2852039166' })),
    )) as TargetDeniedError;
    expect(decimal.issues[0]).toMatchObject({ path: 'host' });
    const bulk = (await rejection(
      owner.config.bulkCreate(ALICE, [
        tcp('ok'),
        { name: 'g', type: 'dns', query: 'x', resolver: 'metadata.google.internal' },
      ]),
    )) as TargetDeniedError;
    expect(bulk.issues.map((i) => i.path)).toEqual(['checks.1.resolver']);
    expect((await owner.versions.head()).version).toBe(head);

    // FLEETWATCH_CHECK_DENY_NETWORKS replaces the list: a loopback address denied by policy.
    const strict = startOwner(servers.db.databaseUrl, null, createTargetPolicy(['127.0.0.2/32']));
    try {
      const e = (await rejection(
        strict.config.create(ALICE, tcp('canary', { host: '127.0.0.2' })),
      )) as TargetDeniedError;
      expect(e.issues[0].message).toMatch(/127\.0\.0\.2\/32/);
    } finally {
      await strict.close();
    }
  });
});

describe('many writers, many checks', () => {
  it('10 creates at once get 10 distinct consecutive versions', async () => {
    const head = (await owner.versions.head()).version;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => owner.config.create(i % 2 ? ALICE : BOB, tcp(`parallel-${i}`))),
    );
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 10 }, (_, i) => head + 1 + i),
    );
    const versions = await servers.versions();
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
  });

  it('bulk-creates 1,000 checks as one version, fast', async () => {
    const head = (await owner.versions.head()).version;
    const inputs = Array.from({ length: 1000 }, (_, i) =>
      i % 2
        ? tcp(`bulk-${i}`, { tags: ['bulk'], locations: i % 4 === 1 ? ['lab-2'] : [] })
        : {
            name: `bulk-${i}`,
            type: 'http',
            url: `http://10.0.${i % 250}.1/health`,
            conditions: ['status == 200'],
            tags: ['bulk'],
          },
    );
    const started = performance.now();
    const { checks, version } = await owner.config.bulkCreate(BOB, inputs);
    const ms = performance.now() - started;
    process.stderr.write(`bulk create of 1,000 checks: ${ms.toFixed(0)} ms\n`);
    expect(version).toBe(head + 1);
    expect(checks).toHaveLength(1000);
    expect(new Set(checks.map((c) => c.version))).toEqual(new Set([head + 1]));
    // About a second on a loaded 2-core box; the bound leaves room for CI running suites in parallel.
    expect(ms).toBeLessThan(10_000);
    const { rows } = await sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE version = $1 AND action = 'check.create'`,
      [version],
    );
    expect(rows[0].n).toBe(1000);
    expect((await owner.config.version(version)).summary).toBe('bulk create 1000 checks');

    // Lists page by name and filter by tag and location.
    const page1 = await owner.config.list({ tag: 'bulk', limit: 400 });
    const page2 = await owner.config.list({ tag: 'bulk', limit: 400, cursor: page1.nextCursor ?? undefined });
    const page3 = await owner.config.list({ tag: 'bulk', limit: 400, cursor: page2.nextCursor ?? undefined });
    expect(page3.nextCursor).toBeNull();
    const names = [...page1.items, ...page2.items, ...page3.items].map((c) => c.name);
    expect(names).toHaveLength(1000);
    expect([...names].sort()).toEqual(names);
    const lab3 = await owner.config.list({ tag: 'bulk', location: 'lab-3', limit: 1000 });
    expect(lab3.items).toHaveLength(750);
    await expect(owner.config.list({ limit: 5, cursor: 'bogus' })).rejects.toBeInstanceOf(InvalidError);
  });

  it('assigns a location the checks it runs: listing it or none, not paused; with version and hash', async () => {
    const a = await owner.config.assignment('lab-2');
    const head = await owner.versions.head();
    expect(a.version).toBe(head.version);
    expect(a.hash).toBe(head.hash);
    expect(a.checks.every((c) => !c.paused && (c.locations.length === 0 || c.locations.includes('lab-2')))).toBe(true);
    expect(a.checks.filter((c) => c.name.startsWith('bulk-'))).toHaveLength(1000);
    const other = await owner.config.assignment('lab-3');
    expect(other.checks.filter((c) => c.name.startsWith('bulk-'))).toHaveLength(750);
    const one = other.checks.find((c) => c.name === 'bulk-0');
    if (!one) throw new Error('bulk-0 is not assigned to lab-3');
    await owner.config.setPaused(ALICE, one.id, true);
    expect((await owner.config.assignment('lab-3')).checks.some((c) => c.name === 'bulk-0')).toBe(false);
  });

  it('audit pages newest first with a cursor', async () => {
    const all: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await owner.config.audit({ limit: 300, cursor });
      all.push(...page.items.map((e) => e.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const { rows } = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
    expect(new Set(all).size).toBe(rows[0].n);
    expect(all).toHaveLength(rows[0].n);

    // A cursor this service never gave out is a 400 naming it, whatever time it forges (Postgres refuses these).
    const forged = (at: string) =>
      Buffer.from(JSON.stringify({ at, id: '0190f0e0-0000-7000-8000-000000000001' }), 'utf8').toString('base64url');
    for (const at of ['0000-01-01T00:00:00Z', '1', '+275760-09-13T00:00:00.000Z', 'not a time'])
      await expect(owner.config.audit({ limit: 10, cursor: forged(at) })).rejects.toMatchObject({
        name: 'InvalidError',
        issues: [{ path: 'cursor', message: 'unknown cursor' }],
      });
  });

  it("rebuilds the head version's snapshot, which hashes to the head hash", async () => {
    const head = await owner.versions.head();
    const v = await owner.config.version(head.version);
    expect(configHashOfSnapshot(v.snapshot as unknown as ConfigSnapshot)).toBe(head.hash);
    expect(canonicalJson(v.snapshot)).toContain('"bulk-999":{');
  });
});
