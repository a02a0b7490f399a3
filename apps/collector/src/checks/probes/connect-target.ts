import { isIP } from 'node:net';
import type { Options, SocketOptions } from 'amqplib';
import { failureReasonOf, resolveAllowed } from '../net';
import type { ProbeContext } from '../probe';
import { redactSecrets } from './service-metrics';

// What the connection-based probes (redis, redis-stats, postgres, postgres-stats, amqp,
// rabbitmq-queues, rabbitmq-tap) share before their first byte: the attempt's signal, the
// password from `passwordEnv`, a failure text that never carries that password, the address
// the target policy allowed (what the client connects to; TLS names stay the check's host),
// and the clients' connect options. The Redis and pg clients are in redis-client.ts and
// pg-client.ts, so that only the probes that use them load ioredis and pg (lazily, see registry.ts).

/** An attempt's signal, password and failure text. */
export interface Attempt<P extends string | undefined> {
  /** The run's signal, the check's timeout and `also`. */
  signal: AbortSignal;
  password: P;
  /** failureReasonOf with the password redacted. */
  reasonOf(err: unknown): string;
}

/** Why an attempt ends before connecting (the probe wraps it in its own failure outcome). */
export interface NoAttempt {
  failure: string;
}

/**
 * The attempt's signal and the password named by `passwordEnv` (else `fallback`); a failure
 * when that environment variable is not set on this collector.
 */
export function attemptSecret<P extends string | undefined>(
  check: { passwordEnv?: string },
  ctx: ProbeContext,
  fallback: P,
  also?: AbortSignal,
): NoAttempt | Attempt<string | P> {
  const signals = [ctx.signal, deadlineSignal(ctx.timeoutMs)];
  if (also) signals.push(also);
  const signal = AbortSignal.any(signals);
  let password: string | P = fallback;
  if (check.passwordEnv !== undefined) {
    const value = ctx.env[check.passwordEnv];
    if (value === undefined)
      return { failure: `environment variable ${check.passwordEnv} (passwordEnv) is not set on this collector` };
    password = value;
  }
  const reasonOf = (err: unknown) =>
    redactSecrets(failureReasonOf(err, { signal, timeoutMs: ctx.timeoutMs }), password);
  return { signal, password, reasonOf };
}

/**
 * A signal aborted with a TimeoutError after `ms`, as AbortSignal.timeout's. Node 20 holds an AbortSignal.timeout only
 * weakly, and AbortSignal.any holds its sources weakly too: after a garbage collection the deadline was gone, and the
 * attempt ran on for as long as the server kept its socket open. A timer holds this one until it fires.
 */
export function deadlineSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    ms,
  ).unref();
  return controller.signal;
}

/** attemptSecret, then the check's host resolved to an address the target policy allows. */
export async function connectTarget<P extends string | undefined>(
  check: { host: string; passwordEnv?: string },
  ctx: ProbeContext,
  fallback: P,
  also?: AbortSignal,
): Promise<NoAttempt | Target<string | P>> {
  const attempt = attemptSecret(check, ctx, fallback, also);
  if ('failure' in attempt) return attempt;
  try {
    const { address } = await resolveAllowed(check.host, ctx.policy, {
      signal: attempt.signal,
      resolver: ctx.dnsServers,
    });
    return { ...attempt, address };
  } catch (err) {
    return { failure: attempt.reasonOf(err) };
  }
}

/** TLS server name: the check's host unless it is an address. */
export const servername = (host: string): string | undefined => (isIP(host) ? undefined : host);

/** A connected target: the attempt, and the address the target policy allowed. */
export type Target<P extends string | undefined> = Attempt<P> & { address: string };

/**
 * amqplib's connect() arguments. amqplib makes its socket inside connect(), out of our reach:
 * `signal` goes into the socket options, so Node destroys that socket on abort.
 */
export function amqpConnectArgs(
  check: { host: string; port: number; username: string; vhost: string; tls?: boolean },
  address: string,
  password: string,
  socket: { signal: AbortSignal; heartbeat: number; connectionName: string; timeout?: number },
): [Options.Connect, SocketOptions & { signal: AbortSignal }] {
  const socketOptions: SocketOptions & { signal: AbortSignal } = {
    signal: socket.signal,
    noDelay: true,
    clientProperties: { connection_name: socket.connectionName },
  };
  if (socket.timeout !== undefined) socketOptions.timeout = socket.timeout;
  if (check.tls) {
    socketOptions.rejectUnauthorized = true;
    const name = servername(check.host);
    if (name !== undefined) socketOptions.servername = name;
  }
  const url: Options.Connect = {
    protocol: check.tls ? 'amqps' : 'amqp',
    hostname: address,
    port: check.port,
    username: check.username,
    password,
    // amqplib unescapes the vhost it is given; escaped here, it arrives exactly as written.
    vhost: encodeURIComponent(check.vhost),
    heartbeat: socket.heartbeat,
  };
  return [url, socketOptions];
}

/** The broker refused Connection.Open (RabbitMQ: 530 NOT_ALLOWED); amqplib keeps only the frame's name. */
export function vhostRefused(err: unknown): boolean {
  return /^Expected ConnectionOpenOk; got <ConnectionClose/.test(String((err as Error).message));
}
