import { ConfigRpcMethod as M, QueueName, type Actor } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import {
  BusConnection,
  BusConsumer,
  BusTopology,
  RpcClient,
  RpcServer,
  silentBusLogger,
  type RpcContext,
} from '@fleetwatch/messaging';
import { createIsolatedVhost, type IsolatedVhost } from '@fleetwatch/testing';
import { loadGatewayConfig } from '../config';
import { ConfigOwner } from './config-owner.service';

// The gateway waits for the configuration owner per method: one check (or a read) for
// GATEWAY_RPC_TIMEOUT_MS, bulk create / import / export for GATEWAY_RPC_BULK_TIMEOUT_MS —
// and the owner sees that same deadline in the request, so a long import is neither given
// up on by the gateway nor refused by the owner. Over a real broker, with an owner whose
// every method takes longer than the short timeout.

jest.setTimeout(60_000);

const ACTOR: Actor = { id: 'user:0190f0e0-0000-7000-8000-00000000a11c', name: 'alice' };
const SHORT_MS = 400;
const BULK_MS = 5_000;
/** How long the owner takes for any method: past the short timeout, well within the bulk one. */
const WORK_MS = 1_200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let vhost: IsolatedVhost;
const closers: Array<() => Promise<unknown>> = [];
let owner: ConfigOwner;
/** What the owner's handlers saw: method and the deadline in the request, and when they finished. */
const seen: Array<{ method: string; deadline: Date; doneAt: number }> = [];

function connection(name: string): BusConnection {
  const c = new BusConnection({
    url: vhost.amqpUrl,
    name,
    heartbeatSeconds: 2,
    connectTimeoutMs: 2_000,
    backoff: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0.5 },
    logger: silentBusLogger,
  });
  closers.push(() => c.close());
  return c;
}

beforeAll(async () => {
  vhost = await createIsolatedVhost('gateway-rpc-timeouts');
  const ownerConnection = connection('owner');
  const consumer = new BusConsumer(ownerConnection, {
    topology: new BusTopology(ownerConnection, { queues: [QueueName.SyncOrchestratorCommands] }),
    logger: silentBusLogger,
  });
  const server = new RpcServer(consumer, ownerConnection, { logger: silentBusLogger });
  const slow =
    <R>(result: R) =>
    async (_p: unknown, ctx: RpcContext): Promise<R> => {
      await sleep(WORK_MS);
      seen.push({ method: ctx.method, deadline: ctx.deadline, doneAt: Date.now() });
      return result;
    };
  server
    .handle(M.ConfigImport, slow({ dryRun: true as const, plan: [], version: 0 }))
    .handle(M.ConfigExport, slow({ yaml: 'checks: {}\n', version: 0, hash: 'x' }))
    .handle(M.ChecksBulkCreate, slow({ checks: [], version: 1 }))
    .handle(M.ChecksList, slow({ items: [], nextCursor: null }));
  closers.push(() => consumer.stop());
  ownerConnection.start();
  server.start();

  const publishing = connection('gateway');
  new BusTopology(publishing, { queues: [QueueName.SyncOrchestratorCommands] });
  const replies = connection('gateway.consume');
  const client = new RpcClient(publishing, replies, {
    source: { site: 'test-site', service: 'api-gateway', location: 'lab-1' },
    logger: silentBusLogger,
  });
  closers.push(() => client.close());
  const config = loadGatewayConfig({
    ...process.env,
    GATEWAY_RPC_TIMEOUT_MS: String(SHORT_MS),
    GATEWAY_RPC_BULK_TIMEOUT_MS: String(BULK_MS),
  });
  owner = new ConfigOwner(client, config);
});
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  await vhost?.dispose();
});

describe('per-method RPC timeouts', () => {
  it('defaults: 5 s for one check, 60 s for bulk create, import and export', () => {
    const config = loadGatewayConfig({ ...process.env, GATEWAY_RPC_TIMEOUT_MS: '', GATEWAY_RPC_BULK_TIMEOUT_MS: '' });
    expect(config).toMatchObject({ rpcTimeoutMs: 5_000, rpcBulkTimeoutMs: 60_000 });
    const o = new ConfigOwner({} as RpcClient, config);
    for (const m of [M.ChecksBulkCreate, M.ConfigImport, M.ConfigExport]) expect(o.timeoutOf(m)).toBe(60_000);
    for (const m of Object.values(M).filter((m) => ![M.ChecksBulkCreate, M.ConfigImport, M.ConfigExport].includes(m)))
      expect(o.timeoutOf(m)).toBe(5_000);
    expect(() => loadGatewayConfig({ ...process.env, GATEWAY_RPC_BULK_TIMEOUT_MS: '10' })).toThrow(
      /GATEWAY_RPC_BULK_TIMEOUT_MS/,
    );
  });

  it('an import, bulk create or export that takes longer than the short timeout is answered', async () => {
    for (const [method, params] of [
      [M.ConfigImport, { actor: ACTOR, yaml: 'checks: {}', dryRun: true }],
      [M.ChecksBulkCreate, { actor: ACTOR, checks: [{ name: 'a', type: 'tcp', host: 'db', port: 1 }] }],
      [M.ConfigExport, {}],
    ] as const) {
      const started = Date.now();
      await expect(owner.call(method, params as never)).resolves.toBeDefined();
      const at = seen.find((s) => s.method === method);
      if (!at) throw new Error(`${method} did not reach the owner`);
      // The owner saw the bulk deadline, and finished past the short one.
      expect(at.deadline.getTime() - started).toBeGreaterThan(BULK_MS - 500);
      expect(at.deadline.getTime() - started).toBeLessThanOrEqual(BULK_MS + 100);
      expect(at.doneAt - started).toBeGreaterThan(SHORT_MS);
    }
  });

  it('a call about one check (or a read) gives up after the short timeout: 503 outcome unknown', async () => {
    const started = Date.now();
    const error = await owner.call(M.ChecksList, { limit: 10 }).then(
      () => null,
      (e: unknown) => e,
    );
    const waited = Date.now() - started;
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(new RegExp(`within ${SHORT_MS} ms; the outcome is unknown`));
    expect(waited).toBeGreaterThanOrEqual(SHORT_MS - 20);
    expect(waited).toBeLessThan(WORK_MS);
    // The owner got the same short deadline.
    await sleep(WORK_MS);
    const at = seen.find((s) => s.method === M.ChecksList);
    if (!at) throw new Error('checks.list did not reach the owner');
    expect(at.deadline.getTime() - started).toBeLessThanOrEqual(SHORT_MS + 100);
  });
});
