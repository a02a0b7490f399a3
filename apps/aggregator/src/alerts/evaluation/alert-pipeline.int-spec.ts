import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import { channelConfigSchema, Messages, TargetStatus } from '@fleetwatch/contracts';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import { channelSecretContext, generateSealingKeyText, SecretSealer } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, statusUpdate, type TestSite } from '../../aggregator.int-helpers';
import { putRule } from './alert-evaluation.int-helpers';

// Issue 18, the whole path in one aggregator: a target goes DOWN → after `for` the evaluator queues one
// message → the delivery worker sends it to a signed generic webhook whose secret the configuration owner
// sealed → a receiver started here verifies the HMAC and gets exactly one "firing"; the recovery brings
// exactly one "resolved".

jest.setTimeout(90_000);

const CHANNEL = 'ch-hook';
const SECRET = 'webhook signing secret';
const KEY = generateSealingKeyText();

interface Received {
  verified: boolean;
  body: {
    status: string;
    alerts: Array<{ status: string; labels: Record<string, string>; annotations: Record<string, string> }>;
  };
}

let site: TestSite;
let app: INestApplicationContext;
let receiver: Server;
const received: Received[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = (name: string) => [req.headers[name]].flat()[0];
      received.push({
        verified: verifyWebhookSignature({
          secret: SECRET,
          body,
          timestamp: header(WEBHOOK_TIMESTAMP_HEADER),
          signature: header(WEBHOOK_SIGNATURE_HEADER),
          now: Date.now(),
        }),
        body: JSON.parse(body) as Received['body'],
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  site = await createIsolatedTestSite('alert-pipeline', {
    AGGREGATOR_BATCH_WAIT_MS: '5',
    FLEETWATCH_ENCRYPTION_KEY: KEY,
  });
  // The channel as sync-orchestrator stores it: public spec in the clear, the signing secret sealed.
  const spec = channelConfigSchema.parse({
    type: 'webhook',
    name: 'ops hook',
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`,
  });
  const sealed = SecretSealer.fromText(KEY).seal(SECRET, channelSecretContext(CHANNEL, 'secret'));
  await site.pg.query(
    `INSERT INTO notification_channels (id, name, type, spec, secrets, secrets_redacted, content_hash, version)
     VALUES ($1, $2, 'webhook', $3::jsonb, $4::jsonb, $5::jsonb, $6, 1)`,
    [
      CHANNEL,
      spec.name,
      JSON.stringify(spec),
      JSON.stringify({ secret: sealed }),
      '{"secret":{"set":true}}',
      '0'.repeat(64),
    ],
  );
  await putRule(site.pg, 'r-api-down', {
    name: 'API down',
    condition: { type: 'status', statuses: [TargetStatus.Down] },
    for: '1s',
    annotations: { summary: '{{ target.name }} is down' },
    channels: [CHANNEL],
    grouping: { groupBy: ['alertname', 'target'], groupWait: '0s', groupInterval: '1s' },
  });
  app = await startAggregator(site.env);
});

afterAll(async () => {
  await app?.close();
  await site?.dispose();
  await new Promise((r) => receiver?.close(r));
});

it('a target DOWN reaches the signed webhook once; its recovery once', async () => {
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-1', 'exited', Date.now()));
  await waitFor(() => received.length >= 1, { timeoutMs: 20_000, description: 'the firing request' });
  await sleep(2500); // ticks and a group interval: nothing more
  expect(received).toHaveLength(1);
  const [firing] = received;
  expect(firing.verified).toBe(true);
  expect(firing.body.status).toBe('firing');
  expect(firing.body.alerts).toHaveLength(1);
  expect(firing.body.alerts[0].labels).toMatchObject({ alertname: 'API down', target: 'instance:api-1' });
  expect(firing.body.alerts[0].annotations['summary']).toBe('api-1 is down');

  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-1', 'running', Date.now()));
  await waitFor(() => received.length >= 2, { timeoutMs: 20_000, description: 'the resolved request' });
  await sleep(2500);
  expect(received).toHaveLength(2);
  expect(received[1].verified).toBe(true);
  expect(received[1].body.status).toBe('resolved');
  expect(received[1].body.alerts.map((a) => a.status)).toEqual(['resolved']);
  const { rows } = await site.pg.query<{ outcome: string }>(
    'SELECT outcome FROM alert_deliveries WHERE channel_id = $1 ORDER BY id',
    [CHANNEL],
  );
  expect(rows.map((r) => r.outcome)).toEqual(['delivered', 'delivered']);
});
