import { hostname } from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WebSocket } from '@fastify/websocket';
import {
  statusChangedPayloadSchema,
  TargetIds,
  TargetKind,
  wsClientMessageSchema,
  WsCloseCode,
  type HostSampleSummary,
  type StatusChangedPayload,
  type TargetView,
  type WsServerMessage,
} from '@fleetwatch/contracts';
import { ForbiddenError, InvalidError, NotFoundError, UnauthorizedError } from '@fleetwatch/domain';
import { CorruptRecordError, createRedis, LiveStateStore, logRedisErrors } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Principal } from '../auth/principal';
import type { GatewayConfig } from '../config';
import { parseSample, summarizeSample } from '../hosts/host-summary';
import { TargetsService } from '../targets/targets.service';
import { GATEWAY_CONFIG } from '../tokens';
import { WS_FRAME_BURST, WS_FRAMES_PER_SECOND, type FrameBudget } from './frame-budget';
import { SocketSubscriptions, type SeenTarget } from './subscriptions';

/** How often a replica reads the latest results and host samples of what its sockets watch. */
const POLL_MS = 2_000;
/**
 * How often the fan-out subscriber PINGs Redis. A connection that only listens gets no answer to wait for, so one that
 * went silent without a reset (a forgotten NAT flow) looked alive for hours while every change was missed; a PING left
 * unanswered past the socket timeout (createRedis: 10 s by default) has it closed and opened again, then a resync.
 */
export const SUBSCRIBER_PING_MS = 5_000;
/**
 * Reads of live state by the hub's polls (the watched targets and hosts, and any other read made meanwhile) failing
 * in a row, with the subscriber still connected, that say live state is away for this replica (reads slower than
 * GATEWAY_REDIS_TIMEOUT_MS, a data connection lost): its sockets are told `degraded`. Told at a poll's end, counting
 * only polls in which no read answered: one that answered says Redis answers (a record it cannot read, beside others
 * it reads, is no outage — counted read by read, three such records in a row said `degraded` and the next read
 * `resync`, every poll), and resets the count. Fewer failures are a blip (a resync covers what it missed). The first
 * poll with a read that answers after them ends it with a resync. A record Redis answered with that cannot be read
 * (a CorruptRecordError: corrupt tags or labels) is a read that answered, never a failure: counted apart
 * (corruptRecords) and skipped.
 */
export const READ_FAILURES_DEGRADED = 3;
/** At most one log line about corrupt records (the count since the last, and the last one's key) this often. */
export const CORRUPT_RECORD_LOG_MS = 60_000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WsClient {
  socket: WebSocket;
  principal: Principal;
  /** Authenticates the socket's credential again: throws when it was revoked or expired. */
  recheck: () => Promise<Principal>;
  /** Sockets sharing a credential share its re-check. */
  credentialKey: string;
  subscriptions: SocketSubscriptions;
  expiry: NodeJS.Timeout | null;
  /** A ping was sent and its pong has not come back yet. */
  awaitingPong: boolean;
  /** What the client may still send (frame-budget.ts). */
  frames: FrameBudget;
}

export interface WsStats {
  open: number;
  droppedSlow: number;
  closedSessionEnded: number;
  /**
   * Sockets refused because their session or API key held GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL already, or their
   * user (all sessions together) GATEWAY_WS_MAX_SOCKETS_PER_USER.
   */
  refusedTooMany: number;
  /** Sockets cut because they did not answer a ping within GATEWAY_WS_PING_INTERVAL_MS. */
  closedNoPong: number;
  /** Times the Redis subscriber subscribed again after a lost connection. */
  resubscribes: number;
  /**
   * Times every open socket was sent a resync: at most one per GATEWAY_WS_RESYNC_MIN_INTERVAL_MS, however often the
   * subscriber reconnects, and always one after the last reconnect.
   */
  resyncs: number;
  /**
   * Times every open socket was told `degraded` (live updates paused): once per outage (the fan-out subscriber lost,
   * or READ_FAILURES_DEGRADED reads of live state failed in a row), however many reconnects or reads fail in it; each
   * is ended by a resync.
   */
  degraded: number;
  /** Client frames dropped for going past their socket's budget (frame-budget.ts). */
  framesDropped: number;
  /** Sockets closed for sending on far past their budget. */
  closedFlooding: number;
  /**
   * Records of live state read by the hub that could not be read (corrupt: a target's tags or labels, a host's sample,
   * not what they should be): Redis answered, so these never count toward `degraded`; each read of one counts.
   */
  corruptRecords: number;
}

const OVER_BUDGET =
  `too many messages: at most ${WS_FRAMES_PER_SECOND} a second (${WS_FRAME_BURST} at once); ` +
  'this one and those after it until then are dropped';
const FLOODING = `too many messages (a flood): reconnect and send at most ${WS_FRAMES_PER_SECOND} a second`;

/** Whose places a socket takes: one session (however it is presented), or one API key. */
export function principalKey(principal: Principal): string {
  return principal.kind === 'api-key' ? `key:${principal.id}` : `session:${principal.sessionId ?? principal.id}`;
}

/** Whose places a socket takes across sessions: one user (every session of theirs), or one API key. */
export function userKey(principal: Principal): string {
  return principal.kind === 'api-key' ? `key:${principal.id}` : `user:${principal.id}`;
}

