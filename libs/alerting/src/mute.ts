import type { MaintenanceWindow, Silence } from '@fleetwatch/contracts';
import { maintenanceActive, maintenanceCovers } from './maintenance';
import type { AlertTarget } from './selector';
import { compileSilence, silenceActive, type CompiledSilence } from './silences';

// What mutes an alert now: a silence whose matchers match its labels, or an open maintenance window
// covering its target. Built once per evaluation (silences compiled once), asked only for alerts
// about to be notified.

export type MuteReason = { kind: 'silence'; id: string } | { kind: 'maintenance'; id: string };

export interface Muter {
  /** Why this alert is muted now, or null. */
  reasonFor(labels: Readonly<Record<string, string>>, targetId: string): MuteReason | null;
  /** For `EvaluationInput.isMuted`. */
  isMuted(labels: Readonly<Record<string, string>>, targetId: string): boolean;
}

export function createMuter(opts: {
  silences: readonly Silence[];
  windows: readonly MaintenanceWindow[];
  /** The target of an alert, for maintenance scopes (tags and site); unknown targets match by id only. */
  targetOf: (targetId: string) => AlertTarget | undefined;
  now: number;
}): Muter {
  const now = opts.now;
  const silences: CompiledSilence[] = opts.silences.map(compileSilence).filter((s) => silenceActive(s, now));
  const windows = opts.windows.filter((w) => maintenanceActive(w, now));
  const reasonFor = (labels: Readonly<Record<string, string>>, targetId: string): MuteReason | null => {
    const silence = silences.find((s) => s.matches(labels));
    if (silence) return { kind: 'silence', id: silence.silence.id };
    if (windows.length) {
      const target = opts.targetOf(targetId) ?? { id: targetId, site: '', tags: [] };
      const window = windows.find((w) => maintenanceCovers(w, target as AlertTarget));
      if (window) return { kind: 'maintenance', id: window.id };
    }
    return null;
  };
  return { reasonFor, isMuted: (labels, targetId) => reasonFor(labels, targetId) !== null };
}
