import {
  AlertConfigRepository,
  channelSecretContext,
  closeSqlPool,
  createSqlPool,
  generateSealingKeyText,
  runInSqlTransaction,
  SecretSealer,
  SubscriptionsRepository,
  subscriptionSecretContext,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { Client } from 'pg';
import { register, type Gauge } from 'prom-client';
import { RESEAL_BATCH, SecretResealer } from './secret-resealer';

// After a key rotation (FLEETWATCH_ENCRYPTION_KEY now B, A in FLEETWATCH_ENCRYPTION_KEY_PREVIOUS) the owner seals
// every value A sealed again under B, in the background, compare-and-set per row: the old key can then go.

jest.setTimeout(60_000);

const A = generateSealingKeyText();
const B = generateSealingKeyText();
const C = generateSealingKeyText();
const sealerA = SecretSealer.fromText(A);
const sealerC = SecretSealer.fromText(C);
/** After the rotation: B seals, A only opens. */
const rotated = SecretSealer.fromText(B, [A]);
const onlyB = SecretSealer.fromText(B);

let db: IsolatedDatabase;
let pool: SqlPool;
let channels: AlertConfigRepository;
let subscriptions: SubscriptionsRepository;
let sql: Client;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  channels = new AlertConfigRepository(pool);
  subscriptions = new SubscriptionsRepository(pool);
  sql = new Client({ connectionString: db.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await closeSqlPool(pool);
  await db?.dispose();
});
beforeEach(async () => {
  await sql.query('DELETE FROM notification_channels');
  await sql.query('DELETE FROM status_subscriptions');
});

interface Logged {
  level: 'info' | 'warn';
  msg: string;
}
function logger() {
  const lines: Logged[] = [];
  return {
    lines,
    info: (_o: unknown, msg: string) => lines.push({ level: 'info', msg }),
    warn: (_o: unknown, msg: string) => lines.push({ level: 'warn', msg }),
  };
}

const resealer = (
  sealer: SecretSealer,
  log = logger(),
  repos: { channels?: AlertConfigRepository; subscriptions?: SubscriptionsRepository } = {},
) =>
  new SecretResealer(sealer, repos.channels ?? channels, repos.subscriptions ?? subscriptions, log as never, 3_600_000);

const webhookSpec = (name: string) => ({
  type: 'webhook',
  name,
  enabled: true,
  sendResolved: true,
  url: 'https://hooks.example/in',
  headers: {},
});

/** Channels as the owner stores them: secret fields sealed per field with `sealer`. */
async function storeChannels(sealer: SecretSealer, ids: string[]): Promise<void> {
  await runInSqlTransaction(pool, (tx) =>
    channels.insertNew(
      tx,
      'channels',
      ids.map((id) => ({
        id,
        name: id,
        type: 'webhook',
        spec: webhookSpec(id),
        hash: 'h',
        secrets: {
          secret: sealer.seal(`hmac-${id}`, channelSecretContext(id, 'secret')),
          bearerToken: sealer.seal(`token-${id}`, channelSecretContext(id, 'bearerToken')),
        },
        secretsRedacted: {},
      })),
      1,
    ),
  );
}

async function storeSubscriptions(sealer: SecretSealer, ids: string[]): Promise<void> {
  await runInSqlTransaction(pool, async (tx) => {
    for (const id of ids)
      await subscriptions.insert(
        tx,
        {
          id,
          name: id,
          spec: { name: id, url: 'https://hooks.example/s', enabled: true },
          sealedSecret: sealer.seal(`sub-${id}`, subscriptionSecretContext(id)),
        },
        1,
      );
  });
}

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);

async function gauge(name: string): Promise<number> {
  const metric = register.getSingleMetric(name) as Gauge | undefined;
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values[0]?.value ?? 0;
}

async function storedChannel(id: string): Promise<Record<string, string>> {
  const sealed = await channels.sealedSecrets(id);
  if (!sealed) throw new Error(`no channel ${id}`);
  return sealed;
}

