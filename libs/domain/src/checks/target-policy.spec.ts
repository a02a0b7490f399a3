import fc from 'fast-check';
import { checkInputSchema, type CheckInput } from '@fleetwatch/contracts';
import { formatIp } from './literal-ip';
import { checkTargetProblem, createTargetPolicy, DEFAULT_DENIED_NAMES, DEFAULT_DENY_NETWORKS } from './target-policy';

const policy = createTargetPolicy(DEFAULT_DENY_NETWORKS);

describe('createTargetPolicy', () => {
  it('refuses a list with something that is not a network', () => {
    expect(() => createTargetPolicy(['10.0.0.0/8', 'nope'])).toThrow('not a network: "nope"');
  });

  it.each<[string, string | null]>([
    ['169.254.169.254', '169.254.0.0/16'],
    ['169.254.170.2', '169.254.0.0/16'],
    ['2852039166', '169.254.0.0/16'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.0.0/16'],
    ['::ffff:169.254.169.254', '169.254.0.0/16'],
    ['::169.254.169.254', '169.254.0.0/16'],
    ['64:ff9b::a9fe:a9fe', '169.254.0.0/16'],
    ['fe80::1', 'fe80:0:0:0:0:0:0:0/10'],
    ['100.100.100.200', '100.100.100.200/32'],
    ['fd00:ec2::254', 'fd00:ec2:0:0:0:0:0:254/128'],
    ['fd20:ce::254', 'fd20:ce:0:0:0:0:0:254/128'],
    ['192.0.0.192', '192.0.0.192/32'],
    // Loopback and private networks are allowed by default (SPEC §5).
    ['127.0.0.1', null],
    ['::1', null],
    ['10.1.2.3', null],
    ['192.168.1.1', null],
    ['100.100.100.201', null],
    ['fd00:ec2::253', null],
    ['not an address', 'unparseable address "not an address"'],
  ])('default list: %s → %s', (address, expected) => expect(policy.deniedBy(address)).toBe(expected));

  it('denies an address in a configured network in every encoding', () => {
    const local = createTargetPolicy(['127.0.0.2/32']);
    for (const form of ['127.0.0.2', '2130706434', '0x7f000002', '0177.0.0.2', '127.2', '::ffff:7f00:2'])
      expect(local.deniedBy(form)).toBe('127.0.0.2/32');
    expect(local.deniedBy('127.0.0.1')).toBeNull();
  });

  it('denies exactly the addresses inside a random network', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (net, prefix, address) => {
        const p = createTargetPolicy([`${net}/${prefix}`]);
        const toInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
        const size = 2 ** (32 - prefix);
        const inside = Math.floor(toInt(net) / size) === Math.floor(toInt(address) / size);
        expect(p.deniedBy(address) !== null).toBe(inside);
        expect(p.deniedBy(String(toInt(address))) !== null).toBe(inside);
      }),
    );
  });

  it.each([
    'metadata.google.internal',
    'METADATA.Google.Internal',
    'metadata.google.internal.',
    'metadata',
    'metadata.goog',
    'instance-data',
    'instance-data.ec2.internal',
  ])('denies the metadata name %s', (host) => expect(policy.deniedName(host)).not.toBeNull());

  it.each(['example.com', 'metadata.example.com', 'google.internal', 'x.metadata.goog'])('allows the name %s', (host) =>
    expect(policy.deniedName(host)).toBeNull(),
  );

  it('keeps the metadata names denied when the network list is replaced', () => {
    const narrowed = createTargetPolicy(['10.0.0.0/8']);
    expect(narrowed.names).toEqual(DEFAULT_DENIED_NAMES);
    expect(narrowed.deniedName('metadata.goog')).toBe('metadata.goog');
    expect(narrowed.deniedBy('169.254.169.254')).toBeNull();
  });
});