/**
 * The name of a replica's subscriber connection in Redis CLIENT LIST: host and pid, since in containers every
 * replica is pid 1. Characters Redis refuses in a name (spaces, newlines) are replaced.
 */
export function subscriberConnectionName(host = hostname(), pid = process.pid): string {
  return `api-gateway-ws-${host.replace(/[^A-Za-z0-9._-]/g, '_')}-${pid}`;
}

/** Every figure at zero. */
export function emptyWsStats(): WsStats {
  return {
    open: 0,
    droppedSlow: 0,
    closedSessionEnded: 0,
    refusedTooMany: 0,
    closedNoPong: 0,
    framesDropped: 0,
    closedFlooding: 0,
    resubscribes: 0,
    resyncs: 0,
    degraded: 0,
    corruptRecords: 0,
  };
}

/**
 * The sockets of this replica and what they watch (issue 17). Status changes arrive
 * through Redis pub/sub: the aggregator publishes each committed change on the site's
 * `live:status` channel (libs/live-state), and every gateway replica holds one
 * subscriber connection, so each replica gets every change once and fans it out to its
 * own sockets. Latest results of watched targets and samples of watched hosts are read
 * from live state every 2 s, once per replica for all its sockets. A socket whose unsent
 * data passes GATEWAY_WS_MAX_BUFFERED_BYTES is dropped; sessions are checked again every
 * GATEWAY_WS_SESSION_CHECK_MS and at their expiry.
 *
 * When the subscriber's connection is lost, the changes published until it has subscribed
 * again never reach this replica (pub/sub keeps nothing): once subscribed again, every open
 * socket gets `{type: 'resync'}` and re-reads over REST — at most once per GATEWAY_WS_RESYNC_MIN_INTERVAL_MS (10 s),
 * with a trailing one after the last reconnect, so a flapping subscriber does not make every page re-read
 * everything every few seconds. A changed target that cannot be read (Redis away or slow) asks for the same resync:
 * subscriptions filtered by its tags or kind could not be matched. Each socket is pinged every
 * GATEWAY_WS_PING_INTERVAL_MS and cut when it has not answered the previous ping (a peer
 * gone without a FIN holds nothing for long); one session or API key holds at most
 * GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL sockets on a replica, and one user (all sessions together) or API key at most
 * GATEWAY_WS_MAX_SOCKETS_PER_USER (signing in again does not buy more).
 */
type ResyncCause = 'resubscribed' | 'unreadable';
const RESYNC_CAUSES: Record<ResyncCause, { log: string; reason: string }> = {
  resubscribed: {
    log: 'WebSocket fan-out subscriber reconnected: changes published meanwhile were missed; sockets told to resync',
    reason: 'live updates were interrupted (the gateway lost its Redis subscription): re-read what you show',
  },
  unreadable: {
    log: 'WebSocket fan-out could not read a changed target from Redis: filtered subscriptions may have missed it; sockets told to resync',
    reason: 'live updates were interrupted (the gateway could not read a change from Redis): re-read what you show',
  },
};

/**
 * What `degraded` says when the subscriber's connection is lost: a fixed text (the Redis error, which names hosts, is
 * logged by logRedisErrors, never sent to a socket).
 */
export const DEGRADED_REASON =
  'live updates paused: the gateway lost its connection to live state (Redis); a resync follows once it is back';
/** What `degraded` says when the hub's reads of live state fail in a row (READ_FAILURES_DEGRADED): fixed as well. */
export const DEGRADED_READS_REASON =
  'live updates paused: the gateway cannot read live state (Redis); a resync follows once it answers';

/** What a subscription's first read answers when live state (Redis) does not: fixed, the error itself is not sent. */
const FIRST_VIEW_UNAVAILABLE =
  'live state unavailable: the subscription stands, its first view comes once live state answers';

/**
 * What a target subscription's first read answers when the target's record in live state cannot be read (corrupt):
 * Redis answered, the record is unreadable until its next write (the target's next result) replaces it.
 */
export function corruptTarget(targetId: string): string {
  return (
    `target ${JSON.stringify(targetId)} cannot be read: its record in live state is corrupt; ` +
    'the subscription stands, its view comes once the record is written again'
  );
}

