import { Client } from 'pg';
import {
  channelSecretContext,
  generateSealingKeyText,
  SecretSealer,
  subscriptionSecretContext,
} from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { createSite, type E2eSite } from './site-launcher';

// A key rotation as an operator makes it (docs/runbooks/configuration.md, "Rotation"): sync-orchestrator started with
// the new key as FLEETWATCH_ENCRYPTION_KEY and the old one as FLEETWATCH_ENCRYPTION_KEY_PREVIOUS seals the stored
// secrets again under the new key by itself, and its /metrics says when none needs the old key any more.

jest.setTimeout(180_000);

const OLD = generateSealingKeyText();
const NEW = generateSealingKeyText();
const old = SecretSealer.fromText(OLD);
const onlyNew = SecretSealer.fromText(NEW);
const stranger = SecretSealer.fromText(generateSealingKeyText());

let site: E2eSite;
let pg: Client;

beforeAll(async () => {
  site = await createSite('secret-rotation');
  pg = new Client({ connectionString: site.db.databaseUrl });
  pg.on('error', () => undefined);
  await pg.connect();
});
afterAll(async () => {
  await pg?.end().catch(() => undefined);
  await site?.stop();
});

const metric = (text: string, name: string): number | null => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
};

it('re-seals the secrets sealed under the previous key after start; the gauge falls to 0', async () => {
  // Stored before the rotation (as the owner writes them), and one under a key no replica holds.
  const secrets = {
    secret: old.seal('hmac-key', channelSecretContext('ch-1', 'secret')),
    bearerToken: old.seal('bearer', channelSecretContext('ch-1', 'bearerToken')),
  };
  await pg.query(
    `INSERT INTO notification_channels (id, name, type, spec, content_hash, version, secrets, updated_at)
     VALUES ('ch-1', 'ch-1', 'webhook', $2, 'h', 1, $1, now())`,
    [
      JSON.stringify(secrets),
      JSON.stringify({
        type: 'webhook',
        name: 'ch-1',
        enabled: true,
        sendResolved: true,
        url: 'https://hooks.example/in',
        headers: {},
      }),
    ],
  );
  const lost = stranger.seal('lost', subscriptionSecretContext('sub-lost'));
  await pg.query(
    `INSERT INTO status_subscriptions (id, name, spec, secret, version)
     VALUES ('sub-1', 'sub-1', $3, $1, 1), ('sub-lost', 'sub-lost', $3, $2, 1)`,
    [
      old.seal('sub-secret', subscriptionSecretContext('sub-1')),
      lost,
      JSON.stringify({ name: 'sub', url: 'https://hooks.example/s', enabled: false }),
    ],
  );

  const owner = await site.start('sync-orchestrator', {
    env: { FLEETWATCH_ENCRYPTION_KEY: NEW, FLEETWATCH_ENCRYPTION_KEY_PREVIOUS: OLD },
  });

  const metrics = await waitFor(
    async () => {
      const text = await (await fetch(`${owner.url}/metrics`)).text();
      return metric(text, 'fleetwatch_secrets_unopenable') === 1 ? text : null;
    },
    { timeoutMs: 60_000, intervalMs: 500, description: 'a re-seal pass reported on /metrics' },
  );
  expect(metric(metrics, 'fleetwatch_secrets_sealed_with_previous_key')).toBe(0);

  const channel = (
    await pg.query<{ secrets: Record<string, string> }>("SELECT secrets FROM notification_channels WHERE id = 'ch-1'")
  ).rows[0].secrets;
  expect(onlyNew.open(channel['secret'], channelSecretContext('ch-1', 'secret'))).toBe('hmac-key');
  expect(onlyNew.open(channel['bearerToken'], channelSecretContext('ch-1', 'bearerToken'))).toBe('bearer');
  const subs = new Map(
    (await pg.query<{ id: string; secret: string }>('SELECT id, secret FROM status_subscriptions')).rows.map((r) => [
      r.id,
      r.secret,
    ]),
  );
  expect(onlyNew.open(subs.get('sub-1') ?? '', subscriptionSecretContext('sub-1'))).toBe('sub-secret');
  expect(subs.get('sub-lost')).toBe(lost); // left as it was
  expect(owner.output()).toMatch(/1 sealed secrets open with no key held/);
});
