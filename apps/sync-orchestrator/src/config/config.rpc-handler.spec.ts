import { ConfigRpcMethod as M } from '@fleetwatch/contracts';
import { requestOf } from './config.rpc-handler';

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
