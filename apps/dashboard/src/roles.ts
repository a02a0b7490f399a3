import { UserRole } from '@fleetwatch/contracts';

// Roles are ordered (SPEC §10): an admin may do what an operator may, an operator what a viewer may.
// The gateway decides; the page uses this only to hide or disable what the signed-in role would be refused.

const RANK: Record<UserRole, number> = { [UserRole.Viewer]: 1, [UserRole.Operator]: 2, [UserRole.Admin]: 3 };

/** True when `actual` may do what `needed` may. */
export const roleAtLeast = (actual: UserRole, needed: UserRole): boolean => RANK[actual] >= RANK[needed];

/** The table columns a user who may not write does not see: the row actions the gateway would refuse. */
export const hiddenFor = (canWrite: boolean): readonly string[] => (canWrite ? [] : ['actions']);
