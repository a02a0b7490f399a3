import { InvalidError, UnavailableError } from '@fleetwatch/domain';
import { BrokerBlockedError, BusError, BusPublisher, InvalidMessageError } from '@fleetwatch/messaging';

/** Seconds a client waits before asking again while the broker is away or blocks publishing. */
export const BUS_RETRY_AFTER_SECONDS = 5;

/**
 * Sends a command the gateway forwards to its owner over the bus (a host's retirement, an instance's removal) and
 * resolves once the broker confirmed it. The broker away or blocking publishes is a 503 with Retry-After saying that
 * nothing was sent (`what` names it: "the host was not retired"); a publish not confirmed (nack, timeout, connection
 * lost) is a 503 too — it may still arrive, so a command must be one that is the same done twice. A payload the bus
 * schema refuses is a 400 on `field`.
 */
export async function sendConfirmed<T>(
  publisher: BusPublisher,
  what: { notDone: string; noun: string; field: string },
  send: () => Promise<T>,
): Promise<T> {
  // Fail fast while disconnected instead of holding the client for the publish timeout.
  if (!publisher.isConnected())
    throw new UnavailableError(`message broker unavailable; ${what.notDone}, retry later`, BUS_RETRY_AFTER_SECONDS);
  try {
    return await send();
  } catch (e) {
    if (e instanceof InvalidMessageError)
      throw new InvalidError(`refused: ${e.reason}`, [{ path: what.field, message: e.reason }]);
    if (e instanceof BrokerBlockedError)
      throw new UnavailableError(
        `message broker blocks publishing (resource alarm: ${e.reason}); ${what.notDone}, retry later`,
        BUS_RETRY_AFTER_SECONDS,
      );
    if (e instanceof BusError)
      throw new UnavailableError(
        `message broker did not confirm the ${what.noun} (${e.name}); retry`,
        BUS_RETRY_AFTER_SECONDS,
      );
    throw e;
  }
}
