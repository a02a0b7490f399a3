import {
  configRpcParams,
  Messages,
  QueueName,
  uuidv7,
  type ConfigRpcMethod,
  type ConfigRpcResults,
  type Envelope,
  type MessageDefinition,
  type PayloadOf,
  type RpcReply,
} from '@fleetwatch/contracts';
import type { z } from 'zod';
import { ConfirmSender } from '../confirm-sender';
import type { BusConnection } from '../connection';
import type { BusConsumer } from '../consumer';
import type { DeliveryContext } from '../delivery';
import { errorMessage, PublishUnroutableError } from '../errors';
import { stderrBusLogger, type BusLogger } from '../logger';
import { MessageRouter, type TypedHandler } from '../router';
import type { Subscription } from '../subscription';
import type { QueueRef } from '../topology';
import { encodeReply, errorReply, knownErrorReply } from './rpc-error';
import { observeRpc } from './rpc-metrics';

/** RabbitMQ's default max_message_size (3.x: 128 MiB): the largest reply RpcServer sends by default. */
export const MAX_REPLY_BYTES = 128 * 1024 * 1024;

/** What a handler knows about the call besides its params. */
export interface RpcContext {
  readonly method: string;
  /** The caller's correlation id (log it: the caller logs it too). */
  readonly correlationId: string;
  /** The caller stops waiting then (it has answered 503): check it before committing slow work. */
  readonly deadline: Date;
  /** The request's message id: the same on a redelivery, so a write can be made idempotent by it. */
  readonly messageId: string;
  /** True when RabbitMQ delivered this request before (the owner stopped before acking it). */
  readonly redelivered: boolean;
  /** The HTTP client's Idempotency-Key, when the caller passed one (the same on the client's retries). */
  readonly idempotencyKey?: string;
}

/**
 * A method's implementation. Resolve with the result (JSON-serialisable); throw a
 * libs/domain error to answer with its code — InvalidError (issues) → `invalid`,
 * NotFoundError → `not_found`, ConflictError (with a numeric `currentVersion` property
 * when it has one) → `conflict`, ForbiddenError → `denied` (the owner refuses by policy,
 * e.g. a target the deny list forbids), UnavailableError → `unavailable` — or an
 * RpcError to choose the reply exactly. A ZodError becomes `invalid` with its issues.
 * Anything else is logged and answered `internal`.
 */
export type RpcHandler = (params: unknown, context: RpcContext) => Promise<unknown>;

/** A config method's handler: params already validated by `configRpcParams[method]`. */
export type ConfigRpcHandler<M extends ConfigRpcMethod> = (
  params: z.output<(typeof configRpcParams)[M]>,
  context: RpcContext,
) => Promise<ConfigRpcResults[M]>;

export interface RpcServerOptions {
  /** The queue carrying `rpc.request` (default QueueName.SyncOrchestratorCommands, where the contract binds it). */
  queue?: QueueRef;
  /** Deliveries held at once. Default 32. */
  prefetch?: number;
  /** Requests (and other commands of the queue) handled at once. Default 8. */
  concurrency?: number;
  /** Deadline for the broker to confirm a reply. Default 5000. */
  replyTimeoutMs?: number;
  /**
   * Largest reply body sent (bytes); a larger answer is replaced by an `internal` error naming its size.
   * Default MAX_REPLY_BYTES, RabbitMQ 3.x's max_message_size: the broker refuses a larger message by
   * closing the channel, which loses every other reply awaiting its confirm there too. Set it lower for
   * a broker configured lower (RabbitMQ 4.x defaults to 16 MiB).
   */
  maxReplyBytes?: number;
  logger?: BusLogger;
}

/**
 * The owner's side of request/response over the bus. Consumes the command queue,
 * runs the handler registered for each request's method, replies to its `replyTo`
 * with its correlation id, and only then acks (the consumer acks after the handler
 * resolves). Never crashes the consumer, never leaves a request to redeliver forever:
 *
 * - past its deadline: acked without running (the caller already answered 503; running
 *   it now would change configuration behind the user's back);
 * - unknown method → `invalid`; handler failures → their code (see RpcHandler), a
 *   transient one (database away) → `unavailable`, anything unexpected → `internal`;
 * - a reply that cannot be delivered (caller gone, broker away) is logged and the
 *   request acked all the same: the work is done and retrying it would repeat it.
 *
 * The queue carries other commands too (config.apply, sync.step). A queue has one
 * consumer here, dispatching by envelope type, so register those with `onCommand` —
 * a second consumer on the same queue would take their messages and dead-letter
 * what it cannot route.
 *
 *   const server = new RpcServer(bus.consumer, bus.connection)
 *     .handle(ConfigRpcMethod.ChecksGet, async ({ id }) => ({ check: await checks.get(id) }))
 *     .onCommand(Messages.ConfigApply, (env, ctx) => apply.run(env.payload));
 *   server.start();
 *
 * With Nest, import `RpcServerModule` and register from a provider's `onModuleInit`;
 * consuming starts at application bootstrap, once every handler is registered.
 */
export class RpcServer {
  private readonly methods = new Map<string, RpcHandler>();
  private readonly router = new MessageRouter();
  private readonly replies: ConfirmSender;
  private readonly logger: BusLogger;
  private subscription: Subscription | undefined;

