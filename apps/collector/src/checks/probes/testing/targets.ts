import { once } from 'node:events';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type { TestCertificate } from './tls-certs';

// Real local targets for the probe tests: HTTP/HTTPS servers and a bare TCP listener
// that counts every connection it is offered (the SSRF canary: a denied address must
// never see one).

export interface TestTarget {
  host: string;
  port: number;
  /** `http://host:port` or `https://host:port` (IPv6 in brackets). */
  origin: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

function track(server: Server | ReturnType<typeof createTcpServer>, host: string, scheme: string): TestTarget {
  const sockets = new Set<Socket>();
  let count = 0;
  server.on('connection', (s: Socket) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    origin: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    connections: () => count,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startHttpTarget(handler: RequestListener, host = '127.0.0.1'): Promise<TestTarget> {
  const server = createHttpServer(handler);
  server.listen(0, host);
  await once(server, 'listening');
  return track(server, host, 'http');
}

export async function startHttpsTarget(
  cert: TestCertificate,
  handler: RequestListener,
  host = '127.0.0.1',
): Promise<TestTarget> {
  const server = createHttpsServer({ key: cert.key, cert: cert.cert }, handler);
  server.listen(0, host);
  await once(server, 'listening');
  return track(server, host, 'https');
}

/** A TCP listener that accepts and counts; it answers nothing. */
export async function startCanary(host: string, port = 0): Promise<TestTarget> {
  const server = createTcpServer((s) => s.on('error', () => undefined));
  server.listen(port, host);
  await once(server, 'listening');
  return track(server, host, 'http');
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
