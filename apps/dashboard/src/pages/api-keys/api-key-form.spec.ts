import { describe, expect, it } from 'vitest';
import { ApiKeyScope, apiKeyScopeSchema, UserRole } from '@fleetwatch/contracts';
import { apiKeyErrorsFrom, draftToBody, mayManageKey, NEW_API_KEY, SCOPES, validateApiKey } from './api-key-form';
import { roleAtLeast } from '../../roles';

describe('API key form', () => {
  it('lists every scope the contract accepts, once', () => {
    expect(SCOPES.map((s) => s.scope).sort()).toEqual([...apiKeyScopeSchema.options].sort());
  });

  it('sends the optional parts only when given', () => {
    expect(draftToBody({ ...NEW_API_KEY, name: '  pusher  ' })).toEqual({ name: 'pusher', scopes: ['ingest'] });
    expect(
      draftToBody({
        name: 'p',
        scopes: [ApiKeyScope.Ingest, ApiKeyScope.Read],
        allowedCidrs: '10.0.0.0/8\n, 192.168.1.0/24,\n\n',
        clientCertSubject: ' pusher.example ',
      }),
    ).toEqual({
      name: 'p',
      scopes: ['ingest', 'read'],
      allowedCidrs: ['10.0.0.0/8', '192.168.1.0/24'],
      clientCertSubject: 'pusher.example',
    });
  });

  it.each([
    [UserRole.Viewer, ['ingest'], false],
    [UserRole.Operator, ['ingest', 'read', 'write'], true],
    [UserRole.Operator, ['ingest', 'fleet'], false],
    [UserRole.Operator, ['admin'], false],
    [UserRole.Admin, ['admin', 'fleet'], true],
  ])('%s may manage %j: %s', (role, scopes, expected) => {
    expect(mayManageKey(role, scopes)).toBe(expected);
  });

  it.each([
    [UserRole.Admin, UserRole.Operator, true],
    [UserRole.Operator, UserRole.Admin, false],
    [UserRole.Viewer, UserRole.Viewer, true],
    [UserRole.Viewer, UserRole.Operator, false],
  ])('%s at least %s: %s', (actual, needed, expected) => {
    expect(roleAtLeast(actual, needed)).toBe(expected);
  });

  it("runs the contract's own messages on their fields before sending", () => {
    expect(validateApiKey({ ...NEW_API_KEY, name: 'ok' }, UserRole.Operator)).toEqual({});
    const errors = validateApiKey(
      { name: '   ', scopes: [], allowedCidrs: '10.0.0.0/8\nnot-a-net', clientCertSubject: '' },
      UserRole.Operator,
    );
    expect(Object.keys(errors).sort()).toEqual(['allowedCidrs', 'name', 'scopes']);
    expect(errors.scopes).toBe('give at least one scope');
    expect(errors.allowedCidrs).toMatch(/^entry 2: /);
  });

  it('an operator asking for fleet is told on the scopes, as the gateway would answer', () => {
    const errors = validateApiKey({ ...NEW_API_KEY, name: 'x', scopes: [ApiKeyScope.Fleet] }, UserRole.Operator);
    expect(errors).toEqual({ scopes: 'only admins may grant fleet' });
    expect(validateApiKey({ ...NEW_API_KEY, name: 'x', scopes: [ApiKeyScope.Fleet] }, UserRole.Admin)).toEqual({});
  });

  it("puts the API's refusals on the fields it names", () => {
    expect(
      apiKeyErrorsFrom({
        status: 422,
        message: 'allowedCidrs: "x" not a CIDR',
        issues: [{ path: 'allowedCidrs.0', message: 'is not a CIDR (10.0.0.0/8)' }],
      }),
    ).toEqual({ allowedCidrs: 'entry 1: is not a CIDR (10.0.0.0/8)' });
    expect(
      apiKeyErrorsFrom({ status: 400, message: 'name: too long', issues: [{ path: 'name', message: 'too long' }] }),
    ).toEqual({ name: 'too long' });
    expect(
      apiKeyErrorsFrom({ status: 403, message: 'only admins may create a key with scopes fleet', issues: [] }),
    ).toEqual({ scopes: 'only admins may create a key with scopes fleet' });
    expect(apiKeyErrorsFrom({ status: 503, message: 'unavailable', issues: [] })).toEqual({ form: 'unavailable' });
    expect(
      apiKeyErrorsFrom({ status: 400, message: 'bad', issues: [{ path: 'extra', message: 'unrecognized key' }] }),
    ).toEqual({ form: 'extra: unrecognized key' });
  });
});
