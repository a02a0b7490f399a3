import net from 'node:net';

/**
 * A TCP proxy the test owns that passes what clients send to the server at most `bytesPerSecond`
 * (a slow WAN link, or a broker that takes its messages in slowly), reading the client as fast as it
 * writes — as a broker's socket buffers do — so what was sent and is not through yet queues here, in
 * order. What the server sends back arrives `replyDelayMs` late (a broker that confirms late).
 * `queuedBytes` is the backlog; `forwardedBytes` what passed.
 */
export class SlowLink {
  private server: net.Server | undefined;
  private readonly links = new Set<{ client: net.Socket; upstream: net.Socket; queue: Buffer[] }>();
  private timer: NodeJS.Timeout | undefined;
  private listenPort = 0;
  forwardedBytes = 0;
  /** How late what the server sends reaches the client. */
  replyDelayMs = 0;

  constructor(
    private readonly target: { host: string; port: number },
    public bytesPerSecond: number,
  ) {}

  static forUrl(url: string, bytesPerSecond: number): SlowLink {
    const u = new URL(url);
    return new SlowLink({ host: u.hostname || '127.0.0.1', port: Number(u.port || 5672) }, bytesPerSecond);
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => this.onConnection(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.listenPort = (server.address() as net.AddressInfo).port;
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.pump(now - last);
      last = now;
    }, 10);
  }

  rewriteUrl(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.listenPort);
    return u.toString();
  }

  get queuedBytes(): number {
    let n = 0;
    for (const l of this.links) for (const b of l.queue) n += b.length;
    return n;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const l of this.links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    this.links.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private budget = 0;

  /** Lets through what the rate allows for `elapsedMs` (timer ticks run late on a busy machine: the rate holds). */
  private pump(elapsedMs: number): void {
    this.budget = Math.min(this.budget + (this.bytesPerSecond * elapsedMs) / 1000, this.bytesPerSecond / 10);
    for (const l of this.links) {
      while (l.queue.length > 0 && this.budget >= 1) {
        const head = l.queue[0];
        const n = Math.min(head.length, Math.floor(this.budget));
        if (n === 0) break;
        l.upstream.write(head.subarray(0, n));
        this.forwardedBytes += n;
        this.budget -= n;
        if (n === head.length) l.queue.shift();
        else l.queue[0] = head.subarray(n);
      }
    }
  }

  private onConnection(client: net.Socket): void {
    const upstream = net.connect(this.target);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const link = { client, upstream, queue: [] as Buffer[] };
    this.links.add(link);
    const close = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    client.on('close', close);
    upstream.on('error', close);
    upstream.on('close', close);
    client.on('data', (chunk: Buffer) => link.queue.push(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (this.replyDelayMs <= 0) client.write(chunk);
      else setTimeout(() => !client.destroyed && client.write(chunk), this.replyDelayMs);
    });
  }
}
