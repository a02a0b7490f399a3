import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@fleetwatch/testing';

// Real sites for tests, started by the very code people run: `node tools/launcher/sites.mjs`
// (`npm run sites`) as a child process, on fresh resources of their own (--fresh, a unique
// --name, OS-picked ports) that it drops again when stopped (--drop-on-exit). Everything the
// launcher and its services print is kept: the launcher's own output here, each service's in
// the state dir's logs/<site>/<service>.log.

const root = join(__dirname, '../..');

export interface SitesService {
  name: string;
  port: number;
  pid: number;
  log: string;
}

export interface SitesSite {
  name: string;
  role: 'leader' | 'member';
  /** How the leader reads this member (null for the leader). */
  auth: 'basic' | 'token' | null;
  url: string;
  databaseUrl: string;
  vhost: string;
  redisPrefix: string;
  services: SitesService[];
}

/** tools/launcher/sites.mjs's state.json. */
export interface SitesState {
  name: string;
  pid: number;
  stateDir: string;
  secretsFile: string;
  adminUser: string;
  leaderConfig: { members: Array<{ name: string; propertyOverrides: Record<string, unknown> }> };
  sites: SitesSite[];
}

export interface RunningSites {
  state: SitesState;
  leader: SitesSite;
  members: SitesSite[];
  /** The launcher's own stdout and stderr so far. */
  launcherOutput(): string;
  /** Every service's whole log, by "site/service". */
  serviceLogs(): Map<string, string>;
  /** The members' API keys the launcher made for the leader (secrets.json). */
  tokens(): Record<string, string>;
  /** SIGINT to one service (graceful); resolves once it has gone. */
  stopService(site: string, service: string): Promise<void>;
  /** Ctrl-C to the launcher: it stops every service and drops the data. Resolves with its exit code. */
  stop(): Promise<number | null>;
}

export interface StartSitesOptions {
  count?: number;
  services?: string[];
  /** On top of this process's environment (its NODE_OPTIONS left out). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `sites.mjs` and waits until it has written state.json (every site ready). */
export async function startSites(options: StartSitesOptions = {}): Promise<RunningSites> {
  if (!existsSync(join(root, 'dist/apps/api-gateway/src/main.js'))) {
    const r = spawnSync(process.execPath, [join(root, 'tools/build/build.mjs')], { cwd: root, stdio: 'pipe' });
    if (r.status !== 0) throw new Error(`build failed: ${r.stderr.toString()}`);
  }
  const name = `fwt${randomBytes(4).toString('hex')}`;
  const stateDir = join(root, 'tmp', `sites-${name}`);
  const args = [
    join(root, 'tools/launcher/sites.mjs'),
    String(options.count ?? 3),
    '--name',
    name,
    '--state-dir',
    stateDir,
    '--base-port',
    'auto',
    '--fresh',
    '--drop-on-exit',
    '--no-build',
    '--quiet',
  ];
  if (options.services) args.push('--services', options.services.join(','));
  const base: Record<string, string | undefined> = { ...process.env };
  delete base['NODE_OPTIONS'];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    env: { ...base, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stateFile = join(stateDir, 'state.json');

  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`sites.mjs exited (${child.exitCode}) before the sites were up`);
        // The state file is written just before the launcher prints the sites' addresses;
        // its closing line says all of them are out (the pipe delivers them later than the file).
        return existsSync(stateFile) && output.includes('Press Ctrl-C to stop');
      },
      { timeoutMs: options.timeoutMs ?? 420_000, intervalMs: 500, description: 'sites.mjs state.json' },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- sites.mjs output ---\n${output.slice(-6000)}`);
  }
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as SitesState;
  const leader = state.sites.find((s) => s.role === 'leader') as SitesSite;
  const members = state.sites.filter((s) => s.role === 'member');

  const serviceLogs = (): Map<string, string> => {
    const logs = new Map<string, string>();
    const dir = join(stateDir, 'logs');
    for (const site of existsSync(dir) ? readdirSync(dir) : [])
      for (const file of readdirSync(join(dir, site))) {
        const path = join(dir, site, file);
        if (statSync(path).isFile()) logs.set(`${site}/${file.replace(/\.log$/, '')}`, readFileSync(path, 'utf8'));
      }
    return logs;
  };

  return {
    state,
    leader,
    members,
    launcherOutput: () => output,
    serviceLogs,
    tokens: () => (JSON.parse(readFileSync(state.secretsFile, 'utf8')) as { tokens: Record<string, string> }).tokens,
    async stopService(siteName, service) {
      const svc = state.sites.find((s) => s.name === siteName)?.services.find((s) => s.name === service);
      if (!svc) throw new Error(`no service ${service} in site ${siteName}`);
      if (alive(svc.pid)) process.kill(svc.pid, 'SIGINT');
      await waitFor(() => !alive(svc.pid), { timeoutMs: 30_000, intervalMs: 100, description: `${service} exit` });
    },
    stop,
  };
}