@Injectable()
export class WsHub implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly clients = new Set<WsClient>();
  private subscriber: Redis | null = null;
  private timers: NodeJS.Timeout[] = [];
  /**
   * What was last sent of each watched target and host, and the read it came from (`read`: this.reads when that read
   * began). A read that began before the one last sent may hold an older view: it is not sent to anyone but the
   * subscriber it was for, who is sent the newer one instead (see sendTarget).
   */
  private readonly sentTargets = new Map<string, { fingerprint: string; view: TargetView; read: number }>();
  private readonly sentHosts = new Map<string, { at: number; summary: HostSampleSummary; read: number }>();
  /** Reads of live state begun (sendTarget, sendHosts), in order. */
  private reads = 0;
  private readonly stats: WsStats = emptyWsStats();
  /** Open sockets per principalKey. */
  private readonly perPrincipal = new Map<string, number>();
  /** Open sockets per userKey. */
  private readonly perUser = new Map<string, number>();
  /** When the last resync was sent (performance.now()). */
  private lastResyncAt = -Infinity;
  /** The trailing resync, due at lastResyncAt + GATEWAY_WS_RESYNC_MIN_INTERVAL_MS. */
  private resyncTimer: NodeJS.Timeout | null = null;
  /** Why the next resync is sent: every cause asked for since the last one. */
  private readonly resyncCauses = new Set<ResyncCause>();
  /** Changed targets that could not be read since the last resync, and the last error. */
  private unreadable: { count: number; lastError: string | null } = { count: 0, lastError: null };
  private checking = false;
  private polling = false;
  /** The subscriber lost its connection and has not subscribed again: no change reaches this replica. */
  private liveDown = false;
  /** Sockets were told `degraded` and not yet the `resync` that ends it: one `degraded` per outage. */
  private degradedSent = false;
  /** Reads of live state that failed, in polls where none answered, since the last poll with a read that answered. */
  private readFailures = 0;
  /** READ_FAILURES_DEGRADED reads failed in a row and none answered since: what sockets watch is not read. */
  private readsDown = false;
  /** The reads of the poll under way (and of anything else read meanwhile): told at its end (pollFailed, pollAnswered). */
  private pollReads: { failed: number; answered: boolean } | null = null;
  /** When a corrupt record was last logged (performance.now()), and the reads of one since (corruptRecord). */
  private corruptLoggedAt = -Infinity;
  private corruptUnlogged = 0;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly live: LiveStateStore,
    private readonly targets: TargetsService,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Channels are not keys: the subscriber has no key prefix and names the prefixed channel.
    // Named by host and process, so an operator (or a test) can tell the replicas' subscribers apart in CLIENT LIST.
    const subscriber = createRedis({
      url: this.config.redisUrl,
      connectionName: subscriberConnectionName(),
      commandTimeoutMs: this.config.redisTimeoutMs,
      // SUBSCRIBE and PING only: one left unanswered by a closed connection is sent again on the next (a SUBSCRIBE
      // whose answer was lost would otherwise leave the channel unsubscribed until the next reconnect).
      resendUnanswered: true,
    });
    logRedisErrors(subscriber, this.logger, 'api-gateway WebSocket subscriber');
    subscriber.on('message', (_channel: string, message: string) => void this.onStatusMessage(message));
    // 'ready' again means a new connection: what was published while there was none is lost.
    let connectedBefore = false;
    subscriber.on('ready', () => {
      if (connectedBefore) void this.resubscribed(subscriber);
      connectedBefore = true;
    });
    // From the first close on, nothing published reaches this replica until it has subscribed again: say so now
    // rather than only with the resync after it (a page would show a frozen "live" view for the whole outage).
    subscriber.on('close', () => this.subscriptionLost(subscriber));
    // Redis is required at boot (checked just before): a first SUBSCRIBE that fails fails the boot, loudly, rather
    // than leave a hub that fans nothing out (ioredis drops a SUBSCRIBE it gave up on, and the first 'ready' after
    // it is no reconnect to subscribe again on).
    await subscriber.subscribe(this.live.statusChannel);
    this.subscriber = subscriber;
    this.timers = [
      setInterval(() => void this.checkSessions(), this.config.wsSessionCheckMs),
      setInterval(() => void this.poll(), POLL_MS),
      setInterval(() => this.pingAll(), this.config.wsPingIntervalMs),
      setInterval(() => this.pingSubscriber(subscriber), SUBSCRIBER_PING_MS),
    ];
    for (const t of this.timers) t.unref();
  }

  async onModuleDestroy(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = null;
    for (const client of [...this.clients]) this.close(client, WsCloseCode.GoingAway, 'gateway stopping');
    this.subscriber?.disconnect();
    this.subscriber = null;
  }

  snapshot(): WsStats {
    return { ...this.stats, open: this.clients.size };
  }

  attach(client: WsClient): void {
    const key = principalKey(client.principal);
    const held = this.perPrincipal.get(key) ?? 0;
    const max = this.config.wsMaxSocketsPerPrincipal;
    const user = userKey(client.principal);
    const heldByUser = this.perUser.get(user) ?? 0;
    const maxPerUser = this.config.wsMaxSocketsPerUser;
    const refusal =
      held >= max
        ? `at most ${max} open sockets per session or API key (GATEWAY_WS_MAX_SOCKETS_PER_PRINCIPAL)`
        : heldByUser >= maxPerUser
          ? `at most ${maxPerUser} open sockets per user, all sessions together (GATEWAY_WS_MAX_SOCKETS_PER_USER)`
          : null;
    if (refusal) {
      this.stats.refusedTooMany++;
      this.logger.warn({ user: client.principal.name, held, heldByUser }, `WebSocket refused: ${refusal}`);
      this.close(client, WsCloseCode.TooManySockets, refusal);
      return;
    }
    this.perPrincipal.set(key, held + 1);
    this.perUser.set(user, heldByUser + 1);
    this.clients.add(client);
    client.socket.on('pong', () => {
      client.awaitingPong = false;
    });
    const expiresAt = client.principal.sessionExpiresAt;
    if (expiresAt) this.armExpiry(client, expiresAt.getTime());
    client.socket.on(
      'message',
      (data: unknown, isBinary: boolean) => void this.onClientMessage(client, data, isBinary),
    );
    client.socket.on('close', () => this.detach(client));
    client.socket.on('error', () => this.detach(client));
    this.send(client, {
      type: 'ready',
      user: {
        kind: client.principal.kind,
        id: client.principal.id,
        name: client.principal.name,
        role: client.principal.role,
      },
      expiresAt: expiresAt?.toISOString() ?? null,
    });
    // Opened during an outage: it gets the resync that ends it with every other socket.
    if (this.liveDown || this.readsDown) this.send(client, { type: 'degraded', reason: this.degradedReason() });
  }

  /** Sends one message, or drops a client that does not keep up (never buffers without bound). */
  send(client: WsClient, message: WsServerMessage): boolean {
    const { socket } = client;
    if (socket.readyState !== socket.OPEN) return false;
    const json = JSON.stringify(message);
    if (socket.bufferedAmount + Buffer.byteLength(json) > this.config.wsMaxBufferedBytes) {
      this.stats.droppedSlow++;
      this.logger.warn(
        { user: client.principal.name, bufferedBytes: socket.bufferedAmount },
        'WebSocket client does not read: dropped',
      );
      // terminate, not close: a close frame would queue behind the data the client is not reading.
      socket.terminate();
      this.detach(client);
      return false;
    }
    socket.send(json);
    return true;
  }

  private detach(client: WsClient): void {
    if (!this.clients.delete(client)) return;
    const key = principalKey(client.principal);
    const held = (this.perPrincipal.get(key) ?? 1) - 1;
    if (held > 0) this.perPrincipal.set(key, held);
    else this.perPrincipal.delete(key);
    const user = userKey(client.principal);
    const heldByUser = (this.perUser.get(user) ?? 1) - 1;
    if (heldByUser > 0) this.perUser.set(user, heldByUser);
    else this.perUser.delete(user);
    if (client.expiry) clearTimeout(client.expiry);
    client.expiry = null;
  }

  private close(client: WsClient, code: number, reason: string): void {
    this.detach(client);
    const { socket } = client;
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    // A client that never answers the close handshake is cut after a second.
    setTimeout(() => socket.terminate(), 1000).unref();
  }

  /**
   * Ends the socket when its session does. A timer waits at most MAX_TIMER_MS (24.8 days); a session longer than that
   * (SESSION_TTL_HOURS up to 720) is waited for in turns, not ended at the first.
   */
  private armExpiry(client: WsClient, expiresAt: number): void {
    const left = expiresAt - Date.now();
    client.expiry = setTimeout(
      () => (left > MAX_TIMER_MS ? this.armExpiry(client, expiresAt) : this.endSession(client, 'session expired')),
      Math.min(MAX_TIMER_MS, Math.max(0, left)),
    );
    client.expiry.unref();
  }

  private endSession(client: WsClient, reason: string): void {
    if (!this.clients.has(client)) return;
    this.stats.closedSessionEnded++;
    this.close(client, WsCloseCode.SessionEnded, reason);
  }

  /** Cuts each socket that has not answered the previous ping, and pings the others. */
  private pingAll(): void {
    for (const client of [...this.clients]) {
      const { socket } = client;
      if (client.awaitingPong) {
        this.stats.closedNoPong++;
        this.logger.warn({ user: client.principal.name }, 'WebSocket peer did not answer a ping: cut');
        // terminate: a peer that does not answer pings will not answer a close handshake either.
        socket.terminate();
        this.detach(client);
        continue;
      }
      if (socket.readyState !== socket.OPEN) continue;
      client.awaitingPong = true;
      socket.ping();
    }
  }

  /** A PING on the subscriber's connection, so that one gone silent is noticed (SUBSCRIBER_PING_MS). */
  private pingSubscriber(subscriber: Redis): void {
    // Only on a live connection: while ioredis reconnects, PINGs would wait in its offline queue.
    if (subscriber.status !== 'ready') return;
    // Its failure is the socket timeout's to act on (and the 'error' listener's to log).
    subscriber.ping().catch(() => undefined);
  }

  /** The subscriber has a new connection: subscribe (again), then tell every socket what it may have missed. */
  private async resubscribed(subscriber: Redis): Promise<void> {
    try {
      // ioredis subscribes again by itself (ioredis 6 sends its SUBSCRIBE, then emits 'ready' on the next tick): this
      // answer comes after its own, so the channel is ours again and a resync sent after it misses nothing published since.
      await subscriber.subscribe(this.live.statusChannel);
    } catch (err) {
      // Lost again before the answer: the next connection's 'ready' comes back here.
      this.logger.warn({ err }, 'WebSocket fan-out subscriber: subscribing again failed');
      return;
    }
    if (subscriber !== this.subscriber) return;
    this.liveDown = false;
    this.stats.resubscribes++;
    this.requestResync('resubscribed');
  }

  /**
   * The subscriber's connection closed: every open socket is told `degraded`, once per outage (ioredis closes again
   * at each failed reconnect; a connection that flaps before the resync went out adds none).
   */
  private subscriptionLost(subscriber: Redis): void {
    if (subscriber !== this.subscriber) return;
    this.liveDown = true;
    this.degrade(
      'WebSocket fan-out subscriber lost its Redis connection: live updates paused; sockets told (degraded)',
    );
  }

  /** Every open socket told `degraded`, unless they were already in this outage (degradedSent until its resync). */
  private degrade(log: string): void {
    if (this.degradedSent) return;
    this.degradedSent = true;
    this.stats.degraded++;
    this.logger.warn({ sockets: this.clients.size }, log);
    const reason = this.degradedReason();
    for (const client of [...this.clients]) this.send(client, { type: 'degraded', reason });
  }

  private degradedReason(): string {
    return this.liveDown ? DEGRADED_REASON : DEGRADED_READS_REASON;
  }

  /** A corrupt part of a record read (a target's location entry, left out of its view): as corruptRecord. */
  private readonly corruptPart = (err: CorruptRecordError): void => this.corruptRecord(err);

  /**
   * A record live state answered with that cannot be read: counted (corruptRecords), and logged at most once per
   * CORRUPT_RECORD_LOG_MS with how many were read since the last line (a poll reads the same one every 2 s).
   */
  private corruptRecord(err: CorruptRecordError): void {
    this.stats.corruptRecords++;
    this.corruptUnlogged++;
    const now = performance.now();
    if (now - this.corruptLoggedAt < CORRUPT_RECORD_LOG_MS) return;
    this.logger.warn(
      { record: err.key, field: err.field, corruptReads: this.corruptUnlogged },
      'WebSocket hub read a corrupt record in live state (Redis): skipped until it is written again; not an outage',
    );
    this.corruptLoggedAt = now;
    this.corruptUnlogged = 0;
  }

  /** A read of live state failed (Redis away or slower than GATEWAY_REDIS_TIMEOUT_MS): counted with its poll's. */
  private readFailed(): void {
    if (this.pollReads) this.pollReads.failed++;
  }

  /** A read of live state answered: counted with its poll's. */
  private readAnswered(): void {
    if (this.pollReads) this.pollReads.answered = true;
  }

  /**
   * A poll whose `failed` reads all failed. READ_FAILURES_DEGRADED such reads in a row with the subscriber still
   * connected (a lost subscriber says so itself) tell every socket `degraded`.
   */
  private pollFailed(failed: number): void {
    this.readFailures += failed;
    if (this.readFailures < READ_FAILURES_DEGRADED || this.readsDown) return;
    this.readsDown = true;
    this.degrade(
      `WebSocket fan-out: ${this.readFailures} reads of live state (Redis) failed in a row: live updates paused; sockets told (degraded)`,
    );
  }

  /** A poll with a read of live state that answered: after polls that said `degraded`, every socket is told to resync. */
  private pollAnswered(): void {
    this.readFailures = 0;
    if (!this.readsDown) return;
    this.readsDown = false;
    this.requestResync('unreadable');
  }

  /**
   * A resync now, or — within GATEWAY_WS_RESYNC_MIN_INTERVAL_MS of the last one — one at the end of that interval
   * (however many reconnects come meanwhile). Each reconnect is followed by a resync sent after it.
   */
  private requestResync(cause: ResyncCause): void {
    this.resyncCauses.add(cause);
    if (this.resyncTimer) return;
    const wait = this.lastResyncAt + this.config.wsResyncMinIntervalMs - performance.now();
    if (wait <= 0) return this.resync();
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.resync();
    }, wait);
    this.resyncTimer.unref();
  }

  private resync(): void {
    // Lost again before this (trailing) resync was due: a resync now would say live updates are back while they are
    // not. The next subscription asks for it again, causes and all (as does the next read that answers, when reads
    // failed).
    if (this.liveDown || this.readsDown) return;
    this.degradedSent = false;
    this.lastResyncAt = performance.now();
    this.stats.resyncs++;
    // A lost subscription says the most (everything published meanwhile was missed): its words win.
    const { log, reason } =
      RESYNC_CAUSES[
        this.resyncCauses.has('unreadable') && !this.resyncCauses.has('resubscribed') ? 'unreadable' : 'resubscribed'
      ];
    this.resyncCauses.clear();
    this.logger.warn(
      {
        sockets: this.clients.size,
        resubscribes: this.stats.resubscribes,
        ...(this.unreadable.count > 0
          ? { unreadableChanges: this.unreadable.count, err: this.unreadable.lastError }
          : {}),
      },
      log,
    );
    this.unreadable = { count: 0, lastError: null };
    for (const client of [...this.clients]) this.send(client, { type: 'resync', reason });
  }

  private async onClientMessage(client: WsClient, data: unknown, isBinary: boolean): Promise<void> {
    // A socket already closed here (flooding, session ended) still delivers the frames on their way: dropped unread.
    // They were taken again, and a second run past the budget counted the same socket closed for flooding twice.
    if (!this.clients.has(client)) return;
    const budget = client.frames.take();
    if (budget !== 'ok') {
      this.stats.framesDropped++;
      if (budget === 'close') {
        this.stats.closedFlooding++;
        this.logger.warn({ user: client.principal.name }, 'WebSocket closed: it kept sending past its frame budget');
        this.close(client, WsCloseCode.TooManyFrames, FLOODING);
      } else if (budget === 'drop-first') {
        // The first frame dropped is answered with its id (when it has one), so a client can tell which request
        // went unanswered; later ones until the budget refills are dropped without a word.
        const id = isBinary ? undefined : idOf(data);
        this.send(client, { type: 'error', ...(id !== undefined ? { id } : {}), message: OVER_BUDGET });
      }
      return;
    }
    let parsed: unknown;
    try {
      if (isBinary) throw new Error('binary');
      parsed = JSON.parse(String(data));
    } catch {
      this.send(client, { type: 'error', message: 'each frame must be one JSON text message' });
      return;
    }
    const result = wsClientMessageSchema.safeParse(parsed);
    if (!result.success) {
      const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(message)', message: i.message }));
      const id = (parsed as { id?: unknown } | null)?.id;
      this.send(client, {
        type: 'error',
        ...(typeof id === 'string' ? { id: id.slice(0, 64) } : {}),
        message: issues.map((i) => `${i.path}: ${i.message}`).join('; '),
        issues,
      });
      return;
    }
    const message = result.data;
    if (message.type === 'ping') this.send(client, { type: 'pong' });
    else if (message.type === 'unsubscribe') {
      client.subscriptions.remove(message.id);
      this.send(client, { type: 'unsubscribed', id: message.id });
    } else {
      const refused = client.subscriptions.add(message);
      if (refused) {
        this.send(client, { type: 'error', id: message.id, message: refused });
        return;
      }
      this.send(client, { type: 'subscribed', id: message.id, topic: message.topic });
      let sampled: Set<string>;
      try {
        if (message.topic === 'target') await this.sendTarget([client], message.targetId, false, true);
        if (message.topic !== 'host-metrics') return;
        sampled = await this.sendHosts([client], message.hostIds, true);
      } catch (e) {
        // No such target (yet): said, with its id, rather than silence. Any role reads any target over REST (a 404
        // there too), so this tells no one of a target they could not see. The subscription stands: a target that
        // reports later (a pushed instance's first push) is sent as it comes. A corrupt record: named, no outage.
        // Live state away (Redis): the subscription stands, the first view comes with the next poll.
        const target = message.topic === 'target' ? message.targetId : null;
        this.send(client, {
          type: 'error',
          id: message.id,
          message:
            target !== null && e instanceof NotFoundError
              ? `no target ${JSON.stringify(target)}: the subscription stands, its view comes once it reports`
              : target !== null && e instanceof CorruptRecordError
                ? corruptTarget(target)
                : FIRST_VIEW_UNAVAILABLE,
        });
        return;
      }
      // The samples there are were sent: what fails now is only telling which of the others are no host.
      const unsampled = [...new Set(message.hostIds.filter((h) => !sampled.has(h)))];
      let checked: { unknown: string[]; corrupt: Array<{ hostId: string; err: CorruptRecordError }> };
      try {
        checked = await this.unknownHosts(unsampled);
      } catch (e) {
        this.send(client, { type: 'error', id: message.id, message: hostsUnchecked(unsampled, e) });
        return;
      }
      const { unknown, corrupt } = checked;
      if (unknown.length) this.send(client, { type: 'error', id: message.id, message: noSuchHosts(unknown) });
      // A host whose record cannot be read (corrupt) is named apart: one such record leaves the others checked.
      if (corrupt[0]) {
        for (const c of corrupt) this.corruptRecord(c.err);
        const text = hostsUnchecked(
          corrupt.map((c) => c.hostId),
          corrupt[0].err,
        );
        this.send(client, { type: 'error', id: message.id, message: text });
      }
    }
  }

  private async onStatusMessage(json: string): Promise<void> {
    // No socket on this replica (an API-only one, or a quiet hour): nothing to parse a change for.
    if (this.clients.size === 0) return;
    let event: StatusChangedPayload;
    try {
      event = statusChangedPayloadSchema.parse(JSON.parse(json));
    } catch {
      return;
    }
    const clients = [...this.clients];
    let seen: SeenTarget | null = null;
    if (clients.some((c) => c.subscriptions.needsTarget())) seen = await this.seenTarget(event.targetId);
    const watchers: WsClient[] = [];
    for (const client of clients) {
      const ids = client.subscriptions.matchStatus(event, seen);
      if (ids.length) this.send(client, { type: 'status.changed', subscriptions: ids, event });
      if (client.subscriptions.subscriptionsOfTarget(event.targetId).length) watchers.push(client);
    }
    if (watchers.length) await this.sendTarget(watchers, event.targetId);
  }

  private async seenTarget(targetId: string): Promise<SeenTarget | null> {
    try {
      // The live record alone (not the target's view: no check-metrics read for each change of a check).
      const t = await this.live.getTarget(targetId, this.corruptPart);
      this.readAnswered();
      return t ? { tags: t.tags, instanceKind: t.instanceKind ?? null } : null;
    } catch (err) {
      // Redis answered with a record that cannot be read: no outage, and a resync would not read it either. Filtered
      // subscriptions are matched without its tags and kind (as for a target live state does not hold).
      if (err instanceof CorruptRecordError) {
        this.readAnswered();
        this.corruptRecord(err);
        return null;
      }
      // Without the target's tags and kind, subscriptions filtered by them cannot be matched: this change is missed by
      // them (Redis away or slow; the target's own watchers are re-read every poll). Every socket re-reads instead.
      // Logged by the (rate-limited) resync, with how many reads failed since the last one and the last error.
      this.unreadable = { count: this.unreadable.count + 1, lastError: (err as Error).message };
      this.requestResync('unreadable');
      this.readFailed();
      return null;
    }
  }

  /**
   * The target's live view to its watchers among `clients` (with onlyIfChanged: only when it differs from what was last
   * sent). With `widen` (a subscription's first view, read for its socket alone), a view not sent before goes to every
   * socket watching the target: it is recorded as sent, so a first view read just after a new result would otherwise
   * keep that result from the sockets already watching (the next poll finds nothing new). The poll and a status change
   * pass every watcher already.
   */
  private async sendTarget(
    clients: readonly WsClient[],
    targetId: string,
    onlyIfChanged = false,
    widen = false,
  ): Promise<void> {
    const read = ++this.reads;
    let view;
    try {
      view = await this.targets.get(targetId, this.corruptPart);
      this.readAnswered();
    } catch (err) {
      // No such target (live state answered) or an id no store holds (nothing read): no sign of live state away. A
      // record live state holds but that cannot be read (corrupt): Redis answered too — logged and counted apart, the
      // target skipped until its record is written again; never `degraded`.
      if (err instanceof NotFoundError || err instanceof InvalidError) this.readAnswered();
      else if (err instanceof CorruptRecordError) {
        this.readAnswered();
        this.corruptRecord(err);
      } else this.readFailed();
      // A subscription's first view: its subscriber is told why there is none (an unknown target, live state away).
      if (widen) throw err;
      return;
    }
    const last = this.sentTargets.get(targetId);
    if (last && last.read > read) {
      // A read begun after this one was sent first: this view may be older (a slow subscribe's, read before a new
      // result). Sent to every watcher it would take them back to it until the next poll: `clients` get the newer one.
      if (!onlyIfChanged) this.sendTargetView(clients, targetId, last.view);
      return;
    }
    const fingerprint = JSON.stringify(view);
    const fresh = last?.fingerprint !== fingerprint;
    if (onlyIfChanged && !fresh) return;
    this.sentTargets.set(targetId, { fingerprint, view, read });
    this.sendTargetView(fresh && widen ? this.clients : clients, targetId, view);
  }

  private sendTargetView(clients: Iterable<WsClient>, targetId: string, view: TargetView): void {
    for (const client of clients) {
      const ids = client.subscriptions.subscriptionsOfTarget(targetId);
      if (ids.length && this.clients.has(client))
        this.send(client, { type: 'target', subscriptions: ids, target: view });
    }
  }

  /**
   * Of hosts with no sample in live state, those that are no host there either: what GET /api/v1/hosts/{id} answers
   * with a 404 (every role reads every host there, so naming them tells no one more).
   */
  private async unknownHosts(
    hostIds: readonly string[],
  ): Promise<{ unknown: string[]; corrupt: Array<{ hostId: string; err: CorruptRecordError }> }> {
    if (hostIds.length === 0) return { unknown: [], corrupt: [] };
    const ids = [...new Set(hostIds)];
    // readTargets, not getTargets: one host's record that cannot be read (corrupt) fails no check of the others (with
    // getTargets its error stood for every host asked, and a host id that is no host was never said to be one).
    const { targets, unreadable } = await this.live.readTargets(
      ids.map((h) => TargetIds.host(h)),
      this.corruptPart,
    );
    const corrupt = new Map(unreadable.map((err) => [err.targetId, err]));
    return {
      unknown: ids.filter(
        (h) => !corrupt.has(TargetIds.host(h)) && targets.get(TargetIds.host(h))?.kind !== TargetKind.Host,
      ),
      corrupt: ids.flatMap((h) => {
        const err = corrupt.get(TargetIds.host(h));
        return err ? [{ hostId: h, err }] : [];
      }),
    };
  }

  /**
   * The hosts' latest samples to their watchers among `clients`; with `always` (a subscription's first samples), a
   * sample not sent before to every watcher (as sendTarget's `widen`). Answers the hosts that have a sample in live
   * state.
   */
  private async sendHosts(
    clients: readonly WsClient[],
    hostIds: readonly string[],
    always: boolean,
  ): Promise<Set<string>> {
    const read = ++this.reads;
    let samples: Map<string, string>;
    try {
      samples = await this.live.getHostMetricsMany([...new Set(hostIds)]);
    } catch (err) {
      this.readFailed();
      throw err;
    }
    this.readAnswered();
    for (const [hostId, json] of samples) {
      const last = this.sentHosts.get(hostId);
      if (last && last.read > read) {
        // As in sendTarget: a sample read after this one was sent first; `clients` get that one.
        if (always) this.sendHostSummary(clients, hostId, last.summary);
        continue;
      }
      const sample = parseSample(json);
      if (!sample) {
        // Not a sample (corrupt or foreign): never served; counted and logged as a corrupt record, no outage.
        this.corruptRecord(new CorruptRecordError(`host-metrics:${hostId}`, 'sample'));
        continue;
      }
      const at = Date.parse(sample.sampledAt);
      const fresh = last?.at !== at;
      if (!always && !fresh) continue;
      const summary = summarizeSample(sample);
      this.sentHosts.set(hostId, { at, summary, read });
      this.sendHostSummary(fresh && always ? this.clients : clients, hostId, summary);
    }
    return new Set(samples.keys());
  }

  private sendHostSummary(clients: Iterable<WsClient>, hostId: string, summary: HostSampleSummary): void {
    for (const client of clients) {
      const ids = client.subscriptions.subscriptionsOfHost(hostId);
      if (ids.length && this.clients.has(client))
        this.send(client, { type: 'host-metrics', subscriptions: ids, hostId, sample: summary });
    }
  }

  /** New results of watched targets and new samples of watched hosts, once per replica. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    const clients = [...this.clients];
    const targetIds = new Set(clients.flatMap((c) => c.subscriptions.targetIds()));
    const hostIds = new Set(clients.flatMap((c) => c.subscriptions.hostIds()));
    // Reads failed (degraded): live state is asked each poll whether it answers again. With reads to make, they are
    // the question (the first that answers ends it): a PING that answers says nothing of them (a read Redis refuses, or
    // slower than the timeout while PING is not), and ending on it had degraded and resync flap for every socket every
    // few polls. With none (no socket watches anything), a PING: else the resync that ends it would never come, and
    // every socket opened meanwhile would be told degraded.
    if (this.readsDown && targetIds.size === 0 && hostIds.size === 0) {
      this.polling = true;
      const answered = await this.live.ping().then(
        () => true,
        () => false,
      );
      this.polling = false;
      if (answered) this.pollAnswered();
      return;
    }
    if (clients.length === 0) return;
    this.polling = true;
    const reads = { failed: 0, answered: false };
    this.pollReads = reads;
    try {
      for (const id of this.sentTargets.keys()) if (!targetIds.has(id)) this.sentTargets.delete(id);
      for (const id of this.sentHosts.keys()) if (!hostIds.has(id)) this.sentHosts.delete(id);
      for (const id of targetIds) await this.sendTarget(clients, id, true);
      if (hostIds.size) await this.sendHosts(clients, [...hostIds], false);
    } catch (err) {
      this.logger.warn({ err }, 'WebSocket poll of live state failed; retrying');
    } finally {
      this.polling = false;
      this.pollReads = null;
    }
    if (reads.answered) this.pollAnswered();
    else if (reads.failed > 0) this.pollFailed(reads.failed);
  }

  /** Closes sockets whose session (or key) was revoked or expired, one check per credential. */
  private async checkSessions(): Promise<void> {
    if (this.checking || this.clients.size === 0) return;
    this.checking = true;
    try {
      const byCredential = new Map<string, WsClient[]>();
      for (const c of this.clients)
        byCredential.set(c.credentialKey, [...(byCredential.get(c.credentialKey) ?? []), c]);
      for (const group of byCredential.values()) {
        // Only a refusal ends a session; a store that is away leaves sockets open until it answers.
        const ended = await group[0].recheck().then(
          () => false,
          (err: unknown) => err instanceof UnauthorizedError || err instanceof ForbiddenError,
        );
        if (!ended) continue;
        for (const client of group) this.endSession(client, 'session revoked or expired');
      }
    } catch (err) {
      this.logger.warn({ err }, 'WebSocket session check failed; retrying');
    } finally {
      this.checking = false;
    }
  }
}

