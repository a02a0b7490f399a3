import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PodK8s } from './pod-status';

// The two calls of the Kubernetes API this watcher needs — list pods and watch pods
// (JSON lines) — over node:http(s), with the credentials of an in-cluster service
// account or a kubeconfig. Why not @kubernetes/client-node: 2.0.1 loads undici 8, which
// needs Node ≥ 22.19 and throws at import on Node 20 (docs/runbooks/watchers.md).

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnection {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** Read before every request: service-account tokens are rotated on disk. */
  token?: () => string | undefined;
  basic?: { username: string; password: string };
  /** Where it came from, for the log. */
  origin: string;
}

export class KubeConfigError extends Error {}

/** In-cluster when KUBERNETES_SERVICE_HOST is set and no KUBECONFIG is given; else the kubeconfig. */
export async function loadKubeConnection(
  env: Record<string, string | undefined> = process.env,
  saDir = SA_DIR,
  context?: string,
): Promise<KubeConnection> {
  if (!env['KUBECONFIG'] && env['KUBERNETES_SERVICE_HOST']) {
    const host = env['KUBERNETES_SERVICE_HOST'];
    const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
    const tokenFile = `${saDir}/token`;
    return {
      server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
      ca: readFileSync(`${saDir}/ca.crt`),
      token: () => readFileSync(tokenFile, 'utf8').trim(),
      origin: 'in-cluster service account',
    };
  }
  const path = (env['KUBECONFIG'] ?? `${env['HOME'] ?? ''}/.kube/config`).split(':')[0] as string;
  let doc: KubeconfigDoc;
  try {
    const text = readFileSync(path, 'utf8');
    // Loaded only here: in a cluster no kubeconfig is read. A kubeconfig may also be JSON.
    doc = (await yamlParser())(text) as KubeconfigDoc;
  } catch (e) {
    throw new KubeConfigError(`cannot read kubeconfig ${path}: ${(e as Error).message}`);
  }
  return fromKubeconfig(doc, path, context);
}

/** `yaml` is a development dependency of the repository: without it (a pruned image), JSON kubeconfigs still load. */
async function yamlParser(): Promise<(text: string) => unknown> {
  try {
    return (await import('yaml')).parse;
  } catch {
    return (text: string) => JSON.parse(text);
  }
}

interface KubeconfigDoc {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user?: string } }[];
  clusters?: {
    name: string;
    cluster: {
      server: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    };
  }[];
  users?: {
    name: string;
    user: {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      username?: string;
      password?: string;
      exec?: unknown;
      'auth-provider'?: unknown;
    };
  }[];
}

/** The connection a kubeconfig describes (its current context, or `context`). */
export function fromKubeconfig(doc: KubeconfigDoc, path: string, context?: string): KubeConnection {
  const ctxName = context ?? doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new KubeConfigError(`kubeconfig ${path}: no context "${ctxName ?? ''}"`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new KubeConfigError(`kubeconfig ${path}: no cluster "${ctx.cluster}" with a server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user.exec || user['auth-provider'])
    throw new KubeConfigError(
      `kubeconfig ${path}: user "${ctx.user}" authenticates with exec/auth-provider, which this watcher does not run: use a token (a service account) or a client certificate`,
    );
  const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64') : undefined);
  const file = (p: string | undefined) => (p ? readFileSync(p) : undefined);
  const tokenFile = user.tokenFile;
  return {
    server: cluster.server.replace(/\/$/, ''),
    ca: b64(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    cert: b64(user['client-certificate-data']) ?? file(user['client-certificate']),
    key: b64(user['client-key-data']) ?? file(user['client-key']),
    token: user.token ? () => user.token : tokenFile ? () => readFileSync(tokenFile, 'utf8').trim() : undefined,
    basic: user.username && user.password ? { username: user.username, password: user.password } : undefined,
    origin: `kubeconfig ${path} (context ${ctxName})`,
  };
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`kubernetes API answered ${status}: ${body.slice(0, 300)}`);
  }
}

export interface PodList {
  items: PodK8s[];
  resourceVersion: string;
}

export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: PodK8s }
  | { type: 'BOOKMARK'; object: { metadata: { resourceVersion: string } } }
  | { type: 'ERROR'; object: { code?: number; reason?: string; message?: string } };

export class KubeApi {
  constructor(private readonly conn: KubeConnection) {}

  private podsPath(namespace: string | undefined): string {
    return namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` : '/api/v1/pods';
  }

  private open(path: string, signal?: AbortSignal, timeoutMs = 30_000): Promise<IncomingMessage> {
    const url = new URL(path, this.conn.server);
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = this.conn.token?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    else if (this.conn.basic)
      headers['authorization'] =
        `Basic ${Buffer.from(`${this.conn.basic.username}:${this.conn.basic.password}`).toString('base64')}`;
    const options: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean } = {
      method: 'GET',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: url.pathname + url.search,
      headers,
      signal,
    };
    if (url.protocol === 'https:') {
      options.ca = this.conn.ca;
      options.cert = this.conn.cert;
      options.key = this.conn.key;
      options.rejectUnauthorized = !this.conn.insecureSkipTlsVerify;
    }
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(options, resolve);
      // Until the answer's headers: a watch then runs as long as the server keeps it.
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
      req.on('response', () => req.setTimeout(0));
      req.on('error', reject);
      req.end();
    });
  }

  private async getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    const res = await this.open(path, signal);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if ((res.statusCode ?? 0) >= 300) throw new KubeApiError(res.statusCode ?? 0, body);
    return JSON.parse(body) as T;
  }

  /** Every pod matching, in pages of `limit` (`continue` tokens); the list's resourceVersion. */
  async listPods(
    namespace: string | undefined,
    labelSelector: string,
    limit = 500,
    signal?: AbortSignal,
  ): Promise<PodList> {
    const items: PodK8s[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const q = new URLSearchParams({ limit: String(limit) });
      if (labelSelector) q.set('labelSelector', labelSelector);
      if (cont) q.set('continue', cont);
      const page = await this.getJson<{ items?: PodK8s[]; metadata?: { resourceVersion?: string; continue?: string } }>(
        `${this.podsPath(namespace)}?${q}`,
        signal,
      );
      items.push(...(page.items ?? []));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  /**
   * Watches from `resourceVersion`, calling `onEvent` for each line in order; resolves when
   * the server ends the watch (its timeout) or `signal` aborts it. A 410 Gone — as the
   * answer's status or as an ERROR event — rejects with KubeApiError(410).
   */
  async watchPods(
    namespace: string | undefined,
    labelSelector: string,
    resourceVersion: string,
    onEvent: (e: WatchEvent) => Promise<void> | void,
    signal?: AbortSignal,
    timeoutSeconds = 300,
  ): Promise<void> {
    const q = new URLSearchParams({
      watch: '1',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    if (labelSelector) q.set('labelSelector', labelSelector);
    const res = await this.open(`${this.podsPath(namespace)}?${q}`, signal);
    if ((res.statusCode ?? 0) >= 300) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw new KubeApiError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
    }
    let buffer = '';
    try {
      for await (const chunk of res) {
        buffer += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent;
          if (event.type === 'ERROR') {
            res.destroy();
            throw new KubeApiError(event.object.code ?? 500, JSON.stringify(event.object));
          }
          await onEvent(event);
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    }
  }
}
