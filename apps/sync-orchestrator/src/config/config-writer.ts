import { Inject, Injectable } from '@nestjs/common';
import { uuidv7, type Actor, type CheckSpec } from '@fleetwatch/contracts';
import {
  ChecksRepository,
  ConfigVersionsRepository,
  runInSqlTransaction,
  SQL_POOL,
  type AuditDraft,
  type ConfigHead,
  type SqlPool,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import { contentHash } from './canonical-json';
import { specOf } from './check-form';
import { snapshotOf } from './config-plan';
import { ConfigChangedRelay } from './config-changed.relay';

// The one path every configuration write takes (SPEC §2: local edits and, later,
// configs applied from a leader): ONE transaction that
//   1. locks config_head — writers take turns, so versions are gap-free and increasing;
//   2. runs the write (which checks its expected version against what it now reads);
//   3. if it changed anything: the new snapshot and its hash, the version row, the audit
//      entries and the `config.changed` outbox row;
// then, after commit, kicks the relay to publish. A write that changes nothing makes no
// version and answers the current one.

export type WriteOutcome<R> =
  | { changed: false; result: R }
  | {
      changed: true;
      result: R;
      audit: AuditDraft[];
      summary: string;
      /** Every check after the write, when the write knows them already (else they are read back). */
      after?: readonly CheckSpec[];
    };

export interface WriteContext {
  tx: SqlTransaction;
  head: ConfigHead;
  /** The version this write creates if it changes anything. */
  next: number;
}

/** `alice (user:42)`: who, as the audit log and versions show it (bounded as the event's actor is). */
export function actorText(actor: Actor): string {
  const text = `${actor.name} (${actor.id})`;
  return text.length <= 256 ? text : `${text.slice(0, 255)}…`;
}

@Injectable()
export class ConfigWriter {
  constructor(
    @Inject(SQL_POOL) private readonly pool: SqlPool,
    private readonly checks: ChecksRepository,
    private readonly versions: ConfigVersionsRepository,
    private readonly relay: ConfigChangedRelay,
  ) {}

  async write<R>(
    actor: Actor,
    work: (ctx: WriteContext) => Promise<WriteOutcome<R>>,
    origin: 'local' | 'leader' = 'local',
  ): Promise<R & { version: number }> {
    const committed = await runInSqlTransaction(this.pool, async (tx) => {
      const head = await this.versions.lockHead(tx);
      const next = head.version + 1;
      const outcome = await work({ tx, head, next });
      if (!outcome.changed) return { result: outcome.result, version: head.version, created: false };
      const snapshot = snapshotOf(outcome.after ?? (await this.checks.all(tx)).map(specOf));
      const hash = contentHash(snapshot);
      const who = actorText(actor);
      await this.versions.record(tx, {
        version: next,
        hash,
        snapshot,
        actor: who,
        summary: outcome.summary,
        origin,
        audit: outcome.audit,
        outbox: {
          messageId: uuidv7(),
          payload: { version: next, hash, areas: ['checks'], actor: who, origin },
        },
      });
      return { result: outcome.result, version: next, created: true };
    });
    // After commit: publish now. A crash before this leaves the outbox row for the next start.
    if (committed.created) void this.relay.kick();
    return { ...committed.result, version: committed.version };
  }
}
