import { lookup } from 'node:dns/promises';
import { closedPort, startCanary, type TestTarget } from './testing/targets';
import { checkOf, probeContext } from './testing/probe-context';
import { tcpProbe } from './tcp.probe';

describe('tcp probe (real local ports)', () => {
  let open: TestTarget;
  beforeAll(async () => (open = await startCanary('127.0.0.1')));
  afterAll(() => open.close());

  it('an open port is UP, latency is the connect time, the listener saw the connection', async () => {
    const before = open.connections();
    const out = await tcpProbe(checkOf({ name: 't', type: 'tcp', host: '127.0.0.1', port: open.port }), probeContext());
    expect(out).toMatchObject({ ok: true, facts: { result: { address: '127.0.0.1' } } });
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
    expect(out.latencyMs).toBeLessThan(1000);
    expect(open.connections()).toBe(before + 1);
  });

  it('a name is resolved (localhost) and the first address the OS gives is the one connected to', async () => {
    const [first] = await lookup('localhost', { all: true, order: 'verbatim' });
    const out = await tcpProbe(checkOf({ name: 't', type: 'tcp', host: 'localhost', port: open.port }), probeContext());
    // The listener is IPv4 only: where the OS puts ::1 first, that refusal is the right answer.
    if (first.address === '127.0.0.1')
      expect(out).toMatchObject({ ok: true, facts: { result: { address: '127.0.0.1' } } });
    else expect(out.failureReason).toBe(`connect ECONNREFUSED ${first.address}:${open.port}`);
  });

  it('a closed port is DOWN with the connect error', async () => {
    const port = await closedPort();
    const out = await tcpProbe(checkOf({ name: 't', type: 'tcp', host: '127.0.0.1', port }), probeContext());
    expect(out).toEqual({
      ok: false,
      latencyMs: null,
      failureReason: `connect ECONNREFUSED 127.0.0.1:${port}`,
      facts: {},
    });
  });
});
