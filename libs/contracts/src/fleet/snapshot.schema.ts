import { z } from 'zod';

// A site's config snapshot (SPEC §1, §8): its whole configuration as canonical JSON with a
// content hash, served by every site at GET /api/v1/system/snapshot/current and compared by
// the leader (drift). Each area is an array of items sorted by `key`, a name that stays the
// same across sites (a check's name, a username, a component's name) — never a row id, which
// differs from site to site.

/** The areas of a snapshot, in display order. Do not rename: leaders and members of different versions share them. */
export const SNAPSHOT_AREAS = [
  'checks',
  'alertRules',
  'channels',
  'properties',
  'statusPages',
  'usersAndRoles',
  'componentVersions',
] as const;
export type SnapshotArea = (typeof SNAPSHOT_AREAS)[number];

/**
 * The areas drift is counted over (SPEC §8: checks, rules, channels, properties, versions), in display
 * order. Status pages and users are in the snapshot and shown side by side, but each site keeps its own
 * (a member's operators, its public pages): a difference there is not drift.
 */
export const DRIFT_AREAS = [
  'checks',
  'alertRules',
  'channels',
  'properties',
  'componentVersions',
] as const satisfies readonly SnapshotArea[];
export type DriftArea = (typeof DRIFT_AREAS)[number];

/** What an item's secrets are replaced by in a snapshot. */
export const REDACTED = '[redacted]';

/** One item of an area: its stable `key` and its content (JSON). */
export const snapshotItemSchema = z.looseObject({ key: z.string().min(1).max(512) });
export type SnapshotItem = z.infer<typeof snapshotItemSchema>;

export const snapshotAreasSchema = z.object({
  checks: z.array(snapshotItemSchema).default([]),
  alertRules: z.array(snapshotItemSchema).default([]),
  channels: z.array(snapshotItemSchema).default([]),
  properties: z.array(snapshotItemSchema).default([]),
  statusPages: z.array(snapshotItemSchema).default([]),
  usersAndRoles: z.array(snapshotItemSchema).default([]),
  componentVersions: z.array(snapshotItemSchema).default([]),
});
export type SnapshotAreas = z.infer<typeof snapshotAreasSchema>;

/**
 * The areas a snapshot may lack because its site is older than them (added to the snapshot after its first version).
 * Every site sends the others: one that does not is compared as having none (a member cannot hide its drift in them
 * by leaving them out).
 */
const LATER_AREAS: ReadonlySet<SnapshotArea> = new Set<SnapshotArea>(['properties', 'componentVersions']);

/**
 * The areas of LATER_AREAS a snapshot's `areas` does not have (undefined or missing: an older site, from before
 * them). Read before the defaults fill them in as empty: an area absent is not an area empty.
 */
function absentAreasOf(value: unknown): SnapshotArea[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const areas = (value as { areas?: unknown }).areas;
  if (typeof areas !== 'object' || areas === null) return undefined;
  return SNAPSHOT_AREAS.filter((a) => LATER_AREAS.has(a) && (areas as Record<string, unknown>)[a] === undefined);
}

/**
 * `GET /api/v1/system/snapshot/current`. `hash` is sha256 (hex) of the canonical JSON of `areas`. Parsed, it says
 * which areas the site did not send (`absentAreas`, filled in by the parse whatever the site sent under that name;
 * absent on a snapshot parsed before it was kept, or built by this site): drift does not compare those.
 */
export const memberSnapshotSchema = z.preprocess(
  (value) => {
    const absentAreas = absentAreasOf(value);
    if (absentAreas === undefined) return value;
    return { ...(value as Record<string, unknown>), absentAreas };
  },
  z.object({
    schemaVersion: z.literal(1),
    site: z.string(),
    generatedAt: z.string(),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    /** The site's config version the checks area was read at (0 before the first). */
    configVersion: z.number().int().min(0).nullable(),
    areas: snapshotAreasSchema,
    /** Areas the site did not send (see above); [] when it sent them all. */
    absentAreas: z.array(z.enum(SNAPSHOT_AREAS)).optional(),
  }),
);
export type MemberSnapshotView = z.infer<typeof memberSnapshotSchema>;
