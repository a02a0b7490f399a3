import { createHash } from 'node:crypto';
import { ConfigRpcMethod as M, SubscriptionRpcMethod } from '@fleetwatch/contracts';
import type { RpcContext } from '@fleetwatch/messaging';
import { SecretSealer } from '@fleetwatch/persistence';
import { requestOf as requestWith } from './config.rpc-handler';

// The id a client's Idempotency-Key names a write by: the same for the same request, whatever order the client
// wrote its JSON object's fields in (a retry that builds its body again), another for another request.

const ctx = (key: string) => ({
  method: M.ChecksCreate,
  correlationId: 'c',
  deadline: new Date(Date.now() + 5_000),
  messageId: '0190f0e0-0000-7000-8000-000000000001',
  redelivered: false,
  idempotencyKey: key,
});
const actor = { id: 'user:1', name: 'alice' };
/** The deployment's FLEETWATCH_ENCRYPTION_KEY, as the RPC handlers pass it. */
const SEALER = SecretSealer.fromText('b'.repeat(64));
const requestOf = (c: RpcContext, params: unknown) => requestWith(c, params, SEALER);

describe('requestOf with an Idempotency-Key', () => {
  it("is the same request when the body's fields (nested too) come in another order", () => {
    const first = requestOf(ctx('k'), {
      actor,
      check: { name: 'api', type: 'http', url: 'https://x', headers: { a: '1', b: '2' }, tags: ['t1', 't2'] },
    });
    const retry = requestOf(ctx('k'), {
      check: { tags: ['t1', 't2'], headers: { b: '2', a: '1' }, url: 'https://x', type: 'http', name: 'api' },
      actor: { name: 'alice', id: 'user:1' },
    });
    expect(retry.id).toBe(first.id);
    expect(retry.keyed).toBe(true);
  });

  it('is another request for another value, another list order, another caller or another key', () => {
    const params = { actor, check: { name: 'api', tags: ['t1', 't2'] } };
    const id = requestOf(ctx('k'), params).id;
    expect(requestOf(ctx('k'), { actor, check: { name: 'api2', tags: ['t1', 't2'] } }).id).not.toBe(id);
    expect(requestOf(ctx('k'), { actor, check: { name: 'api', tags: ['t2', 't1'] } }).id).not.toBe(id);
    expect(requestOf(ctx('k'), { ...params, actor: { ...actor, id: 'api-key:1' } }).id).not.toBe(id);
    expect(requestOf(ctx('k2'), params).id).not.toBe(id);
  });
});

describe("requestOf's key id (the key, method and caller without the body: a key reused with another body)", () => {
  const params = { actor, check: { name: 'api', tags: ['t1', 't2'] } };

  it('is the same for another body, If-Match or target of the same key, method and caller', () => {
    const first = requestOf(ctx('k'), params);
    expect(first.keyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.keyId).not.toBe(first.id);
    const other = requestOf(ctx('k'), { actor, check: { name: 'api2' }, expectedVersion: 3, id: 'x' });
    expect(other.id).not.toBe(first.id);
    expect(other.keyId).toBe(first.keyId);
    // The actor's display name is no part of who the caller is (a renamed API key is the same caller).
    expect(requestOf(ctx('k'), { ...params, actor: { ...actor, name: 'alice2' } }).keyId).toBe(first.keyId);
  });

  it('is another for another key, method or caller; a request without a key has none', () => {
    const keyId = requestOf(ctx('k'), params).keyId;
    expect(requestOf(ctx('k2'), params).keyId).not.toBe(keyId);
    expect(requestOf({ ...ctx('k'), method: M.ChecksPatch }, params).keyId).not.toBe(keyId);
    expect(requestOf(ctx('k'), { ...params, actor: { ...actor, id: 'api-key:1' } }).keyId).not.toBe(keyId);
    const { idempotencyKey: _none, ...plain } = ctx('k');
    expect(requestOf(plain, params).keyId).toBeUndefined();
  });
});

describe('requestOf: the id of a keyed request whose params hold a secret', () => {
  const key = 'deploy-42/create-hook';
  const subCtx = (k = key): RpcContext => ({ ...ctx(k), method: SubscriptionRpcMethod.Create });
  const params = (secret: string) => ({
    actor,
    body: { name: 'hook', url: 'https://hooks.example.com/x', secret },
  });
  /** The UUID-shaped sha256 of a value's canonical JSON (sorted fields): how ids were made before the keyed digest. */
  const plainUuid = (value: unknown) => {
    const sorted = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sorted)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([k, x]) => [k, sorted(x)]),
            )
          : v;
    const d = createHash('sha256')
      .update(JSON.stringify(sorted(value)))
      .digest('hex');
    return `${d.slice(0, 8)}-${d.slice(8, 12)}-8${d.slice(13, 16)}-${((parseInt(d[16], 16) & 0x3) | 0x8).toString(16)}${d.slice(17, 20)}-${d.slice(20, 32)}`;
  };
  /** What a reader of config_requests computes for a guess: the plain hash of key, method and params. */
  const plainId = (secret: string) => plainUuid([key, SubscriptionRpcMethod.Create, params(secret)]);

  it('is a keyed digest: no guess at the secret hashed without the deployment key gives it', () => {
    const { id } = requestOf(subCtx(), params('hunter2'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The guess that is right, hashed as the id was before (and as it still is without FLEETWATCH_ENCRYPTION_KEY).
    expect(plainId('hunter2')).toBe(requestWith(subCtx(), params('hunter2'), null).id);
    expect(['hunter', 'hunter2', 'password'].map(plainId)).not.toContain(id);
  });

  it('matches the same key and secret, tells another secret apart by the same keyId (the 422), and needs the key', () => {
    const first = requestOf(subCtx(), params('hunter2'));
    const again = requestOf(subCtx(), params('hunter2'));
    expect([again.id, again.keyId]).toEqual([first.id, first.keyId]);
    const other = requestOf(subCtx(), params('hunter3'));
    expect(other.id).not.toBe(first.id);
    expect(other.keyId).toBe(first.keyId);
    // Another deployment key: another id, the same keyId (no secret in it: key, method and caller only).
    const rotated = requestWith(subCtx(), params('hunter2'), SecretSealer.fromText('c'.repeat(64)));
    expect(rotated.id).not.toBe(first.id);
    expect(rotated.keyId).toBe(first.keyId);
    // And the keyId as rows recorded before the keyed digest hold it: a retry across the upgrade finds its first
    // request's row by it and is refused (422), never applied a second time.
    expect(first.keyId).toBe(plainUuid(['key', key, SubscriptionRpcMethod.Create, actor.id]));
  });
});
