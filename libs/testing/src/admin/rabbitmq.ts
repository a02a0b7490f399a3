import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { managementRequest } from '../servers';
import { isStale, VHOST_PREFIX } from '../run-id';

// Vhosts through the management HTTP API when it answers, else `rabbitmqctl` (local
// servers only: it talks to the node on this machine).

const run = promisify(execFile);

export interface RabbitAdmin {
  readonly via: 'management' | 'rabbitmqctl';
  addVhost(vhost: string, user: string): Promise<void>;
  deleteVhost(vhost: string): Promise<void>;
  listVhosts(): Promise<string[]>;
}

async function mgmt(baseUrl: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const { url, headers } = managementRequest(baseUrl, path);
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(url, init);
  if (method === 'DELETE' && res.status === 404) return undefined;
  if (!res.ok) throw new Error(`RabbitMQ management ${method} ${path}: ${res.status} ${await res.text()}`);
  const text = await res.text();
  return text ? (JSON.parse(text) as unknown) : undefined;
}

export function managementAdmin(baseUrl: string): RabbitAdmin {
  const v = (vhost: string) => encodeURIComponent(vhost);
  return {
    via: 'management',
    async addVhost(vhost, user) {
      await mgmt(baseUrl, 'PUT', `/api/vhosts/${v(vhost)}`, { description: 'fleetwatch test run' });
      await mgmt(baseUrl, 'PUT', `/api/permissions/${v(vhost)}/${encodeURIComponent(user)}`, {
        configure: '.*',
        write: '.*',
        read: '.*',
      });
    },
    async deleteVhost(vhost) {
      await mgmt(baseUrl, 'DELETE', `/api/vhosts/${v(vhost)}`);
    },
    async listVhosts() {
      const list = (await mgmt(baseUrl, 'GET', '/api/vhosts?columns=name')) as Array<{ name: string }>;
      return list.map((x) => x.name);
    },
  };
}

export function rabbitmqctlAdmin(): RabbitAdmin {
  const ctl = async (...args: string[]) => (await run('rabbitmqctl', ['-q', ...args], { timeout: 30_000 })).stdout;
  return {
    via: 'rabbitmqctl',
    async addVhost(vhost, user) {
      await ctl('add_vhost', vhost).catch((err: Error) => {
        if (!/already exists|vhost_already_exists/.test(String((err as { stderr?: string }).stderr ?? err.message)))
          throw err;
      });
      await ctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
    },
    async deleteVhost(vhost) {
      await ctl('delete_vhost', vhost).catch((err: Error) => {
        if (!/no_such_vhost|does not exist/.test(String((err as { stderr?: string }).stderr ?? err.message))) throw err;
      });
    },
    async listVhosts() {
      const out = await ctl('list_vhosts', 'name', '--no-table-headers');
      return out
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    },
  };
}

export function rabbitAdmin(managementUrl: string | undefined): RabbitAdmin {
  return managementUrl ? managementAdmin(managementUrl) : rabbitmqctlAdmin();
}

/** `amqpUrl` with its vhost replaced. */
export function amqpUrlFor(amqpUrl: string, vhost: string): string {
  const u = new URL(amqpUrl);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
}

export function amqpUser(amqpUrl: string): string {
  return decodeURIComponent(new URL(amqpUrl).username || 'guest');
}

export async function sweepStaleVhosts(admin: RabbitAdmin, now: number = Date.now()): Promise<string[]> {
  const stale = (await admin.listVhosts()).filter((n) => isStale(n, VHOST_PREFIX, now));
  for (const vhost of stale) await admin.deleteVhost(vhost);
  return stale;
}
