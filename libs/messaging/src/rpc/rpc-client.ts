import type { Channel, ConsumeMessage } from 'amqplib';
import {
  buildEnvelope,
  BusHeader,
  configRpcParams,
  describeIssues,
  Messages,
  messageSourceSchema,
  rpcReplySchema,
  type ConfigRpcMethod,
  type ConfigRpcParams,
  type ConfigRpcResults,
  type MessageSource,
} from '@fleetwatch/contracts';
import { backoffDelay } from '../backoff';
import { closeQuietly } from '../close-quietly';
import { ConfirmSender, type OutgoingMessage } from '../confirm-sender';
import { SetupOrder, type BusConnection, type ConnectionSession } from '../connection';
import { BusError, errorMessage, PublishUnroutableError } from '../errors';
import { stderrBusLogger, type BusLogger } from '../logger';
import { BusMetrics } from '../metrics';
import { errorOfReply, RpcError } from './rpc-error';
import { observeRpc } from './rpc-metrics';

export const DEFAULT_RPC_TIMEOUT_MS = 5_000;

export interface RpcClientOptions {
  /** Envelope source of every request (site, service, location). */
  source: MessageSource;
  /** How long a call waits for its answer, connecting and publishing included. Default 5000. */
  timeoutMs?: number;
  /** Who answers, for error messages (`sync-orchestrator did not answer …`). */
  ownerName?: string;
  logger?: BusLogger;
}

export interface RpcCallOptions {
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
  /**
   * Where the request goes (default Messages.RpcRequest's key, to the configuration owner); e.g.
   * RoutingKey.AggregatorRpcRequest for the aggregator's methods.
   */
  routingKey?: string;
  /** Who answers this call, for its error messages (default the client's ownerName). */
  ownerName?: string;
  /** The HTTP client's Idempotency-Key, carried in the request (rpcRequestPayloadSchema). */
  idempotencyKey?: string;
}

/** The exclusive reply queue of one connection generation. */
interface ReplyLane {
  readonly channel: Channel;
  readonly queue: string;
  readonly generation: number;
  open: boolean;
}

interface PendingCall {
  readonly method: string;
  readonly lane: ReplyLane;
  settle(error: RpcError | undefined, result?: unknown): void;
}

/**
 * Request/response over the bus (SPEC §3): publishes an `rpc.request` command
 * (persistent, confirmed, mandatory, validated by the contract like every publish) with
 * AMQP `replyTo` + `correlationId`, and resolves with the owner's result.
 *
 * Replies come back on an exclusive, server-named queue of the reply connection (the
 * service's consuming connection), declared once per connection generation — not
 * direct reply-to: that requires publishing requests on the very channel that consumes
 * replies, i.e. a confirm channel of our own beside the shared ConfirmSender, and its
 * replies cannot be published `mandatory` (the owner could not tell that the caller is gone).
 *
 * Every failure is an RpcError by the deadline (default 5 s): `unavailable` when the owner
 * does not answer in time, the request cannot be published, or the reply connection
 * drops while calls wait (they fail at once: their replies would go to a queue that no
 * longer exists); the owner's error replies with their own code. After a reconnect the
 * next call uses the new reply queue.
 */
export class RpcClient {
  private readonly requests: ConfirmSender;
  private readonly pending = new Map<string, PendingCall>();
  private readonly laneWaiters = new Set<() => void>();
  private readonly timeoutMs: number;
  private readonly owner: string;
  private readonly logger: BusLogger;
  private readonly removeSetup: () => void;
  private readonly metrics = BusMetrics.get();
  private lane: ReplyLane | undefined;
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  private reopenAttempts = 0;
  private closed = false;

