import { DeadLetterAdmin } from './dead-letter-admin';
import { DEFAULT_AMQP_URL, DlqExit, formatListing, parseDlqArgs, runDlqCli } from './dlq-cli';

describe('parseDlqArgs', () => {
  it('defaults to AMQP_URL, else the services’ default', () => {
    expect(parseDlqArgs(['list'], {}).url).toBe(`${DEFAULT_AMQP_URL}`);
    expect(parseDlqArgs(['list'], { AMQP_URL: 'amqp://u:p@rabbit:5672/site-a' }).url).toBe(
      'amqp://u:p@rabbit:5672/site-a',
    );
    expect(parseDlqArgs(['list', '--url', 'amqps://h/x'], { AMQP_URL: 'amqp://other' }).url).toBe('amqps://h/x');
    expect(parseDlqArgs(['list', '--vhost', 'site/b'], { AMQP_URL: 'amqp://u:p@rabbit:5672/site-a' }).url).toBe(
      'amqp://u:p@rabbit:5672/site%2Fb',
    );
  });

  it('reads every command and option', () => {
    expect(
      parseDlqArgs(['list', '--queue', 'a', '--queue', 'b.dlq', '--limit', '5', '--offset', '10', '--json'], {}),
    ).toMatchObject({
      name: 'list',
      queues: ['a', 'b.dlq'],
      limit: 5,
      offset: 10,
      json: true,
    });
    expect(parseDlqArgs(['show', 'id-1'], {})).toMatchObject({
      name: 'show',
      id: 'id-1',
      limit: 20,
      offset: 0,
      json: false,
    });
    expect(parseDlqArgs(['replay', 'id-1'], {})).toMatchObject({ name: 'replay', id: 'id-1', all: false });
    expect(parseDlqArgs(['replay', '--all', '--queue', 'q'], {})).toMatchObject({
      name: 'replay',
      all: true,
      queues: ['q'],
    });
    expect(parseDlqArgs([], {}).name).toBe('help');
    expect(parseDlqArgs(['list', '-h'], {}).name).toBe('help');
  });

  it.each([
    [['purge'], /unknown command "purge"/],
    [['list', 'id'], /list takes no message id/],
    [['show'], /show needs a message id/],
    [['replay'], /replay needs a message id, or --all/],
    [['replay', 'id', '--all'], /replay needs a message id, or --all/],
    [['list', '--all'], /--all goes with replay/],
    [['list', '--limit=-1'], /--limit wants a whole number/],
    [['list', '--limit', 'ten'], /--limit wants a whole number/],
    [['list', '--bogus'], /Unknown option '--bogus'/],
    [['show', 'a', 'b'], /unexpected argument "b"/],
    [['list', '--url', 'http://x'], /not an AMQP URL/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseDlqArgs(argv, {})).toThrow(message);
  });
});

describe('runDlqCli', () => {
  const io = () => {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => (out.stdout += t), stderr: (t: string) => (out.stderr += t), env: {} } };
  };

  it('prints the usage with exit 0 for help and exit 2 for a usage error, before any connection', async () => {
    const help = io();
    expect(await runDlqCli(['--help'], help.io)).toBe(DlqExit.Ok);
    expect(help.out.stdout).toMatch(/^Usage: npm run dlq -- <command>/);
    const bad = io();
    expect(await runDlqCli(['show'], bad.io)).toBe(DlqExit.Usage);
    expect(bad.out.stderr).toMatch(/^dlq: show needs a message id\n\nUsage:/);
  });

  it('warns on RabbitMQ 4 before every command that gives messages back (replay ID too), not before replay --all', async () => {
    const replayed = [{ deadLetterQueue: 'q.dlq', sourceQueue: 'q', replayed: 1, messageIds: ['m1'] }];
    const fake = {
      looksCount: true,
      serverVersion: '4.0.5',
      list: jest.fn().mockResolvedValue([]),
      show: jest.fn().mockResolvedValue([]),
      replay: jest.fn().mockResolvedValue(replayed),
      replayAll: jest.fn().mockResolvedValue(replayed),
      close: jest.fn().mockResolvedValue(undefined),
    };
    const connect = jest.spyOn(DeadLetterAdmin, 'connect').mockResolvedValue(fake as unknown as DeadLetterAdmin);
    try {
      const warned = async (argv: string[]): Promise<boolean> => {
        const run = io();
        expect(await runDlqCli([...argv, '--json'], run.io)).toBe(DlqExit.Ok);
        return /warning: RabbitMQ 4\.0\.5 counts each look/.test(run.out.stderr);
      };
      expect(await warned(['list'])).toBe(true);
      expect(await warned(['show', 'm1'])).toBe(true);
      // replay ID takes the whole DLQ and gives back every other message: one return counted on each.
      expect(await warned(['replay', 'm1'])).toBe(true);
      expect(await warned(['replay', '--all'])).toBe(false);
      expect(fake.replay).toHaveBeenCalledTimes(1);
    } finally {
      connect.mockRestore();
    }
  });
});

describe('formatListing', () => {
  it('shows counts, rows, set-aside details and what is left beyond the page', () => {
    const text = formatListing(
      [
        {
          deadLetterQueue: 'q.dlq',
          sourceQueue: 'q',
          declared: true,
          messageCount: 3,
          messages: [
            {
              deadLetterQueue: 'q.dlq',
              sourceQueue: 'q',
              messageId: 'm-1',
              type: 'status.update',
              cause: 'isolated',
              reason: 'labels: NUL',
              deadLetteredAt: '2026-01-01T00:00:00.000Z',
              deliveryCount: 0,
              apiKeyId: 'key-1',
              updateId: 'u-1',
              replays: 1,
              bytes: 10,
            },
          ],
        },
        { deadLetterQueue: 'r.dlq', sourceQueue: 'r', declared: true, messageCount: 0, messages: [] },
        { deadLetterQueue: 's.dlq', sourceQueue: 's', declared: false, messageCount: 0, messages: [] },
      ],
      1,
    );
    expect(text).toContain('q.dlq: 3 message(s), from q\n');
    expect(text).toMatch(/m-1\s+status\.update\s+isolated\s+2026-01-01T00:00:00\.000Z\s+0\s+labels: NUL\n/);
    expect(text).toContain('api key key-1, update u-1, replayed 1× before\n');
    expect(text).toContain('… 1 more (--limit, --offset)\n');
    expect(text).toContain('r.dlq: 0 message(s), from r\n');
    expect(text).toContain('s.dlq: not declared on this vhost\n');
  });
});
