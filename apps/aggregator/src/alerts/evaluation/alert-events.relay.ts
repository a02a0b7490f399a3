import type { Logger } from 'pino';
import {
  alertStateChangedPayloadSchema,
  describeIssues,
  FORBIDDEN_KEYS,
  Messages,
  toStorable,
  truncateText,
  type AlertStateChangedPayload,
} from '@fleetwatch/contracts';
import { publishRequest, type BusPublisher } from '@fleetwatch/messaging';
import type { AlertEventDraft, AlertEventRecord, AlertEventsRepository, SqlTx } from '@fleetwatch/persistence';

/** Where the evaluator records its alerts' state changes: in its decision's transaction, then published. */
export interface AlertHistorySink {
  /** Stores these changes (with their outbox rows) in the decision's transaction. */
  record(tx: SqlTx, drafts: readonly AlertEventDraft[]): Promise<AlertEventRecord[]>;
  /** After the commit: publishes them (in commit order); never rejects, what is not confirmed stays in the outbox. */
  publishInOrder(records: readonly AlertEventRecord[]): Promise<void>;
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const MAX_LABELS = 64;
const MAX_LABEL_VALUE = 1024;

/**
 * An alert's labels as `alert.state-changed` carries them (the contract's label rules): a name the contract refuses
 * is left out (`constructor` and `prototype` too: a series label may be called so), a value longer than it allows is cut, at most 64 — `alertname`, `target` and `severity` first. The
 * stored event keeps them whole.
 */
export function eventLabelsOf(labels: Readonly<Record<string, string>>): Record<string, string> {
  const first = ['alertname', 'target', 'severity'];
  const names = [...first.filter((n) => n in labels), ...Object.keys(labels).filter((n) => !first.includes(n))];
  const out: Record<string, string> = {};
  let n = 0;
  for (const name of names) {
    if (n >= MAX_LABELS) break;
    if (name.length > 128 || !LABEL_NAME.test(name) || FORBIDDEN_KEYS.has(name)) continue;
    out[name] = truncateText(toStorable(labels[name]), MAX_LABEL_VALUE);
    n++;
  }
  return out;
}

/** A stored event as the bus carries it. Annotations are rendered for notifications only (templates cost time). */
export function alertStateChangedPayloadOf(e: AlertEventRecord): AlertStateChangedPayload {
  return {
    ruleId: e.ruleId,
    fingerprint: e.fingerprint,
    from: e.from,
    to: e.to,
    labels: eventLabelsOf(e.labels),
    annotations: {},
    value: e.value !== null && Number.isFinite(e.value) ? e.value : null,
    at: new Date(e.at).toISOString(),
    ...(e.endReason ? { endReason: e.endReason } : {}),
  };
}

/**
 * The alert evaluator's history (SPEC §3 "alert state changed", §7 states): every state change is stored in
 * alert_events with an outbox row in the decision's transaction, then published as `alert.state-changed` with broker
 * confirms, message id = event id (consumers de-duplicate by it); the outbox row goes once confirmed. What the broker
 * did not confirm — the bus away, a crash between commit and publish — stays in the outbox for `relayPending()`, which
 * the evaluating replica runs every few seconds: committed changes are never lost, only late.
 */
export class AlertEventsRelay implements AlertHistorySink {
  private inOrder: Promise<void> = Promise.resolve();

  constructor(
    private readonly publisher: BusPublisher,
    private readonly events: AlertEventsRepository,
    private readonly logger: Logger,
  ) {}

  record(tx: SqlTx, drafts: readonly AlertEventDraft[]): Promise<AlertEventRecord[]> {
    return this.events.insertMany(tx, drafts);
  }

  publishInOrder(records: readonly AlertEventRecord[]): Promise<void> {
    if (records.length === 0) return this.inOrder;
    const done = this.inOrder.then(async () => {
      try {
        await this.publish(records);
      } catch (err) {
        this.logger.warn(
          { err: (err as Error).message },
          'alert.state-changed publish failed; left in the outbox for the relay',
        );
      }
    });
    this.inOrder = done;
    return done;
  }

  /** Publishes what earlier decisions left in the outbox (after every publish already queued); returns how many. */
  relayPending(maxRounds = 20): Promise<number> {
    const run = this.inOrder.then(async () => {
      if (!this.publisher.isConnected()) return 0;
      let total = 0;
      for (let i = 0; i < maxRounds; i++) {
        const pending = await this.events.pendingPublication(500);
        if (pending.length === 0) break;
        const confirmed = await this.publish(pending);
        total += confirmed;
        if (confirmed < pending.length || pending.length < 500) break;
      }
      return total;
    });
    this.inOrder = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Publishes these events (one message each, confirmed); resolves with how many the broker confirmed. */
  async publish(records: readonly AlertEventRecord[]): Promise<number> {
    const valid: Array<{ e: AlertEventRecord; payload: AlertStateChangedPayload }> = [];
    const invalid: string[] = [];
    for (const e of records) {
      const payload = alertStateChangedPayloadOf(e);
      const parsed = alertStateChangedPayloadSchema.safeParse(payload);
      if (parsed.success) valid.push({ e, payload });
      else {
        // No schema accepts it (a rule id past the contract's 128 characters): it would block the outbox for ever.
        // Kept in the history, dropped from the outbox loudly.
        this.logger.error(
          { eventId: e.id, ruleId: e.ruleId, reason: describeIssues(parsed.error) },
          'alert event cannot be published as alert.state-changed; kept in the history only',
        );
        invalid.push(e.id);
      }
    }
    if (invalid.length) await this.events.markPublished(invalid);
    if (valid.length === 0) return 0;
    const outcomes = await this.publisher.publishManySettled(
      valid.map(({ e, payload }) =>
        publishRequest(Messages.AlertStateChanged, payload, {
          id: e.id,
          occurredAt: new Date(e.at),
          // A fan-out fact: no bound queue yet is not an error.
          mandatory: false,
        }),
      ),
    );
    const confirmed = valid.filter((_, i) => outcomes[i].ok).map(({ e }) => e.id);
    if (confirmed.length < valid.length) {
      const first = outcomes.find((o) => !o.ok);
      this.logger.warn(
        { failed: valid.length - confirmed.length, error: first && !first.ok ? first.error.message : undefined },
        'alert.state-changed not confirmed; left in the outbox for the relay',
      );
    }
    await this.events.markPublished(confirmed);
    return confirmed.length;
  }
}
