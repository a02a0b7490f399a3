import { readFileSync } from 'node:fs';
import net from 'node:net';

export interface FreePortOptions {
  /** Lowest port drawn (default 10,000). */
  from?: number;
  /** Highest port drawn (default: below the kernel's ephemeral range, 32,767 where it cannot be read). */
  to?: number;
  /** Draws before giving up (default 50). */
  attempts?: number;
}

/**
 * The low end of the range the kernel takes outgoing connections' ports from (Linux: 32,768 by default). A port
 * drawn in that range can be taken by any connection the machine opens before the service under test binds it.
 */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > 1024 ? n : 32_768;
  } catch {
    return 32_768;
  }
}

function bind(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => resolve(server));
  });
}

const close = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/**
 * `count` consecutive ports nothing listens on now, drawn at random below the kernel's ephemeral range so that no
 * outgoing connection takes one before the service binds it (two test files drawing at once collide only if they
 * draw the same block while neither has bound it yet). Each port is bound once to prove it free, then released.
 */
export async function freePortBlock(count: number, options: FreePortOptions = {}): Promise<number> {
  const from = options.from ?? 10_000;
  const to = options.to ?? Math.min(ephemeralLow() - 1, 65_535);
  const attempts = options.attempts ?? 50;
  if (!Number.isInteger(count) || count < 1) throw new Error(`freePortBlock: count must be a positive integer`);
  if (to - from + 1 < count) throw new Error(`freePortBlock: ${from}–${to} holds fewer than ${count} ports`);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const base = from + Math.floor(Math.random() * (to - from + 2 - count));
    const bound: net.Server[] = [];
    let free = true;
    for (let port = base; port < base + count; port++) {
      const server = await bind(port);
      if (!server) {
        free = false;
        break;
      }
      bound.push(server);
    }
    await Promise.all(bound.map(close));
    if (free) return base;
  }
  throw new Error(`freePortBlock: no ${count} free consecutive port(s) in ${from}–${to} after ${attempts} draws`);
}