  constructor(
    private readonly consumer: BusConsumer,
    /** Where replies are published (the service's publishing connection). */
    publishing: BusConnection,
    private readonly options: RpcServerOptions = {},
  ) {
    this.logger = options.logger ?? stderrBusLogger;
    this.replies = new ConfirmSender(publishing);
    this.router.on(Messages.RpcRequest, (envelope, context) => this.onRequest(envelope, context));
  }

  /** Registers a method by name; `params` is whatever the caller sent (validate it). */
  register(method: string, handler: RpcHandler): this {
    if (this.methods.has(method)) throw new Error(`an RPC handler for ${method} is already registered`);
    this.methods.set(method, handler);
    return this;
  }

  /** Registers a config method; its params are validated with `configRpcParams[method]` first (→ `invalid`). */
  handle<M extends ConfigRpcMethod>(method: M, handler: ConfigRpcHandler<M>): this {
    const schema = configRpcParams[method] as z.ZodType;
    return this.register(method, (params, context) =>
      handler(schema.parse(params) as z.output<(typeof configRpcParams)[M]>, context),
    );
  }

  /** Handles another command type of the same queue (config.apply, sync.step); semantics of BusConsumer handlers. */
  onCommand<D extends MessageDefinition>(definition: D, handler: TypedHandler<D>): this {
    this.router.on(definition, handler);
    return this;
  }

  /** Registered method names. */
  get registered(): string[] {
    return [...this.methods.keys()];
  }

  /** Starts consuming (idempotent). */
  start(): Subscription {
    this.subscription ??= this.consumer.consume(
      this.options.queue ?? QueueName.SyncOrchestratorCommands,
      this.router.handler(),
      { prefetch: this.options.prefetch ?? 32, concurrency: this.options.concurrency ?? 8 },
    );
    return this.subscription;
  }

  /** Stops taking requests; in-flight ones finish, reply and ack. */
  async stop(): Promise<void> {
    await this.subscription?.stop();
    await this.replies.close();
  }

  private async onRequest(envelope: Envelope<PayloadOf<typeof Messages.RpcRequest>>, ctx: DeliveryContext) {
    const { method, params, deadline, idempotencyKey } = envelope.payload;
    // The AMQP properties, as any AMQP RPC client sets them; the envelope's id is the fallback
    // correlation (RpcClient sets the property to the envelope's correlationId anyway).
    const replyTo = ctx.replyTo;
    const correlationId = ctx.correlationId ?? envelope.correlationId;
    const log = { method, correlationId, messageId: envelope.id };
    if (replyTo === undefined) {
      this.logger.warn(log, 'rpc request without a reply queue; not run');
      return;
    }
    const deadlineAt = new Date(deadline);
    if (Date.now() > deadlineAt.getTime()) {
      this.logger.info(
        { ...log, deadline },
        'rpc request past its deadline (the caller gave up); acked without running',
      );
      return;
    }
    const handler = this.methods.get(method);
    const started = performance.now();
    let reply: RpcReply;
    if (!handler) {
      reply = errorReply('invalid', `unknown method "${method}"`, [
        { path: 'method', message: `not one of ${this.registered.join(', ') || '(none registered)'}` },
      ]);
    } else {
      try {
        const result = await handler(params, {
          method,
          correlationId,
          deadline: deadlineAt,
          messageId: envelope.id,
          redelivered: ctx.redelivered || ctx.deliveryCount > 0,
          ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        });
        reply = { ok: true, result: result ?? null };
      } catch (e) {
        reply = knownErrorReply(e) ?? this.internal(e, log);
      }
    }
    observeRpc(
      'server',
      handler ? method : 'unknown',
      reply.ok ? 'ok' : reply.error.code,
      (performance.now() - started) / 1_000,
    );
    await this.reply(replyTo, correlationId, reply, log);
  }

  private internal(e: unknown, log: object): RpcReply {
    this.logger.error(
      { ...log, error: errorMessage(e), stack: e instanceof Error ? e.stack : undefined },
      'rpc handler failed',
    );
    return errorReply(
      'internal',
      `internal error (correlation id ${(log as { correlationId: string }).correlationId})`,
    );
  }

  private async reply(replyTo: string, correlationId: string, reply: RpcReply, log: object): Promise<void> {
    let text: string;
    try {
      text = encodeReply(reply);
    } catch (e) {
      text = encodeReply(this.internal(e, log));
    }
    const max = this.options.maxReplyBytes ?? MAX_REPLY_BYTES;
    const bytes = Buffer.byteLength(text);
    if (bytes > max) {
      // Sent as is, the broker would close the reply channel: this caller would wait out its deadline
      // (told 503, "try again", though the same answer comes every time) and replies beside it are lost.
      this.logger.error({ ...log, bytes, maxBytes: max }, 'rpc reply too large for the bus; not sent');
      text = encodeReply(errorReply('internal', `the answer is too large to send (${bytes} bytes, at most ${max})`));
    }
    const content = Buffer.from(text);
    try {
      await this.replies.send(
        {
          exchange: '',
          routingKey: replyTo,
          type: 'rpc.reply',
          content,
          properties: {
            messageId: uuidv7(),
            correlationId,
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            type: 'rpc.reply',
            // Mandatory: an exclusive reply queue that is gone (caller disconnected) returns it.
            mandatory: true,
            persistent: false,
          },
        },
        this.options.replyTimeoutMs ?? 5_000,
      );
    } catch (e) {
      const gone = e instanceof PublishUnroutableError;
      this.logger[gone ? 'info' : 'warn'](
        { ...log, error: errorMessage(e) },
        gone ? 'rpc caller gone before the reply' : 'rpc reply not delivered',
      );
    }
  }
}
