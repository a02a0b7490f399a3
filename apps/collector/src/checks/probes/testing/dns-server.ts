import type { AddressInfo } from 'node:net';

// A real DNS server (dns2 over UDP on 127.0.0.1) for the probe and policy tests: answers
// come from a function of (name, type) and every query is recorded, so a test can make
// a name change its answer between lookups (rebinding) and count what was asked.

export type TestRecord =
  | { type: 'A' | 'AAAA'; address: string }
  | { type: 'MX'; priority: number; exchange: string }
  | { type: 'TXT'; data: string | string[] }
  | { type: 'CNAME' | 'PTR'; domain: string }
  | { type: 'NS'; ns: string };

export interface TestDnsServer {
  /** `127.0.0.1:port`, as a check's `resolver` or COLLECTOR_DNS_SERVERS entry. */
  address: string;
  queries: { name: string; type: string }[];
  close(): Promise<void>;
}

interface Dns2Question {
  name: string;
  type: number;
}
interface Dns2Packet {
  header: { qr: number; rcode: number; ra: number; aa: number };
  questions: Dns2Question[];
  answers: Record<string, unknown>[];
}
interface Dns2UdpServer {
  on(event: 'request', fn: (req: Dns2Packet, send: (res: Dns2Packet) => Promise<unknown>) => void): void;
  listen(port: number, address: string): Promise<void>;
  address(): AddressInfo;
  close(cb: () => void): void;
}
interface Dns2Module {
  Packet: {
    new (req: Dns2Packet): Dns2Packet;
    createResponseFromRequest(req: Dns2Packet): Dns2Packet;
    TYPE: Record<string, number>;
    CLASS: Record<string, number>;
  };
  createUDPServer(options: { type: 'udp4' }): Dns2UdpServer;
}
// dns2 ships no types; this is the part the tests use.
const dns2 = require('dns2') as Dns2Module;

/** `answer` returns the records for a question, or null for NXDOMAIN. */
export async function startDnsServer(
  answer: (name: string, type: string) => TestRecord[] | null,
): Promise<TestDnsServer> {
  const { Packet } = dns2;
  const typeName = (code: number): string =>
    Object.keys(Packet.TYPE).find((k) => Packet.TYPE[k] === code) ?? String(code);
  const queries: { name: string; type: string }[] = [];
  const server = dns2.createUDPServer({ type: 'udp4' });
  server.on('request', (req, send) => {
    const res = Packet.createResponseFromRequest(req);
    const [q] = req.questions;
    const type = typeName(q.type);
    queries.push({ name: q.name, type });
    const records = answer(q.name.toLowerCase(), type);
    if (records === null) res.header.rcode = 3;
    // TTL 0: nothing may cache an answer between two lookups of a test.
    else
      for (const r of records)
        res.answers.push({ name: q.name, class: Packet.CLASS.IN, ttl: 0, ...r, type: Packet.TYPE[r.type] });
    void send(res);
  });
  await server.listen(0, '127.0.0.1');
  return {
    address: `127.0.0.1:${server.address().port}`,
    queries,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