  constructor(
    /** Where requests are published (the service's publishing connection). */
    private readonly publishing: BusConnection,
    /** Where replies are consumed (the service's consuming connection; may be the same). */
    private readonly replies: BusConnection,
    private readonly options: RpcClientOptions,
  ) {
    const source = messageSourceSchema.safeParse(options.source);
    if (!source.success) throw new TypeError(`RpcClient: invalid source: ${describeIssues(source.error)}`);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
    this.owner = options.ownerName ?? 'sync-orchestrator';
    this.logger = options.logger ?? stderrBusLogger;
    this.requests = new ConfirmSender(publishing, {
      failWhenBlocked: true,
      onSent: (m) => this.metrics.published.inc([m.exchange, m.type]),
      onConfirmed: (m) => this.metrics.confirmed.inc([m.exchange, m.type]),
    });
    this.removeSetup = replies.addSetup({
      name: 'rpc replies',
      order: SetupOrder.Consumer,
      run: (s) => this.openLane(s),
    });
    publishing.start();
    replies.start();
  }

  /** True while a reply queue is consuming and requests can be published. */
  isReady(): boolean {
    return !this.closed && this.lane?.open === true && this.publishing.isConnected();
  }

  /** Calls a config method (params validated by `configRpcParams` here, and again by the owner). */
  async call<M extends ConfigRpcMethod>(
    method: M,
    params: ConfigRpcParams<M>,
    options: RpcCallOptions = {},
  ): Promise<ConfigRpcResults[M]> {
    const schema = configRpcParams[method];
    const parsed = schema.safeParse(params);
    if (!parsed.success) {
      throw new RpcError('invalid', describeIssues(parsed.error), {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(params)', message: i.message })),
      });
    }
    return (await this.request(method, parsed.data as Record<string, unknown>, options)) as ConfigRpcResults[M];
  }

  /** Calls any method by name; the answer is the owner's `result`, unchecked. */
  async request(method: string, params: Record<string, unknown>, options: RpcCallOptions = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const owner = options.ownerName ?? this.owner;
    const started = Date.now();
    const deadline = started + timeoutMs;
    if (this.closed) throw new RpcError('unavailable', 'RPC client is closed');
    const payload = Messages.RpcRequest.payload.safeParse({
      method,
      params,
      deadline: new Date(deadline).toISOString(),
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    });
    if (!payload.success) throw new RpcError('invalid', `invalid rpc.request: ${describeIssues(payload.error)}`);
    const lane = await this.laneBy(deadline, method);
    const envelope = buildEnvelope(
      Messages.RpcRequest.type,
      Messages.RpcRequest.schemaVersion,
      this.options.source,
      payload.data,
    );
    const message: OutgoingMessage = {
      exchange: Messages.RpcRequest.exchange,
      routingKey: options.routingKey ?? Messages.RpcRequest.routingKey,
      type: envelope.type,
      content: Buffer.from(JSON.stringify(envelope)),
      properties: {
        persistent: true,
        deliveryMode: 2,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId: envelope.id,
        correlationId: envelope.correlationId,
        replyTo: lane.queue,
        type: envelope.type,
        timestamp: Math.floor(Date.now() / 1000),
        appId: this.options.source.service,
        mandatory: true,
        headers: {
          [BusHeader.SchemaVersion]: envelope.schemaVersion,
          [BusHeader.MessageType]: envelope.type,
        },
      },
    };

    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          call.settle(
            new RpcError(
              'unavailable',
              `${owner} did not answer ${method} within ${timeoutMs} ms; the outcome is unknown, retry or re-read`,
            ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      const call: PendingCall = {
        method,
        lane,
        settle: (error, result) => {
          if (!this.pending.delete(envelope.correlationId)) return;
          clearTimeout(timer);
          observeRpc('client', method, error ? error.code : 'ok', (Date.now() - started) / 1_000);
          if (error) reject(error);
          else resolve(result);
        },
      };
      // Registered before publishing: the reply may come before the confirm.
      this.pending.set(envelope.correlationId, call);
      this.requests.send(message, Math.max(1, deadline - Date.now())).catch((e: unknown) => {
        this.metrics.publishFailed.inc([message.exchange, message.type, e instanceof Error ? e.name : 'Error']);
        call.settle(this.publishError(method, e, owner));
      });
    });
  }

