import { configChangedPayloadSchema, textProblem } from '@fleetwatch/contracts';
import { actorText } from './config-writer';
import { ConfigTestServers, startOwner, type OwnerParts } from './config.int-helpers';

// Who made a write, as versions, the audit log and `config.changed` carry it: `name (id)`, each
// part up to 256 characters as the contract allows, cut to 256. A cut through a surrogate pair left
// half of it — a lone surrogate, which jsonb refuses (the outbox row): every write of that actor failed.

jest.setTimeout(60_000);

let servers: ConfigTestServers;
let owner: OwnerParts;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-actor');
  owner = startOwner(servers.db.databaseUrl, null);
});
afterAll(async () => {
  await owner?.close();
  await servers?.dispose();
});

/** A name whose 255th code unit is the first half of an emoji. */
const LONG = { id: 'api-key:0190f0e0-0000-7000-8000-000000000001', name: `${'a'.repeat(254)}😀x` };

it('actorText cuts long actors to 256 code units without splitting a character', () => {
  const text = actorText(LONG);
  expect(text.length).toBeLessThanOrEqual(256);
  expect(textProblem(text)).toBeNull();
  expect(configChangedPayloadSchema.shape.actor.safeParse(text).success).toBe(true);
});

it('a write by an actor whose name is as long as the contract allows is versioned and audited', async () => {
  const { version } = await owner.config.create(LONG, {
    name: 'long-actor',
    type: 'tcp',
    host: 'db.internal',
    port: 5432,
  });
  expect(version).toBeGreaterThan(0);
  const [entry] = (await owner.config.audit({ limit: 1 })).items;
  expect(entry.actor.startsWith('a'.repeat(254))).toBe(true);
  expect(textProblem(entry.actor)).toBeNull();
});
