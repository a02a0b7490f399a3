import { v5 } from 'uuid';
import { TargetIds, UUID_PATTERN, type CheckDefinition, type CheckLifecyclePayload } from '@fleetwatch/contracts';
import type { AuditDraft } from '@fleetwatch/persistence';

// What the aggregator hears of a configuration write (SPEC §2: it owns live state, not the
// configuration): one `check.lifecycle` per check the write touched — every audit entry's
// subject — saying where the check now stands: active, paused or deleted (gone from the
// table). Every touched check, not only those whose pause flag changed: the rule stays one
// line, names and tags follow too (a paused check shows its new name), and the aggregator
// ignores what does not move it. The messages leave with the write's `config.changed`,
// through the same outbox and relay.

/** Check ids a write's `check.*` audit entries name, in order, each once (alert rules and silences have UUIDs too). */
export function touchedChecks(audit: readonly AuditDraft[]): string[] {
  return [
    ...new Set(
      audit
        .filter((a) => a.action.startsWith('check.'))
        .map((a) => a.subject)
        .filter((s): s is string => s !== null && UUID_PATTERN.test(s)),
    ),
  ];
}

/** How long the aggregator may wait for a check's next result: its interval, or a push check's period + grace. */
function expectedGapSeconds(c: CheckDefinition): number {
  return c.type === 'push' ? c.periodSeconds + c.graceSeconds : c.intervalSeconds;
}

/** The lifecycle of each touched check after the write: `found` are those still in the table. */
export function lifecycleOf(
  touched: readonly string[],
  found: readonly CheckDefinition[],
  version: number,
  at: Date,
): CheckLifecyclePayload[] {
  const byId = new Map(found.map((c) => [c.id.toLowerCase(), c]));
  const when = at.toISOString();
  return touched.map((id) => {
    const c = byId.get(id.toLowerCase());
    if (!c) return { checkId: id, targetId: TargetIds.check(id), state: 'deleted', version, at: when };
    return {
      checkId: c.id,
      targetId: c.targetId,
      state: c.paused ? 'paused' : 'active',
      version,
      at: when,
      name: c.name,
      checkType: c.type,
      tags: c.tags,
      intervalSeconds: expectedGapSeconds(c),
      locations: c.locations,
      // null: none of its own, the site's (the aggregator's CONSENSUS_DOWN_QUORUM_PCT).
      downQuorumPct: c.downQuorumPct ?? null,
    };
  });
}

/** Namespace of the lifecycle messages' ids (name-based UUIDv5). */
const LIFECYCLE_NAMESPACE = '6d1f0c4e-8b2a-4f57-9e3d-5c7a1b2e4f60';

/** A lifecycle message's id: the same at every republish of its outbox row, so consumers see one message. */
export function lifecycleMessageId(outboxMessageId: string, checkId: string): string {
  return v5(`${outboxMessageId}:${checkId}`, LIFECYCLE_NAMESPACE);
}
