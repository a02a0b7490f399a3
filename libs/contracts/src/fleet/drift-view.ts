import type { DriftArea } from './snapshot.schema';

// `GET /api/v1/leader/config/drift/{member}` (SPEC §8): a member's drift from the leader's
// snapshot, side by side — per area, each differing item with its changed values only.
// The shape libs/domain's diffSnapshots() returns, plus which snapshots were compared.

/** `missing`: the leader has the item, the member not; `extra`: the reverse; `changed`: both, values differ. */
export type DriftItemState = 'missing' | 'extra' | 'changed';

/** One changed value. A side without the value has no member (absent ≠ null). */
export interface DriftChangeView {
  /** Dotted path inside the item; keyed array elements as `name[id=x]`; '' for the whole item. */
  path: string;
  leader?: unknown;
  member?: unknown;
}

export interface DriftItemView {
  key: string;
  state: DriftItemState;
  changes: DriftChangeView[];
}

export interface AreaDriftView {
  count: number;
  missing: number;
  extra: number;
  changed: number;
  items: DriftItemView[];
}

export interface MemberDriftView {
  member: string;
  stale: boolean;
  /** Seconds since the member's snapshot compared was read (a STALE member's is its last good one); null: unknown. */
  ageSeconds: number | null;
  leaderHash: string;
  memberHash: string;
  /** Property keys overridden for this member: not counted as drift. */
  overriddenProperties: string[];
  /** Over the areas compared (those of `notCompared` left out). */
  count: number;
  /** The areas drift is counted over (DRIFT_AREAS); one of `notCompared` reads 0, no items. */
  areas: Record<DriftArea, AreaDriftView>;
  /** Areas not compared: the member's snapshot does not have them (an older member, from before the area). */
  notCompared: DriftArea[];
}