describe('checkTargetProblem', () => {
  const common = { name: 'c' };
  const problem = (input: CheckInput, p = policy) => checkTargetProblem(checkInputSchema.parse(input), p);

  it.each<[CheckInput, { path: string; message: string } | null]>([
    [
      { ...common, type: 'http', url: 'http://169.254.169.254/latest/meta-data/' },
      {
        path: 'url',
        message: 'address 169.254.169.254 is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      // The URL parser has already made the decimal form a dotted quad.
      { ...common, type: 'prometheus', url: 'http://2852039166:9100/metrics' },
      {
        path: 'url',
        message: 'address 169.254.169.254 is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'tcp', host: '2852039166', port: 80 },
      {
        path: 'host',
        message:
          'address 2852039166 (169.254.169.254) is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'icmp', host: '0251.0376.0251.0376' },
      {
        path: 'host',
        message:
          'address 0251.0376.0251.0376 (169.254.169.254) is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'http', url: 'http://[::ffff:a9fe:a9fe]/' },
      {
        path: 'url',
        message:
          'address ::ffff:a9fe:a9fe (169.254.169.254) is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'dns', query: 'example.com', resolver: '[fd00:ec2::254]:53' },
      {
        path: 'resolver',
        message:
          'address fd00:ec2::254 is in denied network fd00:ec2:0:0:0:0:0:254/128 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'http', url: 'http://Metadata.Google.Internal/computeMetadata/v1/' },
      { path: 'url', message: 'name metadata.google.internal reaches a cloud metadata service and is always denied' },
    ],
    [
      { ...common, type: 'redis', host: 'instance-data' },
      { path: 'host', message: 'name instance-data reaches a cloud metadata service and is always denied' },
    ],
    [
      { ...common, type: 'amqp', host: '127.0.0.1', managementUrl: 'http://100.100.100.200:15672' },
      {
        path: 'managementUrl',
        message: 'address 100.100.100.200 is in denied network 100.100.100.200/32 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    // Service collectors (issue 16): their host, the S3 endpoint, the queues' management API.
    [
      { ...common, type: 'redis-stats', host: '169.254.169.254' },
      {
        path: 'host',
        message: 'address 169.254.169.254 is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'rabbitmq-tap', host: '0xA9FEA9FE', exchange: 'orders' },
      {
        path: 'host',
        message:
          'address 0xA9FEA9FE (169.254.169.254) is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      { ...common, type: 'rabbitmq-queues', host: '127.0.0.1', managementUrl: 'http://100.100.100.200:15672' },
      {
        path: 'managementUrl',
        message: 'address 100.100.100.200 is in denied network 100.100.100.200/32 (FLEETWATCH_CHECK_DENY_NETWORKS)',
      },
    ],
    [
      {
        ...common,
        type: 's3',
        endpoint: 'http://metadata.google.internal/',
        bucket: 'b-1',
        accessKeyIdEnv: 'FLEETWATCH_SECRET_K',
        secretAccessKeyEnv: 'FLEETWATCH_SECRET_S',
      },
      {
        path: 'endpoint',
        message: 'name metadata.google.internal reaches a cloud metadata service and is always denied',
      },
    ],
    [{ ...common, type: 'postgres-stats', host: '10.0.0.5' }, null],
    // Names are not resolved at save time; loopback and private literals are allowed.
    [{ ...common, type: 'http', url: 'https://example.com/' }, null],
    [{ ...common, type: 'tcp', host: '127.0.0.1', port: 5432 }, null],
    [{ ...common, type: 'postgres', host: '10.0.0.5' }, null],
    [{ ...common, type: 'dns', query: 'metadata.google.internal' }, null],
    [{ ...common, type: 'process', processName: 'node' }, null],
  ])('%j → %j', (input, expected) => expect(problem(input)).toEqual(expected));

  it('refuses a tcp host in any encoding of an address in a denied network', () => {
    const p = createTargetPolicy(['127.0.0.2/32']);
    fc.assert(
      fc.property(
        fc.constantFrom('127.0.0.2', '2130706434', '0x7f.0.0.2', '0177.0.0.02', '127.2', '127.0.2'),
        (host) => {
          const found = problem({ ...common, type: 'tcp', host, port: 9 }, p);
          expect(found?.path).toBe('host');
          expect(found?.message).toContain('127.0.0.2/32');
        },
      ),
    );
    expect(problem({ ...common, type: 'tcp', host: '127.0.0.1', port: 9 }, p)).toBeNull();
  });

  it('refuses localhost (and *.localhost, always loopback: RFC 6761) when a loopback network is denied', () => {
    // SPEC §11: a check the target policy refuses gets a 4xx naming why — the collector would refuse to connect to
    // what localhost resolves to, so the save must not accept it as if it were any other name.
    const p = createTargetPolicy(['127.0.0.0/8']);
    expect(problem({ ...common, type: 'http', url: 'http://localhost:3000/healthz' }, p)).toEqual({
      path: 'url',
      message: 'name localhost is loopback (127.0.0.1) in denied network 127.0.0.0/8 (FLEETWATCH_CHECK_DENY_NETWORKS)',
    });
    expect(problem({ ...common, type: 'tcp', host: 'LocalHost.', port: 5432 }, p)?.message).toContain('127.0.0.0/8');
    expect(problem({ ...common, type: 'redis', host: 'api.localhost' }, p)?.path).toBe('host');
    expect(problem({ ...common, type: 'tcp', host: 'localhost', port: 9 }, createTargetPolicy(['::1/128']))).toEqual({
      path: 'host',
      message:
        'name localhost is loopback (::1) in denied network 0:0:0:0:0:0:0:1/128 (FLEETWATCH_CHECK_DENY_NETWORKS)',
    });
    // Allowed by default (loopback is, SPEC §5), and a name that merely contains it is any other name.
    expect(problem({ ...common, type: 'http', url: 'http://localhost:3000/' })).toBeNull();
    expect(problem({ ...common, type: 'tcp', host: 'localhost.example.com', port: 9 }, p)).toBeNull();
  });

  it('shows the canonical address beside the form the check used', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), (low) => {
        const host = String(0xa9fe0000 + low);
        const found = problem({ ...common, type: 'tcp', host, port: 1 });
        const ip = formatIp({ version: 4, bytes: Uint8Array.of(169, 254, low >> 8, low & 0xff) });
        expect(found?.message).toBe(
          `address ${host} (${ip}) is in denied network 169.254.0.0/16 (FLEETWATCH_CHECK_DENY_NETWORKS)`,
        );
      }),
    );
  });
});
