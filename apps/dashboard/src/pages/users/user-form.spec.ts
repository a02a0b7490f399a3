import { describe, expect, it } from 'vitest';
import { UserRole, userRoleSchema, type UserAdminView } from '@fleetwatch/contracts';
import { draftToBody, NEW_USER, ROLES, rowRules, userErrorsFrom, validateNewUser, validatePassword } from './user-form';

const user = (id: string, role: UserRole, disabled = false): UserAdminView => ({
  id,
  username: id,
  role,
  disabled,
  disabledAt: disabled ? '2026-12-01T00:00:00.000Z' : null,
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:00.000Z',
});

describe('user forms', () => {
  it('offers every role the contract accepts', () => {
    expect(ROLES.map((r) => r.value).sort()).toEqual([...userRoleSchema.options].sort());
  });

  it("runs the contract's messages on their fields", () => {
    expect(validateNewUser({ username: 'carol', password: 'long enough', role: UserRole.Operator })).toEqual({});
    expect(draftToBody({ username: ' carol ', password: ' p ', role: UserRole.Viewer })).toEqual({
      username: 'carol',
      password: ' p ',
      role: 'viewer',
    });
    const errors = validateNewUser({ ...NEW_USER, username: '<img src=x>', password: 'short' });
    expect(Object.keys(errors).sort()).toEqual(['password', 'username']);
    expect(errors.password).toBe('must be at least 8 characters');
    expect(errors.username).toMatch(/use letters, digits/);
    expect(validatePassword('short')).toBe('must be at least 8 characters');
    expect(validatePassword('long enough')).toBeNull();
  });

  it("puts the API's refusals beside the field they name", () => {
    expect(
      userErrorsFrom(
        { status: 400, message: 'x', issues: [{ path: 'password', message: 'must be at least 8 characters' }] },
        'create',
      ),
    ).toEqual({ password: 'must be at least 8 characters' });
    expect(userErrorsFrom({ status: 409, message: 'username "carol" is taken', issues: [] }, 'create')).toEqual({
      username: 'username "carol" is taken',
    });
    expect(userErrorsFrom({ status: 403, message: 'admin role required', issues: [] }, 'create')).toEqual({
      form: 'Not allowed: admin role required',
    });
    expect(userErrorsFrom({ status: 409, message: 'last admin', issues: [] }, 'role')).toEqual({
      role: 'last admin',
    });
    expect(userErrorsFrom({ status: 404, message: 'gone', issues: [] }, 'password')).toEqual({ password: 'gone' });
    expect(userErrorsFrom({ status: 500, message: 'internal error', issues: [] }, 'create')).toEqual({
      form: 'internal error',
    });
  });

  it.each([
    // me, row, everyone → role, disable, remove
    ['admin', 'admin', [user('admin', UserRole.Admin)], ['stays admin', 'yourself', 'yourself']],
    ['admin', 'carol', [user('admin', UserRole.Admin), user('carol', UserRole.Viewer)], [null, null, null]],
    [
      'admin',
      'root',
      [user('admin', UserRole.Admin), user('root', UserRole.Admin)],
      [null, null, null], // another enabled admin remains
    ],
    [
      'admin',
      'admin',
      [user('admin', UserRole.Admin), user('root', UserRole.Admin, true)],
      ['stays admin', 'yourself', 'yourself'], // a disabled admin does not count
    ],
    [
      'admin',
      'root',
      [user('admin', UserRole.Admin), user('root', UserRole.Admin, true)],
      [null, null, null], // a disabled admin may be enabled, demoted or deleted
    ],
    [
      'carol',
      'root',
      [user('carol', UserRole.Admin, true), user('root', UserRole.Admin)],
      ['stays admin', 'stays enabled', 'cannot be deleted'],
    ],
  ] as const)('%s looking at %s', (me, row, all, expected) => {
    const target = all.find((u) => u.id === row) as UserAdminView;
    const rules = rowRules(me, target, all);
    [rules.role, rules.disable, rules.remove].forEach((got, i) => {
      if (expected[i] === null) expect(got).toBeNull();
      else expect(got).toContain(expected[i]);
    });
  });
});
