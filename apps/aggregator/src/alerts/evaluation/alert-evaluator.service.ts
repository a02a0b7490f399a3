import type { Logger } from 'pino';
import type { StatusChangedPayload } from '@fleetwatch/contracts';
import type { TargetSnapshot } from '@fleetwatch/domain';
import {
  addToGroups,
  announceFiring,
  applyChanges,
  createMuter,
  emptyGroupingState,
  evaluateFleet,
  nextDueAt,
  notificationOf,
  flushDue,
  notificationOfFlush,
  renderBudget,
  TEMPLATE_LIMITS,
  type AlertNotification,
  type AlertSeriesState,
  type EvaluationInput,
  type EvaluationResult,
  type GroupFlush,
  type GroupingState,
  type MetricSeries,
  type Muter,
  type NotificationGroup,
  type NotificationLookup,
  type ObservedTarget,
} from '@fleetwatch/alerting';
import type {
  AlertDeliveriesRepository,
  AlertEventDraft,
  AlertEventRecord,
  AlertStatesRepository,
  StoredNotificationGroup,
  TargetStatesRepository,
} from '@fleetwatch/persistence';
import type { AlertConfigLoader, AlertConfigSet } from './alert-config.loader';
import { emptyAlertConfig } from './alert-config.loader';
import type { AlertMetricsReader, MetricsRead } from './alert-metrics.reader';
import type { AlertHistorySink } from './alert-events.relay';
import { TargetView, type ViewedTarget } from './target-view';

export interface AlertEvaluatorOptions {
  /** This replica's name on the lease's epoch row. */
  holder: string;
  site: string;
  /** The dashboard's base URL, for links in notifications. */
  externalURL: string;
  /** Name of the lease and of its epoch row. */
  leaseName: string;
  /** Full reload of target_states while holding the lease (new tags, anything an event did not say). */
  resyncMs: number;
  now: () => number;
}

/** This replica's decision could not commit: another replica took the evaluator lease meanwhile. */
export class EvaluatorFencedError extends Error {
  constructor() {
    super('the alert evaluator lease is held by another replica now: decision not committed');
    this.name = 'EvaluatorFencedError';
  }
}

const TARGET_PAGE = 1000;

/** What one decision wrote (for tests, logs and the benchmark). */
export interface DecisionSummary {
  states: number;
  groups: number;
  flushes: GroupFlush[];
}

/**
 * Alert evaluation (SPEC §7, issue 18) on the replica holding the evaluator lease. Holds the fleet's
 * statuses (TargetView), the alert states and the grouping state in memory, as last committed; every
 * evaluation — a status change, or the tick (`for` durations, metric conditions, repeats, group waits) —
 * computes the next states with libs/alerting and commits them, the grouping state and the queued
 * notifications in ONE transaction that first checks the lease's epoch (FOR SHARE). Memory moves on only
 * after that commit: a failed decision is made again by the next evaluation, a fenced one drops the
 * lease's state. So a restart or a failover neither loses nor re-sends an alert.
 * All work runs in one lane, in order.
 */
export class AlertEvaluator {
  private config: AlertConfigSet = emptyAlertConfig();
  /** Rules of the loaded configuration that could not be read: their alerts are left as they are (evaluateFleet). */
  private unreadableRuleIds: ReadonlySet<string> = new Set();
  private readonly view: TargetView;
  private states = new Map<string, AlertSeriesState>();
  private grouping: GroupingState = emptyGroupingState();
  private metrics = new Map<string, MetricSeries[]>();
  private epoch: number | null = null;
  /** Between taking the lease and having read everything: events are kept (applied after, by sequence). */
  private taking = false;
  private lane: Promise<unknown> = Promise.resolve();
  private events: StatusChangedPayload[] = [];
  private eventsScheduled = false;
  private configDirty = false;
  /**
   * A configuration was loaded: the next decision puts the alerts firing (announced, not muted) into the groups of
   * their route that do not hold them (a channel added to a rule while it fired: announceFiring).
   */
  private announceDue = false;
  /** The next tick evaluates every target with every rule. */
  private fullDue = true;
  private resyncAt = 0;

  constructor(
    private readonly loader: AlertConfigLoader,
    private readonly repo: AlertStatesRepository,
    private readonly deliveries: AlertDeliveriesRepository,
    private readonly targets: TargetStatesRepository,
    private readonly metricsReader: AlertMetricsReader,
    private readonly logger: Logger,
    private readonly options: AlertEvaluatorOptions,
    /** Where every state change is recorded (alert history, `alert.state-changed`). */
    private readonly history: AlertHistorySink,
    /** Called after a commit that queued notifications (the delivery worker's kick). */
    private readonly onQueued: () => void = () => undefined,
  ) {
    this.view = new TargetView(options.site);
  }

