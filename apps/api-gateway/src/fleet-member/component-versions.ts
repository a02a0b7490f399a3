import type { ServiceId } from '@fleetwatch/config';

// Component versions of this site (member report, snapshot area `componentVersions`): each
// service states its version on its own /metrics (`fleetwatch_service_info{…,version="…"} 1`,
// libs/observability). The gateway asks each sibling service at the base URL the gateway's
// configuration gives it (FLEETWATCH_COMPONENT_URLS; by default 127.0.0.1 at the port the
// service reads); one without a URL there is not asked and reported null. One that does not
// answer within a second has the version it last stated (within 10 minutes: KnownVersions),
// else null. The gateway's own version is known without asking.

const INFO = /^fleetwatch_service_info\{([^}]*)\}\s+1\b/m;

/** The `version` label of the fleetwatch_service_info line of a Prometheus text, or null. */
export function versionFromMetrics(text: string): string | null {
  const m = INFO.exec(text);
  if (!m) return null;
  const v = /(?:^|,)version="((?:[^"\\]|\\.)*)"/.exec(m[1]);
  return v ? v[1].replace(/\\(.)/g, '$1') : null;
}

export interface ComponentVersion {
  component: string;
  version: string | null;
}

/**
 * The versions last read from each sibling, so that one slow answer (a busy host: the probe has a
 * second) does not turn a running component's version into null for a snapshot — which would show
 * as version drift on the leader and change the snapshot's hash back and forth. A version read
 * within `ttlMs` stands in for a probe that failed; after that a silent component is null.
 */
export class KnownVersions {
  private readonly known = new Map<string, { version: string; at: number }>();
  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The version to report for a probe's outcome: what it read, else a fresh remembered one, else null. */
  settle(component: string, read: string | null): string | null {
    const now = this.now();
    if (read !== null) {
      this.known.set(component, { version: read, at: now });
      return read;
    }
    const held = this.known.get(component);
    if (held && now - held.at <= this.ttlMs) return held.version;
    this.known.delete(component);
    return null;
  }
}

const remembered = new KnownVersions();

/** Where each sibling service is asked for its version: its base URL, or null (not asked: version null). */
export type ComponentUrls = Partial<Record<ServiceId, string | null>>;

export async function componentVersions(
  self: { service: string; version: string },
  urls: ComponentUrls,
  known: KnownVersions = remembered,
): Promise<ComponentVersion[]> {
  const others = (Object.keys(urls) as ServiceId[]).filter((s) => s !== self.service);
  const asked = await Promise.all(
    others.map(async (service): Promise<ComponentVersion> => {
      const base = urls[service];
      if (!base) return { component: service, version: null };
      let read: string | null = null;
      try {
        const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(1_000) });
        read = res.ok ? versionFromMetrics(await res.text()) : null;
      } catch {
        read = null;
      }
      return { component: service, version: known.settle(service, read) };
    }),
  );
  return [{ component: self.service, version: self.version }, ...asked].sort((a, b) =>
    a.component < b.component ? -1 : 1,
  );
}
