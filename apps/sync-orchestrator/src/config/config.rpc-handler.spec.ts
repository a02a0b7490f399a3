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