  /** Whether this replica evaluates now (it took the lease and its epoch). */
  get active(): boolean {
    return this.epoch !== null;
  }

  /** Read-only views for tests and the benchmark. */
  get alertStates(): ReadonlyMap<string, AlertSeriesState> {
    return this.states;
  }
  get targetCount(): number {
    return this.view.size;
  }

  /**
   * One tick, on the lease holder (takes over first if it just got the lease). Evaluates the targets
   * whose figures changed and those with an alert due (`for` over, a repeat, keep-firing or retention
   * ending, a muted alert that may be unmuted now); every target with every rule — which also resolves
   * alerts whose target or series went away — after a take-over, a configuration reload and each resync.
   */
  async tick(): Promise<DecisionSummary | null> {
    // The reads (target_states on a resync, live figures) run before entering the lane, so status changes
    // are not kept waiting behind them; what they found is applied in the lane, newest sequence winning.
    const epoch = this.epoch;
    let pre: { targets: TargetSnapshot[] | null; known: Set<string>; read: MetricsRead } | null = null;
    if (epoch !== null && !this.configDirty) {
      const known = new Set(this.view.ids());
      const targets = this.options.now() >= this.resyncAt ? await this.readTargets() : null;
      pre = { targets, known, read: await this.metricsReader.read(this.config.rules, this.view.values()) };
    }
    return this.inLane(async () => {
      if (this.epoch === null) await this.takeOver();
      const now = this.options.now();
      if (this.configDirty) await this.reloadConfig(now);
      const fresh = pre !== null && this.epoch === epoch ? pre : null;
      if (fresh?.targets) this.applyTargets(fresh.targets, fresh.known, now);
      else if (now >= this.resyncAt) this.applyTargets(await this.readTargets(), null, now);
      const read = fresh?.read ?? (await this.metricsReader.read(this.config.rules, this.view.values()));
      this.metrics = read.series;
      if (this.fullDue) {
        this.fullDue = false;
        return this.decide(evaluateFleet(this.input(now), this.observed()), now);
      }
      const ids = new Set(read.changed);
      for (const s of this.states.values()) if (this.isDue(s, now)) ids.add(s.targetId);
      return this.decide(this.evaluateTargets(ids, now), now);
    });
  }

  private isDue(s: AlertSeriesState, now: number): boolean {
    if (s.state === 'firing' && s.lastSentAt === null) return true; // muted: a silence may have ended
    const rule = this.config.rulesById.get(s.ruleId);
    const due = rule ? nextDueAt(rule, s, this.view.get(s.targetId)?.reportIntervalMs) : null;
    return due !== null && due <= now;
  }

  /**
   * Every rule against each of these targets, and — as the full tick does for the whole fleet — each of their alerts
   * whose series they no longer have: gone from live state with the target's figures (a host retired or turned STALE)
   * it resolves now, not at the next full tick (the 5-minute resync); missing from the figures of a target that still
   * reports (a disk or GPU absent from one sample, a check's failed run) it keeps its state for the engine's grace (two
   * of the target's report intervals, at least 5 minutes) and then ends as "series_absent" (nextDueAt brings it back
   * then).
   * Only these targets' states are looked at (one pass over the alert states, not the fleet). Targets the view no
   * longer has are left to the full tick.
   */
  private evaluateTargets(ids: Iterable<string>, now: number): EvaluationResult {
    const observed: ObservedTarget[] = [];
    const wanted = new Set<string>();
    for (const id of ids) {
      const t = this.view.get(id);
      if (!t || wanted.has(id)) continue;
      wanted.add(id);
      observed.push(this.observedOf(t));
    }
    if (observed.length === 0) return { changed: new Map(), notifications: [], transitions: [] };
    const states = new Map<string, AlertSeriesState>();
    for (const [key, s] of this.states) if (wanted.has(s.targetId)) states.set(key, s);
    return evaluateFleet({ ...this.input(now), states }, observed);
  }

  /** The lease is gone (or never was): forget everything; the next holder starts from Postgres. */
  drop(): Promise<void> {
    return this.inLane(async () => this.reset());
  }

  /** A status.changed event (from any replica): evaluated soon, batched with those arriving meanwhile. */
  onStatusChanged(e: StatusChangedPayload): void {
    if (this.epoch === null && !this.taking) return;
    this.events.push(e);
    this.scheduleEvents();
  }

  private scheduleEvents(): void {
    if (this.eventsScheduled) return;
    this.eventsScheduled = true;
    setImmediate(() => {
      this.eventsScheduled = false;
      void this.evaluateEvents().catch((err: unknown) =>
        this.logger.warn({ error: (err as Error).message }, 'alert evaluation of status changes failed'),
      );
    });
  }

