import { BusError } from '../errors';

/** No dead letter with that message id in the queues searched. */
export class DeadLetterNotFoundError extends BusError {
  constructor(
    readonly messageId: string,
    readonly queues: readonly string[],
    /** DLQs another command (a look, a replay) held messages of meanwhile: the message may be among them. */
    readonly busy: readonly string[] = [],
  ) {
    super(
      `no dead letter with message id ${messageId} in ${queues.join(', ')}` +
        (busy.length > 0
          ? `; but another dlq command (a look or a replay) held messages of ${busy.join(', ')} meanwhile: try again`
          : ''),
    );
  }
}

/** The queue is not declared on the broker (wrong vhost, or its service never started there). */
export class QueueNotFoundError extends BusError {
  constructor(readonly queue: string) {
    super(`queue ${queue} does not exist on this vhost`);
  }
}

/** The republished copy was not confirmed (nack, return, timeout): the dead letter stays in its DLQ. */
export class ReplayFailedError extends BusError {
  constructor(
    message: string,
    readonly messageId: string | null,
    readonly replayed: number,
  ) {
    super(message);
  }
}
