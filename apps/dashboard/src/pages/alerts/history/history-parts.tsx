import { Link } from 'react-router';
import type { AlertHistoryEntry } from '@fleetwatch/contracts';
import { enc } from '../../../api/client';
import { changeText, endedWithoutRecovery, endReasonLabel } from './history-model';

/** One state as the alert pages show states (a badge: inactive and resolved as calm, pending and firing as loud). */
export function HistoryState({ state }: { state: AlertHistoryEntry['from'] }) {
  return (
    <span className="fw-alert-state" data-state={state}>
      {state}
    </span>
  );
}

/** `from → to`, each a badge (its text reads "pending → firing"). */
export function HistoryChange({ entry }: { entry: AlertHistoryEntry }) {
  return (
    <span className="fw-alert-change" data-change={changeText(entry)}>
      <HistoryState state={entry.from} /> → <HistoryState state={entry.to} />
    </span>
  );
}

/** Why the change ended its alert ("series absent", "condition cleared"); nothing for other changes. */
export function HistoryEndReason({ entry }: { entry: AlertHistoryEntry }) {
  const text = endReasonLabel(entry);
  if (!text) return null;
  return (
    <span
      className="fw-alert-reason"
      data-reason={entry.endReason ?? undefined}
      data-unusual={endedWithoutRecovery(entry) ? 'true' : undefined}
    >
      {text}
    </span>
  );
}

export function HistorySeverity({ entry }: { entry: AlertHistoryEntry }) {
  return (
    <span className="fw-alert-state" data-state={entry.severity}>
      {entry.severity}
    </span>
  );
}

/** The rule by the name it had at the change, linked to the rule as it is now. */
export function HistoryRule({ entry }: { entry: AlertHistoryEntry }) {
  return <Link to={`/alerts/rules/${enc(entry.ruleId)}`}>{entry.ruleName}</Link>;
}

export function HistoryTarget({ entry }: { entry: AlertHistoryEntry }) {
  return <Link to={`/targets/${enc(entry.targetId)}`}>{entry.targetId}</Link>;
}
