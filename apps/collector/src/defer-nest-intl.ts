// Imported first by main.ts, before anything loads @nestjs/common.
//
// @nestjs/common builds two `Intl.DateTimeFormat`s when it is loaded (module scope of its
// ConsoleLogger and Logger services), for timestamps of Nest's console log lines. Building
// one loads ICU's locale and time-zone data: ~8 MB of RSS (4.6 MB of the node binary's ICU
// data pages, the rest ICU's own objects), measured in a bare Node 20 and in the collector
// (docs/benchmarks.md, "A collector at rest"). The collector logs through pino and never
// prints a Nest console line in normal operation, so it pays for formatters it does not use.
//
// While @nestjs/common loads, `Intl.DateTimeFormat` is a stand-in that keeps the arguments
// and builds the real formatter on first use; afterwards the global is restored, so nothing
// else in the process sees a difference. A Nest console line formats its timestamp exactly
// as before, only the first one pays for building the formatter.

type Args = ConstructorParameters<typeof Intl.DateTimeFormat>;

export class DeferredDateTimeFormat {
  private real?: Intl.DateTimeFormat;
  private readonly args: Args;

  constructor(
    private readonly Real: typeof Intl.DateTimeFormat,
    ...args: Args
  ) {
    this.args = args;
  }

  /** The real formatter, built on first use. */
  get formatter(): Intl.DateTimeFormat {
    return (this.real ??= new this.Real(...this.args));
  }

  /** Whether the real formatter has been built (tests). */
  get built(): boolean {
    return this.real !== undefined;
  }

  format(date?: Date | number): string {
    return this.formatter.format(date);
  }

  formatToParts(date?: Date | number): Intl.DateTimeFormatPart[] {
    return this.formatter.formatToParts(date);
  }

  formatRange(start: Date | number, end: Date | number): string {
    return this.formatter.formatRange(start, end);
  }

  formatRangeToParts(start: Date | number, end: Date | number): Intl.DateTimeRangeFormatPart[] {
    return this.formatter.formatRangeToParts(start, end);
  }

  resolvedOptions(): Intl.ResolvedDateTimeFormatOptions {
    return this.formatter.resolvedOptions();
  }
}

/** Runs `load` with `Intl.DateTimeFormat` deferred (see above); the global is restored afterwards, also on a throw. */
export function withDeferredDateTimeFormat<T>(load: () => T): T {
  const Real = Intl.DateTimeFormat;
  const Deferred = function (this: unknown, ...args: Args) {
    return new DeferredDateTimeFormat(Real, ...args);
  } as unknown as typeof Intl.DateTimeFormat;
  Object.assign(Deferred, { supportedLocalesOf: Real.supportedLocalesOf.bind(Real) });
  Intl.DateTimeFormat = Deferred;
  try {
    return load();
  } finally {
    Intl.DateTimeFormat = Real;
  }
}

withDeferredDateTimeFormat(() => require('@nestjs/common'));
