import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkResultPayloadSchema } from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import type { ProbeContext, ProbeOutcome } from '../probe';

// Support for the probes' integration tests: a probe context, real listeners that count
// what reaches them, a count of this process's open sockets, and a private Postgres
// cluster (the shared server trusts every local connection, so a wrong password can
// only be shown on a server that asks for one).

const run = promisify(execFile);

export function probeContext(over: Partial<ProbeContext> = {}): ProbeContext {
  return {
    signal: new AbortController().signal,
    timeoutMs: 5000,
    policy: createTargetPolicy([]),
    env: {},
    ...over,
  };
}

/** TCP sockets (client and server side) open in this process, as libuv counts them. */
export function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TLSWrap').length;
}

/** Waits (up to 3 s) for the open-socket count to come back to `baseline`; returns the last count. */
export async function socketsSettle(baseline: number): Promise<number> {
  const until = Date.now() + 3000;
  let n = openSockets();
  while (n > baseline && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 25));
    n = openSockets();
  }
  return n;
}

/** A listener on 127.0.0.1 that accepts and never says a word: a server that hangs. */
export interface SilentListener {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections still open from the far side. */
  open(): number;
  close(): Promise<void>;
}

export async function silentListener(host = '127.0.0.1'): Promise<SilentListener> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const server: Server = createServer((s) => {
    state.accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    // Read (and drop) what arrives, so the far side's FIN is seen and the socket closes.
    s.resume();
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get accepted() {
      return state.accepted;
    },
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound, then released). */
/**
 * A server that answers each connection's first bytes with `header(data)` (null: not yet, wait for more) and then
 * streams filler up to `total` bytes without ending the message: a peer announcing a huge answer. `connections` are
 * the sockets still open (a probe must drop them); `sent.bytes` what was streamed.
 */
export async function floodingServer(
  header: (data: Buffer, socket: Socket) => string | Buffer | null,
  total: number,
): Promise<{
  server: Server;
  port: number;
  connections: Set<Socket>;
  sent: { bytes: number };
  /** Asserts the prober cut the flood: every connection closed within 3 s, less than `total` sent. */
  expectCut(): Promise<void>;
  /** Destroys what is left open and closes the server. */
  close(): Promise<void>;
}> {
  const connections = new Set<Socket>();
  const sent = { bytes: 0 };
  const server = createServer((s) => {
    connections.add(s);
    s.on('close', () => connections.delete(s));
    s.on('error', () => undefined);
    let started = false;
    s.on('data', (data) => {
      if (started) return;
      const head = header(data, s);
      if (head === null) return;
      started = true;
      s.write(head);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = (): void => {
        while (sent.bytes < total && !s.destroyed) {
          sent.bytes += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as { port: number }).port,
    connections,
    sent,
    async expectCut() {
      const until = Date.now() + 3000;
      while (connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(connections.size).toBe(0);
      expect(sent.bytes).toBeLessThan(total);
    },
    async close() {
      for (const s of connections) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PrivatePostgres {
  port: number;
  user: string;
  stop(): Promise<void>;
}

async function postgresBin(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v));
  if (versions.length === 0)
    throw new Error(`no PostgreSQL server binaries under ${root}: the password tests need initdb and pg_ctl`);
  return join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}

/**
 * A throwaway Postgres cluster on 127.0.0.1 that asks for a SCRAM password (about 2 s
 * to start). initdb refuses to run as root, so as root it runs as the `postgres` user.
 */
export async function startPrivatePostgres(user: string, password: string): Promise<PrivatePostgres> {
  const bin = await postgresBin();
  const dir = await mkdtemp(join(tmpdir(), 'fw-probe-pg-'));
  const asRoot = process.getuid?.() === 0;
  const as = async (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    owner = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  const pwfile = join(dir, 'pw');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    await chown(dir, owner.uid, owner.gid);
    await chown(pwfile, owner.uid, owner.gid);
  }
  const data = join(dir, 'data');
  await as(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    user,
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);
  await rm(pwfile);
  const port = await closedPort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=8MB -c max_connections=30`;
  await as(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '30', '-o', opts, '-l', join(dir, 'log'), 'start']);
  return {
    port,
    user,
    async stop() {
      await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A probe's outcome as the collector publishes it, checked against the `check.result` contract (its bounds). */
export function asCheckResult(out: Pick<ProbeOutcome, 'ok' | 'latencyMs' | 'failureReason' | 'metrics'>) {
  return checkResultPayloadSchema.safeParse({
    checkId: 'c',
    targetId: 'check:c',
    location: 'here',
    ok: out.ok,
    latencyMs: out.latencyMs,
    ...(out.failureReason === undefined ? {} : { failureReason: out.failureReason }),
    startedAt: new Date().toISOString(),
    ...(out.metrics === undefined ? {} : { metrics: out.metrics }),
  });
}
