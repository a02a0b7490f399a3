import { ApiErrorCode } from '@fleetwatch/contracts';
import {
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnavailableError,
} from '@fleetwatch/domain';
import { errorOfReply, knownErrorReply, RpcError } from '@fleetwatch/messaging';
import { mapError } from '@fleetwatch/observability';
import { DeniedError, domainErrorOf, StaleVersionError } from './owner-errors';
import { expectedVersionOf } from './request-envelope';

// How an owner's RPC failure reads at the gateway: the domain error it becomes, and the
// status the global filter gives it (409 and 422 get their own bodies in ConfigApiErrorFilter).

describe('domainErrorOf', () => {
  it.each([
    [
      new RpcError('invalid', 'bad', { issues: [{ path: 'conditions.1', message: 'line 1, column 10: x' }] }),
      400,
      ApiErrorCode.ValidationFailed,
    ],
    [new RpcError('not_found', 'no check'), 404, ApiErrorCode.NotFound],
    [new RpcError('conflict', 'stale', { currentVersion: 9 }), 409, ApiErrorCode.Conflict],
    [new RpcError('unavailable', 'no answer'), 503, ApiErrorCode.Unavailable],
    [new RpcError('internal', 'boom'), 500, ApiErrorCode.Internal],
  ])('%s → %i', (rpc, status, code) => {
    const mapped = mapError(domainErrorOf(rpc));
    expect(mapped.status).toBe(status);
    expect(mapped.body.error.code).toBe(code);
  });

  it('keeps what each answer carries', () => {
    const invalid = mapError(
      domainErrorOf(
        new RpcError('invalid', 'bad', { issues: [{ path: 'conditions.1', message: 'line 1, column 10: x' }] }),
      ),
    );
    expect(invalid.body.error.issues).toEqual([{ path: 'conditions.1', message: 'line 1, column 10: x' }]);
    expect(mapError(domainErrorOf(new RpcError('unavailable', 'x'))).headers).toEqual({ 'retry-after': '2' });
    const stale = domainErrorOf(new RpcError('conflict', 'stale', { currentVersion: 9 }));
    expect(stale).toBeInstanceOf(StaleVersionError);
    expect((stale as StaleVersionError).currentVersion).toBe(9);
    const denied = domainErrorOf(
      new RpcError('denied', 'metadata address', { issues: [{ path: 'url', message: 'denied' }] }),
    );
    expect(denied).toBeInstanceOf(DeniedError);
    expect((denied as DeniedError).issues).toEqual([{ path: 'url', message: 'denied' }]);
    // An internal error says nothing of the owner's details over HTTP.
    expect(mapError(domainErrorOf(new RpcError('internal', 'checks.get: secret detail'))).body.error.message).toBe(
      'internal error',
    );
  });
});

describe('expectedVersionOf (If-Match)', () => {
  it.each([
    [undefined, undefined],
    ['*', undefined],
    ['"7"', 7],
    [' "12" ', 12],
    ['7', 7],
  ])('%p → %p', (header, version) => expect(expectedVersionOf(header)).toBe(version));

  it.each(['W/"7"', '"7", "8"', '"x"', '"-1"', 'abc', '"1e3"'])('%p is refused naming If-Match', (header) => {
    expect(() => expectedVersionOf(header)).toThrow(
      expect.objectContaining({ issues: [expect.objectContaining({ path: 'If-Match' })] }),
    );
  });
});

describe('the whole way: a domain error thrown by an owner handler → reply → gateway error → HTTP', () => {
  it.each([
    [new InvalidError('invalid check', [{ path: 'conditions.1', message: 'line 1, column 10: x' }]), 400],
    [new NotFoundError('no check'), 404],
    [Object.assign(new ConflictError('stale'), { currentVersion: 4 }), 409],
    [
      Object.assign(new ForbiddenError('169.254.169.254 is denied'), { issues: [{ path: 'url', message: 'denied' }] }),
      422,
    ],
    [new UnavailableError('database away', 1), 503],
    [new RateLimitedError('busy', 1), 503],
    [new PayloadTooLargeError('too big'), 400],
  ])('%s → %i', (thrown, status) => {
    const reply = knownErrorReply(thrown);
    expect(reply).toBeDefined();
    const error = domainErrorOf(errorOfReply(reply as NonNullable<typeof reply>, 'checks.create'));
    const http = error instanceof StaleVersionError ? 409 : error instanceof DeniedError ? 422 : mapError(error).status;
    expect(http).toBe(status);
    if (status === 409) expect((error as StaleVersionError).currentVersion).toBe(4);
    // Issues travel both ways: the owner's field names reach the HTTP body.
    const sent = (thrown as { issues?: unknown[] }).issues;
    if (sent) expect((error as InvalidError).issues).toEqual(sent);
  });

  it('anything else is not a known reply (the server answers `internal` and logs it)', () => {
    expect(knownErrorReply(new TypeError('x is undefined'))).toBeUndefined();
    expect(knownErrorReply('a string')).toBeUndefined();
  });
});
