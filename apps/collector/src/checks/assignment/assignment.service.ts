import type { CheckDefinition } from '@fleetwatch/contracts';
import { backoffDelay } from '@fleetwatch/messaging';
import type { AssignmentFile } from './assignment-file';
import { AssignmentParser, type Rejected } from './assignment-parse';

// Which checks this collector runs (issue 15: assignment per location). The owner is
// sync-orchestrator (`assignment.get {location}` over the bus); the last answer is kept on
// disk and used at start, before the owner answers or when it never does. Refetched on
// every config.changed event (bursts coalesced into one fetch in flight plus one after
// it), on every bus (re)connect, and every `refreshIntervalMs` as a safety net for events
// that were missed; a fetch that fails is retried with backoff until one succeeds.

export type AssignmentOrigin = 'bus' | 'disk';

export interface Assignment {
  location: string;
  version: number;
  hash: string;
  checks: CheckDefinition[];
  origin: AssignmentOrigin;
  /** When the owner sent it (from disk: when it was saved). */
  receivedAt: string;
}

/** What `assignment.get` answers (ConfigRpcResults[AssignmentGet]), read defensively. */
export interface AssignmentAnswer {
  version: number;
  hash: string;
  location: string;
  /** Absent when `notModified`. */
  checks?: unknown[];
  /** The owner's answer to `known` naming its head: what is held is current. */
  notModified?: boolean;
}

/** The assignment held (its version and hash), sent so that an unchanged one is not sent again. */
export interface KnownAssignment {
  version: number;
  hash: string;
}

export interface AssignmentLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AssignmentServiceDeps {
  location: string;
  file: AssignmentFile;
  /** `known`: ask for the checks only if the head moved from it (an owner may refuse the field: see isRefusedKnown). */
  fetch(location: string, known?: KnownAssignment): Promise<AssignmentAnswer>;
  /** Whether a fetch error is an owner that does not know `known` (older than the field): ask without it from then on. */
  isRefusedKnown?(error: unknown): boolean;
  /** A new assignment to run (the first one, or one whose content changed). */
  apply(assignment: Assignment): void;
  logger: AssignmentLogger;
  refreshIntervalMs?: number;
}

export class AssignmentService {
  private currentValue: Assignment | undefined;
  private readonly parser = new AssignmentParser();
  private fetching: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  /** Off once an owner refused `known` (an older sync-orchestrator): every fetch then moves the whole assignment. */
  private conditional = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastFetchAt = 0;

  constructor(private readonly deps: AssignmentServiceDeps) {}

  get current(): Assignment | undefined {
    return this.currentValue;
  }

  /** Loads the stored assignment (if any) and starts fetching. Resolves once the disk was read, without waiting for the bus. */
  async start(): Promise<void> {
    await this.loadFromDisk();
    this.refresh('start');
    const every = this.deps.refreshIntervalMs ?? 60_000;
    this.periodic = setInterval(() => {
      if (Date.now() - this.lastFetchAt >= every / 2) this.refresh('periodic');
    }, every);
    this.periodic.unref();
  }

  /** Stops refreshing. A fetch in flight is not waited for (with the bus away it could take its whole timeout); its answer is ignored. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.periodic);
    clearTimeout(this.retryTimer);
  }

  /** Asks the owner again; a call while a fetch is in flight makes exactly one more fetch after it. */
  refresh(reason: string): void {
    if (this.stopped) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.fetching = this.fetchLoop(reason).finally(() => (this.fetching = undefined));
  }

  /** Resolves when no fetch is in flight (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.fetching) await this.fetching;
  }

  private async fetchLoop(reason: string): Promise<void> {
    do {
      this.again = false;
      this.lastFetchAt = Date.now();
      try {
        const answer = await this.fetchOnce();
        await this.accept(answer, reason);
        if (this.failures > 0)
          this.deps.logger.info({ after: this.failures }, 'assignment: sync-orchestrator answers again');
        this.failures = 0;
      } catch (e) {
        this.failures++;
        const level = this.failures === 1 || this.failures % 20 === 0 ? 'warn' : undefined;
        if (level)
          this.deps.logger.warn(
            {
              error: (e as Error).message,
              attempts: this.failures,
              running: this.currentValue
                ? `${this.currentValue.checks.length} checks from ${this.currentValue.origin}`
                : 'no assignment yet',
            },
            'assignment: could not fetch from sync-orchestrator; retrying',
          );
        if (!this.again && !this.stopped) {
          const delay = backoffDelay(this.failures, { initialDelayMs: 1_000, maxDelayMs: 30_000 });
          this.retryTimer = setTimeout(() => this.refresh('retry'), delay);
          this.retryTimer.unref();
        }
      }
    } while (this.again && !this.stopped);
  }

  /** One `assignment.get`: conditional on what is held, unless the owner refused that before. */
  private async fetchOnce(): Promise<AssignmentAnswer> {
    const held = this.currentValue;
    const known = this.conditional && held ? { version: held.version, hash: held.hash } : undefined;
    if (!known) return this.deps.fetch(this.deps.location);
    try {
      return await this.deps.fetch(this.deps.location, known);
    } catch (e) {
      if (!this.deps.isRefusedKnown?.(e)) throw e;
      this.conditional = false;
      this.deps.logger.info(
        { error: (e as Error).message },
        'assignment: the owner does not take the held version (older sync-orchestrator); asking for the whole assignment',
      );
      return this.deps.fetch(this.deps.location);
    }
  }

