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
  leaderHash: string;
  memberHash: string;
  /** Property keys overridden for this member: not counted as drift. */
  overriddenProperties: string[];
  count: number;
  /** The areas drift is counted over (DRIFT_AREAS). */
  areas: Record<DriftArea, AreaDriftView>;
}