  /** Configuration changed: reloaded at the next evaluation. */
  onConfigChanged(): void {
    this.configDirty = true;
  }

  /** Events may have been missed (bus reconnect): read target_states again at the next tick. */
  requestResync(): void {
    this.resyncAt = 0;
  }

  /** Evaluates the targets the queued events changed (also called by tests to wait for them). */
  evaluateEvents(): Promise<DecisionSummary | null> {
    return this.inLane(async () => {
      const events = this.events;
      this.events = [];
      if (this.epoch === null || !events.length) return null;
      const { changed, unknown } = this.view.applyEvents(events);
      if (unknown.length) changed.push(...this.view.putSnapshots(await this.targets.findMany(unknown)));
      if (!changed.length) return null;
      const now = this.options.now();
      return this.decide(this.evaluateTargets(new Set(changed), now), now);
    });
  }

  private inLane<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lane.then(fn);
    this.lane = run.catch(() => undefined);
    return run;
  }

  private reset(): void {
    this.epoch = null;
    this.states = new Map();
    this.grouping = emptyGroupingState();
    this.view.clear();
    this.metrics = new Map();
    this.events = [];
    this.resyncAt = 0;
    this.fullDue = true;
    this.metricsReader.reset();
  }

  /** Just got the lease: a new epoch (waits for the old holder's decisions), then everything from Postgres. */
  private async takeOver(): Promise<void> {
    this.reset();
    this.taking = true;
    try {
      await this.load();
    } finally {
      this.taking = false;
    }
    // Events that arrived while loading: evaluated now (those older than the load change nothing).
    if (this.events.length) this.scheduleEvents();
  }

  private async load(): Promise<void> {
    const epoch = await this.repo.advanceEpoch(this.options.leaseName, this.options.holder);
    const now = this.options.now();
    await this.reloadConfig(now);
    const [states, groups] = await Promise.all([
      this.repo.loadStates<AlertSeriesState>(),
      this.repo.loadGroups<NotificationGroup>(),
    ]);
    this.states = new Map(states.map((s) => [s.key, s]));
    this.grouping = { groups: Object.fromEntries(groups.map((g) => [g.key, g])) };
    this.applyTargets(await this.readTargets(), null, now);
    this.epoch = epoch;
    this.logger.info(
      {
        epoch,
        alerts: this.states.size,
        groups: groups.length,
        targets: this.view.size,
        rules: this.config.rules.length,
      },
      'alert evaluator took the lease',
    );
  }

  private async reloadConfig(now: number): Promise<void> {
    this.configDirty = false;
    this.fullDue = true;
    try {
      this.config = await this.loader.load(now);
    } catch (err) {
      this.configDirty = true;
      throw err;
    }
    this.unreadableRuleIds = new Set(this.config.skipped.filter((s) => s.area === 'rules').map((s) => s.id));
    this.announceDue = true;
    for (const s of this.config.skipped)
      this.logger.warn(s, 'alert configuration entry left out: it does not pass the contract');
  }

  private async readTargets(): Promise<TargetSnapshot[]> {
    const all: TargetSnapshot[] = [];
    for (let after: string | null = null; ;) {
      const page = await this.targets.page(after, TARGET_PAGE);
      all.push(...page);
      if (page.length < TARGET_PAGE) break;
      after = page[page.length - 1].id;
    }
    return all;
  }

  /**
   * A full read of target_states. `known`: the targets the view held when the read began — only those may
   * be removed for being absent (one an event added meanwhile is newer than the read); null: all may.
   */
  private applyTargets(all: readonly TargetSnapshot[], known: ReadonlySet<string> | null, now: number): void {
    this.view.replaceAll(all, known ?? undefined);
    this.fullDue = true;
    this.resyncAt = now + this.options.resyncMs;
  }

  private muter(now: number): Muter {
    return createMuter({
      silences: this.config.silences,
      windows: this.config.windows,
      targetOf: (id) => this.view.get(id)?.target,
      now,
    });
  }

  private input(now: number): EvaluationInput {
    return {
      rules: this.config.rules,
      states: this.states,
      now,
      isMuted: this.muter(now).isMuted,
      unreadableRuleIds: this.unreadableRuleIds,
    };
  }

  private *observed(): Iterable<ObservedTarget> {
    for (const t of this.view.values()) yield this.observedOf(t);
  }

  private observedOf(t: ViewedTarget): ObservedTarget {
    return {
      target: t.target,
      observation: { status: t.status, metrics: this.metrics.get(t.target.id), reportIntervalMs: t.reportIntervalMs },
    };
  }

  private lookup(): NotificationLookup {
    return {
      rule: (id) => this.config.rulesById.get(id),
      target: (id) => this.view.get(id)?.target,
      externalURL: this.options.externalURL,
      site: this.options.site,
    };
  }

  /**
   * Commits one evaluation: states, grouping and the messages due, under the epoch check; then (only then)
   * moves memory on. Returns null when there was nothing to write.
   */
  private async decide(result: EvaluationResult, now: number): Promise<DecisionSummary | null> {
    const epoch = this.epoch;
    if (epoch === null) return null;
    // Mutes asked again as messages go out: a silence made while an alert waited in its group keeps it back.
    const muter = this.muter(now);
    let grouped = addToGroups(this.grouping, result.notifications, this.config.routes, now);
    const announcing = this.announceDue;
    if (announcing) {
      const firing: AlertNotification[] = [];
      for (const held of this.states.values()) {
        // As this decision leaves it (resolved or gone: nothing to announce; one firing anew is announced by the engine).
        // Muted ones too: new to a channel's group, flushDue holds them back while the mute lasts and sends them when
        // it ends — left out here, a channel added during a silence that ended by itself heard nothing until the
        // alert's next repeat (4 h).
        const s = result.changed.has(held.key) ? result.changed.get(held.key) : held;
        if (s?.state === 'firing' && s.lastSentAt !== null) firing.push(notificationOf('firing', s, now));
      }
      grouped = announceFiring(grouped, firing, this.config.routes, now);
    }
    const { state: next, flushes } = flushDue(grouped, now, (a) => muter.isMuted(a.labels, a.targetId));
    const groupUpserts: StoredNotificationGroup[] = [];
    const groupDeletes: string[] = [];
    if (next !== this.grouping) {
      for (const [k, g] of Object.entries(next.groups))
        if (this.grouping.groups[k] !== g) groupUpserts.push({ key: k, channelId: g.channelId, group: g });
      for (const k of Object.keys(this.grouping.groups)) if (!(k in next.groups)) groupDeletes.push(k);
    }
    if (!result.changed.size && !groupUpserts.length && !groupDeletes.length && !flushes.length) {
      if (announcing) this.announceDue = false;
      return null;
    }
    const upserts: AlertSeriesState[] = [];
    const deletes: string[] = [];
    for (const [k, s] of result.changed) {
      if (s) upserts.push(s);
      else deletes.push(k);
    }
    const lookup = this.lookup();
    // Rendered before the transaction, within one budget for the whole decision: templates (annotations) never hold
    // the transaction — and its lease row — however many messages a decision sends.
    const passBudget = renderBudget(TEMPLATE_LIMITS.passRenderMs);
    const messages = flushes.map((f) => ({
      channelId: f.channelId,
      groupKey: f.groupKey,
      notification: notificationOfFlush(f, lookup, passBudget),
    }));
    // The history: every change but a resolved alert's being forgotten (its retention over: bookkeeping, not news).
    const changes: AlertEventDraft[] = [];
    for (const t of result.transitions)
      if (!(t.from === 'resolved' && t.to === 'inactive'))
        changes.push({
          ruleId: t.ruleId,
          targetId: t.targetId,
          fingerprint: t.fingerprint,
          from: t.from,
          to: t.to,
          labels: t.labels,
          value: t.value,
          at: t.at,
          endReason: t.reason ?? null,
          absentSince: t.absentSince ?? null,
        });
    let recorded: AlertEventRecord[] = [];
    try {
      await this.repo.transaction(async (tx) => {
        if (!(await this.repo.holdsEpoch(tx, this.options.leaseName, epoch))) throw new EvaluatorFencedError();
        await this.repo.saveStates(tx, upserts, deletes);
        await this.repo.saveGroups(tx, groupUpserts, groupDeletes);
        await this.deliveries.enqueue(messages, tx, now);
        recorded = await this.history.record(tx, changes);
      });
    } catch (err) {
      if (err instanceof EvaluatorFencedError) {
        this.logger.warn({ epoch }, err.message);
        this.reset();
      } else {
        // Not written — or written with the answer lost (a connection cut after COMMIT): memory may be behind or
        // ahead of Postgres either way. The next tick reloads everything from Postgres (as at a take-over), so a
        // decision that did commit is not taken, and its notifications queued, a second time.
        this.reset();
      }
      throw err;
    }
    applyChanges(this.states, result.changed);
    this.grouping = next;
    if (announcing) this.announceDue = false;
    for (const t of result.transitions)
      this.logger.info(
        {
          alert: t.labels['alertname'],
          target: t.labels['target'],
          from: t.from,
          to: t.to,
          ...(t.reason ? { reason: t.reason } : {}),
        },
        'alert state',
      );
    if (flushes.length) this.onQueued();
    // Not awaited: published after every earlier decision's, while the lane moves on (never rejects).
    if (recorded.length) void this.history.publishInOrder(recorded);
    return { states: result.changed.size, groups: groupUpserts.length + groupDeletes.length, flushes };
  }
}