async function storedSubscription(id: string): Promise<string> {
  const sealed = await subscriptions.sealedSecret(id);
  if (sealed === null) throw new Error(`no subscription ${id}`);
  return sealed;
}

const keyOf = (sealed: string) => sealed.split('.')[1];

describe('SecretResealer', () => {
  it('seals every value under an earlier key again under the current one, same plaintext, same context', async () => {
    // More than a batch of each, so a pass goes over several pages.
    const channelIds = ids('ch', RESEAL_BATCH + 20);
    const subscriptionIds = ids('sub', RESEAL_BATCH + 5);
    await storeChannels(sealerA, channelIds);
    await storeSubscriptions(sealerA, subscriptionIds);
    const before = await storedChannel(channelIds[0]);
    const log = logger();
    const r = resealer(rotated, log);

    r.onApplicationBootstrap(); // in the background after start
    await waitFor(
      async () =>
        (await storedSubscription(subscriptionIds[subscriptionIds.length - 1])).startsWith(rotated.sealedPrefix)
          ? true
          : null,
      {
        timeoutMs: 20_000,
      },
    );
    await r.onApplicationShutdown();

    for (const id of channelIds) {
      const sealed = await storedChannel(id);
      expect(Object.values(sealed).map(keyOf)).toEqual([rotated.keyId, rotated.keyId]);
      // Opens with B alone, to what A sealed, only in its own context.
      expect(onlyB.open(sealed['secret'], channelSecretContext(id, 'secret'))).toBe(`hmac-${id}`);
      expect(onlyB.open(sealed['bearerToken'], channelSecretContext(id, 'bearerToken'))).toBe(`token-${id}`);
      expect(() => onlyB.open(sealed['secret'], channelSecretContext(id, 'bearerToken'))).toThrow();
    }
    for (const id of subscriptionIds) {
      const sealed = await storedSubscription(id);
      expect(keyOf(sealed)).toBe(rotated.keyId);
      expect(onlyB.open(sealed, subscriptionSecretContext(id))).toBe(`sub-${id}`);
      expect(() => onlyB.open(sealed, subscriptionSecretContext(`${id}x`))).toThrow();
    }
    expect(before['secret']).not.toBe((await storedChannel(channelIds[0]))['secret']);
    expect(await gauge('fleetwatch_secrets_sealed_with_previous_key')).toBe(0);
    expect(await gauge('fleetwatch_secrets_unopenable')).toBe(0);
    expect(log.lines).toContainEqual({
      level: 'info',
      msg: `re-sealed ${2 * channelIds.length} channel secrets, ${subscriptionIds.length} subscription secrets under key ${rotated.keyId}; 0 left that no held key opens`,
    });

    // Nothing left: a pass writes nothing and logs nothing.
    const quiet = logger();
    await expect(resealer(rotated, quiet).pass()).resolves.toEqual({
      keyId: rotated.keyId,
      channelSecrets: 0,
      subscriptionSecrets: 0,
      withPreviousKey: 0,
      unopenable: [],
    });
    expect(quiet.lines).toEqual([]);
  });

  it('a value a user writes between the read and the write wins; the rest of the row follows on the next pass', async () => {
    await storeChannels(sealerA, ['ch-raced', 'ch-other']);
    await storeSubscriptions(sealerA, ['sub-raced', 'sub-other']);
    // A user's write lands after the re-sealer read its page (the owner's write path: sealed with the current key).
    const userChannel = rotated.seal('new-hmac', channelSecretContext('ch-raced', 'secret'));
    const userSubscription = rotated.seal('new-sub', subscriptionSecretContext('sub-raced'));
    class RacedChannels extends AlertConfigRepository {
      override async secretsNotSealedWith(prefix: string, q: { afterId?: string; limit: number }) {
        const page = await super.secretsNotSealedWith(prefix, q);
        if (page.some((r) => r.id === 'ch-raced'))
          await runInSqlTransaction(pool, (tx) =>
            channels.update(
              tx,
              'channels',
              [
                {
                  id: 'ch-raced',
                  name: 'ch-raced',
                  type: 'webhook',
                  spec: webhookSpec('ch-raced'),
                  hash: 'h2',
                  secrets: { ...page.find((r) => r.id === 'ch-raced')?.secrets, secret: userChannel },
                },
              ],
              2,
            ),
          );
        return page;
      }
    }
    class RacedSubscriptions extends SubscriptionsRepository {
      override async secretsNotSealedWith(prefix: string, q: { afterId?: string; limit: number }) {
        const page = await super.secretsNotSealedWith(prefix, q);
        if (page.some((r) => r.id === 'sub-raced'))
          await runInSqlTransaction(pool, (tx) =>
            subscriptions.update(
              tx,
              { id: 'sub-raced', name: 'sub-raced', spec: { name: 'sub-raced' }, sealedSecret: userSubscription },
              2,
            ),
          );
        return page;
      }
    }
    const raced = resealer(rotated, logger(), {
      channels: new RacedChannels(pool),
      subscriptions: new RacedSubscriptions(pool),
    });

    const first = await raced.pass();

    // The user's values stand, not overwritten by the re-seal of what was read before.
    expect((await storedChannel('ch-raced'))['secret']).toBe(userChannel);
    expect(await storedSubscription('sub-raced')).toBe(userSubscription);
    // The other rows were re-sealed; the raced channel's other field is still under A, counted on the gauge.
    expect(first).toMatchObject({ channelSecrets: 2, subscriptionSecrets: 1, withPreviousKey: 1, unopenable: [] });
    expect(keyOf((await storedChannel('ch-raced'))['bearerToken'])).toBe(sealerA.keyId);
    expect(await gauge('fleetwatch_secrets_sealed_with_previous_key')).toBe(1);

    const second = await resealer(rotated).pass();
    expect(second).toMatchObject({ channelSecrets: 1, subscriptionSecrets: 0, withPreviousKey: 0 });
    const sealed = await storedChannel('ch-raced');
    expect(sealed['secret']).toBe(userChannel);
    expect(onlyB.open(sealed['bearerToken'], channelSecretContext('ch-raced', 'bearerToken'))).toBe('token-ch-raced');
    expect(await gauge('fleetwatch_secrets_sealed_with_previous_key')).toBe(0);
  });

  it('a value no held key opens is left as it is, counted and warned of once', async () => {
    await storeChannels(sealerA, ['ch-a']);
    await storeChannels(sealerC, ['ch-c']); // an unknown key
    await storeSubscriptions(sealerC, ['sub-c']);
    await storeSubscriptions(sealerA, ['sub-a']);
    const unknown = {
      channel: await storedChannel('ch-c'),
      subscription: await storedSubscription('sub-c'),
    };
    const log = logger();
    const r = resealer(rotated, log);

    const first = await r.pass();

    expect(first).toEqual({
      keyId: rotated.keyId,
      channelSecrets: 2,
      subscriptionSecrets: 1,
      withPreviousKey: 0,
      unopenable: [
        channelSecretContext('ch-c', 'secret'),
        channelSecretContext('ch-c', 'bearerToken'),
        subscriptionSecretContext('sub-c'),
      ],
    });
    expect(await storedChannel('ch-c')).toEqual(unknown.channel);
    expect(await storedSubscription('sub-c')).toBe(unknown.subscription);
    expect(await gauge('fleetwatch_secrets_sealed_with_previous_key')).toBe(0);
    expect(await gauge('fleetwatch_secrets_unopenable')).toBe(3);
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(log.lines).toContainEqual({
      level: 'info',
      msg: `re-sealed 2 channel secrets, 1 subscription secrets under key ${rotated.keyId}; 3 left that no held key opens`,
    });

    await expect(r.pass()).resolves.toMatchObject({ channelSecrets: 0, subscriptionSecrets: 0 });
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1); // once
    expect(await storedChannel('ch-c')).toEqual(unknown.channel);
  });
});
