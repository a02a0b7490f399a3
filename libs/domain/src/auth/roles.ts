import { ApiKeyScope, UserRole } from '@fleetwatch/contracts';

// Who may do what on the gateway (SPEC §10–§11). Roles are ordered: every admin may
// do what an operator may, every operator what a viewer may.

const RANK: Record<UserRole, number> = {
  [UserRole.Viewer]: 1,
  [UserRole.Operator]: 2,
  [UserRole.Admin]: 3,
};

/** True when `actual` may do what `required` may. */
export function roleAtLeast(actual: UserRole, required: UserRole): boolean {
  return RANK[actual] >= RANK[required];
}

/** The higher of two roles. */
export function higherRole(a: UserRole, b: UserRole): UserRole {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * The gateway role an API key acts with, from its scopes: `admin` → admin,
 * `write` → operator, `read` → viewer; the highest wins. `ingest` and `fleet`
 * grant nothing on the gateway's own routes (they are for the ingest edge and
 * for a leader polling member endpoints): null.
 */
export function roleOfApiKeyScopes(scopes: readonly string[]): UserRole | null {
  let role: UserRole | null = null;
  for (const scope of scopes) {
    const granted =
      scope === ApiKeyScope.Admin
        ? UserRole.Admin
        : scope === ApiKeyScope.Write
          ? UserRole.Operator
          : scope === ApiKeyScope.Read
            ? UserRole.Viewer
            : null;
    if (granted) role = role ? higherRole(role, granted) : granted;
  }
  return role;
}

/**
 * The least role that may create or revoke a key with these scopes, so nobody mints
 * a key stronger than themselves: `admin` and `fleet` need an admin; `ingest`,
 * `read` and `write` an operator.
 */
export function roleToManageApiKey(scopes: readonly string[]): UserRole {
  return scopes.some((s) => s === ApiKeyScope.Admin || s === ApiKeyScope.Fleet) ? UserRole.Admin : UserRole.Operator;
}
