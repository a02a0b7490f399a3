import { UserRole as R } from '@fleetwatch/contracts';
import { higherRole, roleAtLeast, roleOfApiKeyScopes, roleToManageApiKey } from './roles';

describe('roleAtLeast', () => {
  it.each([
    [R.Admin, R.Admin, true],
    [R.Admin, R.Operator, true],
    [R.Admin, R.Viewer, true],
    [R.Operator, R.Admin, false],
    [R.Operator, R.Operator, true],
    [R.Operator, R.Viewer, true],
    [R.Viewer, R.Admin, false],
    [R.Viewer, R.Operator, false],
    [R.Viewer, R.Viewer, true],
  ])('%s for %s → %s', (actual, required, expected) => {
    expect(roleAtLeast(actual, required)).toBe(expected);
  });

  it('higherRole picks the stronger', () => {
    expect(higherRole(R.Viewer, R.Operator)).toBe(R.Operator);
    expect(higherRole(R.Admin, R.Viewer)).toBe(R.Admin);
  });
});

describe('roleOfApiKeyScopes', () => {
  it.each([
    [['read'], R.Viewer],
    [['write'], R.Operator],
    [['admin'], R.Admin],
    [['read', 'write'], R.Operator],
    [['admin', 'read'], R.Admin],
    [['ingest', 'read'], R.Viewer],
    [['ingest'], null],
    [['fleet'], null],
    [['ingest', 'fleet'], null],
    [[], null],
    [['unknown-scope'], null],
  ])('%j → %s', (scopes, expected) => {
    expect(roleOfApiKeyScopes(scopes)).toBe(expected);
  });
});

describe('roleToManageApiKey', () => {
  it.each([
    [['ingest'], R.Operator],
    [['read', 'write'], R.Operator],
    [['admin'], R.Admin],
    [['fleet'], R.Admin],
    [['ingest', 'fleet'], R.Admin],
  ])('%j → %s', (scopes, expected) => {
    expect(roleToManageApiKey(scopes)).toBe(expected);
  });
});
