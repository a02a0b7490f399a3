import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import {
  CHECK_SECRET_ENV_PREFIX,
  ConfigRpcMethod,
  Messages,
  uuidv7,
  type CheckDefinition,
  type CheckResultPayload,
  type CheckType,
} from '@fleetwatch/contracts';
import { createTargetPolicy } from '@fleetwatch/domain';
import { BusConnections, BusPublisher, ConfigChangedFollower, RpcClient, RpcError } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config';
import { StampService } from '../stamps/stamp.service';
import { COLLECTOR_CONFIG } from '../tokens';
import { AssignmentFile } from './assignment/assignment-file';
import { AssignmentService, type Assignment } from './assignment/assignment.service';
import { ChecksMetrics } from './checks.metrics';
import type { Probe, ProbeSessions, SessionContext } from './probe';
import { CheckRunner } from './runner/check-runner';
import { ConditionSandbox, type ConditionEvaluator } from './runner/condition-sandbox';
import { CheckScheduler } from './scheduler/check-scheduler';
import { Spool, stopOnLostSpoolLock } from './spool/spool';
import { SpoolDrain } from './spool/spool-drain';

/** Maps a check type to its probe (probes/registry.ts in the service; tests may pass their own). */
export const PROBE_LOOKUP = Symbol('PROBE_LOOKUP');
/** Probes that hold a subscription while their checks are assigned (probes/registry.ts: the rabbitmq-tap). */
export const PROBE_SESSIONS = Symbol('PROBE_SESSIONS');
/** When this collector started (epoch ms): slots that fell during its boot run at once (CheckScheduler.catchUpFrom). */
export const COLLECTOR_STARTED_AT = Symbol('COLLECTOR_STARTED_AT');
export type ProbeLookup = (type: CheckType) => Probe | undefined;

/**
 * The collector's checks capability (issue 15), wired: the assignment (owner over the
 * bus, last copy on disk, config.changed) feeds the scheduler; each run goes through the
 * runner and its result into the spool; the drain publishes the spool in order with
 * confirms. Nothing here needs the bus to keep checking.
 *
 * Shutdown: scheduling stops and queued slots are dropped; runs in flight get half the
 * shutdown budget to finish within their own timeouts, then are aborted (a run cut short
 * by shutdown reports nothing); what is spooled gets a short window to reach the broker,
 * and what did not stays on disk for the next start.
 */
