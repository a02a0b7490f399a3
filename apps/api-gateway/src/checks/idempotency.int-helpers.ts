import type { ApiErrorBody, Page } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { TcpProxy } from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from './owner-process.int-helpers';

// What the Idempotency-Key int-specs share: a gateway reaching the broker through a proxy of the test's (its answers
// can be held past the gateway's RPC timeout: a write committed, the client told 503), the configuration owner
// (sync-orchestrator, a child process from a private copy of dist/) reaching it directly, and the reads the tests make.

/** The gateway's RPC timeout here: a write whose answer is held past it is a 503 "outcome unknown", yet committed. */
export const RPC_TIMEOUT_MS = 1_500;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An entry of a listing (checks' alert rules, channels, status pages, properties, silences, subscriptions). */
export interface ListedEntry {
  id: string;
  version: number;
  name?: string;
  slug?: string;
  key?: string;
  comment?: string;
  state?: string;
}

export interface IdempotencyRig {
  /** The gateway and an admin's token (set once the rig's beforeAll ran). */
  readonly gw: GatewayHarness;
  readonly token: string;
  /** Sends a write while the broker's answers to the gateway are held past its RPC timeout: 503, yet committed. */
  lostAnswer(
    method: 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<void>;
  /** The entries of a listing that `match`. */
  listed(path: string, match: (e: ListedEntry) => boolean): Promise<ListedEntry[]>;
  /** The entries that match once there is one (the lost answer's write committed). */
  listedOnce(path: string, match: (e: ListedEntry) => boolean): Promise<ListedEntry>;
  /** The config version now (the head: what the last write made). */
  configVersion(): Promise<number>;
}

/** The rig, with its jest hooks (call at a spec's top level); `name` keeps its vhost, Redis prefix and copy apart. */
export function idempotencyRig(name: string): IdempotencyRig {
  let gw: GatewayHarness | undefined;
  let owner: OwnerProcess | undefined;
  let dist: string | undefined;
  let token: string | undefined;
  let proxy: TcpProxy | undefined;
  let vhost: { amqpUrl: string; dispose(): Promise<void> } | undefined;

  beforeAll(async () => {
    vhost = await testing.createIsolatedVhost(`gw-${name}-${Date.now().toString(36)}`);
    proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    gw = await startGateway(testing, name, {
      env: { AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl), GATEWAY_RPC_TIMEOUT_MS: String(RPC_TIMEOUT_MS) },
    });
    dist = await privateOwnerDist(`owner-${name}-${testing.testEnv().runId}`);
    owner = await startOwnerProcess(dist, {
      databaseUrl: gw.database.databaseUrl,
      amqpUrl: vhost.amqpUrl,
      redisUrl: gw.config.redisUrl,
      redisPrefix: `${testing.testEnv().redisPrefix}owner-${name}:`,
    });
    token = await gw.login('admin', ADMIN_PASSWORD);
  });

  afterAll(async () => {
    proxy?.release();
    await owner?.stop();
    await gw?.close();
    await proxy?.stop();
    await vhost?.dispose();
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  const started = () => {
    if (!gw || !token || !proxy) throw new Error('the idempotency rig is not started yet (used outside a test?)');
    return { gw, token, proxy };
  };
  const rig: IdempotencyRig = {
    get gw() {
      return started().gw;
    },
    get token() {
      return started().token;
    },
    async lostAnswer(method, path, body, headers = {}) {
      const { gw: g, token: t, proxy: p } = started();
      p.hold();
      try {
        const res = await g.request<ApiErrorBody>(method, path, { token: t, body, headers });
        expect([res.status, res.body.error?.code]).toEqual([503, 'unavailable']);
      } finally {
        p.release();
      }
      // Let the gateway's connection settle (its late reply is dropped) before the retry.
      await sleep(500);
    },
    async listed(path, match) {
      const { gw: g, token: t } = started();
      const res = await g.request<Page<ListedEntry>>('GET', `${path}?limit=1000`, { token: t });
      expect(res.status).toBe(200);
      return res.body.items.filter(match);
    },
    async listedOnce(path, match) {
      const until = Date.now() + 20_000;
      for (;;) {
        const found = await rig.listed(path, match);
        if (found.length > 0 || Date.now() > until) {
          expect(found).toHaveLength(1);
          return found[0] as ListedEntry;
        }
        await sleep(200);
      }
    },
    async configVersion() {
      const { gw: g, token: t } = started();
      const res = await g.request<{ items: Array<{ version: number }> }>('GET', '/api/v1/config/versions?limit=1', {
        token: t,
      });
      expect(res.status).toBe(200);
      return res.body.items[0]?.version ?? 0;
    },
  };
  return rig;
}
