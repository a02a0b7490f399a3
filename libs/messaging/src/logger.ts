/**
 * The logging the bus needs, shaped like pino's (`logger.warn({ fields }, 'message')`)
 * so the service's pino logger (observability's FLEETWATCH_LOGGER) fits as is.
 */
export interface BusLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@\s]+@/gi;

/** Masks the password of an AMQP URL for log lines and error messages. */
export function redactUrl(text: string): string {
  return text.replace(CREDENTIALS, '$1***@');
}

function line(level: string, fields: object, message: string): void {
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), component: 'bus', ...fields, msg: redactUrl(message) })}\n`,
  );
}

/** Default: warnings and errors as JSON lines on stderr. */
export const stderrBusLogger: BusLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (f, m) => line('warn', f, m),
  error: (f, m) => line('error', f, m),
};

export const silentBusLogger: BusLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
