import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import { Client } from 'pg';
import { BOB, ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// Writes take turns on the config_head lock. A write queued behind one that holds it long (a large import, a slow
// disk) waited into the statement timeout (30 s) holding a pool connection and an open transaction — to answer a
// caller whose deadline (the gateway's 5 s RPC timeout) had long passed. It now waits until its deadline at most.

jest.setTimeout(60_000);

let servers: ConfigTestServers;
let owner: OwnerParts;
let holder: Client;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-lock-wait');
  owner = startOwner(servers.db.databaseUrl, null);
  holder = new Client({ connectionString: servers.db.databaseUrl });
  await holder.connect();
});
afterAll(async () => {
  await holder?.end();
  await owner?.close();
  await servers?.dispose();
});

const FILE = 'checks:\n  lock-wait-1:\n    type: tcp\n    host: db1.internal\n    port: 5432\n';

it('a write queued behind the head lock gives up at its deadline, unapplied, and the next one goes through', async () => {
  const versionsBefore = (await servers.versions()).length;
  await holder.query('BEGIN');
  await holder.query('SELECT version FROM config_head WHERE id = 1 FOR UPDATE');
  // The holder lets go well after the deadline: without a bound the write would wait for it (then fail late).
  const release = setTimeout(() => void holder.query('ROLLBACK'), 12_000);
  const started = Date.now();
  try {
    const err = await owner.asCode
      .import(BOB, FILE, {
        dryRun: false,
        prune: false,
        request: {
          id: '0190f0e0-0000-7000-8000-00000010c401',
          method: M.ConfigImport,
          deadline: new Date(started + 1_000),
        },
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/deadline passed while waiting for the configuration lock/);
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(6_000);
  } finally {
    clearTimeout(release);
    await holder.query('ROLLBACK');
  }
  expect((await servers.versions()).length).toBe(versionsBefore);
  // Nothing is left held: the same request, retried with a new deadline, is applied.
  const applied = await owner.asCode.import(BOB, FILE, {
    dryRun: false,
    prune: false,
    request: {
      id: '0190f0e0-0000-7000-8000-00000010c401',
      method: M.ConfigImport,
      deadline: new Date(Date.now() + 10_000),
    },
  });
  expect(applied.version).toBe(versionsBefore + 1);
});
