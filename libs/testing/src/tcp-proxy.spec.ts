import net from 'node:net';
import { TcpProxy } from './tcp-proxy';
import { waitFor } from './wait-for';

// An echo server stands in for Postgres/RabbitMQ: the proxy only moves bytes.
async function echoServer(): Promise<{ port: number; live: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Connections the server has open. */
    live: () => sockets.size,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function roundTrip(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (d) => resolve(d.toString()));
    s.write(text);
  });
}

const closed = (s: net.Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

describe('TcpProxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: TcpProxy;

  beforeEach(async () => {
    echo = await echoServer();
    proxy = new TcpProxy({ targetHost: '127.0.0.1', targetPort: echo.port });
    await proxy.start();
  });
  afterEach(async () => {
    await proxy.stop();
    await echo.close();
  });

  it('passes bytes both ways', async () => {
    const s = await connect(proxy.port);
    expect(await roundTrip(s, 'hello')).toBe('hello');
    expect(proxy.connectionCount).toBe(1);
    s.destroy();
  });

  it('cut() drops live connections; new ones still pass', async () => {
    const s = await connect(proxy.port);
    await roundTrip(s, 'x');
    proxy.cut();
    await closed(s);
    expect(proxy.connectionCount).toBe(0);
    const again = await connect(proxy.port);
    expect(await roundTrip(again, 'back')).toBe('back');
    again.destroy();
  });

  it('pause() refuses new connections until resume(); live ones survive', async () => {
    const live = await connect(proxy.port);
    proxy.pause();
    const refused = await connect(proxy.port);
    await closed(refused);
    expect(proxy.stats.refused).toBe(1);
    expect(await roundTrip(live, 'still')).toBe('still');
    proxy.resume();
    const s = await connect(proxy.port);
    expect(await roundTrip(s, 'ok')).toBe('ok');
    s.destroy();
    live.destroy();
    await waitFor(() => proxy.connectionCount === 0, { timeoutMs: 2000, description: 'connections to close' });
  });

  it('rewriteUrl() and forUrl() point clients at the proxy', () => {
    expect(proxy.rewriteUrl('amqp://guest:guest@10.0.0.1:5672/v')).toBe(`amqp://guest:guest@127.0.0.1:${proxy.port}/v`);
    expect(() => TcpProxy.forUrl('postgresql://postgres@db/x')).not.toThrow();
  });

  it('hold(): the server`s bytes are held back, then arrive in one read with its close (release)', async () => {
    const s = await connect(proxy.port);
    const reads: string[] = [];
    s.on('data', (d) => reads.push(d.toString()));
    let ended = false;
    s.on('end', () => (ended = true));
    s.on('error', () => undefined);
    proxy.hold();
    s.write('one');
    await waitFor(() => proxy.heldBytes === 3, { timeoutMs: 2000, description: 'the echo held' });
    s.write('two');
    await waitFor(() => proxy.heldBytes === 6, { timeoutMs: 2000, description: 'the second echo held' });
    expect(reads).toEqual([]);
    expect(proxy.heldClose).toBe(false);
    await echo.close(); // the server closes the session
    await waitFor(() => proxy.heldClose, { timeoutMs: 2000, description: 'the server`s close held' });
    expect(ended).toBe(false);
    proxy.release();
    await closed(s);
    expect(reads).toEqual(['onetwo']);
    expect(ended).toBe(true);
    echo = await echoServer(); // for afterEach
  });

  it('hold(): a client that closes is not taken for the server closing; release() with nothing held passes through again', async () => {
    const a = await connect(proxy.port);
    proxy.hold();
    a.destroy();
    await waitFor(() => proxy.connectionCount === 0, { timeoutMs: 2000, description: 'the client gone' });
    expect(proxy.heldClose).toBe(false);
    proxy.release();
    const b = await connect(proxy.port);
    expect(await roundTrip(b, 'again')).toBe('again');
    b.destroy();
  });

  it('cut() forgets what was held', async () => {
    const s = await connect(proxy.port);
    s.on('error', () => undefined);
    proxy.hold();
    s.write('x');
    await waitFor(() => proxy.heldBytes === 1, { timeoutMs: 2000, description: 'the echo held' });
    proxy.cut();
    await closed(s);
    expect(proxy.heldBytes).toBe(0);
    proxy.release();
  });

  it('blackhole(): nothing passes either way and nothing closes; heal() delivers what was sent meanwhile', async () => {
    const s = await connect(proxy.port);
    const reads: string[] = [];
    s.on('data', (d) => reads.push(d.toString()));
    let closedByProxy = false;
    s.on('close', () => (closedByProxy = true));
    await new Promise((r) => setTimeout(r, 20));
    proxy.blackhole();
    s.write('lost?');
    await new Promise((r) => setTimeout(r, 300));
    expect(reads).toEqual([]);
    expect(closedByProxy).toBe(false);
    expect(echo.live()).toBe(1);
    proxy.heal();
    await waitFor(() => reads.join('') === 'lost?', { timeoutMs: 2000, description: 'the echo after heal()' });
    expect(await roundTrip(s, 'again')).toBe('again');
    s.destroy();
  });

  it('blackhole(): a new connection is accepted but reaches the server only after heal()', async () => {
    proxy.blackhole();
    const s = await connect(proxy.port);
    const reads: string[] = [];
    s.on('data', (d) => reads.push(d.toString()));
    s.write('hello');
    await new Promise((r) => setTimeout(r, 300));
    expect(echo.live()).toBe(0);
    expect(reads).toEqual([]);
    proxy.heal();
    await waitFor(() => reads.join('') === 'hello', { timeoutMs: 2000, description: 'the echo after heal()' });
    s.destroy();
  });

  it('blackhole(): a client that goes away is heard of by the server only after heal()', async () => {
    const s = await connect(proxy.port);
    expect(await roundTrip(s, 'x')).toBe('x');
    proxy.blackhole();
    s.destroy();
    await waitFor(() => proxy.stats.abandonedInBlackhole === 1, { timeoutMs: 2000, description: 'the close seen' });
    await new Promise((r) => setTimeout(r, 300));
    expect(echo.live()).toBe(1);
    proxy.heal();
    await waitFor(() => echo.live() === 0, { timeoutMs: 2000, description: 'the server to hear the close' });
    await waitFor(() => proxy.connectionCount === 0, { timeoutMs: 2000, description: 'the proxy to forget it' });
  });
});

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : 0), { intervalMs: 1 })).resolves.toBe(3);
  });

  it('names what it waited for and the last error on timeout', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('queue missing');
        },
        { timeoutMs: 30, intervalMs: 5, description: 'queue q to exist' },
      ),
    ).rejects.toThrow(/waiting for queue q to exist; last error: queue missing/);
  });
});
