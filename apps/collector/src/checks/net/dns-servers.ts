import { parseIp } from '@fleetwatch/contracts';
import { z } from 'zod';

// COLLECTOR_DNS_SERVERS: the resolvers the collector asks for check targets instead of
// the system's (getaddrinfo: /etc/hosts, then /etc/resolv.conf). Entries are addresses,
// never names (a resolver found through another resolver is a loop), each with an
// optional port, in the forms Node's Resolver.setServers reads: `10.0.0.53`,
// `10.0.0.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`.

/** One resolver entry as setServers takes it, or null when it is not an address[:port]. */
export function parseDnsServer(text: string): string | null {
  const t = text.trim();
  let host = t;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t);
  if (bracketed) [, host, port] = bracketed;
  else if (/^[^:]+:\d{1,5}$/.test(t)) [host, port] = t.split(':');
  const ip = parseIp(host);
  if (!ip || host.includes('%')) return null;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) return null;
  if (ip.version === 4) return port ? `${host}:${port}` : host;
  return port ? `[${host}]:${port}` : host;
}

/** The env var's schema: comma-separated entries; empty (the default) = the system resolver. */
export function dnsServersEnv() {
  return z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    )
    .superRefine((list, ctx) => {
      for (const entry of list)
        if (parseDnsServer(entry) === null)
          ctx.addIssue({
            code: 'custom',
            message: `"${entry}" is not a resolver address (e.g. 10.0.0.53, 10.0.0.53:5353 or [2001:db8::53]:53)`,
          });
    })
    .transform((list) => list.map((entry) => parseDnsServer(entry) as string));
}
