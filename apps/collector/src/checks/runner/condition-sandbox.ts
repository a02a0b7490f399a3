import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { evaluateConditions, type ConditionFacts, type ConditionVerdict } from '@fleetwatch/domain';

// Where a check's conditions (CEL over the probe's result) are evaluated. CEL has no budget: `bodyText.matches(…)`
// with a pattern that backtracks (`^(a+)+$` over 31 characters: 71 s) or a comprehension nested over a 64 KB body ran
// synchronously on the collector's event loop — every other check, host sampling and the bus's heartbeats stopped,
// for as long as the probed server's answer made it take. The collector (built) evaluates them in one worker thread
// with a budget per evaluation: one that runs past it fails its check with a reason saying so, the thread is
// terminated and a new one takes the rest. Started with the first check that has conditions.

/**
 * A verdict, or none: `stopped` says the conditions were not judged — `budget`: they ran past it (the check's doing:
 * its conditions over what its target answered); `fault`: their thread failed or did not start (the collector's).
 */
export type SandboxVerdict = ConditionVerdict & { stopped?: 'budget' | 'fault' };

export interface EvaluateOptions {
  /**
   * Whose conditions these are (a check and its conditions): conditions that were slow last time (past
   * SLOW_CONDITIONS_MS, or stopped at the budget) wait behind everyone else's, so one check's slow conditions
   * cannot hold up every other check's.
   */
  key?: string;
}

export interface ConditionEvaluator {
  evaluate(conditions: readonly string[], facts: ConditionFacts, options?: EvaluateOptions): Promise<SandboxVerdict>;
  close(): Promise<void>;
}

/** On the caller's thread (unit tests; a build without the worker file). */
export const inlineConditions: ConditionEvaluator = {
  evaluate: (conditions, facts) => Promise.resolve(evaluateConditions(conditions, facts)),
  close: () => Promise.resolve(),
};

/** How long one check's conditions may take (normal ones take well under 10 ms, a 64 KB body included). */
export const CONDITION_BUDGET_MS = 1_000;
/**
 * Conditions that took this long (or ran past the budget) are judged after all others from then on, until they are
 * fast again: with one thread, eight checks whose regular expression takes ~1 s each held a light check's conditions
 * 10 s, past its interval, at every round.
 */
export const SLOW_CONDITIONS_MS = 100;
// (The oldest of them goes next once it has waited twice the budget: slow ones wait, they do not starve.)
/** Keys remembered as slow, at most (then forgotten all at once: they are found again at their next run). */
const SLOW_KEYS_MAX = 10_000;
/** How long a new thread may take to load before the evaluations waiting for it fail. */
const START_BUDGET_MS = 30_000;

export interface SandboxLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface Job {
  conditions: readonly string[];
  facts: ConditionFacts;
  key: string | undefined;
  queuedAt: number;
  resolve(verdict: SandboxVerdict): void;
}

const failedWith = (reason: string, stopped: 'budget' | 'fault' = 'fault'): SandboxVerdict => ({
  ok: false,
  failed: { index: 0, expression: '', reason },
  stopped,
});

/**
 * The thread's heap: enough for a large result (a Prometheus page's samples, a 64 KB body parsed), bounded so that a
 * condition building huge values fails alone (the thread ends out of memory) rather than take the collector's memory
 * (it inherits the main heap's limit otherwise).
 */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 16 };

