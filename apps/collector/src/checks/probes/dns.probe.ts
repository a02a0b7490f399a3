import { parseIp } from '@fleetwatch/contracts';
import { formatIp } from '@fleetwatch/domain';
import { Resolver } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { failureReasonOf, resolveAllowed } from '../net';
import type { Probe, ProbeContext } from '../probe';
import { roundMs } from './tcp.probe';

type RecordType = Parameters<Probe<'dns'>>[0]['recordType'];

/**
 * dns: query `query` for one record type at the check's resolver (host or host:port;
 * the resolver is a target like any other, so its address goes through the policy), or
 * at COLLECTOR_DNS_SERVERS, or at the system's servers (/etc/resolv.conf). Answers
 * become text as `dig +short` writes them (`10 mail.example.`, TXT strings joined);
 * UP when there is at least one and every `expected` entry is among them (names without case or final dot,
 * addresses as addresses, TXT data exactly).
 */
export const dnsProbe: Probe<'dns'> = async (check, ctx) => {
  const resolver = new Resolver({ timeout: Math.max(500, Math.min(ctx.timeoutMs, 5_000)), tries: 2 });
  const onAbort = (): void => resolver.cancel();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const servers = await serversFor(check.resolver, ctx);
    if (servers) resolver.setServers(servers);
    const started = performance.now();
    const name = check.recordType === 'PTR' ? reverseName(check.query) : check.query;
    const answers = await query(resolver, name, check.recordType);
    const latencyMs = roundMs(performance.now() - started);
    const missing = check.expected.filter((e) => !answers.some((a) => answerMatches(check.recordType, a, e)));
    const failureReason =
      answers.length === 0
        ? `no ${check.recordType} records for ${check.query}${name === check.query ? '' : ` (${name})`}`
        : missing.length > 0
          ? `expected ${missing.map((m) => JSON.stringify(m)).join(', ')} not in answers [${answers.join(', ')}]`
          : undefined;
    return failureReason
      ? { ok: false, latencyMs, failureReason, facts: { answers } }
      : { ok: true, latencyMs, facts: { answers } };
  } catch (err) {
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: { answers: [] } };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
};

async function serversFor(resolver: string | undefined, ctx: ProbeContext): Promise<string[] | null> {
  if (!resolver) return ctx.dnsServers?.length ? [...ctx.dnsServers] : null;
  const { host, port } = splitResolver(resolver);
  // The schema refuses such a port; a check stored before it did must not reach c-ares: port 0 fails a native
  // assertion there (the whole collector aborts, no handler runs), and one above 65535 is wrapped to another port.
  if (!(Number.isInteger(port) && port >= 1 && port <= 65_535))
    throw new Error(`resolver "${resolver}": the port must be 1–65535`);
  const { address, family } = await resolveAllowed(host, ctx.policy, { signal: ctx.signal, resolver: ctx.dnsServers });
  return [family === 6 ? `[${address}]:${port}` : `${address}:${port}`];
}

/** `host`, `host:port`, `[v6]:port` or a bare IPv6 address (the schema's forms). */
export function splitResolver(text: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1], port: Number(bracketed[2] ?? 53) };
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const [host, port] = text.split(':');
    return { host, port: Number(port) };
  }
  return { host: text, port: 53 };
}

const fqdn = (name: string): string => (name.endsWith('.') ? name : `${name}.`);

/**
 * A PTR check's query given as an address (`192.0.2.7`, `2001:db8::1`, as the schema allows) is asked as its reverse
 * name (`7.2.0.192.in-addr.arpa`, nibbles under ip6.arpa): c-ares asked for the literal, and every run failed with
 * ENOTFOUND. A name is asked as it is.
 */
export function reverseName(query: string): string {
  const ip = parseIp(query);
  if (!ip) return query;
  if (ip.version === 4) return `${[...ip.bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles = [...ip.bytes].flatMap((b) => [b >> 4, b & 15]);
  return `${nibbles
    .reverse()
    .map((n) => n.toString(16))
    .join('.')}.ip6.arpa`;
}

async function query(r: Resolver, name: string, type: RecordType): Promise<string[]> {
  try {
    switch (type) {
      case 'A':
        return await r.resolve4(name);
      case 'AAAA':
        return await r.resolve6(name);
      case 'CNAME':
        // c-ares reads a CNAME answer as it reads an A answer and gives the end of the alias chain: the queried name
        // itself when the answer holds no CNAME (a server answering every type with the name's A records). That is no
        // alias (a name cannot alias itself); it read as one, UP, and matched `expected` naming the query.
        return (await r.resolveCname(name)).map(fqdn).filter((a) => !sameAnswer(a, name));
      case 'NS':
        return (await r.resolveNs(name)).map(fqdn);
      case 'PTR':
        return (await r.resolvePtr(name)).map(fqdn);
      case 'MX':
        return (await r.resolveMx(name)).map((m) => `${m.priority} ${fqdn(m.exchange)}`);
      case 'TXT':
        // A TXT record is one value split into ≤255-byte strings: joined back as one.
        return (await r.resolveTxt(name)).map((chunks) => chunks.join(''));
      case 'SRV':
        return (await r.resolveSrv(name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${fqdn(s.name)}`);
      case 'SOA': {
        const s = await r.resolveSoa(name);
        return [`${fqdn(s.nsname)} ${fqdn(s.hostmaster)} ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minttl}`];
      }
      case 'CAA':
        return (await r.resolveCaa(name)).map((c) => {
          const { critical, ...rest } = c;
          const [tag, value] = Object.entries(rest)[0] ?? ['', ''];
          return `${critical} ${tag} "${String(value)}"`;
        });
    }
  } catch (err) {
    // The name exists without records of this type: no answers, not an error.
    if ((err as NodeJS.ErrnoException).code === 'ENODATA') return [];
    throw err;
  }
}

/**
 * Does an answer match an expected entry? A TXT record is data, not a name: compared exactly (a DKIM key, a site
 * verification token, `v=spf1 -all` are case-sensitive; `ABC` matched `abc` and a final dot was dropped: UP on the
 * wrong value); only the expected entry is trimmed. Every other type as sameAnswer.
 */
export function answerMatches(type: RecordType, answer: string, expected: string): boolean {
  // Whitespace around an expected entry (pasted, or from YAML) is no part of the value: trimmed, as it always was.
  return type === 'TXT' ? answer === expected.trim() : sameAnswer(answer, expected);
}

/** Case-insensitive, a final dot optional, addresses compared as addresses (`2001:DB8:0::1` = `2001:db8::1`). */
export function sameAnswer(answer: string, expected: string): boolean {
  const norm = (s: string): string => {
    const t = s.trim().toLowerCase().replace(/\.$/, '');
    const ip = parseIp(t);
    return ip ? formatIp(ip) : t;
  };
  return norm(answer) === norm(expected);
}