/**
 * What a host-metrics subscription naming hosts that are not in live state (never reported, retired, a typo) is
 * answered, after `subscribed`: the hosts named; the subscription stands and their samples come once they report.
 */
export function noSuchHosts(hostIds: readonly string[]): string {
  const names = hostIds.map((h) => JSON.stringify(h)).join(', ');
  return hostIds.length === 1
    ? `no host ${names}: the subscription stands, its samples come once it reports`
    : `no hosts ${names}: the subscription stands, their samples come once they report`;
}

/**
 * What a host-metrics subscription is answered, after `subscribed` and the samples there were, when whether the hosts
 * without one exist could not be told (unknownHosts failed): the hosts named, and what failed — live state (Redis) not
 * answering (in the words of the target path's FIRST_VIEW_UNAVAILABLE; the Redis error itself is not sent: it names
 * hosts), or a record there that cannot be read (corrupt). The subscription stands: their samples come once they report.
 */
export function hostsUnchecked(hostIds: readonly string[], err: unknown): string {
  const one = hostIds.length === 1;
  const names = hostIds.map((h) => JSON.stringify(h)).join(', ');
  const which = one ? `whether host ${names} exists` : `whether hosts ${names} exist`;
  const stands = one
    ? 'the subscription stands, its samples come once it reports'
    : 'the subscription stands, their samples come once they report';
  return err instanceof CorruptRecordError
    ? `could not tell ${which} (no sample yet): its record in live state is corrupt (${err.key}); ${stands}`
    : `live state unavailable: could not tell ${which} (no sample yet); ${stands}`;
}

/** The `id` of a client frame (a string, clipped to 64 characters), if it is one JSON object that has one. */
function idOf(data: unknown): string | undefined {
  try {
    const parsed = JSON.parse(String(data)) as { id?: unknown } | null;
    const id = parsed !== null && typeof parsed === 'object' ? parsed.id : undefined;
    return typeof id === 'string' ? id.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}
