import { createTargetPolicy, DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { parseDnsServer } from './dns-servers';
import { policyLookup, resolveAllowed } from './resolve-allowed';
import { TargetDeniedError } from './target-denied.error';

// Literal forms and denied names are refused before any query leaves the host: the
// resolver here is a UDP socket that only counts what reaches it.

describe('resolveAllowed without the network', () => {
  const policy = createTargetPolicy([...DEFAULT_DENY_NETWORKS, '127.0.0.2/32']);
  let counter: Socket;
  let queries = 0;
  let resolver: string[];

  beforeAll(async () => {
    counter = createSocket('udp4');
    counter.on('message', () => queries++);
    await new Promise<void>((resolve) => counter.bind(0, '127.0.0.1', resolve));
    resolver = [`127.0.0.1:${(counter.address() as AddressInfo).port}`];
  });
  afterAll(() => counter.close());
  beforeEach(() => (queries = 0));

  it.each([
    ['169.254.169.254', '169.254.169.254'],
    ['2852039166', '169.254.169.254'],
    ['0xA9FEA9FE', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['169.254.43518', '169.254.169.254'],
    ['[::ffff:169.254.169.254]', '169.254.169.254'],
    ['::ffff:a9fe:a9fe', '169.254.169.254'],
    ['2130706434', '127.0.0.2'],
    ['0x7f000002', '127.0.0.2'],
    ['0177.0.0.2', '127.0.0.2'],
    ['127.2', '127.0.0.2'],
    ['[::ffff:7f00:2]', '127.0.0.2'],
  ])('refuses %s as %s, naming address and network, with no query', async (host, address) => {
    const err = await resolveAllowed(host, policy, { resolver }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetDeniedError);
    expect((err as TargetDeniedError).address).toBe(address);
    expect((err as Error).message).toMatch(
      new RegExp(`^address ${address.replace(/\./g, '\\.')} .*in denied network `),
    );
    expect(queries).toBe(0);
  });

  it('says which network: the message people see', async () => {
    await expect(resolveAllowed('2852039166', policy, { resolver })).rejects.toThrow(
      'address 169.254.169.254 of 2852039166 is in denied network 169.254.0.0/16',
    );
  });

  it.each(['metadata.google.internal', 'METADATA.goog.', 'instance-data'])(
    'refuses the name %s unasked',
    async (host) => {
      await expect(resolveAllowed(host, policy, { resolver })).rejects.toThrow(
        /^name .* is denied by the target policy/,
      );
      expect(queries).toBe(0);
    },
  );

  it('returns an allowed literal as canonical text, without a query', async () => {
    await expect(resolveAllowed('0x7f.1', policy, { resolver })).resolves.toEqual({ address: '127.0.0.1', family: 4 });
    await expect(resolveAllowed('[0:0::1]', policy, { resolver })).resolves.toEqual({ address: '::1', family: 6 });
    expect(queries).toBe(0);
  });

  it('asks the configured resolver for a name (the counter sees it), and the signal ends the wait', async () => {
    const signal = AbortSignal.timeout(300);
    await expect(resolveAllowed('app.example', policy, { resolver, signal })).rejects.toThrow();
    expect(queries).toBeGreaterThan(0);
  });

  it('lookup(): the dns.lookup shape, both forms, and the denial as the error', async () => {
    const lookup = policyLookup(policy, { resolver });
    const one = await new Promise((resolve, reject) =>
      lookup('0x7f.1', {}, (err, address, family) => (err ? reject(err) : resolve({ address, family }))),
    );
    expect(one).toEqual({ address: '127.0.0.1', family: 4 });
    const all = await new Promise((resolve, reject) =>
      lookup('127.1', { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    );
    expect(all).toEqual([{ address: '127.0.0.1', family: 4 }]);
    const denied = await new Promise((resolve) => lookup('2852039166', { all: true }, (err) => resolve(err)));
    expect(denied).toBeInstanceOf(TargetDeniedError);
  });
});

describe('parseDnsServer', () => {
  it.each([
    ['10.0.0.53', '10.0.0.53'],
    ['10.0.0.53:5353', '10.0.0.53:5353'],
    ['2001:db8::53', '2001:db8::53'],
    ['[2001:db8::53]:53', '[2001:db8::53]:53'],
    ['[::1]', '::1'],
  ])('%s → %s', (text, out) => expect(parseDnsServer(text)).toBe(out));
  it.each(['dns.example', '10.0.0.53:0', '10.0.0.53:70000', '', '[::1', '2852039166'])('refuses %s', (text) =>
    expect(parseDnsServer(text)).toBeNull(),
  );
});
