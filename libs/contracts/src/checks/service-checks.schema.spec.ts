import { checkInputSchema } from './check.schema';

// The service collector types (issue 16) through the one check schema: defaults applied,
// and each refusal names its field.

const common = { name: 'svc', intervalSeconds: 30 };
const s3 = {
  ...common,
  type: 's3',
  endpoint: 'http://minio:9000',
  bucket: 'fleet-bucket',
  accessKeyIdEnv: 'FLEETWATCH_SECRET_S3_KEY',
  secretAccessKeyEnv: 'FLEETWATCH_SECRET_S3_SECRET',
};

describe('service collector check types', () => {
  it.each([
    [
      { ...common, type: 'redis-stats', host: 'cache', keys: [{ key: 'clients' }] },
      { port: 6379, db: 0, keys: [{ key: 'clients', type: 'auto', maxFields: 10_000, maxValues: 20 }] },
    ],
    [
      { ...common, type: 'rabbitmq-queues', host: 'mq' },
      { port: 5672, vhost: '/', username: 'guest', queues: [], maxQueues: 100 },
    ],
    [
      { ...common, type: 'rabbitmq-tap', host: 'mq', exchange: 'orders', timestampPath: '$.meta["sent at"]' },
      { routingKey: '#', timestampUnit: 'auto', prefetch: 100, maxQueueLength: 10_000 },
    ],
    [
      { ...common, type: 'postgres-stats', host: 'db' },
      { port: 5432, database: 'postgres', maxDatabases: 50 },
    ],
    [s3, { region: 'us-east-1', forcePathStyle: true, roundTrip: true, prefix: 'fleetwatch-probe/', tlsVerify: true }],
  ])('%j is accepted with its defaults', (input, defaults) => {
    const parsed = checkInputSchema.safeParse(input);
    expect(parsed.error?.issues).toBeUndefined();
    expect(parsed.data).toMatchObject(defaults);
  });

  it.each([
    [{ ...common, type: 'redis-stats', host: 'cache', passwordEnv: 'AMQP_URL' }, 'passwordEnv'],
    [
      { ...common, type: 'redis-stats', host: 'cache', keys: Array.from({ length: 33 }, (_, i) => ({ key: `k${i}` })) },
      'keys',
    ],
    [{ ...common, type: 'redis-stats', host: 'cache', keys: [{ key: 'a\u0000b' }] }, 'keys.0.key'],
    [{ ...common, type: 'redis-stats', host: 'cache', keys: [{ key: 'k', maxValues: 101 }] }, 'keys.0.maxValues'],
    [{ ...common, type: 'rabbitmq-queues', host: 'mq', managementUrl: 'file:///etc/passwd' }, 'managementUrl'],
    [{ ...common, type: 'rabbitmq-queues', host: 'mq', managementUrl: 'http://u:p@mq:15672' }, 'managementUrl'],
    [{ ...common, type: 'rabbitmq-tap', host: 'mq' }, 'exchange'],
    [{ ...common, type: 'rabbitmq-tap', host: 'mq', exchange: '' }, 'exchange'],
    [{ ...common, type: 'rabbitmq-tap', host: 'mq', exchange: 'x', timestampPath: 'sentAt' }, 'timestampPath'],
    [{ ...common, type: 'rabbitmq-tap', host: 'mq', exchange: 'x', prefetch: 0 }, 'prefetch'],
    [{ ...common, type: 'postgres-stats', host: 'db; rm -rf /' }, 'host'],
    [{ ...s3, bucket: 'Bad_Bucket' }, 'bucket'],
    [{ ...s3, endpoint: 'ftp://minio' }, 'endpoint'],
    [{ ...s3, secretAccessKeyEnv: 'HOME' }, 'secretAccessKeyEnv'],
    [{ ...s3, prefix: '../x y' }, 'prefix'],
    [{ ...s3, conditions: ['metric("s3_put_ms") <'] }, 'conditions.0'],
  ])('%j is refused at %s', (input, path) => {
    const parsed = checkInputSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('conditions over the figures type-check at save time', () => {
    const ok = checkInputSchema.safeParse({
      ...common,
      type: 'rabbitmq-queues',
      host: 'mq',
      queues: ['orders'],
      conditions: [
        'metric("rabbitmq_queue_messages", {"queue": "orders"}) < 1000',
        'metric("rabbitmq_management_up") == 1.0',
      ],
    });
    expect(ok.error?.issues).toBeUndefined();
  });
});