@Injectable()
export class ChecksService implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private spool!: Spool;
  private runner!: CheckRunner;
  private conditions!: ConditionEvaluator;
  private scheduler!: CheckScheduler<CheckDefinition>;
  private drain!: SpoolDrain;
  private assignment!: AssignmentService;
  private follower!: ConfigChangedFollower;
  private sessionContext!: SessionContext;
  readonly metrics = new ChecksMetrics();

  constructor(
    @Inject(COLLECTOR_CONFIG) private readonly config: CollectorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    @Inject(PROBE_LOOKUP) private readonly probeFor: ProbeLookup,
    @Inject(COLLECTOR_STARTED_AT) private readonly startedAt: number,
    private readonly publisher: BusPublisher,
    private readonly connections: BusConnections,
    private readonly rpc: RpcClient,
    private readonly stamps: StampService,
    @Optional() @Inject(PROBE_SESSIONS) private readonly sessions?: ProbeSessions,
  ) {}

  /** The assignment running now (from the owner or from disk), undefined before the first one. */
  get current(): Assignment | undefined {
    return this.assignment?.current;
  }

  /** Checks scheduled, runs in flight, and what waits in the spool. */
  get state(): { scheduled: number; running: number; spooled: number } {
    return { scheduled: this.scheduler.size, running: this.scheduler.running, spooled: this.spool.stats.records };
  }

  async onModuleInit(): Promise<void> {
    const { config, logger, metrics } = this;
    this.spool = await Spool.open({
      dir: config.spool.dir,
      maxBytes: config.spool.maxBytes,
      logger,
      onDropped: (records, reason) => metrics.countDropped(reason, records),
      onLockLost: stopOnLostSpoolLock(logger, config.spool.dir),
    });
    metrics.watchSpool(this.spool);
    // The stamp file lies in this spool's directory: written only while its lock is this process's.
    const spool = this.spool;
    this.stamps.writeOnlyWhile(() => spool.ownsDir());
    this.sessionContext = {
      policy: createTargetPolicy(config.denyNetworks),
      env: checkSecretsOf(process.env),
      dnsServers: config.dnsServers,
      logger,
    };
    this.conditions = ConditionSandbox.orInline(logger);
    this.runner = new CheckRunner({
      conditions: this.conditions,
      probeFor: this.probeFor,
      policy: this.sessionContext.policy,
      env: this.sessionContext.env,
      dnsServers: config.dnsServers,
      location: config.location,
      stamp: () => this.stamps.now(),
      sink: (result) => this.spoolResult(result),
      logger,
      onResult: (type, outcome) => metrics.countRun(type, outcome),
    });
    this.scheduler = new CheckScheduler<CheckDefinition>(
      {
        run: (check, slot) => this.runner.run(check, slot),
        onStart: (_check, lagMs) => metrics.observeLag(lagMs),
        onSkip: (_check, reason, slots) => metrics.countSkipped(reason, slots),
        onError: (check, error) =>
          logger.error({ checkId: check.id, error: (error as Error).message }, 'check run failed unexpectedly'),
      },
      { concurrency: config.checks.concurrency, catchUpFrom: this.startedAt },
    );
    this.drain = new SpoolDrain(this.spool, this.publisher, this.connections.publishing, {
      logger,
      onPublished: (n) => metrics.published.inc(n),
      onDiscarded: (n) => metrics.countDropped('invalid', n),
    });
    this.assignment = new AssignmentService({
      location: config.location,
      // Like the stamp file: written only while the spool directory's lock is this process's.
      file: new AssignmentFile(config.checks.assignmentFile, () => spool.ownsDir()),
      fetch: (location, known) =>
        this.rpc.call(ConfigRpcMethod.AssignmentGet, known ? { location, known } : { location }),
      // An owner older than `known` refuses the unknown field as invalid (its params are a strict object).
      isRefusedKnown: (e) => e instanceof RpcError && e.code === 'invalid',
      apply: (a) => this.apply(a),
      logger,
      refreshIntervalMs: config.checks.assignmentRefreshMs,
    });
    this.follower = new ConfigChangedFollower(
      this.connections.consuming,
      {
        onChanged: () => this.assignment.refresh('config.changed'),
        onConnected: () => this.assignment.refresh('bus connected'),
      },
      logger,
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    this.drain.start();
    await this.assignment.start();
    this.scheduler.start();
    this.follower.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.follower.stop();
    this.assignment.stop();
    const budget = this.config.shutdownTimeoutMs / 2;
    const stopped = this.scheduler.stop();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      stopped.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), budget))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      this.logger.warn(
        { running: this.scheduler.running, budgetMs: budget },
        'checks still running at shutdown: aborted',
      );
      this.runner.abortAll();
      // Runs waiting for their conditions end too (failed: the collector is stopping).
      await this.conditions.close();
      await stopped;
    }
    await this.sessions?.close();
    await this.conditions.close();
    await this.drain.stop(Math.min(2_000, this.config.shutdownTimeoutMs / 4));
    await this.spool.close();
    this.metrics.watchSpool(undefined);
  }

  private apply(a: Assignment): void {
    // Paused checks do not run; nor do types without a probe here (`push` heartbeat monitors: the aggregator judges their pings).
    const active = a.checks.filter((c) => !c.paused && this.probeFor(c.type) !== undefined);
    this.scheduler.replaceAll(active);
    // Subscriptions follow the assignment: opened for new checks, closed for deleted or paused ones.
    this.sessions?.assign(active, this.sessionContext);
    const tight = heapTooSmallFor(active.length, getHeapStatistics().heap_size_limit);
    if (tight)
      this.logger.warn(
        { checks: active.length, ...tight },
        'heap limit tight for this many checks: raise --max-old-space-size',
      );
    this.metrics.setAssigned(active);
    this.metrics.setAssignment(a.version, a.origin);
  }

  private spoolResult(result: CheckResultPayload): void {
    // The envelope id is fixed here, once: every resend from the spool carries it, and consumers drop repeats by it.
    this.spool.append({
      id: uuidv7(),
      type: Messages.CheckResult.type,
      occurredAt: new Date(this.stamps.now()).toISOString(),
      payload: result,
    });
  }
}

/** Live heap of a collector at rest, and per assigned check (definition and scheduler entry), measured: docs/benchmarks.md. */
const HEAP_AT_REST_BYTES = 32 * 1024 * 1024;
const HEAP_PER_CHECK_BYTES = 1024;

/**
 * The collector runs with a capped old space (`npm start`, the Dockerfile: 256 MB, so the garbage of its
 * connections is collected early). An assignment whose live heap would pass 80 % of the limit is said out
 * loud — a heap that runs out crash-loops the collector on its saved assignment.
 */
export function heapTooSmallFor(
  checks: number,
  heapLimitBytes: number,
): { neededMb: number; heapLimitMb: number } | undefined {
  const needed = HEAP_AT_REST_BYTES + checks * HEAP_PER_CHECK_BYTES;
  if (needed <= 0.8 * heapLimitBytes) return undefined;
  return { neededMb: Math.ceil(needed / 1048576), heapLimitMb: Math.floor(heapLimitBytes / 1048576) };
}

/**
 * The only environment checks may read (`passwordEnv`): FLEETWATCH_SECRET_* variables. Anything else the
 * collector holds (AMQP_URL and its credentials) would otherwise go to whatever host a check names.
 */
export function checkSecretsOf(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith(CHECK_SECRET_ENV_PREFIX)));
}
