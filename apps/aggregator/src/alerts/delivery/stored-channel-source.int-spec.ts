import { randomUUID } from 'node:crypto';
import { UnavailableError } from '@fleetwatch/domain';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import {
  AlertConfigRepository,
  AlertDeliveriesRepository,
  channelSecretContext,
  closeSqlPool,
  createSqlPool,
  generateSealingKeyText,
  runInSqlTransaction,
  SecretSealer,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { NotificationDelivery } from './notification-delivery.service';
import { alertOf, capturedLogger, notificationOf, startHttpReceiver, type HttpReceiver } from './receivers.int-helpers';
import { StoredChannelSource } from './stored-channel-source';

// Channels as sync-orchestrator stores them: spec in the clear, secrets sealed per field. The aggregator
// opens them with the same key, sends with them, and cannot without it.

let db: IsolatedDatabase;
let pool: SqlPool;
let store: AlertConfigRepository;
let receiver: HttpReceiver;
const KEY = generateSealingKeyText();
const sealer = SecretSealer.fromText(KEY);

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  store = new AlertConfigRepository(pool);
  receiver = await startHttpReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await closeSqlPool(pool);
  await db?.dispose();
});

async function storeWebhook(secrets: Record<string, string>): Promise<string> {
  const id = `hook-${randomUUID()}`;
  const spec = {
    type: 'webhook',
    name: 'hook',
    enabled: true,
    sendResolved: true,
    url: `${receiver.url}/in`,
    headers: {},
  };
  const sealed = Object.fromEntries(
    Object.entries(secrets).map(([f, v]) => [f, sealer.seal(v, channelSecretContext(id, f))]),
  );
  await runInSqlTransaction(pool, (tx) =>
    store.insertNew(
      tx,
      'channels',
      [{ id, name: 'hook', type: 'webhook', spec, hash: 'h', secrets: sealed, secretsRedacted: {} }],
      1,
    ),
  );
  return id;
}

describe('StoredChannelSource', () => {
  it('opens the sealed secrets of a stored channel; a deleted one is null', async () => {
    const id = await storeWebhook({ secret: 'hmac-key', bearerToken: 'tok' });
    const channel = await new StoredChannelSource(store, sealer).get(id);
    expect(channel).toEqual({
      id,
      config: {
        type: 'webhook',
        name: 'hook',
        enabled: true,
        sendResolved: true,
        url: `${receiver.url}/in`,
        headers: {},
      },
      secrets: { secret: 'hmac-key', bearerToken: 'tok' },
    });
    expect(await new StoredChannelSource(store, sealer).get('no-such-channel')).toBeNull();
  });

  it('without the key, or with another, the secrets stay shut (a retryable failure, no secret in the message)', async () => {
    const id = await storeWebhook({ secret: 'hmac-key' });
    await expect(new StoredChannelSource(store, null).get(id)).rejects.toThrow(UnavailableError);
    const other = new StoredChannelSource(store, SecretSealer.fromText(generateSealingKeyText()));
    await expect(other.get(id)).rejects.toThrow(/its secret cannot be opened/);
    // A previous key still opens what it sealed (rotation).
    const rotated = SecretSealer.fromText(generateSealingKeyText(), [KEY]);
    expect((await new StoredChannelSource(store, rotated).get(id))?.secrets).toEqual({ secret: 'hmac-key' });
  });

  it('delivery with stored channels: the receiver verifies the HMAC made with the opened key', async () => {
    const id = await storeWebhook({ secret: 'stored-hmac-key' });
    const log = capturedLogger();
    const delivery = new NotificationDelivery(
      new AlertDeliveriesRepository(pool),
      new StoredChannelSource(store, sealer),
      log.logger,
      {
        owner: 'stored-test',
        site: 'site-a',
        externalURL: 'https://fleet.example.com',
        pollIntervalMs: 50,
      },
    );
    delivery.start();
    try {
      const [deliveryId] = await delivery.enqueue([{ channelId: id, notification: notificationOf([alertOf()]) }]);
      const got = await waitFor(() => receiver.requests.find((r) => r.headers['x-fleetwatch-delivery'] === deliveryId));
      expect(
        verifyWebhookSignature({
          secret: 'stored-hmac-key',
          body: got.body,
          timestamp: got.headers[WEBHOOK_TIMESTAMP_HEADER] as string,
          signature: got.headers[WEBHOOK_SIGNATURE_HEADER] as string,
          now: Date.now(),
        }),
      ).toBe(true);
      expect(log.text()).not.toContain('stored-hmac-key');
    } finally {
      await delivery.stop();
    }
  });
});
