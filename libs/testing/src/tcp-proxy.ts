import net from 'node:net';

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Where the proxy listens (default 127.0.0.1). */
  listenHost?: string;
  /** Port to listen on (default 0: any free port). */
  listenPort?: number;
}

/**
 * A TCP proxy a test owns, placed between a client and a shared server so a fault
 * test can break the connection without stopping the server other tests use:
 *
 *   const proxy = TcpProxy.forUrl(env.amqpUrl);
 *   await proxy.start();
 *   const client = connect(proxy.rewriteUrl(env.amqpUrl));
 *   proxy.cut();          // every live connection drops (both sides destroyed)
 *   proxy.pause();        // new connections are accepted and closed at once
 *   proxy.resume();       // …and pass through again
 *   proxy.hold();         // the server's bytes to clients are held back…
 *   proxy.release();      // …and arrive in one write each (with the server's close, if it closed meanwhile)
 *   await proxy.stop();
 */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Set<net.Socket>();
  private paused = false;
  /** While set, what servers send is held here per connection (release() delivers it). */
  private holding: Map<net.Socket, { chunks: Buffer[]; closed: boolean }> | null = null;
  /** While true, no byte passes either way and no close is passed on (blackhole()). */
  private blackholed = false;
  /** Per connection: stop moving its bytes (blackhole) / move them again (heal). */
  private readonly links = new Set<{ freeze(): void; thaw(): void }>();
  private listenPort = 0;
  private accepted = 0;
  private refused = 0;
  /** Live connections whose client closed while blackholed (its close held for the server until heal()). */
  private abandoned = 0;

  constructor(private readonly options: TcpProxyOptions) {}

  /** A proxy in front of the host and port of a URL (default ports for postgres, redis, amqp). */
  static forUrl(url: string): TcpProxy {
    const u = new URL(url);
    const defaults: Record<string, number> = {
      'postgresql:': 5432,
      'postgres:': 5432,
      'redis:': 6379,
      'amqp:': 5672,
      'amqps:': 5671,
      'http:': 80,
    };
    const port = u.port ? Number(u.port) : defaults[u.protocol];
    if (!port) throw new Error(`TcpProxy.forUrl: no port in ${u.protocol}//${u.host}`);
    return new TcpProxy({ targetHost: u.hostname || '127.0.0.1', targetPort: port });
  }

  /** Starts listening; resolves with the port to connect to. */
  async start(): Promise<number> {
    if (this.server) return this.listenPort;
    const server = net.createServer((client) => this.onConnection(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort ?? 0, this.options.listenHost ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as net.AddressInfo).port;
    return this.listenPort;
  }

  get port(): number {
    if (!this.server) throw new Error('TcpProxy: call start() first');
    return this.listenPort;
  }

  get host(): string {
    return this.options.listenHost ?? '127.0.0.1';
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewriteUrl(url: string): string {
    const u = new URL(url);
    u.hostname = this.host;
    u.port = String(this.port);
    return u.toString();
  }

  /** Connections currently passing through (client sides). */
  get connectionCount(): number {
    return this.clients.size;
  }

  /** `abandonedInBlackhole`: connections the client gave up on (closed) while blackholed. */
  get stats(): { accepted: number; refused: number; live: number; abandonedInBlackhole: number } {
    return {
      accepted: this.accepted,
      refused: this.refused,
      live: this.connectionCount,
      abandonedInBlackhole: this.abandoned,
    };
  }

  /** Destroys every live connection, client and server side. New ones still pass. */
  cut(): void {
    this.holding?.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.clients.clear();
  }

  /** Refuses new connections (accept, then close at once). Live ones are kept; call cut() too for an outage. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /**
   * Holds back what the server sends to every client (new connections too) until release(). Races a
   * client must survive: a query's answer and the server's close of the session arriving together.
   */
  hold(): void {
    this.holding ??= new Map();
  }

  /** Bytes held from the server so far, all connections together. */
  get heldBytes(): number {
    let n = 0;
    for (const h of this.holding?.values() ?? []) for (const c of h.chunks) n += c.length;
    return n;
  }

  /** True once a held connection's server side has closed (its close is held too). */
  get heldClose(): boolean {
    return [...(this.holding?.values() ?? [])].some((h) => h.closed);
  }

  /** Delivers each connection's held bytes in one write — followed by its close if the server closed meanwhile. */
  release(): void {
    const holding = this.holding;
    this.holding = null;
    for (const [client, h] of holding ?? []) {
      const data = Buffer.concat(h.chunks);
      if (h.closed) client.end(data, () => client.destroy());
      else if (data.length > 0) client.write(data);
    }
  }

  /**
   * A blackhole: from now on no byte passes in either direction, on live connections and on new ones (accepted, but
   * nothing reaches the server, so a client's connect or query never gets an answer), and nothing is closed: neither
   * side hears of the other, as when a network drops packets without a reset. What either side sends meanwhile, and
   * its close, is kept by the proxy.
   */
  blackhole(): void {
    if (this.blackholed) return;
    this.blackholed = true;
    for (const link of this.links) link.freeze();
  }

  /**
   * The connections live now go silent as in a blackhole (no byte passes either way, nothing is closed, a close is kept),
   * while new connections pass: a flow that a NAT or load balancer forgot without a reset, the server still there.
   * They stay silent until cut() or stop().
   */
  silenceLive(): void {
    for (const link of this.links) link.freeze();
  }

  get isBlackholed(): boolean {
    return this.blackholed;
  }

  /**
   * Ends the blackhole: what each side sent meanwhile is delivered, then its close if it closed — as TCP's
   * retransmissions deliver a peer's last bytes and FIN once the path is back. New connections pass again.
   */
  heal(): void {
    if (!this.blackholed) return;
    this.blackholed = false;
    for (const link of [...this.links]) link.thaw();
  }

  /** Cuts everything and closes the listener. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.cut();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    if (this.paused) {
      this.refused++;
      client.destroy();
      return;
    }
    this.accepted++;
    client.setNoDelay(true);
    this.sockets.add(client);
    this.clients.add(client);
    if (!this.blackholed) return this.link(client);
    // Accepted in a blackhole: nothing reaches the server (not even the connect) until heal().
    client.pause();
    client.on('error', () => undefined);
    const pending = {
      freeze: () => undefined,
      thaw: () => {
        this.links.delete(pending);
        if (!this.clients.has(client)) return;
        this.link(client);
        client.resume();
      },
    };
    this.links.add(pending);
  }

  private link(client: net.Socket): void {
    const upstream = net.connect({ host: this.options.targetHost, port: this.options.targetPort });
    upstream.setNoDelay(true);
    this.sockets.add(upstream);
    let clientGone = false;
    // While frozen (a blackhole), what each side sends, and its close, wait here; thaw() passes them on in order.
    let frozen: { toServer: Buffer[]; toClient: Buffer[]; clientClosed: boolean; serverClosed: boolean } | null = null;
    const link = {
      freeze: () => {
        frozen ??= { toServer: [], toClient: [], clientClosed: false, serverClosed: false };
      },
      thaw: () => {
        const f = frozen;
        frozen = null;
        if (!f || clientGone) return;
        for (const chunk of f.toServer) toServer(chunk);
        for (const chunk of f.toClient) toClient(chunk);
        if (f.clientClosed) upstream.end(() => close());
        else if (f.serverClosed) upstreamClosed();
      },
    };
    this.links.add(link);
    const close = () => {
      clientGone = true;
      this.links.delete(link);
      this.holding?.delete(client);
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      this.clients.delete(client);
    };
    const held = () => {
      const holding = this.holding;
      if (!holding) return undefined;
      let h = holding.get(client);
      if (!h) holding.set(client, (h = { chunks: [], closed: false }));
      return h;
    };
    const clientClosed = () => {
      if (!frozen) return close();
      if (!frozen.clientClosed) this.abandoned++;
      frozen.clientClosed = true;
    };
    client.on('error', clientClosed);
    client.on('close', clientClosed);
    // The server's close is held like its bytes (release() delivers both).
    const upstreamClosed = () => {
      if (clientGone) return;
      if (frozen) {
        frozen.serverClosed = true;
        return;
      }
      const h = held();
      if (!h) return close();
      h.closed = true;
      upstream.destroy();
      this.sockets.delete(upstream);
    };
    upstream.on('error', upstreamClosed);
    upstream.on('close', upstreamClosed);
    const toServer = (chunk: Buffer) => {
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };
    const toClient = (chunk: Buffer) => {
      const h = held();
      if (h) h.chunks.push(chunk);
      else if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    };
    client.on('data', (chunk: Buffer) => {
      if (frozen) frozen.toServer.push(chunk);
      else toServer(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (clientGone) return;
      if (frozen) frozen.toClient.push(chunk);
      else toClient(chunk);
    });
    if (this.blackholed) link.freeze();
  }
}
