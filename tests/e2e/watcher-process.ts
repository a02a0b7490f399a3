import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '@fleetwatch/testing';
import type { E2eSite } from './site-launcher';

// A built watcher daemon (apps/docker-watcher, apps/k8s-watcher) run as its own process against a site, as an
// outside daemon runs: what both watchers' e2e specs share (start, output, /metrics, kill, target status).

type Target = { status: string; locations: { location: string; status: string }[] };

export class WatcherProcess {
  private output = '';

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    const keep = (c: Buffer) => (this.output = (this.output + c.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** `env` on top of this process's, less NODE_OPTIONS and the variables named in `unset`. */
  static start(
    site: E2eSite,
    app: 'docker-watcher' | 'k8s-watcher',
    port: number,
    env: Record<string, string>,
    unset: string[] = [],
  ): WatcherProcess {
    const base: Record<string, string | undefined> = { ...process.env };
    for (const name of ['NODE_OPTIONS', ...unset]) delete base[name];
    const child = spawn(process.execPath, [join(site.dir, `dist/apps/${app}/src/main.js`)], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WatcherProcess(child, port);
  }

  /** The last 8,000 characters the watcher wrote (for failure messages). */
  get log(): string {
    return this.output;
  }

  async metrics(): Promise<Record<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    return Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' '))
        .map(([k, v]) => [k as string, Number(v)]),
    );
  }

  /** Sends `signal` and waits for the exit; a daemon still running 20 s later fails the test, with its log. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const w = this.child;
    if (w.exitCode !== null || w.signalCode !== null) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        w.once('exit', () => resolve());
        timer = setTimeout(() => {
          w.kill('SIGKILL');
          reject(new Error(`the watcher did not exit within 20 s of ${signal}\n--- watcher ---\n${this.output}`));
        }, 20_000);
        w.kill(signal);
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The gateway's view of a pushed instance, or null while it has none. */
export async function instanceTarget(site: E2eSite, token: string, id: string): Promise<Target | null> {
  const r = await fetch(`${site.service('api-gateway').url}/api/v1/targets/instance:${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return r.status === 200 ? ((await r.json()) as Target) : null;
}

/** Waits until `holds` (polled every 200 ms, 60 s at most); on timeout the error shows the instance and the log. */
async function waitForInstance(
  site: E2eSite,
  token: string,
  watcher: WatcherProcess | null,
  id: string,
  holds: () => Promise<boolean>,
  what: string,
): Promise<void> {
  try {
    await waitFor(holds, { timeoutMs: 60_000, intervalMs: 200, description: what });
  } catch (e) {
    const now = JSON.stringify(await instanceTarget(site, token, id));
    throw new Error(`${(e as Error).message}\nnow: ${now}\n--- watcher ---\n${watcher?.log ?? ''}`);
  }
}

/** Waits until the instance is gone from live state (a 404: reported `removed`). */
export function instanceGone(
  site: E2eSite,
  token: string,
  watcher: WatcherProcess | null,
  id: string,
  what: string,
): Promise<void> {
  const url = `${site.service('api-gateway').url}/api/v1/targets/instance:${encodeURIComponent(id)}`;
  const gone = async () => (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status === 404;
  return waitForInstance(site, token, watcher, id, gone, what);
}

/** Waits until the instance's status is `status`. */
export function instanceStatusIs(
  site: E2eSite,
  token: string,
  watcher: WatcherProcess | null,
  id: string,
  status: string,
  what: string,
): Promise<void> {
  const holds = async () => (await instanceTarget(site, token, id))?.status === status;
  return waitForInstance(site, token, watcher, id, holds, what);
}
