import { readFileSync } from 'node:fs';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { KubeConfig, type User } from '@kubernetes/client-node';
import { retryAfterMs } from '@fleetwatch/pusher';
import { parse as parseYaml } from 'yaml';
import type { PodK8s } from './pod-status';

// The connection to the Kubernetes API is @kubernetes/client-node's KubeConfig: the
// in-cluster service account (its token file re-read as it rotates) or a kubeconfig
// (tokens, client certificates, exec and auth-provider plugins). 1.4.0: 2.x loads undici
// 8, which needs Node ≥ 22 (docs/runbooks/watchers.md).

export class KubeConfigError extends Error {}

/** In-cluster when KUBERNETES_SERVICE_HOST is set and no KUBECONFIG is given; else the kubeconfig (its first file). */
export function loadKubeConfig(
  env: Record<string, string | undefined> = process.env,
  context?: string,
  /** Where /var/run/secrets/kubernetes.io/serviceaccount lies (tests). */
  saPathPrefix = '',
): { kc: KubeConfig; origin: string } {
  const kc = new KubeConfig();
  let origin: string;
  try {
    if (!env['KUBECONFIG'] && env['KUBERNETES_SERVICE_HOST']) {
      kc.loadFromCluster(saPathPrefix);
      origin = 'in-cluster service account';
    } else {
      const path = (env['KUBECONFIG'] ?? `${env['HOME'] ?? ''}/.kube/config`).split(':')[0] as string;
      kc.addAuthenticator(tokenFileAuth);
      kc.loadFromFile(path);
      readTokenFiles(kc, path);
      origin = `kubeconfig ${path}`;
    }
    if (context) kc.setCurrentContext(context);
  } catch (e) {
    throw new KubeConfigError(`cannot load the Kubernetes configuration: ${(e as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server)
    throw new KubeConfigError(`${origin}: no cluster with a server in context "${kc.getCurrentContext() ?? ''}"`);
  // client-node refuses a plain-HTTP server unless TLS verification is skipped; over
  // http:// (kubectl proxy, a local stand-in) there is no TLS to verify, so say so.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => (c.name === cluster.name ? { ...c, skipTLSVerify: true } : c)),
      contexts: kc.contexts,
      users: kc.users,
      currentContext: kc.getCurrentContext(),
    });
  }
  return { kc, origin: `${origin} (context ${kc.getCurrentContext()}, ${cluster.server})` };
}

/** The auth provider a kubeconfig user's `token-file` is turned into (tokenFileAuth). */
const TOKEN_FILE_PROVIDER = 'fleetwatch-token-file';
/** How long a token read from a `token-file` is used before the file is read again (client-go's, kubelet rotation). */
const TOKEN_FILE_REREAD_MS = 60_000;

/**
 * A kubeconfig user's `token-file`, read as client-go reads it: trimmed, and again each minute. client-node 1.4.0
 * reads it once, as is, when the kubeconfig is loaded: a file ending in a newline (`echo $TOKEN > file`) gave an
 * Authorization header no request can carry (every list and watch failed), and a rotated token (a projected
 * service-account token, a vault agent's) was never seen — 401 for ever once the first expired.
 */
const tokenFiles = new Map<string, { token: string; readAt: number }>();
const tokenFileAuth: Parameters<KubeConfig['addAuthenticator']>[0] = {
  isAuthProvider(user: User): boolean {
    return user.authProvider?.name === TOKEN_FILE_PROVIDER;
  },
  async applyAuthentication(user, opts): Promise<void> {
    const file = (user.authProvider?.config as { path?: string } | undefined)?.path ?? '';
    let entry = tokenFiles.get(file);
    if (!entry || Date.now() - entry.readAt > TOKEN_FILE_REREAD_MS) {
      // Unreadable or empty (mid-rotation: removed, or truncated by a writer that is not atomic): the last token is
      // kept and the file read again at the next request, as client-go's cachingTokenSource does; with no token yet,
      // the request fails.
      let token = '';
      try {
        token = readFileSync(file, 'utf8').trim();
      } catch (e) {
        if (!entry) throw e;
      }
      if (token) tokenFiles.set(file, (entry = { token, readAt: Date.now() }));
      else if (!entry) throw new Error(`token-file ${file} is empty`);
    }
    const headers = (opts.headers ??= {}) as Record<string, unknown>;
    if (entry.token) headers['Authorization'] = `Bearer ${entry.token}`;
  },
};

/** The users of the kubeconfig at `path` that give a `token-file` (and no `token`) are authenticated by tokenFileAuth. */
function readTokenFiles(kc: KubeConfig, path: string): void {
  const raw = parseYaml(readFileSync(path, 'utf8')) as { users?: { name?: string; user?: Record<string, unknown> }[] };
  const files = new Map<string, string>();
  for (const u of Array.isArray(raw?.users) ? raw.users : [])
    if (u?.name && typeof u.user?.['token-file'] === 'string' && !u.user['token'])
      // Where client-node found it when loading (relative: to the working directory).
      files.set(u.name, resolve(u.user['token-file']));
  if (files.size === 0) return;
  kc.users = kc.users.map((u) => {
    const file = files.get(u.name);
    if (file === undefined) return u;
    return { ...u, token: undefined, authProvider: { name: TOKEN_FILE_PROVIDER, config: { path: file } } };
  });
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    /** The answer's Retry-After in ms (a 429 from API priority and fairness, a 503), when it gave one. */
    readonly retryAfterMs?: number,
  ) {
    super(`kubernetes API answered ${status}: ${body.slice(0, 300)}`);
  }
}

export const podsPath = (namespace: string | undefined): string =>
  namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` : '/api/v1/pods';

/** A PodList as the API sends it: pods are kept as raw JSON (timestamps as the server wrote them). */
export interface PodList {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string };
  items: PodK8s[];
}

/** GET of one JSON document with the KubeConfig's credentials and TLS settings; `timeoutMs`: of silence on the socket. */
async function getJson<T>(kc: KubeConfig, path: string, timeoutMs: number): Promise<T> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const url = new URL(server.replace(/\/$/, '') + path);
  const opts: RequestOptions & { headers: Record<string, string> } = { headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  return new Promise<T>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { ...opts, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 300) {
          const retryAfter = res.headers['retry-after'];
          return reject(new KubeApiError(res.statusCode ?? 0, body, retryAfterMs(retryAfter)));
        }
        try {
          resolve(JSON.parse(body) as T);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Every pod matching, in pages of `limit` (`continue` tokens), with the list's
 * resourceVersion: the informer's list function. Raw JSON rather than CoreV1Api, whose
 * deserializer turns timestamps into Dates and would not match what the watch delivers.
 * `onPage` sees each page's pods as it comes, before the next is asked for (and may make them smaller: the items
 * returned are the same objects): whole pods of every page held until the last came to tens of megabytes at 10,000
 * pods. A throw from it ends the list.
 */
export async function listPods(
  kc: KubeConfig,
  namespace: string | undefined,
  labelSelector: string,
  limit = 500,
  timeoutMs = 30_000,
  onPage?: (pods: PodK8s[]) => void,
): Promise<PodList> {
  const items: PodK8s[] = [];
  let cont: string | undefined;
  let resourceVersion = '';
  do {
    const q = new URLSearchParams({ limit: String(limit) });
    if (labelSelector) q.set('labelSelector', labelSelector);
    if (cont) q.set('continue', cont);
    const page = await getJson<{ items?: PodK8s[]; metadata?: { resourceVersion?: string; continue?: string } }>(
      kc,
      `${podsPath(namespace)}?${q}`,
      timeoutMs,
    );
    onPage?.(page.items ?? []);
    items.push(...(page.items ?? []));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion }, items };
}

/**
 * Whether the API server answers (the watcher's liveness probe, while its watch is silent): a list of one pod of the
 * namespace at most, with the watcher's credentials. Rejects with a KubeApiError when it answers with an error (it is
 * there all the same), with another error when it gives no answer within `timeoutMs` or the connection fails. No
 * label selector: RBAC does not look at it, and with one a list of `limit=1` can make the API server read through
 * every pod of the namespace in etcd to find a match.
 */
export async function probePods(kc: KubeConfig, namespace: string | undefined, timeoutMs: number): Promise<void> {
  await getJson<unknown>(kc, `${podsPath(namespace)}?limit=1`, timeoutMs);
}