  private async accept(answer: AssignmentAnswer, reason: string): Promise<void> {
    if (this.stopped) return;
    if (
      !answer ||
      typeof answer.hash !== 'string' ||
      !(answer.notModified === true || Array.isArray(answer.checks)) ||
      !Number.isInteger(answer.version)
    )
      throw new Error('assignment.get answered with something that is not an assignment');
    if (answer.location !== this.deps.location)
      throw new Error(`assignment.get answered for location "${answer.location}", not "${this.deps.location}"`);
    const current = this.currentValue;
    if (answer.notModified === true) {
      // Current only if it names what is held (a held value replaced meanwhile is asked for again, whole).
      if (!current || current.hash !== answer.hash || current.version !== answer.version) {
        this.conditional = false; // an owner answering for another version: ask whole, never loop on it
        this.again = true;
        return;
      }
      if (current.origin === 'disk') this.currentValue = { ...current, origin: 'bus' };
      return;
    }
    const checks = answer.checks as unknown[];
    // An answer is the owner's head when it answered, and answers never race (one fetch at a time; the RPC
    // client drops a late reply): a lower version than the one held is the owner gone back (its database
    // restored), and the owner is the truth — keeping the higher one would run checks it no longer has.
    if (current && current.hash === answer.hash && current.version === answer.version) {
      if (current.origin === 'disk') this.currentValue = { ...current, origin: 'bus' };
      return;
    }
    const receivedAt = new Date().toISOString();
    const next = this.read(checks, { ...answer, origin: 'bus', receivedAt }, reason);
    this.currentValue = next;
    this.deps.apply(next);
    try {
      await this.deps.file.save({
        location: answer.location,
        version: answer.version,
        hash: answer.hash,
        receivedAt,
        checks,
      });
    } catch (e) {
      this.deps.logger.error(
        { path: this.deps.file.path, error: (e as Error).message },
        'assignment: could not store on disk (a restart without the bus would start from an older one)',
      );
    }
  }

  private async loadFromDisk(): Promise<void> {
    let stored;
    try {
      stored = await this.deps.file.load();
    } catch (e) {
      this.deps.logger.error(
        { path: this.deps.file.path, error: (e as Error).message },
        'assignment: stored copy unreadable; ignored',
      );
      return;
    }
    if (!stored) return;
    if (stored.location !== this.deps.location) {
      this.deps.logger.warn(
        { path: this.deps.file.path, stored: stored.location, location: this.deps.location },
        'assignment: stored copy is for another location; ignored',
      );
      return;
    }
    const a = this.read(stored.checks, { ...stored, origin: 'disk' }, 'disk');
    this.currentValue = a;
    this.deps.apply(a);
  }

  private read(raw: unknown[], meta: Omit<Assignment, 'checks'>, reason: string): Assignment {
    const { checks, rejected } = this.parser.parse(raw);
    this.reportRejected(rejected);
    this.deps.logger.info(
      { origin: meta.origin, version: meta.version, checks: checks.length, rejected: rejected.length, reason },
      'assignment loaded',
    );
    return {
      location: meta.location,
      version: meta.version,
      hash: meta.hash,
      receivedAt: meta.receivedAt,
      origin: meta.origin,
      checks,
    };
  }

  private reportRejected(rejected: Rejected[]): void {
    if (rejected.length === 0) return;
    this.deps.logger.warn(
      { count: rejected.length, first: rejected.slice(0, 5) },
      'assignment: checks this collector cannot read are left out (a newer owner?)',
    );
  }
}
