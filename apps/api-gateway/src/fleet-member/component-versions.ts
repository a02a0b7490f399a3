import { SERVICE_PORTS, type ServiceId } from '@fleetwatch/config';

// Component versions of this site (member report, snapshot area `componentVersions`): each
// service states its version on its own /metrics (`fleetwatch_service_info{…,version="…"} 1`,
// libs/observability). The gateway asks its sibling services on this host at their ports
// (each port overridable by the same variable the service reads); one that does not answer
// within a second has a null version. The gateway's own version is known without asking.

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

export async function componentVersions(
  self: { service: string; version: string },
  env: Record<string, string | undefined> = process.env,
  host = '127.0.0.1',
): Promise<ComponentVersion[]> {
  const others = (Object.keys(SERVICE_PORTS) as ServiceId[]).filter((s) => s !== self.service);
  const asked = await Promise.all(
    others.map(async (service): Promise<ComponentVersion> => {
      const { variable, port } = SERVICE_PORTS[service];
      const p = Number(env[variable] ?? port);
      try {
        const res = await fetch(`http://${host}:${p}/metrics`, { signal: AbortSignal.timeout(1_000) });
        return { component: service, version: res.ok ? versionFromMetrics(await res.text()) : null };
      } catch {
        return { component: service, version: null };
      }
    }),
  );
  return [{ component: self.service, version: self.version }, ...asked].sort((a, b) =>
    a.component < b.component ? -1 : 1,
  );
}
