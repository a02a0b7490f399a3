import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { rethrowSql } from './sql-pool';

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code, severity: 'ERROR' });
const thrown = (err: unknown, conflict?: string): unknown => {
  try {
    rethrowSql(err, conflict);
  } catch (e) {
    return e;
  }
  throw new Error('rethrowSql returned');
};

describe('rethrowSql: pg errors → domain errors', () => {
  it.each([
    ['connection failure (08006)', '08006'],
    ['admin shutdown (57P01)', '57P01'],
    ['too many connections (53300)', '53300'],
    ['deadlock (40P01)', '40P01'],
    ['serialization failure (40001)', '40001'],
    ['lock not available (55P03)', '55P03'],
    ['missing table: migrations not applied (42P01)', '42P01'],
    ['missing column (42703)', '42703'],
    ['invalid schema name (3F000)', '3F000'],
    ['disk full (53100)', '53100'],
    ['out of memory (53200)', '53200'],
    ['statement timeout (57014)', '57014'],
    ['I/O error (58030)', '58030'],
    ['read-only transaction after a failover (25006)', '25006'],
    ['internal error (XX000)', 'XX000'],
  ])('%s is unavailable, worth a retry', (_name, code) =>
    expect(thrown(pgError(code))).toBeInstanceOf(UnavailableError),
  );

  it.each([
    ['check constraint (23514)', '23514'],
    ['invalid JSON text (22P02)', '22P02'],
    ['untranslatable character (22P05)', '22P05'],
    ['value out of range (22003)', '22003'],
    ['index row too large (54000)', '54000'],
    ['raised by a trigger (P0001)', 'P0001'],
    ['upsert given one key twice (21000)', '21000'],
    ['in a failed transaction (25P02): an earlier error was the cause', '25P02'],
  ])('%s stays a data error (about the row, not the database)', (_name, code) => {
    const e = thrown(pgError(code));
    expect(e).not.toBeInstanceOf(UnavailableError);
    expect(e).toMatchObject({ code });
  });

  it.each([
    [
      'DNS failure (ENOTFOUND)',
      Object.assign(new Error('getaddrinfo ENOTFOUND db.internal'), {
        code: 'ENOTFOUND',
        syscall: 'getaddrinfo',
        errno: -3008,
      }),
    ],
    [
      'DNS try again (EAI_AGAIN)',
      Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN', syscall: 'getaddrinfo' }),
    ],
    [
      'any socket error',
      Object.assign(new Error('connect EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL', syscall: 'connect' }),
    ],
  ])('%s is unavailable: the way to the database failed, not the rows', (_name, err) =>
    expect(thrown(err)).toBeInstanceOf(UnavailableError),
  );

  it("leaves Prisma's own codes and errors without a SQLSTATE as they are", () => {
    expect(thrown(Object.assign(new Error('x'), { code: 'P2002' }))).toMatchObject({ code: 'P2002' });
    expect(thrown(new TypeError('bug'))).toBeInstanceOf(TypeError);
  });

  it('unique violation is a conflict when the caller names one', () => {
    expect(thrown(pgError('23505'), 'taken')).toBeInstanceOf(ConflictError);
    expect(thrown(pgError('23505'))).toMatchObject({ code: '23505' });
  });
});
