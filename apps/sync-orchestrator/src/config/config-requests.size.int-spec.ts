import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import { Client } from 'pg';
import { BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// config_requests keeps each config write's answer by request id (a redelivery is answered, not
// applied again). An import's answer lists every check even when nothing changed, so a no-op
// import run from CI every few minutes stored O(configuration) per run for a whole day. The
// answer is needed only while a caller can still receive it (until the request's deadline);
// after it the row keeps what idempotency needs — that the request ran, and its version.

jest.setTimeout(120_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let sql: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-requests-size');
  owner = startOwner(servers.db.databaseUrl, null);
  sql = new Client({ connectionString: servers.db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await owner?.close();
  await servers?.dispose();
});

const CHECKS = 400;
const FILE =
  'checks:\n' +
  Array.from(
    { length: CHECKS },
    (_, i) => `  check-${String(i).padStart(4, '0')}:\n    type: tcp\n    host: db${i}.internal\n    port: 5432\n`,
  ).join('');

const ID_LATE = '0190f0e0-0000-7000-8000-0000000c0001';
const ID_WAITING = '0190f0e0-0000-7000-8000-0000000c0002';

async function stored(id: string): Promise<{ bytes: number; reply: Record<string, unknown> }> {
  const { rows } = await sql.query<{ bytes: number; reply: Record<string, unknown> }>(
    'SELECT pg_column_size(reply)::int AS bytes, reply FROM config_requests WHERE request_id = $1::uuid',
    [id],
  );
  if (!rows[0]) throw new Error(`request ${id} is not recorded`);
  return rows[0];
}

it("a no-op import's answer is kept whole until its deadline, then only its version; a redelivery is still not applied", async () => {
  await owner.asCode.import(BOB, FILE, { dryRun: false, prune: true });
  const versionsBefore = (await servers.versions()).length;

  const noop = (id: string, deadlineMs: number) =>
    owner.asCode.import(BOB, FILE, {
      dryRun: false,
      prune: true,
      request: { id, method: M.ConfigImport, deadline: new Date(Date.now() + deadlineMs) },
    });
  const late = await noop(ID_LATE, 1_000);
  const waiting = await noop(ID_WAITING, 600_000);
  expect(late.plan).toHaveLength(CHECKS);
  expect(late.plan.every((i) => i.action === 'unchanged')).toBe(true);
  expect((await servers.versions()).length).toBe(versionsBefore);
  // The whole plan, stored: tens of bytes a check (a day of runs every few minutes: hundreds of copies).
  expect((await stored(ID_LATE)).bytes).toBeGreaterThan(CHECKS * 20);

  await new Promise((r) => setTimeout(r, 1_200));
  // The relay's pass (its grace for the owner's clock left at 0 here).
  const pruned = await owner.versions.pruneRequests(86_400_000, 0);
  expect(pruned).toEqual({ deleted: 0, cleared: 1 });
  expect(await stored(ID_LATE)).toEqual({ bytes: expect.any(Number), reply: { version: late.version } });
  expect((await stored(ID_LATE)).bytes).toBeLessThan(64);
  // Within its deadline: untouched.
  // (The recorded answer is the write's; the import adds `dryRun: false` to it.)
  expect({ dryRun: false, ...(await stored(ID_WAITING)).reply }).toEqual(JSON.parse(JSON.stringify(waiting)));
  // A second pass has nothing left to cut.
  expect(await owner.versions.pruneRequests(86_400_000, 0)).toEqual({ deleted: 0, cleared: 0 });

  // Redelivered (a clock far off, say) with a file that would delete every check: answered, not applied.
  const again = await owner.asCode.import(BOB, 'checks: {}\n', {
    dryRun: false,
    prune: true,
    request: { id: ID_LATE, method: M.ConfigImport, deadline: new Date(Date.now() + 60_000) },
  });
  // Its caller gave up long ago: the version is all it gets (no plan), and nothing is written.
  expect(again).toEqual({ dryRun: false, version: late.version });
  expect((await servers.versions()).length).toBe(versionsBefore);
  expect((await sql.query('SELECT count(*)::int AS n FROM checks')).rows[0].n).toBe(CHECKS);
  // The one still within its deadline answers whole.
  const waitingAgain = await owner.asCode.import(BOB, 'checks: {}\n', {
    dryRun: false,
    prune: true,
    request: { id: ID_WAITING, method: M.ConfigImport, deadline: new Date(Date.now() + 60_000) },
  });
  expect(waitingAgain).toEqual(JSON.parse(JSON.stringify(waiting)));
  expect((await sql.query('SELECT count(*)::int AS n FROM checks')).rows[0].n).toBe(CHECKS);
});