export class ConditionSandbox implements ConditionEvaluator {
  private worker: Worker | null = null;
  private ready = false;
  /** Waiting: conditions not known to be slow first, then the slow ones (SLOW_CONDITIONS_MS). */
  private readonly queue: Job[] = [];
  private readonly slowQueue: Job[] = [];
  private readonly slowKeys = new Set<string>();
  private lastWasSlow = false;
  private active: { job: Job; timer: NodeJS.Timeout; startedAt: number } | null = null;
  private startTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly logger: SandboxLogger,
    private readonly budgetMs = CONDITION_BUDGET_MS,
    private readonly slowMs = SLOW_CONDITIONS_MS,
  ) {}

  /** How long the oldest slow evaluation may wait behind the others before it goes next (none starves). */
  private get slowWaitMaxMs(): number {
    return 2 * this.budgetMs;
  }

  /** The sandbox when the worker's file is beside this one (the build), else inline (sources run by jest). */
  static orInline(logger: SandboxLogger): ConditionEvaluator {
    const file = join(__dirname, 'condition-worker.thread.js');
    return existsSync(file) ? new ConditionSandbox(file, logger) : inlineConditions;
  }

  evaluate(
    conditions: readonly string[],
    facts: ConditionFacts,
    options: EvaluateOptions = {},
  ): Promise<SandboxVerdict> {
    if (this.closed) return Promise.resolve(failedWith('conditions not evaluated: the collector is stopping'));
    const key = options.key;
    return new Promise((resolve) => {
      (key !== undefined && this.slowKeys.has(key) ? this.slowQueue : this.queue).push({
        conditions,
        facts,
        key,
        queuedAt: Date.now(),
        resolve,
      });
      this.pump();
    });
  }

  private noteDuration(job: Job, slow: boolean): void {
    if (job.key === undefined) return;
    if (!slow) {
      this.slowKeys.delete(job.key);
      return;
    }
    if (this.slowKeys.size >= SLOW_KEYS_MAX) this.slowKeys.clear();
    this.slowKeys.add(job.key);
  }

  private waiting(): number {
    return this.queue.length + this.slowQueue.length;
  }

  /**
   * The next job: after a slow one, the others' first (so slow ones never run back to back while others wait — aged
   * ones included: eight that aged together held a light check ~8 s); else the oldest slow one once it has waited
   * slowWaitMaxMs (none starves), else the others' in turn.
   */
  private takeNext(): Job {
    const oldestSlow = this.slowQueue[0];
    const aged = oldestSlow !== undefined && Date.now() - oldestSlow.queuedAt >= this.slowWaitMaxMs;
    const fromSlow = this.queue.length === 0 || (aged && !this.lastWasSlow);
    this.lastWasSlow = fromSlow;
    return (fromSlow ? this.slowQueue.shift() : this.queue.shift()) as Job;
  }

  private takeAll(): Job[] {
    return [...this.queue.splice(0), ...this.slowQueue.splice(0)];
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.drop('conditions not evaluated: the collector is stopping');
    await worker?.terminate();
  }

  private pump(): void {
    if (this.closed || this.active || this.waiting() === 0) return;
    if (!this.worker) this.spawn();
    if (!this.ready || !this.worker) return;
    const job = this.takeNext();
    try {
      this.worker.postMessage({ conditions: job.conditions, facts: job.facts });
    } catch (err) {
      // Facts the structured clone cannot carry (a probe's bug): judged here rather than failing the check for it.
      this.logger.warn({ err: (err as Error).message }, 'probe facts not transferable to the condition thread');
      job.resolve(evaluateConditions(job.conditions, job.facts));
      this.pump();
      return;
    }
    const worker = this.worker;
    const overrun = (): void => {
      if (this.active?.job !== job) return;
      this.noteDuration(job, true);
      this.logger.warn(
        { budgetMs: this.budgetMs, conditions: job.conditions },
        'check conditions ran past their budget: their thread is replaced',
      );
      this.replace(
        worker,
        `conditions took longer than ${this.budgetMs} ms and were stopped ` +
          '(a regular expression that backtracks, or a comprehension over a large body?)',
        'budget',
      );
    };
    this.active = {
      job,
      startedAt: Date.now(),
      // Decided after the I/O of this turn: when this loop was held past the budget (a long GC, a large assignment),
      // the thread's answer may be waiting behind the timer — it is read first (setImmediate runs after the poll).
      timer: setTimeout(() => setImmediate(overrun), this.budgetMs),
    };
  }

  private spawn(): void {
    const worker = new Worker(this.file, { resourceLimits: THREAD_LIMITS });
    this.worker = worker;
    this.ready = false;
    // The collector's own lifecycle ends it (close); an idle thread must not keep the process up.
    worker.unref();
    this.startTimer = setTimeout(
      () => this.replace(worker, `the condition thread did not start within ${START_BUDGET_MS / 1000} s`),
      START_BUDGET_MS,
    );
    worker.on('message', (message: (ConditionVerdict & { tookMs?: number }) | { ready: true }) => {
      if (this.worker !== worker) return;
      if ('ready' in message) {
        this.ready = true;
        if (this.startTimer) clearTimeout(this.startTimer);
        this.startTimer = null;
      } else if (this.active) {
        const { job, timer, startedAt } = this.active;
        clearTimeout(timer);
        this.active = null;
        // The thread's own measure (this loop's lag is not the conditions' doing); the round trip otherwise.
        const { tookMs, ...verdict } = message;
        this.noteDuration(job, (typeof tookMs === 'number' ? tookMs : Date.now() - startedAt) >= this.slowMs);
        job.resolve(verdict);
      }
      this.pump();
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        // The conditions being judged built values past the thread's heap: theirs, like a budget overrun.
        this.logger.warn({ err: err.message }, 'check conditions ran out of memory: their thread is replaced');
        this.replace(
          worker,
          `conditions ran out of memory (${THREAD_LIMITS.maxOldGenerationSizeMb} MB) and were stopped`,
          'budget',
        );
        return;
      }
      this.logger.error({ err: err.message }, 'the condition thread failed; a new one takes the next evaluations');
      this.replace(worker, `conditions not evaluated: their thread failed (${err.message})`);
    });
    worker.on('exit', (code) => this.replace(worker, `conditions not evaluated: their thread exited (${code})`));
  }

  /** Ends `worker` (if it is the current one): the evaluation it held fails with `reason`, the rest go to a new one. */
  private replace(worker: Worker, reason: string, stopped: 'budget' | 'fault' = 'fault'): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.ready = false;
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = null;
    void worker.terminate();
    const active = this.active;
    this.active = null;
    if (active) {
      clearTimeout(active.timer);
      active.job.resolve(failedWith(reason, stopped));
    } else {
      // It never started: what waits for it fails rather than wait for another that may not start either.
      for (const job of this.takeAll()) job.resolve(failedWith(reason));
    }
    this.pump();
  }

  private drop(reason: string): void {
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = null;
    this.worker = null;
    if (this.active) {
      clearTimeout(this.active.timer);
      this.active.job.resolve(failedWith(reason));
      this.active = null;
    }
    for (const job of this.takeAll()) job.resolve(failedWith(reason));
  }
}
