import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import type { RpcContext } from '@fleetwatch/messaging';
import { SecretSealer } from '@fleetwatch/persistence';
import { ALICE, ConfigTestServers, startOwner, TEST_SEALING_KEY, type OwnerParts } from './config.int-helpers';
import { requestOf } from './write-request';

// A keyed write (Idempotency-Key) is recorded by a keyed digest under FLEETWATCH_ENCRYPTION_KEY. After the key is
// rotated (the old one moved to FLEETWATCH_ENCRYPTION_KEY_PREVIOUS), or set on an upgrade from plain ids, the client's
// retry of a request recorded before gets another id: it was refused as a reused key (422) though it is the same
// request. Its ids under the earlier keys (and the plain sha256) now find the first answer.

jest.setTimeout(60_000);

const NEW_KEY = 'b'.repeat(64);

let servers: ConfigTestServers;
let owner: OwnerParts;

beforeAll(async () => {
  servers = await ConfigTestServers.create('config-key-rotation');
  owner = startOwner(servers.db.databaseUrl, null);
});
afterAll(async () => {
  await owner?.close();
  await servers?.dispose();
});

const ctxOf = (key: string): RpcContext => ({
  method: M.ChecksCreate,
  correlationId: 'c',
  deadline: new Date(Date.now() + 10_000),
  messageId: '0190f0e0-0000-7000-8000-00000000b0a1',
  redelivered: false,
  idempotencyKey: key,
});

const paramsOf = (name: string) => ({
  actor: ALICE,
  check: { name, type: 'tcp', host: 'db1.internal', port: 5432 },
});

const create = (key: string, name: string, sealer: SecretSealer | null) =>
  owner.config.create(ALICE, paramsOf(name).check, requestOf(ctxOf(key), paramsOf(name), sealer));

it.each([
  ['a rotation (the old key now previous)', SecretSealer.fromText(TEST_SEALING_KEY)],
  ['an upgrade from plain ids (no key before)', null],
])('a retry across %s is answered as the first request was; another body is still refused', async (_what, before) => {
  const key = `rotation-${before ? 'keyed' : 'plain'}`;
  const name = `rotated-${before ? 'keyed' : 'plain'}`;
  const versions = (await servers.versions()).length;
  const first = await create(key, name, before);
  expect((await servers.versions()).length).toBe(versions + 1);
  const after = SecretSealer.fromText(NEW_KEY, [TEST_SEALING_KEY]);
  // The same request, now under the new key: its first answer, nothing applied again.
  await expect(create(key, name, after)).resolves.toEqual(first);
  expect((await servers.versions()).length).toBe(versions + 1);
  // The same key with another body: still the reused key's refusal, nothing written.
  await expect(create(key, `${name}-other`, after)).rejects.toThrow(/^Idempotency-Key: already used by you/);
  const newKeyOnly = create(key, name, SecretSealer.fromText(NEW_KEY));
  // A replica holding only the new key cannot tell a request recorded under the old one: refused as a reused key,
  // never applied twice. One recorded by the plain sha256 (before the keyed digest) it still finds.
  if (before) await expect(newKeyOnly).rejects.toThrow(/^Idempotency-Key: already used by you/);
  else await expect(newKeyOnly).resolves.toEqual(first);
  expect((await servers.versions()).length).toBe(versions + 1);
});
