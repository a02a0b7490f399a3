import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { observationShardQueue } from '@fleetwatch/contracts';
import { declareTopology } from '@fleetwatch/messaging';
import { createIsolatedVhost, testEnv, type IsolatedVhost } from '@fleetwatch/testing';
import { connect } from 'amqplib';
import { buildDefinitions, renderDefinitions, SERVICE_QUEUES, type RabbitDefinitions } from './rabbitmq-definitions';

// deploy/rabbitmq/definitions.json against the code: the committed file is what the generator writes now, and
// a vhost loaded from it is one every service boots on (its topology declaration meets only equal queues).
const FILE = join(__dirname, '../../deploy/rabbitmq/definitions.json');

jest.setTimeout(60_000);

function management(): { base: string; authorization: string } {
  const url = testEnv().server.amqpManagementUrl;
  if (!url) throw new Error('this spec needs the RabbitMQ management API (rabbitmq_management)');
  const u = new URL(url);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return { base: u.toString().replace(/\/$/, ''), authorization };
}

async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const { base, authorization } = management();
  const res = await fetch(base + path, {
    method,
    headers: { authorization, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json();
}

/** `POST /api/definitions/{vhost}`: what the management UI's "import definitions" into one vhost does. */
async function importInto(vhost: string, definitions: RabbitDefinitions): Promise<void> {
  await api('POST', `/api/definitions/${encodeURIComponent(vhost)}`, definitions);
}

interface Contents {
  queues: string[];
  bindings: string[];
}

async function contentsOf(vhost: string): Promise<Contents> {
  const v = encodeURIComponent(vhost);
  const queues = (await api('GET', `/api/queues/${v}`)) as { name: string; arguments: Record<string, unknown> }[];
  const bindings = (await api('GET', `/api/bindings/${v}`)) as {
    source: string;
    destination: string;
    routing_key: string;
  }[];
  return {
    queues: queues.map((q) => `${q.name} ${JSON.stringify(Object.entries(q.arguments).sort())}`).sort(),
    bindings: bindings
      .filter((b) => b.source !== '') // the default exchange's implicit bindings
      .map((b) => `${b.source} -> ${b.destination} ${b.routing_key}`)
      .sort(),
  };
}

/** Each service's own declaration (libs/messaging declareTopology over its queue list), on one channel each. */
async function declareEveryService(amqpUrl: string): Promise<void> {
  const connection = await connect(amqpUrl);
  connection.on('error', () => undefined);
  try {
    for (const queues of Object.values(SERVICE_QUEUES)) {
      const channel = await connection.createChannel();
      let failure: Error | undefined;
      channel.on('error', (e: Error) => (failure = e));
      try {
        await declareTopology(channel, { queues });
      } catch (e) {
        throw failure ?? e;
      }
      await channel.close();
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe('deploy/rabbitmq/definitions.json', () => {
  const vhosts: IsolatedVhost[] = [];
  afterAll(async () => {
    for (const v of vhosts) await v.dispose();
  });

  it('is what tools/deploy/rabbitmq-definitions.mjs writes from the code now (rerun it after a topology change)', () => {
    expect(readFileSync(FILE, 'utf8')).toBe(renderDefinitions());
    expect(buildDefinitions('site-a').vhosts).toEqual([{ name: 'site-a' }]);
    const committed = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(committed)).not.toEqual(expect.arrayContaining(['users']));
    expect(committed).not.toHaveProperty('permissions');
  });

  it('loaded into a vhost, every service declares its topology there without a change', async () => {
    const vhost = await createIsolatedVhost('definitions');
    vhosts.push(vhost);
    const definitions = JSON.parse(readFileSync(FILE, 'utf8')) as RabbitDefinitions;
    await importInto(vhost.vhost, definitions);
    const loaded = await contentsOf(vhost.vhost);
    expect(loaded.queues).toHaveLength(definitions.queues.length);
    expect(loaded.bindings).toHaveLength(definitions.bindings.length);

    await declareEveryService(vhost.amqpUrl);

    // Nothing a service declares was missing from the file (no queue or binding appeared).
    expect(await contentsOf(vhost.vhost)).toEqual(loaded);
  });

  it('a queue argument unlike what the services declare fails their declaration (PRECONDITION_FAILED)', async () => {
    const vhost = await createIsolatedVhost('definitions-drift');
    vhosts.push(vhost);
    const definitions = JSON.parse(readFileSync(FILE, 'utf8')) as RabbitDefinitions;
    const shard = definitions.queues.find((q) => q.name === observationShardQueue(0));
    if (!shard) throw new Error(`${observationShardQueue(0)} is not in the definitions`);
    shard.arguments = { ...shard.arguments, 'x-delivery-limit': Number(shard.arguments['x-delivery-limit']) + 1 };
    await importInto(vhost.vhost, definitions);

    await expect(declareEveryService(vhost.amqpUrl)).rejects.toThrow(/PRECONDITION_FAILED/);
  });
});
