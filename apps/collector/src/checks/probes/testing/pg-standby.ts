import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closedPort, type PrivatePostgres } from '../probes.int-helpers';

// A streaming-replication standby of a private cluster (probes.int-helpers.ts), for the
// postgres-stats replication figures: pg_basebackup -R from the primary over TCP (the
// primary's initdb allows replication from 127.0.0.1 with its SCRAM password), then a hot
// standby on a port of its own. As root it runs as the `postgres` user, like the primary.

const run = promisify(execFile);

async function bin(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root)).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0], 'bin');
}

export async function startStandby(primary: PrivatePostgres, password: string): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'fw-probe-pg-standby-'));
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[], env: Record<string, string> = {}) =>
    asRoot
      ? run('runuser', [
          '-u',
          'postgres',
          '--',
          'env',
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          cmd,
          ...args,
        ])
      : run(cmd, args, { env: { ...process.env, ...env } });
  if (asRoot) {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    await chown(dir, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
  }
  const b = await bin();
  const data = join(dir, 'data');
  await as(
    join(b, 'pg_basebackup'),
    ['-h', '127.0.0.1', '-p', String(primary.port), '-U', primary.user, '-D', data, '-R', '-X', 'stream', '--no-sync'],
    { PGPASSWORD: password },
  );
  const port = await closedPort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c hot_standby=on -c shared_buffers=8MB -c max_connections=30`;
  await as(join(b, 'pg_ctl'), ['-D', data, '-w', '-t', '30', '-o', opts, '-l', join(dir, 'log'), 'start']);
  return {
    port,
    user: primary.user,
    async stop() {
      await as(join(b, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
