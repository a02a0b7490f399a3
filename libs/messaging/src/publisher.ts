import { routingKeyOf, shardOfMessage } from './shards';
import {
  buildEnvelope,
  BusHeader,
  describeIssues,
  messageSourceSchema,
  UUID_PATTERN,
  type Envelope,
  type MessageDefinition,
  type MessageSource,
  type PayloadInputOf,
  type PayloadOf,
  type RoutingKey,
} from '@fleetwatch/contracts';
import { SetupOrder, type BusConnection } from './connection';
import { asBusError, ConfirmSender, type OutgoingMessage } from './confirm-sender';
import { BusError, InvalidMessageError } from './errors';
import { BusMetrics } from './metrics';

export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;

export interface PublisherOptions {
  /** Default `source` of every envelope (site, service, location). */
  source?: MessageSource;
  /** Upper bound for one publish or one publishMany: waiting for a connection, backpressure and the confirm. Default 5000. */
  timeoutMs?: number;
  /** Write-buffer high-water mark of the confirm channel, in frames. */
  highWaterMark?: number;
  /**
   * Route observations to their target's shard (`shardedRoutingKey`, issue 14). Default
   * true: every service publishes this way. False only for tests that use observation
   * types as generic messages on the un-sharded queue.
   */
  shardObservations?: boolean;
}

export interface PublishOptions {
  /** Overrides the publisher's default source. */
  source?: MessageSource;
  /** Defaults to the envelope id (a new chain). */
  correlationId?: string;
  /** Envelope/message id. Pass the same id when retrying so consumers de-duplicate. Default: a new UUIDv7. */
  id?: string;
  occurredAt?: Date | string;
  /**
   * Fail with PublishUnroutableError when no queue is bound to the routing key
   * (default true). Set false only for events that may legitimately have no
   * consumer yet: the broker then drops them, by design.
   */
  mandatory?: boolean;
  /** Overrides the publisher's timeout for this call. */
  timeoutMs?: number;
  /**
   * Routes the message by another routing key of the same exchange than its
   * definition's; the envelope and its type are unchanged. Without it, an
   * observation is routed to its target's shard (`shardedRoutingKey`).
   */
  routingKey?: RoutingKey | string;
}

export interface PublishRequest<D extends MessageDefinition = MessageDefinition> {
  definition: D;
  payload: PayloadInputOf<D>;
  options?: PublishOptions;
}

/** Builds a typed PublishRequest (keeps the payload checked against the definition). */
export function publishRequest<D extends MessageDefinition>(
  definition: D,
  payload: PayloadInputOf<D>,
  options?: PublishOptions,
): PublishRequest {
  return { definition, payload, options };
}

export type PublishFailure = { ok: false; envelope: Envelope; error: BusError };
export type PublishOutcome = { ok: true; envelope: Envelope } | PublishFailure;

/** Rejection of publishMany when some messages were not confirmed; `failed` says which and why. */
export class PublishBatchError extends BusError {
  readonly failed: PublishFailure[];
  constructor(readonly outcomes: PublishOutcome[]) {
    const failed = outcomes.filter((o): o is PublishFailure => !o.ok);
    super(
      `${failed.length} of ${outcomes.length} messages not confirmed; first: ${failed[0]?.error.message ?? 'none'}`,
      { cause: failed[0]?.error },
    );
    this.failed = failed;
  }
}

interface Prepared {
  envelope: Envelope;
  message: OutgoingMessage;
}

/**
 * Validates a payload against its contract, wraps it in the envelope and
 * publishes it persistently on a confirm channel, resolving only after the
 * broker's confirm. Every failure is a typed BusError within the timeout
 * (default 5 s): a publish never hangs and is never dropped silently.
 */
export class BusPublisher {
  private readonly sender: ConfirmSender;
  private readonly metrics = BusMetrics.get();
  private readonly timeoutMs: number;
  private readonly validatedSources = new WeakSet<MessageSource>();
  private readonly removeSetup: () => void;
  private closed = false;

  constructor(
    private readonly connection: BusConnection,
    private readonly options: PublisherOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    this.sender = new ConfirmSender(connection, {
      highWaterMark: options.highWaterMark,
      onSent: (m) => this.metrics.published.inc([m.exchange, m.type]),
      onConfirmed: (m) => this.metrics.confirmed.inc([m.exchange, m.type]),
      failWhenBlocked: true,
    });
    // The confirm channel opens as part of every (re)connect: "connected" means "can publish".
    this.removeSetup = connection.addSetup({
      name: 'publisher',
      order: SetupOrder.Publisher,
      run: (s) => this.sender.prepare(s),
    });
  }

  /** For /readyz. */
  isConnected(): boolean {
    return !this.closed && this.connection.isConnected();
  }

  /** The broker's reason while it blocks publishing (resource alarm); publishes then fail at once with BrokerBlockedError. */
  get blocked(): string | undefined {
    return this.connection.blocked;
  }

