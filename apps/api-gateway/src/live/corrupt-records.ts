import {
  CallHandler,
  ExecutionContext,
  Injectable,
  Logger,
  NestInterceptor,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import { UnavailableError } from '@fleetwatch/domain';
import { CorruptRecordError } from '@fleetwatch/live-state';
import { Counter, register } from 'prom-client';
import { catchError, type Observable } from 'rxjs';

/**
 * Reads of a record of live state that cannot be read (corrupt), by the REST routes and the /metrics exporters of
 * target and host series (the WebSocket hub counts its own
 * on fleetwatch_gateway_ws_corrupt_records_total, a figure of the hub's: it is read from the hub at scrape time, and
 * its name says whose reads it counts). One per record or part of one left unread: a target whose tags or labels are
 * not JSON of their shape, a location entry of a target that is not. Redis answered, so no outage.
 */
export const REST_CORRUPT_RECORDS_METRIC = 'fleetwatch_gateway_rest_corrupt_records_total';
/** At most one log line about corrupt records (the count since the last, and the last one's record) this often. */
export const REST_CORRUPT_RECORD_LOG_MS = 60_000;

/** Every gateway's in this process (one in a deployment; tests run several): /metrics is the process's. */
let processCorruptReads = 0;
let registeredBy = 0;

/** The REST routes' corrupt reads in this process (tests). */
export function processRestCorruptReads(): number {
  return processCorruptReads;
}

/**
 * A corrupt record a REST route read: counted (REST_CORRUPT_RECORDS_METRIC) and logged at most once per
 * REST_CORRUPT_RECORD_LOG_MS with how many were read since the last line (a list polled every few seconds reads the
 * same one each time).
 */
@Injectable()
export class CorruptRecords implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('LiveState');
  private loggedAt = -Infinity;
  private unlogged = 0;

  /** Bound: passed as a listener to the live-state reads (LiveStateStore's CorruptPartListener). */
  readonly note = (err: CorruptRecordError): void => {
    processCorruptReads++;
    this.unlogged++;
    const now = performance.now();
    if (now - this.loggedAt < REST_CORRUPT_RECORD_LOG_MS) return;
    this.logger.warn(
      `a REST route read a corrupt record in live state (Redis): ${err.key}, its ${err.field}, left unread until it is ` +
        `written again (not an outage); ${this.unlogged} such read(s) since the last line`,
    );
    this.loggedAt = now;
    this.unlogged = 0;
  };

  onModuleInit(): void {
    registeredBy++;
    if (register.getSingleMetric(REST_CORRUPT_RECORDS_METRIC)) return;
    new Counter({
      name: REST_CORRUPT_RECORDS_METRIC,
      help: "Reads by the gateway's REST routes and /metrics target and host series of a record of live state that cannot be read (corrupt: a target's tags or labels, a location entry of a target): a list answers with the target from the durable state (Postgres) or without it, a single target's route answers 503 naming the record, /metrics leaves its series out; Redis answered, so no outage. The WebSocket hub's are fleetwatch_gateway_ws_corrupt_records_total.",
      collect() {
        this.reset();
        this.inc(processCorruptReads);
      },
    });
  }

  onModuleDestroy(): void {
    registeredBy--;
    if (registeredBy === 0 && register.getSingleMetric(REST_CORRUPT_RECORDS_METRIC))
      register.removeSingleMetric(REST_CORRUPT_RECORDS_METRIC);
  }
}

/**
 * A 503 whose cause is no outage: a record of live state that cannot be read until it is written again (the target's
 * next result or update). Retry-After as for an outage (Redis away answers so too); not logged as one.
 */
export class CorruptLiveRecordError extends UnavailableError {
  override readonly outage = false;
  constructor(readonly record: CorruptRecordError) {
    super(
      `live state cannot answer for this: the ${record.field} of ${record.key} is corrupt (not readable); it is read ` +
        `again once the target is next written`,
      30,
    );
  }
}

/**
 * A route that needed a record of live state that cannot be read (a target's detail, a host's): answered 503 naming
 * the record, as a read of live state with Redis away is answered 503 — never a 500 "internal error" — and counted.
 */
@Injectable()
export class CorruptRecordInterceptor implements NestInterceptor {
  constructor(private readonly corrupt: CorruptRecords) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      catchError((err: unknown) => {
        if (!(err instanceof CorruptRecordError)) throw err;
        this.corrupt.note(err);
        throw new CorruptLiveRecordError(err);
      }),
    );
  }
}
