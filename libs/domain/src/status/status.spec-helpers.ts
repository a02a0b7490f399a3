// Shared by the check specs in this folder (check-lifecycle, awaited-consensus, awaited-review): fixture builders.
// Imported by specs only; not exported through the lib's index.
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import type { CheckLifecycle } from './check-lifecycle';
import type { Observation } from './target-state';

/** Builds the lifecycle messages of the check `targetId`. */
export const lifecycleOf =
  (targetId: string) =>
  (state: CheckLifecycle['state'], version: number, at: number, extra: Partial<CheckLifecycle> = {}) => ({
    targetId,
    state,
    version,
    at,
    ...extra,
  });

/** A result of the check `targetId` (named 'api') from `location` at `at`: UP ('check ok') or DOWN ('refused'). */
export const checkResult = (targetId: string, location: string, ok: boolean, at: number): Observation => ({
  targetId,
  kind: TargetKind.Check,
  name: 'api',
  location,
  at,
  status: ok ? S.Up : S.Down,
  reason: ok ? 'check ok' : 'refused',
});
