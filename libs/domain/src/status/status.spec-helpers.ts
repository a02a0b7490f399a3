// Shared by the check specs in this folder (check-lifecycle, awaited-consensus, awaited-review): fixture builders.
// Imported by specs only; not exported through the lib's index.
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import type { ConsensusPolicy } from './consensus';
import { applyObservation, type Observation, type TargetSnapshot } from './target-state';

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

/** Applies a step, a lifecycle message or an observation, to the target `t` under `policy`. */
export const applierOf =
  (policy: ConsensusPolicy) => (t: TargetSnapshot | undefined, step: Observation | CheckLifecycle) =>
    'state' in step ? applyLifecycle(t, step, policy) : applyObservation(t, step, policy);

/**
 * A check at `locations` every `intervalSeconds`, stepped by `apply` with the messages of `lc`: active at 0, UP at each
 * location at 1000 (`resultOf`), paused at 2000, then resumed at `resumedAt` (due two intervals and 5 s on).
 */
export function resumedCheck(
  apply: ReturnType<typeof applierOf>,
  lc: ReturnType<typeof lifecycleOf>,
  locations: string[],
  intervalSeconds: number,
  resumedAt: number,
  resultOf: (location: string, ok: boolean, at: number) => Observation,
): TargetSnapshot {
  let t = apply(undefined, lc('active', 1, 0, { locations, checkIntervalSeconds: intervalSeconds })).target;
  for (const l of locations) t = apply(t, resultOf(l, true, 1000)).target;
  t = apply(t, lc('paused', 2, 2000)).target;
  return apply(
    t,
    lc('active', 3, resumedAt, {
      checkIntervalSeconds: intervalSeconds,
      resumeDeadline: {
        at: resumedAt + 2 * intervalSeconds * 1000 + 5000,
        expireTo: S.Stale,
        reason: `no result within 2 × ${intervalSeconds}s of the resume`,
      },
    }),
  ).target;
}