  /**
   * Publishes one message; resolves with its envelope after the broker's confirm.
   * Rejects with InvalidMessageError (never sent), BusUnavailableError,
   * BrokerBlockedError, PublishNackedError, PublishTimeoutError or PublishUnroutableError.
   */
  async publish<D extends MessageDefinition>(
    definition: D,
    payload: PayloadInputOf<D>,
    options: PublishOptions = {},
  ): Promise<Envelope<PayloadOf<D>>> {
    const prepared = this.prepare(definition, payload, options);
    try {
      await this.sender.send(prepared.message, options.timeoutMs ?? this.timeoutMs);
    } catch (e) {
      throw this.failed(prepared, e);
    }
    return prepared.envelope as Envelope<PayloadOf<D>>;
  }

  /**
   * Publishes many messages pipelined on one channel and awaits their confirms
   * together (one timeout for the lot), pausing on channel backpressure. Every
   * payload is validated first: one invalid message refuses the whole batch
   * (InvalidMessageError) before anything is sent. Transport problems never
   * throw here: each outcome says confirmed, or which typed error.
   */
  async publishManySettled(
    requests: readonly PublishRequest[],
    options: Pick<PublishOptions, 'timeoutMs'> = {},
  ): Promise<PublishOutcome[]> {
    const prepared: Prepared[] = new Array(requests.length);
    const messages: OutgoingMessage[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      prepared[i] = this.prepare(r.definition, r.payload, r.options ?? {});
      messages[i] = prepared[i].message;
    }
    const errors = await this.sender.sendMany(messages, options.timeoutMs ?? this.timeoutMs);
    return prepared.map((p, i): PublishOutcome => {
      const error = errors[i];
      return error
        ? { ok: false, envelope: p.envelope, error: this.failed(p, error) }
        : { ok: true, envelope: p.envelope };
    });
  }

  /** Like publishManySettled, but resolves with the envelopes only when all were confirmed; else rejects with PublishBatchError. */
  async publishMany(
    requests: readonly PublishRequest[],
    options: Pick<PublishOptions, 'timeoutMs'> = {},
  ): Promise<Envelope[]> {
    const outcomes = await this.publishManySettled(requests, options);
    if (outcomes.every((o) => o.ok)) return outcomes.map((o) => o.envelope);
    throw new PublishBatchError(outcomes);
  }

  /** Stops publishing; later publishes reject with BusClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.removeSetup();
    await this.sender.close();
  }

  private prepare(definition: MessageDefinition, payload: unknown, options: PublishOptions): Prepared {
    const parsed = definition.payload.safeParse(payload);
    if (!parsed.success) {
      const reason = describeIssues(parsed.error);
      throw new InvalidMessageError(`invalid ${definition.type} payload: ${reason}`, reason);
    }
    const source = options.source ?? this.options.source;
    if (!source)
      throw new InvalidMessageError(
        `no source for ${definition.type}: set PublisherOptions.source or PublishOptions.source`,
        'source: missing',
      );
    if (!this.validatedSources.has(source)) {
      const s = messageSourceSchema.safeParse(source);
      if (!s.success)
        throw new InvalidMessageError(`invalid source: ${describeIssues(s.error)}`, describeIssues(s.error));
      this.validatedSources.add(source);
    }
    if (options.id !== undefined && !UUID_PATTERN.test(options.id))
      throw new InvalidMessageError(`message id must be a UUID, got "${options.id}"`, 'id: must be a UUID');
    if (
      options.correlationId !== undefined &&
      (options.correlationId.length < 1 || options.correlationId.length > 128)
    ) {
      throw new InvalidMessageError('correlationId must be 1–128 characters', 'correlationId: length');
    }
    const envelope = buildEnvelope(definition.type, definition.schemaVersion, source, parsed.data, {
      id: options.id,
      correlationId: options.correlationId,
      occurredAt: options.occurredAt,
    });
    return {
      envelope,
      message: {
        exchange: definition.exchange,
        routingKey:
          options.routingKey ??
          (this.options.shardObservations === false
            ? definition.routingKey
            : routingKeyOf(definition, shardOfMessage(definition, parsed.data))),
        type: envelope.type,
        content: Buffer.from(JSON.stringify(envelope)),
        properties: {
          persistent: true,
          deliveryMode: 2,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          messageId: envelope.id,
          correlationId: envelope.correlationId,
          type: envelope.type,
          timestamp: Math.floor(Date.now() / 1000),
          appId: source.service,
          mandatory: options.mandatory ?? true,
          headers: { [BusHeader.SchemaVersion]: envelope.schemaVersion, [BusHeader.MessageType]: envelope.type },
        },
      },
    };
  }

  private failed(prepared: Prepared, e: unknown): BusError {
    const error = asBusError(e);
    this.metrics.publishFailed.inc([prepared.message.exchange, prepared.envelope.type, error.name]);
    return error;
  }
}
