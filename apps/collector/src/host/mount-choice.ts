// Which mounts a host sample reports when the machine has more than the contract's 256 (SPEC §5 host.metrics): a
// Kubernetes node with hundreds of CSI/PVC volumes under /var/lib/kubelet/pods/…, a ZFS box with hundreds of
// datasets, a Docker host with many volume mounts. Before, the first 256 by path order were kept, and the mounts an
// operator watches most (`/var/log`, `/var`, `/srv`) went whenever enough deeper paths sorted before them.

/** A mount path's components: `/` 0, `/var` 1, `/var/log` 2. */
export function mountDepth(mount: string): number {
  let n = 0;
  for (const part of mount.split('/')) if (part) n++;
  return n;
}

export interface MountChoice<T> {
  /** The mounts to report, in the order they were given. */
  kept: T[];
  /** How many (distinct) mounts were not kept. */
  leftOut: number;
  /** The mounts not kept, shallowest first (for a log line). */
  dropped: T[];
}

/**
 * At most `limit` of `mounts` (each mount path once: the first given), by rank:
 *
 * 1. fewer path components first — `/`, `/boot`, `/var`, `/home`, `/srv`, then `/var/log`, …, deep container and pod
 *    volume paths last;
 * 2. at equal depth, a mount kept the previous time (`keptBefore`) before one that was not: a mount does not drop out
 *    because another of its depth came, and one that came does not push out one already reported (else the last
 *    places would change hands as pods come and go, each series reported on and off);
 * 3. then by path, in code-unit order (not the locale's: the same choice on every machine).
 *
 * So a mount is left out only while there are `limit` mounts ranked before it, and every mount shallower than the
 * shallowest one left out is kept. `kept` keeps the order of `mounts` (the caller's order, path order for the sampler).
 */
export function chooseMounts<T extends { mount: string }>(
  mounts: readonly T[],
  limit: number,
  keptBefore: ReadonlySet<string> = new Set(),
): MountChoice<T> {
  const seen = new Set<string>();
  const unique = mounts.filter((m) => !seen.has(m.mount) && seen.add(m.mount));
  if (unique.length <= limit) return { kept: unique, leftOut: 0, dropped: [] };
  const ranked = unique
    .map((m) => ({ m, depth: mountDepth(m.mount), stays: keptBefore.has(m.mount) ? 0 : 1 }))
    .sort((a, b) => a.depth - b.depth || a.stays - b.stays || (a.m.mount < b.m.mount ? -1 : 1));
  const keep = new Set(ranked.slice(0, Math.max(0, limit)).map((r) => r.m));
  return {
    kept: unique.filter((m) => keep.has(m)),
    leftOut: unique.length - keep.size,
    dropped: ranked.filter((r) => !keep.has(r.m)).map((r) => r.m),
  };
}
