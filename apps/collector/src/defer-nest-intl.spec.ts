import { DeferredDateTimeFormat, withDeferredDateTimeFormat } from './defer-nest-intl';

const NEST_OPTIONS: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
  day: '2-digit',
  month: '2-digit',
};

describe('withDeferredDateTimeFormat', () => {
  it.each([
    ['Nest console logger options, default locale', undefined, NEST_OPTIONS, Date.UTC(2026, 11, 2, 15, 4, 5)],
    ['en-GB, UTC', 'en-GB', { ...NEST_OPTIONS, timeZone: 'UTC' }, Date.UTC(1999, 0, 31, 23, 59, 59)],
    ['de-DE, date style', 'de-DE', { dateStyle: 'full', timeZone: 'Europe/Berlin' }, Date.UTC(2024, 1, 29, 12)],
    ['no options', undefined, undefined, 0],
  ] as const)('formats as the real formatter does: %s', (_name, locale, options, at) => {
    const real = new Intl.DateTimeFormat(locale, options);
    const deferred = withDeferredDateTimeFormat(
      () => new Intl.DateTimeFormat(locale, options),
    ) as unknown as DeferredDateTimeFormat;
    expect(deferred).toBeInstanceOf(DeferredDateTimeFormat);
    expect(deferred.built).toBe(false);
    expect(deferred.format(at)).toBe(real.format(at));
    expect(deferred.built).toBe(true);
    expect(deferred.formatToParts(at)).toEqual(real.formatToParts(at));
    expect(deferred.formatRange(at, at + 86_400_000)).toBe(real.formatRange(at, at + 86_400_000));
    expect(deferred.resolvedOptions()).toEqual(real.resolvedOptions());
  });

  it('restores the global afterwards, also when loading throws', () => {
    const Real = Intl.DateTimeFormat;
    expect(withDeferredDateTimeFormat(() => Intl.DateTimeFormat === Real)).toBe(false);
    expect(Intl.DateTimeFormat).toBe(Real);
    expect(() =>
      withDeferredDateTimeFormat(() => {
        throw new Error('load failed');
      }),
    ).toThrow('load failed');
    expect(Intl.DateTimeFormat).toBe(Real);
    expect(new Intl.DateTimeFormat()).toBeInstanceOf(Real);
  });

  it("Nest's ConsoleLogger, loaded under it, stamps its lines as before", () => {
    const at = Date.UTC(2026, 11, 2, 15, 4, 5);
    const spy = jest.spyOn(Date, 'now').mockReturnValue(at);
    try {
      type Stamped = { getTimestamp(): string };
      const loggers: Stamped[] = [];
      jest.isolateModules(() => {
        withDeferredDateTimeFormat(() => {
          const { ConsoleLogger } = require('@nestjs/common/services/console-logger.service');
          loggers.push(new ConsoleLogger('spec') as Stamped);
        });
      });
      expect(loggers).toHaveLength(1);
      expect(loggers[0]?.getTimestamp()).toBe(new Intl.DateTimeFormat(undefined, NEST_OPTIONS).format(at));
    } finally {
      spy.mockRestore();
    }
  });
});