  /** Fails waiting calls, stops consuming replies. Later calls reject with `unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.removeSetup();
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    for (const wake of [...this.laneWaiters]) wake();
    for (const call of [...this.pending.values()]) call.settle(new RpcError('unavailable', 'RPC client closed'));
    const lane = this.lane;
    this.lane = undefined;
    if (lane?.open) await closeQuietly(lane.channel);
    await this.requests.close();
  }

  private publishError(method: string, e: unknown, owner = this.owner): RpcError {
    if (e instanceof PublishUnroutableError)
      return new RpcError('unavailable', `${owner} is not there to answer ${method}: its queue does not exist`, {
        cause: e,
      });
    const why = e instanceof BusError ? e.message : errorMessage(e);
    return new RpcError('unavailable', `could not send ${method} to ${owner}: ${why}`, { cause: e });
  }

  /** The live reply queue, waiting for a (re)connect until the deadline. */
  private async laneBy(deadline: number, method: string): Promise<ReplyLane> {
    for (;;) {
      if (this.closed) throw new RpcError('unavailable', 'RPC client is closed');
      const lane = this.lane;
      if (lane?.open) return lane;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new RpcError(
          'unavailable',
          `no connection to RabbitMQ to call ${method} on ${this.owner}${this.replies.lastError ? `: ${this.replies.lastError.message}` : ''}`,
        );
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.laneWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.laneWaiters.add(wake);
      });
    }
  }

  private async openLane(session: ConnectionSession): Promise<void> {
    if (this.closed || (this.lane?.open && this.lane.generation === session.generation)) return;
    const channel = await session.model.createChannel();
    channel.on('error', (e: Error) => this.logger.warn({ error: e.message }, 'rpc reply channel error'));
    // Exclusive: deleted with its connection, so a reply to a vanished caller is unroutable, never stored.
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-queue-type': 'classic' },
    });
    const lane: ReplyLane = { channel, queue, generation: session.generation, open: true };
    channel.on('close', () => this.onLaneClosed(lane));
    // noAck: a reply is worth nothing once its caller is gone, and the queue dies with the connection anyway.
    await channel.consume(queue, (m) => this.onReply(lane, m), { noAck: true });
    if (this.closed) {
      lane.open = false;
      await closeQuietly(channel);
      return;
    }
    this.lane = lane;
    this.reopenAttempts = 0;
    for (const wake of [...this.laneWaiters]) wake();
  }

  private onLaneClosed(lane: ReplyLane): void {
    lane.open = false;
    if (this.lane === lane) this.lane = undefined;
    // Their replies would go to a queue that is gone: answer now instead of at the deadline.
    for (const call of [...this.pending.values()]) {
      if (call.lane !== lane) continue;
      call.settle(
        new RpcError(
          'unavailable',
          `connection to RabbitMQ lost before ${this.owner} answered ${call.method}; the outcome is unknown, retry or re-read`,
        ),
      );
    }
    if (this.closed) return;
    // A channel-level close on a live connection: reopen here (a lost connection reruns the setup).
    const live = this.replies.current();
    if (live && live.generation === lane.generation) this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.reopenTimer || this.closed) return;
    const delay = backoffDelay(++this.reopenAttempts);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      const session = this.replies.current();
      if (!session || this.closed) return;
      this.openLane(session).catch((e: unknown) => {
        this.logger.warn({ error: errorMessage(e) }, 'could not reopen the rpc reply queue');
        this.scheduleReopen();
      });
    }, delay);
  }

  private onReply(lane: ReplyLane, message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker: close; the close handler reopens.
      void closeQuietly(lane.channel);
      return;
    }
    const correlationId = message.properties.correlationId as unknown;
    const call = typeof correlationId === 'string' ? this.pending.get(correlationId) : undefined;
    if (!call) {
      // Its caller gave up (timeout): the owner answered late.
      this.logger.debug({ correlationId }, 'rpc reply for no waiting call (late); dropped');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(message.content.toString('utf8'));
    } catch (e) {
      call.settle(new RpcError('internal', `${call.method}: reply is not JSON: ${errorMessage(e)}`));
      return;
    }
    const reply = rpcReplySchema.safeParse(body);
    if (!reply.success) {
      call.settle(new RpcError('internal', `${call.method}: malformed reply: ${describeIssues(reply.error)}`));
      return;
    }
    if (reply.data.ok) call.settle(undefined, reply.data.result);
    else call.settle(errorOfReply(reply.data, call.method));
  }
}
