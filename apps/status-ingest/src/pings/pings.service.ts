import { Inject, Injectable } from '@nestjs/common';
import {
  MAX_PING_EXIT_CODE,
  Messages,
  toStorable,
  truncateText,
  type PingReceivedPayload,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError, RateLimitedError } from '@fleetwatch/domain';
import { BusPublisher } from '@fleetwatch/messaging';
import { HeartbeatMonitorsRepository, PingTokenResolver } from '@fleetwatch/persistence';
import { KeyLookups } from '../auth/key-lookups';
import type { IngestConfig } from '../config';
import { PublishGate } from '../ingress/publish-gate.service';
import { IngestRateLimits } from '../limits/ingest-rate-limits';
import type { SharedLimit } from '../limits/shared-rate-limiter';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';

export type PingSignal = PingReceivedPayload['signal'];

/** The part of a ping body that travels on (SPEC: up to 10 KB, as text). */
export const MAX_PING_BODY_CHARS = 10_000;
const RUN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** An exit code as a ping URL ends in it: 1–3 decimal digits (a shell's `$?`), leading zeros read as decimal. */
const EXIT_CODE = /^[0-9]{1,3}$/;

/**
 * The exit code a ping URL's last segment names (`/ping/{token}/{code}`, Healthchecks style), or null when it is
 * none: not 1–3 decimal digits, or over 255 (`256`, `-1`, `01x`, `1e2`).
 */
export function exitCodeOf(segment: string): number | null {
  if (!EXIT_CODE.test(segment)) return null;
  const code = Number(segment);
  return code <= MAX_PING_EXIT_CODE ? code : null;
}

/** What an exit code signals: 0 a success, any other a failure (Healthchecks semantics). */
export function signalOfExitCode(exitCode: number): Exclude<PingSignal, 'start'> {
  return exitCode === 0 ? 'success' : 'fail';
}

export interface PingAccepted {
  ok: true;
  signal: PingSignal;
}

export interface PingOptions {
  runId?: string;
  body?: string;
  /** The exit code the URL named (`/ping/{token}/{code}`): must agree with the signal (signalOfExitCode). */
  exitCode?: number;
  /** The client address (after trusted proxies) `admit` was given: charged to the shared per-address limit. */
  clientAddress?: string;
}

/**
 * Heartbeat pings (`/ping/{token}`, `/start`, `/fail`, `/{exit code}`): finds the monitor of the
 * token (persistence PingTokenResolver: random tokens cost no query; lookups are
 * cached for `pingCacheMs`), and publishes `ping.received` with the monitor's
 * schedule and the config version it was read at, so the aggregator can set the deadline without a lookup. Resolves after
 * the broker's confirm. Rate-limited per client address and per monitor, with
 * budgets shared by every replica (Redis, IngestRateLimits): `admit` checks the
 * address against this replica's own bucket before the body is read or any token
 * looked up (so a spray of tokens is bounded without a round trip), then `ping`
 * charges the shared address and monitor buckets in one round trip (an unknown
 * token: the address alone). Redis away: this replica's buckets decide alone.
 */
@Injectable()
export class PingsService {
  private readonly resolver: PingTokenResolver;
  private readonly perIp: SharedLimit;
  private readonly perMonitor: SharedLimit;

  constructor(
    monitors: HeartbeatMonitorsRepository,
    private readonly publisher: BusPublisher,
    private readonly gate: PublishGate,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) config: IngestConfig,
    private readonly limits: IngestRateLimits,
    private readonly lookups: KeyLookups,
  ) {
    // Lookups bounded in time and number, as API keys' (KeyLookups): a hanging database answers 503 promptly.
    this.resolver = new PingTokenResolver(lookups.pingTokens(monitors), { cacheTtlMs: config.pingCacheMs });
    this.perIp = limits.pingsPerAddress;
    this.perMonitor = limits.pingsPerMonitor;
  }

  /**
   * Charges one ping to the client address (after trusted proxies) in this
   * replica's own bucket; throws RateLimitedError over the limit. The shared
   * budget is charged by `ping`.
   */
  admit(ip: string, now: number = Date.now()): void {
    // Per address, not per /64: many hosts of one subnet may ping through their own addresses.
    const byIp = this.perIp.local.take(ip, 1, now);
    if (!byIp.allowed) throw this.addressLimited(byIp.retryAfterSeconds);
  }

  private addressLimited(retryAfterSeconds: number): RateLimitedError {
    return new RateLimitedError(
      `rate limit of ${this.perIp.burst} pings/min from this address exceeded`,
      retryAfterSeconds,
    );
  }

  async ping(
    token: string,
    signal: PingSignal,
    options: PingOptions = {},
    now: number = Date.now(),
  ): Promise<PingAccepted> {
    this.gate.assertOpen(now);
    if (options.runId !== undefined && !RUN_ID.test(options.runId)) {
      throw new InvalidError('rid: use 1–128 letters, digits and . _ : -', [
        { path: 'rid', message: 'use 1–128 letters, digits and . _ : -' },
      ]);
    }
    const code = options.exitCode;
    if (
      code !== undefined &&
      (!Number.isInteger(code) || code < 0 || code > MAX_PING_EXIT_CODE || signalOfExitCode(code) !== signal)
    ) {
      throw new InvalidError(`exit code: use 0 (success) or 1–${MAX_PING_EXIT_CODE} (fail)`, [
        { path: 'exitCode', message: `must be 0–${MAX_PING_EXIT_CODE}, 0 a success and any other a fail` },
      ]);
    }
    const monitor = await this.resolver.resolve(token);
    // One round trip: the address (already charged here by `admit`) and the monitor, both or neither.
    const address = options.clientAddress;
    const charges = [
      ...(address === undefined ? [] : [{ limit: this.perIp, key: address, cost: 1, chargedLocally: true }]),
      ...(monitor ? [{ limit: this.perMonitor, key: monitor.id, cost: 1 }] : []),
    ];
    const decision = charges.length ? await this.limits.shared.take(charges, now) : null;
    if (decision && !decision.allowed) {
      if (charges[decision.refusedBy].limit === this.perIp) throw this.addressLimited(decision.retryAfterSeconds);
      throw new RateLimitedError(
        `rate limit of ${this.perMonitor.burst} pings/min for this monitor exceeded`,
        decision.retryAfterSeconds,
      );
    }
    if (!monitor) throw new NotFoundError('no heartbeat monitor has this ping URL');
    const payload: PingReceivedPayload = {
      monitorId: monitor.id,
      targetId: monitor.targetId,
      signal,
      receivedAt: new Date(now).toISOString(),
      periodSeconds: monitor.periodSeconds,
      graceSeconds: monitor.graceSeconds,
      maxRuntimeSeconds: monitor.maxRuntimeSeconds,
      name: truncateText(monitor.name, 256),
    };
    // The config version the schedule was read at (one statement with it): the aggregator counts the ping with its own
    // schedule when that version is newer than the window it holds (the check.lifecycle saying it is still to come).
    // Only a version the contract takes (positive): a row from before versions were kept (0) counts as before.
    if (monitor.configVersion !== undefined && monitor.configVersion !== null && monitor.configVersion > 0)
      payload.configVersion = monitor.configVersion;

    if (code !== undefined) payload.exitCode = code;
    if (options.runId !== undefined) payload.runId = options.runId;
    // A job's output is kept as information: cleaned of what no store can hold (NUL), never a reason to lose the ping.
    if (options.body) payload.body = truncateText(toStorable(options.body), MAX_PING_BODY_CHARS);
    await this.gate.publish('ping', () => this.publisher.publish(Messages.PingReceived, payload));
    this.metrics.pings.labels(signal).inc();
    return { ok: true, signal };
  }

  /** Forgets every cached monitor (checks changed): the next ping of each reads its monitor again. */
  forgetMonitors(): void {
    this.resolver.clear();
    // Queries under way and answers kept are of before the change too.
    this.lookups.forget('ping:');
  }

  /** Drops refilled rate-limit buckets (called periodically by the routes). */
  sweep(now: number = Date.now()): void {
    this.perIp.local.sweep(now);
    this.perMonitor.local.sweep(now);
  }
}
