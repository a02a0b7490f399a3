import { queryFailureReason } from './postgres.probe';

const reasonOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('queryFailureReason', () => {
  it("says the server's statement timeout as the attempt's own deadline says it (whichever came first)", () => {
    expect(queryFailureReason(pgError('57014', 'canceling statement due to statement timeout'), 600, reasonOf)).toBe(
      'timed out after 600 ms',
    );
  });

  it('takes a cancel in another language for the timeout when the statement had run the whole timeout', () => {
    const german = pgError('57014', 'storniere Anfrage wegen Zeitüberschreitung der Anweisung');
    expect(queryFailureReason(german, 600, reasonOf, 612)).toBe('timed out after 600 ms');
    expect(queryFailureReason(german, 600, reasonOf, 40)).toMatch(/^query failed: .*\(SQLSTATE 57014\)$/);
  });

  it('keeps any other refusal as the server gave it, with its SQLSTATE', () => {
    // 57014 is also a cancel from another session (pg_cancel_backend): not our timeout.
    expect(queryFailureReason(pgError('57014', 'canceling statement due to user request'), 600, reasonOf)).toBe(
      'query failed: canceling statement due to user request (SQLSTATE 57014)',
    );
    expect(queryFailureReason(pgError('42P01', 'relation "nope" does not exist'), 600, reasonOf)).toBe(
      'query failed: relation "nope" does not exist (SQLSTATE 42P01)',
    );
    expect(queryFailureReason(new Error('odd'), 600, reasonOf)).toBe('query failed: odd');
  });
});
