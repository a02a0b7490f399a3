import { createServer } from 'node:net';
import { CHECK_TYPES, checkInputSchema, type CheckSpec } from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import { probeFor } from './registry';

describe('probe registry', () => {
  it('has a probe for every type collectors run, and none for push', () => {
    for (const type of CHECK_TYPES) {
      if ((type as string) === 'push') expect(probeFor(type)).toBeUndefined();
      else expect(typeof probeFor(type)).toBe('function');
    }
  });

  it('loads a lazily loaded probe on its first run (postgres against a closed port: a failed result with the reason)', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    const check = checkInputSchema.parse({ name: 'pg', type: 'postgres', host: '127.0.0.1', port }) as CheckSpec;
    const probe = probeFor('postgres');
    const out = await probe?.(check, {
      signal: AbortSignal.timeout(5_000),
      timeoutMs: 5_000,
      policy: createTargetPolicy([]),
      env: {},
    });
    expect(out).toMatchObject({ ok: false });
    expect(out?.failureReason).toMatch(/ECONNREFUSED/);
  });
});
