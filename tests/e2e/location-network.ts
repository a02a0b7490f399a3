import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

// Two locations on one machine, made real: each collector asks its own DNS server
// (COLLECTOR_DNS_SERVERS), which answers every name under `.e2e.test` with the
// location's own loopback address (eu → 127.0.0.2, us → 127.0.0.3). A check's target
// is then one host name and port, served by one TCP listener per location address;
// closing a location's listener makes the check fail from that location alone, with the
// collector's own connect getting a real ECONNREFUSED. Every A query is recorded with
// its time: a run of a check at a location is one lookup of its name at that location's
// server, so the query log is a per-location run log the test reads without the product.

export const E2E_ZONE = 'e2e.test';

export interface DnsQuery {
  name: string;
  at: number;
}

export interface LocationDns {
  /** `127.0.0.1:port`, for COLLECTOR_DNS_SERVERS. */
  server: string;
  /** A queries, in arrival order. */
  queries: DnsQuery[];
  /** Times of the A queries for `name` (a check's runs at this location). */
  runsOf(name: string, since?: number): number[];
  close(): Promise<void>;
}

interface Dns2Packet {
  header: { rcode: number };
  questions: { name: string; type: number }[];
  answers: Record<string, unknown>[];
}
interface Dns2Module {
  Packet: {
    createResponseFromRequest(req: Dns2Packet): Dns2Packet;
    TYPE: Record<string, number>;
    CLASS: Record<string, number>;
  };
  createUDPServer(options: { type: 'udp4' }): {
    on(event: 'request', fn: (req: Dns2Packet, send: (res: Dns2Packet) => Promise<unknown>) => void): void;
    listen(port: number, address: string): Promise<void>;
    address(): AddressInfo;
    close(cb: () => void): void;
  };
}
// dns2 ships no types; this is the part used here.
const dns2 = require('dns2') as Dns2Module;

/** A DNS server for one location: every `*.e2e.test` has one A record, `address`; other names do not exist. */
export async function startLocationDns(address: string): Promise<LocationDns> {
  const { Packet } = dns2;
  const queries: DnsQuery[] = [];
  const server = dns2.createUDPServer({ type: 'udp4' });
  server.on('request', (req, send) => {
    const res = Packet.createResponseFromRequest(req);
    const [q] = req.questions;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    if (name !== E2E_ZONE && !name.endsWith(`.${E2E_ZONE}`)) res.header.rcode = 3;
    else if (q.type === Packet.TYPE['A']) {
      queries.push({ name, at: Date.now() });
      // TTL 0: every run asks again, so every run is seen.
      res.answers.push({ name: q.name, type: Packet.TYPE['A'], class: Packet.CLASS['IN'], ttl: 0, address });
    }
    // AAAA and the rest: the name exists, no records of that type.
    void send(res);
  });
  await server.listen(0, '127.0.0.1');
  return {
    server: `127.0.0.1:${server.address().port}`,
    queries,
    runsOf: (name, since = 0) => queries.filter((q) => q.name === name && q.at >= since).map((q) => q.at),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A TCP listener on one location's address and a port, that the test opens and closes. */
export class LocationListener {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Accepted connections' times. */
  readonly accepted: number[] = [];

  constructor(
    readonly address: string,
    public port: number,
  ) {}

  get isOpen(): boolean {
    return this.server !== null;
  }

  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((socket) => {
      this.accepted.push(Date.now());
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.address, () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening: a connect from now on is refused (ECONNREFUSED). */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One target port served at every location's address; open/close per location. */
export class LocationTarget {
  readonly listeners: Record<string, LocationListener>;

  private constructor(
    readonly host: string,
    readonly port: number,
    listeners: Record<string, LocationListener>,
  ) {
    this.listeners = listeners;
  }

  /**
   * `host` is `<label>.e2e.test`; `addresses` maps a location to its address. Finds a
   * port free on every address (the first listener's pick, tried on the others).
   */
  static async start(label: string, addresses: Record<string, string>): Promise<LocationTarget> {
    const entries = Object.entries(addresses);
    for (let attempt = 0; attempt < 20; attempt++) {
      const first = new LocationListener(entries[0][1], 0);
      await first.open();
      const listeners: Record<string, LocationListener> = { [entries[0][0]]: first };
      try {
        for (const [location, address] of entries.slice(1)) {
          const l = new LocationListener(address, first.port);
          await l.open();
          listeners[location] = l;
        }
        return new LocationTarget(`${label}.${E2E_ZONE}`, first.port, listeners);
      } catch {
        await Promise.all(Object.values(listeners).map((l) => l.close()));
      }
    }
    throw new Error(`no port free on all of ${entries.map(([, a]) => a).join(', ')}`);
  }

  at(location: string): LocationListener {
    const l = this.listeners[location];
    if (!l) throw new Error(`target ${this.host} has no listener at ${location}`);
    return l;
  }

  async closeAll(): Promise<void> {
    await Promise.all(Object.values(this.listeners).map((l) => l.close()));
  }
}
